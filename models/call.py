"""Phone calls, in and out. The menu's state lives here, keyed by CallSid.

Every answer to a menu step carries ``step_seq`` in its action URL; the row's
``step_seq`` is a version counter (checked on every ORM UPDATE), so two
deliveries of the same step cannot both take effect, and ``reply_twiml`` /
``reply_seq`` let a repeated delivery get exactly the answer the first got.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, case, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base, IdType, code, created_at, intpk, timestamp, updated_at
from .vocabulary import CALL_IN_PROGRESS as IN_PROGRESS
from .vocabulary import TWILIO_CALL_STATUS_RANK

__all__ = ["IN_PROGRESS", "PENDING_SID_PREFIX", "Call", "adopt_call_sid", "status_moves_forward", "twilio_status_rank"]

# The stand-in CallSid of a call we place, until Twilio gives the real one (the column is unique, not null).
PENDING_SID_PREFIX = "pending-"


class Call(Base):
    __tablename__ = "calls"
    # The calls still in progress, for the sweep of calls whose status callback never
    # came. Not on updated_at: a menu step then changes no indexed column, so
    # PostgreSQL updates the row in place (HOT; the table keeps free space, 0005).
    __table_args__ = (
        Index("ix_calls_in_progress", "created_at", postgresql_where=text("status = 'in_progress'"),
              sqlite_where=text("status = 'in_progress'")),
        # The report's call minutes per period, and a listing's first call back.
        Index("ix_calls_created_at", "created_at"),
        Index("ix_calls_broker_listing", "listing_id", "created_at",
              postgresql_where=text("purpose = 'broker_bridge'"), sqlite_where=text("purpose = 'broker_bridge'")),
    )

    id: Mapped[intpk]
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[code]  # inbound | outbound
    # menu | relay (bridged to a match partner) | broker_bridge | notification
    purpose: Mapped[code] = mapped_column(default="menu", server_default="menu")
    resident_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    raw_from: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[code] = mapped_column(default="nl", server_default="nl")
    # The menu step the caller is in, and how often it was asked there.
    step: Mapped[str | None] = mapped_column(String(64))
    step_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    data: Mapped[dict[str, Any] | None]
    # one of vocabulary.CALL_STATUSES
    status: Mapped[code] = mapped_column(default="in_progress", server_default="in_progress")
    twilio_status: Mapped[str | None] = mapped_column(String(32))
    listing_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("listings.id"))
    callback_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("callbacks.id", use_alter=True))
    match_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("matches.id"))
    broker_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("brokers.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_code: Mapped[int | None] = mapped_column(Integer)
    # Twilio's CallDuration (seconds) from the final status callback: the report's call minutes.
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # The TwiML answered to the step request numbered ``reply_seq``: a
    # repeated delivery of that request gets it again, unchanged.
    reply_seq: Mapped[int | None] = mapped_column(Integer)
    reply_twiml: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[timestamp]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    # Optimistic locking on the step counter: the application sets it, and
    # every UPDATE of the row requires the value it read.
    __mapper_args__ = {"version_id_col": step_seq, "version_id_generator": False}


def twilio_status_rank(column: Any = None) -> Any:
    """The rank (vocabulary's ``TWILIO_CALL_STATUS_RANK``) of a call's ``twilio_status`` in SQL; none yet or
    unknown is 0. A status callback moves ``twilio_status`` only to a higher rank."""
    return case(TWILIO_CALL_STATUS_RANK, value=Call.twilio_status if column is None else column, else_=0)


def status_moves_forward(current: str | None, new: str) -> bool:
    """Whether Twilio's call status ``new`` moves a call on from ``current`` along the vocabulary's
    ``TWILIO_CALL_STATUS_RANK``: a late or repeated status callback does not, nor a status Twilio does not
    have. (``twilio_status_rank`` is the same rule in SQL.)"""
    rank = TWILIO_CALL_STATUS_RANK.get(new)
    return rank is not None and rank > TWILIO_CALL_STATUS_RANK.get(current or "pending", 0)


def adopt_call_sid(session: Session, call: Call, call_sid: str | None) -> None:
    """A call we placed takes the CallSid Twilio reports for it, once, and only while no other call has it
    (a second call under one CallSid would break the unique column: a 500 for a signed but forged request)."""
    if not call_sid or not call.call_sid.startswith(PENDING_SID_PREFIX):
        return
    if session.scalar(select(Call.id).where(Call.call_sid == call_sid)) is None:
        call.call_sid = call_sid


def inbound_call_values(call_sid: str, raw_from: str | None, now: dt.datetime, *, resident_id: int | None = None,
                        language: str = "nl") -> dict[str, Any]:
    """A call that just came in, before the menu's first step: ``ivr_flows.calls`` stores it as a ``Call``,
    ``ivr_flows.fast`` writes it in SQL."""
    return {
        "call_sid": call_sid,
        "direction": "inbound",
        "purpose": "menu",
        "resident_id": resident_id,
        "raw_from": (raw_from or "")[:64] or None,
        "language": language,
        "step_seq": 0,
        "tries": 0,
        "data": {},
        "status": IN_PROGRESS,
        "twilio_status": "ringing",
        "created_at": now,
        "updated_at": now,
    }
