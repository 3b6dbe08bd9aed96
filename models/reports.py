"""The report for the municipality (contract: Reports): anonymous counts per district, category or channel.

Everything is counted in the database with GROUP BY; only one row per group
comes back. No name, number, postcode or text ever leaves this module, and
small counts are suppressed here, once, for the API, the page and the CSV.

What each figure counts, for a period of local dates (both inclusive):

- ``residents``: residents with a listing, an incoming SMS or an incoming call in the period;
- ``requests``, ``offers``: listings made in the period;
- ``matches_proposed``: matches made in the period; ``matches_done``: matches done in it;
- ``callbacks``: items put in the brokers' queue in the period;
- ``median_hours_to_contact``: from a listing made in the period to the broker's first call back;
- ``satisfaction_answers``, ``satisfaction_mean``: residents' marks given in the period;
- ``sms_segments``: segments of the SMS sent in the period (one where Twilio gave no count);
- ``call_minutes``: minutes of the calls in the period, each begun minute counted as Twilio bills it.

A figure belongs to the group of the listing it concerns (a match: its request); a message, call or
queue item about no listing belongs to its resident's district, to no category, and to the channel it
came by. Residents are counted once per group, and once in the totals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, cast, extract, func, literal, or_, select, text, union, union_all
from sqlalchemy import Float, Integer as SqlInteger
from sqlalchemy.orm import Session

from .call import Call
from .callback import Callback
from .districts import district_map
from .listing import Listing
from .match import Match
from .message import Message
from .resident import Resident
from .satisfaction import Satisfaction
from .vocabulary import CATEGORIES, CHANNELS, REPORT_GROUPINGS

__all__ = [
    "COUNT_KEYS",
    "DEFAULT_MIN_COUNT",
    "KEYS",
    "MAX_REPORT_DAYS",
    "PRESETS",
    "Report",
    "ReportError",
    "build_report",
    "parse_period",
    "preset_period",
    "suppress",
]

DEFAULT_MIN_COUNT = 5
# A report covers at most ten years.
MAX_REPORT_DAYS = 3653
# Every figure of a row and of the totals, in the contract's order.
KEYS = (
    "residents", "requests", "offers", "matches_proposed", "matches_done", "callbacks",
    "median_hours_to_contact", "satisfaction_answers", "satisfaction_mean", "sms_segments", "call_minutes",
)
# The counts; the other two are a median and a mean, each over the count named here.
AVERAGE_OVER = {"median_hours_to_contact": "_contacted", "satisfaction_mean": "satisfaction_answers"}
COUNT_KEYS = tuple(key for key in KEYS if key not in AVERAGE_OVER)
# Outbound SMS that never went out cost nothing.
_UNSENT = ("pending", "submitting", "blocked", "canceled")
# A call a broker places to call a resident back (models/bridge.py).
_BROKER_CALL = "broker_bridge"


class ReportError(ValueError):
    """A period or grouping the report cannot take; the message says what is wrong, for a 400 of the API;
    ``why`` names it in one word for the dashboard's ``reports.error.<why>``."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class Period:
    first: dt.date
    last: dt.date
    zone: ZoneInfo

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), self.zone).astimezone(dt.timezone.utc)

    @property
    def end(self) -> dt.datetime:
        """The first moment after the period (the day after ``last``, at local midnight)."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), self.zone).astimezone(dt.timezone.utc)


@dataclass
class Report:
    first: dt.date
    last: dt.date
    by: str
    min_count: int
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    # Not in the contract's JSON; the page shows them: who both asked and offered, and telecom use.
    reciprocity: float | None
    weeks: list[dict[str, Any]]
    # Telecom cost (SMS segments and call minutes at the organisation's prices) per match done, in euros.
    cost_per_match: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "by": self.by,
            "min_count": self.min_count,
            "rows": self.rows,
            "totals": self.totals,
        }


def parse_period(first: str | None, last: str | None, by: str | None, zone: ZoneInfo) -> tuple[Period, str]:
    """The period and grouping as given in a request; ReportError with a clear message otherwise."""
    dates = []
    for name, value in (("from", first), ("to", last)):
        if not value:
            raise ReportError(f"{name} is required, as YYYY-MM-DD", "date_missing")
        try:
            if len(value) != 10:
                raise ValueError
            dates.append(dt.date.fromisoformat(value))
        except ValueError:
            raise ReportError(f"{name} must be a date as YYYY-MM-DD, not {value[:20]!r}", "date") from None
    if dates[1] < dates[0]:
        raise ReportError("to must not be before from", "order")
    if (dates[1] - dates[0]).days + 1 > MAX_REPORT_DAYS:
        raise ReportError("a report covers at most 10 years", "too_long")
    if dates[1] >= dt.date.max - dt.timedelta(days=2):
        raise ReportError("to is too far in the future", "future")
    if by not in REPORT_GROUPINGS:
        raise ReportError(f"by must be one of: {', '.join(REPORT_GROUPINGS)}", "by")
    return Period(dates[0], dates[1], zone), by


# The page's choices of period, each ending today or before it (local dates).
PRESETS = ("this_month", "last_quarter", "last_12_months", "last_year")


def preset_period(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last local date of a named period, as of ``today``."""
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_quarter":
        quarter_start = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = quarter_start - dt.timedelta(days=1)
        return dt.date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last
    if name == "last_12_months":
        try:
            start = today.replace(year=today.year - 1)
        except ValueError:  # 29 February
            start = today.replace(year=today.year - 1, day=28)
        return start + dt.timedelta(days=1), today
    if name == "last_year":
        return dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)
    raise ReportError(f"period must be one of: {', '.join(PRESETS)}", "period")


