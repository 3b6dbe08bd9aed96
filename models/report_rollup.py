"""The report's figures rolled up per local day, so that a year's report reads a few tables of sums
instead of a year of messages and calls (models/reports.py).

Three tables, filled together for one day by the sweep (``models.reports.roll_up``) once the day is
settled, and emptied together for a day whenever something it was computed from changes
(``unroll_days``):

- ``report_rolled_days``: which days are rolled up, with the day's matches made and incoming contacts
  (the page's week line);
- ``report_days``: the day's counts and sums per group, for each grouping (district, category, channel);
- ``report_reach``: who was reached that day in each group, as a set of residents' ids, so that
  residents are counted once over any period (distinct counts cannot be summed across days).

A day absent from ``report_rolled_days`` has no rows in the other two, and the report computes it
from the ledgers. Rows hold ids and codes only: no name, number, postcode or text.
"""

from __future__ import annotations

import datetime as dt
import zlib

from collections.abc import Iterable

from sqlalchemy import Date, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk

__all__ = ["ReportDay", "ReportReach", "RolledDay", "as_bitmap", "as_bitmap_number", "from_bitmap"]


class RolledDay(Base):
    __tablename__ = "report_rolled_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    matches: Mapped[int] = mapped_column(Integer)
    contacts: Mapped[int] = mapped_column(Integer)


class ReportDay(Base):
    __tablename__ = "report_days"
    __table_args__ = (Index("ix_report_days_day", "day", "grouping"),)

    id: Mapped[intpk]
    day: Mapped[dt.date] = mapped_column(Date)
    # "district", "category" or "channel", and the group: each day's figures are kept for each grouping.
    grouping: Mapped[str] = mapped_column(String(16))
    grp: Mapped[str | None] = mapped_column(String(32))
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
    __table_args__ = (Index("ix_report_reach_day", "day", "grouping"),)

    id: Mapped[intpk]
    day: Mapped[dt.date] = mapped_column(Date)
    # "district", "category" or "channel" with ``grp`` its group; "all": everyone reached that day;
    # "asked", "offered": who made a request, an offer (BUUV's reciprocity figure).
    grouping: Mapped[str] = mapped_column(String(16))
    grp: Mapped[str | None] = mapped_column(String(32))
    # A set of residents' ids as a bitmap (bit n: resident n; little-endian bytes, zlib; see ``as_bitmap``):
    # a period's sets are OR-ed together, so a resident counts once however many days they came.
    residents: Mapped[bytes] = mapped_column(LargeBinary)


def as_bitmap_number(ids: Iterable[int]) -> int:
    ids = list(ids)
    bits = bytearray((max(ids, default=-1) >> 3) + 1)
    for resident_id in ids:
        bits[resident_id >> 3] |= 1 << (resident_id & 7)
    return int.from_bytes(bits, "little")


def as_bitmap(ids: Iterable[int]) -> bytes:
    number = as_bitmap_number(ids)
    # Compressed: a day reaches few of all residents, so its bitmap is mostly zeros.
    return zlib.compress(number.to_bytes((number.bit_length() + 7) // 8, "little"), 1)


def from_bitmap(data: bytes) -> int:
    return int.from_bytes(zlib.decompress(data), "little")
