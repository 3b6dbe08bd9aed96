"""Brokers (sociaal makelaars) and coordinators, and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdType, UTCDateTime, code, created_at, intpk, timestamp, updated_at, utcnow
from .vocabulary import BROKER_ROLES as ROLES
from .vocabulary import check_in


class Broker(Base):
    __tablename__ = "brokers"
    __table_args__ = (CheckConstraint(check_in("role", ROLES), name="role"),)

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[code] = mapped_column(default="broker", server_default="broker")
    # The broker's own phone: the gateway calls it, then bridges to the resident.
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    language: Mapped[code] = mapped_column(default="nl", server_default="nl")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[timestamp]
    last_login_at: Mapped[timestamp]
    # Kept in each login's session and compared on every request: raising it ends them all at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def is_coordinator(self) -> bool:
        return self.role == "coordinator"

    @property
    def is_viewer(self) -> bool:
        """The municipality's account: reports only."""
        return self.role == "viewer"


class AuditEvent(Base):
    """Who did what to which object, with what result, from where, when (UTC)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[intpk]
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: Mapped[code]  # broker | api | system | resident
    actor_id: Mapped[int | None] = mapped_column(IdType)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[code] = mapped_column(default="ok", server_default="ok")
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]
