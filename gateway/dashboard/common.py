"""What every dashboard feature uses: the audit line for a broker's action, the item or a 404, shared limits."""

from __future__ import annotations

from typing import Any

from flask import abort

from models import Callback
from models.audit import audit

from ..database import get_session
from .auth import me, remote_addr

CATEGORIES = ("groceries", "chores", "transport", "company", "digital", "language", "paperwork", "sitting", "other")
MAX_NOTE = 2000


def audit_action(action: str, object_type: str | None, object_id: Any, *, result: str = "ok", **detail: Any) -> None:
    """One audit line for what the logged-in broker did, from where."""
    audit(
        get_session(),
        action,
        actor_type="broker",
        actor_id=me().id,
        object_type=object_type,
        object_id=object_id,
        result=result,
        remote_addr=remote_addr(),
        detail={k: v for k, v in detail.items() if v is not None} or None,
    )


def callback_or_404(callback_id: int) -> Callback:
    callback = get_session().get(Callback, callback_id)
    if callback is None:
        abort(404)
    return callback
