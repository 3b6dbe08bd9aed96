"""The brokers' queue: everything a person has to look at or call back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, IdType, UTCDateTime, code, created_at, intpk, timestamp, updated_at, utcnow
from .vocabulary import CALLBACK_STATUSES, REASON_PRIORITY, check_in

__all__ = ["CALLBACK_STATUSES", "REASON_PRIORITY", "Callback"]


class Callback(Base):
    __tablename__ = "callbacks"
    __table_args__ = (
        CheckConstraint(check_in("status", CALLBACK_STATUSES), name="status"),
        Index("ix_callbacks_queue", "status", "priority", "due_at"),
        Index("ix_callbacks_created_at", "created_at"),
    )

    id: Mapped[intpk]
    reason: Mapped[code]
    status: Mapped[code] = mapped_column(default="open", server_default="open")
    resident_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    listing_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("listings.id"))
    message_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("messages.id"))
    call_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("calls.id"))
    match_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("matches.id"))
    priority: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("brokers.id"))
    lease_expires_at: Mapped[timestamp]
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # One open item per cause: a retried webhook or job queues nothing twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
    closed_at: Mapped[timestamp]

    resident: Mapped["Resident | None"] = relationship()  # noqa: F821
    listing: Mapped["Listing | None"] = relationship()  # noqa: F821
