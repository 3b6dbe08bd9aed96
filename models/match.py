"""A match between a request and an offer, from proposal to help given."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, IdType, code, created_at, intpk, timestamp, updated_at
from .vocabulary import MATCH_STATUSES, check_in


class Match(Base):
    __tablename__ = "matches"
    __table_args__ = (
        CheckConstraint(check_in("status", MATCH_STATUSES), name="status"),
        Index("ix_matches_offer_status", "offer_id", "status"),
        # The sweeps look for proposals past respond_by and confirmed matches to remind.
        Index("ix_matches_status_respond_by", "status", "respond_by"),
        Index("ix_matches_updated_at", "updated_at"),
        # The report: matches proposed and done in a period.
        Index("ix_matches_created_at", "created_at"),
        Index("ix_matches_done_at", "done_at"),
    )

    id: Mapped[intpk]
    request_id: Mapped[int] = mapped_column(IdType, ForeignKey("listings.id"), index=True)
    offer_id: Mapped[int] = mapped_column(IdType, ForeignKey("listings.id"))
    status: Mapped[code] = mapped_column(default="proposed", server_default="proposed")
    note: Mapped[str | None] = mapped_column(Text)
    proposed_by_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("brokers.id"))
    respond_by: Mapped[timestamp]
    meeting_at: Mapped[timestamp]
    accepted_at: Mapped[timestamp]
    declined_at: Mapped[timestamp]
    expired_at: Mapped[timestamp]
    confirmed_at: Mapped[timestamp]
    done_at: Mapped[timestamp]
    cancelled_at: Mapped[timestamp]
    # Markers of what was said after confirmation, so each is said once.
    reminder_sent_at: Mapped[timestamp]
    feedback_requested_at: Mapped[timestamp]
    problem_reported_at: Mapped[timestamp]
    # A broker ended the passing on of texts and calls between the two (the match itself goes on).
    relay_ended_at: Mapped[timestamp]
    relay_ended_by_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("brokers.id"))
    # Who closed it (resident | broker | api | system) and why, for the broker's view.
    closed_by: Mapped[str | None] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    request: Mapped["Listing"] = relationship(foreign_keys=[request_id])  # noqa: F821
    offer: Mapped["Listing"] = relationship(foreign_keys=[offer_id])  # noqa: F821