# --- the queries ----------------------------------------------------------------------------


def _group(by: str, listing: Any, resident: Any, channel: Any) -> Any:
    """A row's group: its listing's, else (district) its resident's, else (channel) how it came."""
    if by == "district":
        return func.coalesce(listing.district, resident.district)
    if by == "category":
        return listing.category
    return func.coalesce(listing.channel, channel)


def _hours(session: Session, earlier: Any, later: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _in(column: Any, period: Period) -> Any:
    return and_(column >= period.start, column < period.end)


def _listing_counts(by: str, period: Period) -> Select[Any]:
    group = _group(by, Listing, Resident, literal(None)).label("grp")
    return (
        select(group,
               func.sum(case((Listing.kind == "request", 1), else_=0)).label("requests"),
               func.sum(case((Listing.kind == "offer", 1), else_=0)).label("offers"))
        .select_from(Listing).join(Resident, Resident.id == Listing.resident_id)
        .where(_in(Listing.created_at, period))
        .group_by(group)
    )


def _folded(table: Any, where: Any, *measures: Any) -> Any:
    """The period's rows of ``table`` folded to one per (resident, listing) before anything is joined to
    them: a year holds hundreds of thousands of messages but only tens of thousands of such pairs."""
    return (select(table.c.resident_id.label("resident_id"), table.c.listing_id.label("listing_id"), *measures)
            .where(where).group_by(table.c.resident_id, table.c.listing_id).subquery())


def _per_group(by: str, folded: Any, channel: str | None, *measures: Any) -> Select[Any]:
    """``folded`` rows with their group (from their listing, else their resident, else ``channel``)."""
    listing, resident = Listing.__table__.alias(), Resident.__table__.alias()
    group = _group(by, listing.c, resident.c, literal(channel))
    joined = (folded.outerjoin(listing, listing.c.id == folded.c.listing_id)
              .outerjoin(resident, resident.c.id == folded.c.resident_id))
    return select(group.label("grp"), *measures).select_from(joined)


def _reached(by: str, period: Period) -> Any:
    """Residents with a listing, an incoming SMS or call in the period: per group, and (``overall`` true)
    once in all, from one pass over the period's rows."""
    listings, messages, calls = Listing.__table__, Message.__table__, Call.__table__
    resident = Resident.__table__.alias()
    own_group = _group(by, listings.c, resident.c, literal(None))
    contacts = []
    for table, channel in ((messages, "sms"), (calls, "voice")):
        folded = _folded(table, and_(_in(table.c.created_at, period), table.c.direction == "inbound",
                                     table.c.resident_id.is_not(None)))
        contacts.append(_per_group(by, folded, channel, folded.c.resident_id))
    everyone = union(
        select(own_group.label("grp"), listings.c.resident_id.label("resident_id"))
        .select_from(listings.outerjoin(resident, resident.c.id == listings.c.resident_id))
        .where(_in(listings.c.created_at, period)),
        *contacts,
    ).cte("everyone")
    per_group = select(everyone.c.grp, func.count(everyone.c.resident_id).label("residents"),
                       literal(0).label("overall")).group_by(everyone.c.grp)
    overall = select(literal(None).label("grp"), func.count(func.distinct(everyone.c.resident_id)),
                     literal(1)).select_from(everyone)
    return union_all(per_group, overall)


def _match_counts(by: str, period: Period) -> Select[Any]:
    group = _group(by, Listing, Resident, literal(None)).label("grp")
    return (
        select(group,
               func.sum(case((_in(Match.created_at, period), 1), else_=0)).label("matches_proposed"),
               func.sum(case((_in(Match.done_at, period), 1), else_=0)).label("matches_done"))
        .select_from(Match).join(Listing, Listing.id == Match.request_id)
        .join(Resident, Resident.id == Listing.resident_id)
        .where(or_(_in(Match.created_at, period), _in(Match.done_at, period)))
        .group_by(group)
    )


def _callback_counts(by: str, period: Period) -> Select[Any]:
    came_by = case((Callback.message_id.is_not(None), "sms"), (Callback.call_id.is_not(None), "voice"), else_=None)
    group = _group(by, Listing, Resident, came_by).label("grp")
    return (
        select(group, func.count().label("callbacks"))
        .select_from(Callback).outerjoin(Listing, Listing.id == Callback.listing_id)
        .outerjoin(Resident, Resident.id == Callback.resident_id)
        .where(_in(Callback.created_at, period))
        .group_by(group)
    )


def _satisfaction_counts(by: str, period: Period) -> Select[Any]:
    group = _group(by, Listing, Resident, literal(None)).label("grp")
    return (
        select(group, func.count().label("satisfaction_answers"),
               func.sum(Satisfaction.mark).label("_mark_sum"))
        .select_from(Satisfaction).join(Match, Match.id == Satisfaction.match_id)
        .join(Listing, Listing.id == Match.request_id).join(Resident, Resident.id == Listing.resident_id)
        .where(_in(Satisfaction.answered_at, period), Satisfaction.mark.is_not(None))
        .group_by(group)
    )


def _sms_counts(by: str, period: Period) -> Select[Any]:
    messages = Message.__table__
    folded = _folded(messages, and_(_in(messages.c.created_at, period), messages.c.direction == "outbound",
                                    messages.c.status.not_in(_UNSENT)),
                     func.sum(func.coalesce(messages.c.segments, 1)).label("segments"))
    query = _per_group(by, folded, "sms", func.sum(folded.c.segments).label("sms_segments"))
    return query.group_by(query.selected_columns.grp)


def _call_counts(by: str, period: Period) -> Select[Any]:
    calls = Call.__table__
    minutes = (func.coalesce(calls.c.duration_seconds, 0) + 59) // 60
    folded = _folded(calls, and_(_in(calls.c.created_at, period), calls.c.duration_seconds > 0),
                     func.sum(minutes).label("minutes"))
    query = _per_group(by, folded, "voice", func.sum(folded.c.minutes).label("call_minutes"))
    return query.group_by(query.selected_columns.grp)


def _medians(session: Session, by: str | None, period: Period) -> dict[Any, tuple[int, float | None]]:
    """Per group (or overall, ``by`` None): how many listings of the period were called back, and the
    median hours to the first call back. The median is taken in SQL with window functions (PostgreSQL and
    SQLite alike): the middle one or two of each group's ordered waits."""
    first_call = (
        select(Call.listing_id.label("listing_id"), func.min(Call.created_at).label("first_at"))
        .where(Call.purpose == _BROKER_CALL, Call.listing_id.is_not(None))
        .group_by(Call.listing_id).subquery()
    )
    group = (_group(by, Listing, Resident, literal(None)) if by else literal("all")).label("grp")
    hours = _hours(session, Listing.created_at, first_call.c.first_at)
    waits = (
        select(group, cast(hours, Float).label("hours"))
        .select_from(Listing).join(first_call, first_call.c.listing_id == Listing.id)
        .join(Resident, Resident.id == Listing.resident_id)
        .where(_in(Listing.created_at, period), first_call.c.first_at >= Listing.created_at)
        .subquery()
    )
    ranked = select(
        waits.c.grp, waits.c.hours,
        func.row_number().over(partition_by=waits.c.grp, order_by=waits.c.hours).label("position"),
        func.count().over(partition_by=waits.c.grp).label("n"),
    ).subquery()
    middle = or_(ranked.c.position == (ranked.c.n + 1) // 2, ranked.c.position == (ranked.c.n + 2) // 2)
    query = (select(ranked.c.grp, func.max(ranked.c.n), func.avg(ranked.c.hours))
             .where(middle).group_by(ranked.c.grp))
    return {grp: (int(n), float(median)) for grp, n, median in session.execute(query)}


def _weeks(session: Session, period: Period) -> list[dict[str, Any]]:
    """Matches made and incoming contacts (SMS and calls) per week of the period, for the page's line."""
    days = (period.end - period.start).total_seconds() / 86400

    def per_week(column: Any, where: Any) -> dict[int, int]:
        offset = _hours(session, literal(period.start), column) / (24.0 * 7)
        week = cast(func.floor(offset), SqlInteger) if session.get_bind().dialect.name == "postgresql" \
            else cast(offset, SqlInteger)
        query = select(week, func.count()).where(_in(column, period), where).group_by(week)
        return {int(index): int(count) for index, count in session.execute(query)}

    matches = per_week(Match.created_at, literal(True))
    texts = per_week(Message.created_at, Message.direction == "inbound")
    calls = per_week(Call.created_at, Call.direction == "inbound")
    weeks = []
    for index in range(int((days + 6) // 7)):
        weeks.append({
            "week_start": (period.first + dt.timedelta(days=7 * index)).isoformat(),
            "matches": matches.get(index, 0),
            "contacts": texts.get(index, 0) + calls.get(index, 0),
        })
    return weeks


# --- suppression ----------------------------------------------------------------------------


def suppress(cells: list[int], total: int, min_count: int) -> tuple[list[int | None], int | None]:
    """One column of counts and its total, with small counts hidden (contract: Reports).

    Primary: a count from 1 to ``min_count - 1`` is hidden. Secondary: while exactly one cell of the
    column is hidden and the total is shown, the total minus the shown cells would give it away, so the
    smallest other cell (not zero: hiding a zero hides nothing) is hidden too; with no such cell, the
    total is.
    """
    def small(value: int) -> bool:
        return 0 < value < min_count

    hidden = {index for index, value in enumerate(cells) if small(value)}
    total_shown = not small(total)
    if total_shown and len(hidden) == 1:
        others = [(value, index) for index, value in enumerate(cells) if index not in hidden and value > 0]
        if others:
            hidden.add(min(others)[1])
        else:
            total_shown = False
    return [None if index in hidden else value for index, value in enumerate(cells)], total if total_shown else None


def _mean(total: float, count: int, min_count: int) -> float | None:
    if count < max(min_count, 1):
        return None
    return round(total / count, 1)


# --- the report -------------------------------------------------------------------------------


def _known_groups(by: str) -> tuple[str, ...]:
    if by == "district":
        return tuple(district_map().districts)
    if by == "category":
        return CATEGORIES
    return CHANNELS


def build_report(session: Session, period: Period, by: str, *, min_count: int = DEFAULT_MIN_COUNT,
                 prices: tuple[float | None, float | None] = (None, None)) -> Report:
    """The report for ``period`` grouped ``by``: rows for every known group (and ``None`` for what has
    none, when there is any), the totals, with small counts suppressed."""
    figures: dict[Any, dict[str, Any]] = {}
    if session.get_bind().dialect.name == "postgresql":
        # A year's messages are folded and joined in memory, not in temporary files (this transaction only).
        session.execute(text("SET LOCAL work_mem = '64MB'"))

    def gather(query: Any) -> None:
        for row in session.execute(query).mappings():
            into = figures.setdefault(row["grp"], {})
            for key, value in row.items():
                if key != "grp":
                    into[key] = (into.get(key) or 0) + (value or 0)

    reached_total = 0
    for grp, residents, overall in session.execute(_reached(by, period)):
        if overall:
            reached_total = int(residents or 0)
        else:
            figures.setdefault(grp, {})["residents"] = int(residents or 0)
    for query in (_listing_counts(by, period), _match_counts(by, period),
                  _callback_counts(by, period), _satisfaction_counts(by, period), _sms_counts(by, period),
                  _call_counts(by, period)):
        gather(query)
    medians = _medians(session, by, period)
    overall_median = _medians(session, None, period).get("all", (0, None))
    both = _asked_and_offered(session, period)

    known = _known_groups(by)
    groups = [*known, *sorted((g for g in figures if g not in known and g is not None), key=str)]
    if None in figures:
        groups.append(None)

    raw_rows = []
    for group in groups:
        found = figures.get(group, {})
        contacted, median = medians.get(group, (0, None))
        raw = {key: int(found.get(key) or 0) for key in COUNT_KEYS}
        raw["_contacted"], raw["_median"], raw["_mark_sum"] = contacted, median, found.get("_mark_sum") or 0
        raw_rows.append(raw)

    raw_totals = {key: sum(row[key] for row in raw_rows) for key in COUNT_KEYS}
    raw_totals["residents"] = reached_total
    raw_totals["_contacted"], raw_totals["_median"] = overall_median
    raw_totals["_mark_sum"] = sum(row["_mark_sum"] for row in raw_rows)

    rows: list[dict[str, Any]] = [{"group": group} for group in groups]
    totals: dict[str, Any] = {}
    for key in KEYS:
        if key in AVERAGE_OVER:
            continue
        cells, total = suppress([row[key] for row in raw_rows], raw_totals[key], min_count)
        for row, cell in zip(rows, cells):
            row[key] = cell
        totals[key] = total
    for row, raw in zip([*rows, totals], [*raw_rows, raw_totals]):
        median = raw["_median"]
        row["median_hours_to_contact"] = (round(median, 1) if median is not None and raw["_contacted"] >= min_count
                                          else None)
        row["satisfaction_mean"] = _mean(raw["_mark_sum"], raw["satisfaction_answers"], min_count)
    ordered_rows = [{"group": row["group"], **{key: row[key] for key in KEYS}} for row in rows]
    totals = {key: totals[key] for key in KEYS}
    reciprocity = (round(both / raw_totals["residents"], 3)
                   if raw_totals["residents"] >= min_count and (both == 0 or both >= min_count) else None)
    cost_per_match = None
    price_segment, price_minute = prices
    if (price_segment is not None or price_minute is not None) and raw_totals["matches_done"] >= min_count:
        cost = raw_totals["sms_segments"] * (price_segment or 0) + raw_totals["call_minutes"] * (price_minute or 0)
        cost_per_match = round(cost / raw_totals["matches_done"], 2)
    weeks = _weeks(session, period)
    for key in ("matches", "contacts"):
        cells, _total = suppress([week[key] for week in weeks], sum(week[key] for week in weeks), min_count)
        for week, cell in zip(weeks, cells):
            week[key] = cell
    return Report(period.first, period.last, by, min_count, ordered_rows, totals, reciprocity, weeks,
                  cost_per_match)


def _asked_and_offered(session: Session, period: Period) -> int:
    """Residents who both asked and offered in the period: BUUV's reciprocity figure."""
    kinds = (
        select(Listing.resident_id)
        .where(_in(Listing.created_at, period))
        .group_by(Listing.resident_id)
        .having(func.count(func.distinct(Listing.kind)) > 1)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(kinds)) or 0)
