"""How it went: each resident's mark (1 to 5) for a match that is done, asked once of each side.

A row is made when the question goes out (the unique pair makes asking twice
impossible); the first mark fills it, and a second or late one changes nothing.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdType, code, created_at, intpk, timestamp
from .vocabulary import SATISFACTION_MARKS

__all__ = ["Satisfaction"]


class Satisfaction(Base):
    __tablename__ = "satisfaction"
    __table_args__ = (
        UniqueConstraint("match_id", "resident_id", name="uq_satisfaction_match_resident"),
        CheckConstraint(f"mark IS NULL OR mark BETWEEN {min(SATISFACTION_MARKS)} AND {max(SATISFACTION_MARKS)}",
                        name="mark"),
        # The report counts the marks given in a period.
        Index("ix_satisfaction_answered_at", "answered_at"),
    )

    id: Mapped[intpk]
    match_id: Mapped[int] = mapped_column(IdType, ForeignKey("matches.id"))
    resident_id: Mapped[int] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    # sms | voice: how the question went out.
    channel: Mapped[code]
    mark: Mapped[int | None] = mapped_column(Integer)
    asked_at: Mapped[created_at]
    answered_at: Mapped[timestamp]
