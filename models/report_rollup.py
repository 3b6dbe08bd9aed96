"""The report's figures rolled up per local day, so that a year's report reads a few tables of sums
instead of a year of messages and calls (models/reports.py).

Three tables, filled together for one day by the sweep (``models.reports.roll_up``) once the day is
settled, and emptied together for a day whenever something it was computed from changes
(``unroll_days``):

- ``report_rolled_days``: which days are rolled up, with the day's matches made and incoming contacts
  (the page's week line);
- ``report_days``: the day's counts and sums per group (district, category and channel at once);
- ``report_reach``: who was reached that day in which group, one row per resident and group, so that
  residents are counted once over any period (distinct counts cannot be summed across days).

A day absent from ``report_rolled_days`` has no rows in the other two, and the report computes it
from the ledgers. Rows hold ids and codes only: no name, number, postcode or text.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdType, intpk

__all__ = ["ReportDay", "ReportReach", "RolledDay"]


class RolledDay(Base):
    __tablename__ = "report_rolled_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    matches: Mapped[int] = mapped_column(Integer)
    contacts: Mapped[int] = mapped_column(Integer)


class ReportDay(Base):
    __tablename__ = "report_days"
    __table_args__ = (Index("ix_report_days_day", "day"),)

    id: Mapped[intpk]
    day: Mapped[dt.date] = mapped_column(Date)
    district: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    requests: Mapped[int] = mapped_column(Integer)
    offers: Mapped[int] = mapped_column(Integer)
    matches_proposed: Mapped[int] = mapped_column(Integer)
    matches_done: Mapped[int] = mapped_column(Integer)
    callbacks: Mapped[int] = mapped_column(Integer)
    satisfaction_answers: Mapped[int] = mapped_column(Integer)
    mark_sum: Mapped[int] = mapped_column(Integer)
    sms_segments: Mapped[int] = mapped_column(Integer)
    call_minutes: Mapped[int] = mapped_column(Integer)


class ReportReach(Base):
    __tablename__ = "report_reach"
    __table_args__ = (
        # Covering: a period's rows are read from the index alone.
        Index("ix_report_reach_day", "day", "district", "category", "channel", "resident_id", "asked", "offered"),
    )

    id: Mapped[intpk]
    day: Mapped[dt.date] = mapped_column(Date)
    resident_id: Mapped[int] = mapped_column(IdType)
    district: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    # 1 when the resident made a request (an offer) that day in this group: the reciprocity figure.
    asked: Mapped[int] = mapped_column(SmallInteger)
    offered: Mapped[int] = mapped_column(SmallInteger)
