"""How it went: each resident's mark (1 to 5) for a match that is done, asked once of each side.

A row is made when the question goes out (the unique pair makes asking twice
impossible); the first mark fills it, and a second or late one changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base, IdType, code, created_at, intpk, timestamp, utcnow
from .sql import insert_ignoring_conflict
from .vocabulary import SATISFACTION_MARKS

__all__ = ["ANSWER_WINDOW", "MarkGiven", "Satisfaction", "ask_once", "awaits_mark", "record_mark"]


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


# A question waits this long for its mark; a later answer is free text, as any message.
ANSWER_WINDOW = dt.timedelta(days=14)


@dataclass(frozen=True)
class MarkGiven:
    match_id: int
    recorded: bool  # False: this resident's mark for it was already in


def ask_once(session: Session, match_id: int, resident_id: int, channel: str) -> bool:
    """Note that ``resident_id`` is asked about ``match_id``; False when they were asked before."""
    session.flush()
    new_id = insert_ignoring_conflict(
        session, Satisfaction.__table__,
        {"match_id": match_id, "resident_id": resident_id, "channel": channel, "asked_at": utcnow()},
        returning=Satisfaction.id,
    )
    return new_id is not None


def awaits_mark(session: Session, resident_id: int, match_id: int, now: dt.datetime) -> bool:
    """Was this resident asked for a mark for this match within the window, and gave none yet?"""
    return session.scalar(
        select(Satisfaction.id).where(Satisfaction.resident_id == resident_id, Satisfaction.match_id == match_id,
                                      Satisfaction.mark.is_(None), Satisfaction.asked_at >= now - ANSWER_WINDOW)
        .limit(1)
    ) is not None


def record_mark(session: Session, resident_id: int, mark: int, *, now: dt.datetime,
                match_id: int | None = None) -> MarkGiven | None:
    """A resident's mark for the latest question still waiting (or for ``match_id``), kept once.

    None when nothing of theirs waits for a mark (never asked, or asked too long ago): the answer is
    then free text. A second mark within the window changes nothing (``recorded`` False).
    """
    if mark not in SATISFACTION_MARKS:
        return None
    query = (select(Satisfaction).where(Satisfaction.resident_id == resident_id,
                                        Satisfaction.asked_at >= now - ANSWER_WINDOW)
             .order_by(Satisfaction.mark.is_not(None), Satisfaction.asked_at.desc(), Satisfaction.id.desc())
             .limit(1).with_for_update())
    if match_id is not None:
        query = query.where(Satisfaction.match_id == match_id)
    row = session.scalars(query).first()
    if row is None:
        return None
    if row.mark is not None:
        return MarkGiven(row.match_id, recorded=False)
    # Only the first answer fills it, even when two arrive at once.
    filled = session.execute(
        update(Satisfaction).where(Satisfaction.id == row.id, Satisfaction.mark.is_(None))
        .values(mark=mark, answered_at=now).execution_options(synchronize_session=False)
    ).rowcount
    return MarkGiven(row.match_id, recorded=bool(filled))
