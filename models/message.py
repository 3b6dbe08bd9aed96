"""Every SMS in and out, with its Twilio SID: the gateway's ledger."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdType, code, created_at, intpk, timestamp, updated_at
from .vocabulary import FINAL_OUTBOUND, MESSAGE_DIRECTIONS, OUTBOUND_STATUS_RANK, check_in

__all__ = ["FINAL_OUTBOUND", "OUTBOUND_STATUS_RANK", "Message"]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(check_in("direction", MESSAGE_DIRECTIONS), name="direction"),
        Index("ix_messages_pending", "direction", "status"),
        Index("ix_messages_phone_created", "phone", "created_at"),
        # The outbound policy counts the day's SMS in all (models/destinations.py).
        Index("ix_messages_sent", "sent_at"),
        # The report's SMS segments per period.
        Index("ix_messages_created_at", "created_at"),
        # A listing's messages, when the report's roll-up has to count their days again. Partial: an
        # incoming SMS is stored with no listing, so the webhook's insert never touches it.
        Index("ix_messages_listing", "listing_id", postgresql_where=text("listing_id IS NOT NULL"),
              sqlite_where=text("listing_id IS NOT NULL")),
    )

    id: Mapped[intpk]
    direction: Mapped[code]
    # Unique: a replayed inbound MessageSid inserts nothing.
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    resident_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    # E.164 when the number is valid; raw_from keeps whatever Twilio sent.
    phone: Mapped[str | None] = mapped_column(String(20))
    raw_from: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="", server_default="")
    # inbound: vocabulary.INBOUND_MESSAGE_STATUSES; outbound: vocabulary.OUTBOUND_STATUS_RANK
    status: Mapped[code]
    keyword: Mapped[str | None] = mapped_column(String(32))
    # Twilio's Advanced Opt-Out verdict (STOP/START/HELP): Twilio has answered already.
    opt_out_type: Mapped[str | None] = mapped_column(String(16))
    # outbound: reply | notification | proposal | reminder | ...
    purpose: Mapped[str | None] = mapped_column(String(32))
    # outbound: one row per intent, so a retried job or webhook makes one message.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    send_after: Mapped[timestamp]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_code: Mapped[int | None] = mapped_column(Integer)
    # Twilio's NumSegments, when it told us; the report counts a message without it as one segment.
    segments: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(500))
    listing_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("listings.id"))
    match_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("matches.id"))
    # The queue item a broker reads this text on (an SMS nobody could place). No foreign key:
    # items already point to their first message, and the two tables must stay orderable.
    callback_id: Mapped[int | None] = mapped_column(IdType, index=True)
    handled_at: Mapped[timestamp]
    sent_at: Mapped[timestamp]
    status_at: Mapped[timestamp]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
