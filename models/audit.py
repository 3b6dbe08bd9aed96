"""The audit trail: who did what to which object, with what result, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .base import utcnow
from .broker import AuditEvent


def audit(
    session: Session,
    action: str,
    *,
    actor_type: str,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | str | None = None,
    result: str = "ok",
    remote_addr: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        at=utcnow(),
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        result=result,
        remote_addr=remote_addr,
        detail=detail,
    )
    session.add(event)
    return event
