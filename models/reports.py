"""The report for the municipality (contract: Reports): anonymous counts per district, category or channel.

Everything is counted in the database with GROUP BY; only one row per group
comes back. Days already over are read from their daily roll-up
(models/report_rollup.py, kept by the sweep: ``roll_up``), the rest from the
ledgers, and both give the same figures. No name, number, postcode or text
ever leaves this module, and small counts are suppressed here, once, for the
API, the page and the CSV.

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

from collections.abc import Iterable

from sqlalchemy import Float, Select, and_, case, cast, delete, event, extract, func, insert, inspect, literal, or_
from sqlalchemy import select, text, union_all
from sqlalchemy.orm import Session

from .call import Call
from .callback import Callback
from .districts import district_map
from .listing import Listing
from .match import Match
from .message import Message
from .report_rollup import ReportDay, ReportReach, RolledDay, as_bitmap, as_bitmap_number, from_bitmap
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
#
# Every query gives its figures per (district, category, channel) at once: the report adds them up
# by the grouping asked for, and the daily roll-up keeps them so for every grouping. Each takes the
# moments to count as a list of [start, end) ranges: the whole period, or its days not rolled up.

Ranges = list[tuple[dt.datetime, dt.datetime]]
GROUP_COLUMNS = REPORT_GROUPINGS


def _groups(listing: Any, resident: Any, channel: Any) -> list[Any]:
    """A row's groups: its listing's, else (district) its resident's, else (channel) how it came."""
    return [func.coalesce(listing.district, resident.district).label("district"),
            listing.category.label("category"),
            func.coalesce(listing.channel, channel).label("channel")]


def _group_by(query: Select[Any]) -> Select[Any]:
    columns = query.selected_columns
    return query.group_by(*(columns[name] for name in GROUP_COLUMNS))


def _hours(session: Session, earlier: Any, later: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _within(column: Any, ranges: Ranges) -> Any:
    return or_(*(and_(column >= start, column < end) for start, end in ranges))


def _listing_counts(ranges: Ranges) -> Select[Any]:
    return _group_by(
        select(*_groups(Listing, Resident, literal(None)),
               func.sum(case((Listing.kind == "request", 1), else_=0)).label("requests"),
               func.sum(case((Listing.kind == "offer", 1), else_=0)).label("offers"))
        .select_from(Listing).join(Resident, Resident.id == Listing.resident_id)
        .where(_within(Listing.created_at, ranges))
    )


def _folded(table: Any, where: Any, *measures: Any) -> Any:
    """The rows of ``table`` folded to one per (resident, listing) before anything is joined to them:
    a year holds hundreds of thousands of messages but only tens of thousands of such pairs."""
    return (select(table.c.resident_id.label("resident_id"), table.c.listing_id.label("listing_id"), *measures)
            .where(where).group_by(table.c.resident_id, table.c.listing_id).subquery())


def _per_group(folded: Any, channel: str | None, *measures: Any) -> Select[Any]:
    """``folded`` rows with their groups (from their listing, else their resident, else ``channel``)."""
    listing, resident = Listing.__table__.alias(), Resident.__table__.alias()
    joined = (folded.outerjoin(listing, listing.c.id == folded.c.listing_id)
              .outerjoin(resident, resident.c.id == folded.c.resident_id))
    return select(*_groups(listing.c, resident.c, literal(channel)), *measures).select_from(joined)


def _reached(ranges: Ranges) -> Any:
    """Who was reached in ``ranges``, per group: residents with a listing (``asked``, ``offered``: of
    which kind), an incoming SMS or an incoming call. Not yet distinct."""
    listings, messages, calls = Listing.__table__, Message.__table__, Call.__table__
    resident = Resident.__table__.alias()
    parts = [
        select(*_groups(listings.c, resident.c, literal(None)), listings.c.resident_id.label("resident_id"),
               case((listings.c.kind == "request", 1), else_=0).label("asked"),
               case((listings.c.kind == "offer", 1), else_=0).label("offered"))
        .select_from(listings.outerjoin(resident, resident.c.id == listings.c.resident_id))
        .where(_within(listings.c.created_at, ranges))
    ]
    for table, channel in ((messages, "sms"), (calls, "voice")):
        folded = _folded(table, and_(_within(table.c.created_at, ranges), table.c.direction == "inbound",
                                     table.c.resident_id.is_not(None)))
        parts.append(_per_group(folded, channel, folded.c.resident_id, literal(0).label("asked"),
                                literal(0).label("offered")))
    return union_all(*parts)


def _reach_sets(session: Session, ranges: Ranges) -> dict[tuple[str, Any], set[int]]:
    """Who was reached in ``ranges``: per (grouping, group), and ("all", None), ("asked", None),
    ("offered", None), the residents' ids."""
    reached = _reached(ranges).subquery()
    groups = [reached.c[name] for name in GROUP_COLUMNS]
    query = (select(*groups, reached.c.resident_id, func.max(reached.c.asked), func.max(reached.c.offered))
             .group_by(*groups, reached.c.resident_id))
    sets: dict[tuple[str, Any], set[int]] = {}
    for *found, resident_id, asked, offered in session.execute(query):
        for grouping, grp in zip(GROUP_COLUMNS, found):
            sets.setdefault((grouping, grp), set()).add(resident_id)
        sets.setdefault(("all", None), set()).add(resident_id)
        if asked:
            sets.setdefault(("asked", None), set()).add(resident_id)
        if offered:
            sets.setdefault(("offered", None), set()).add(resident_id)
    return sets


def _match_counts(ranges: Ranges) -> Select[Any]:
    return _group_by(
        select(*_groups(Listing, Resident, literal(None)),
               func.sum(case((_within(Match.created_at, ranges), 1), else_=0)).label("matches_proposed"),
               func.sum(case((_within(Match.done_at, ranges), 1), else_=0)).label("matches_done"))
        .select_from(Match).join(Listing, Listing.id == Match.request_id)
        .join(Resident, Resident.id == Listing.resident_id)
        .where(or_(_within(Match.created_at, ranges), _within(Match.done_at, ranges)))
    )


def _callback_counts(ranges: Ranges) -> Select[Any]:
    came_by = case((Callback.message_id.is_not(None), "sms"), (Callback.call_id.is_not(None), "voice"), else_=None)
    return _group_by(
        select(*_groups(Listing, Resident, came_by), func.count().label("callbacks"))
        .select_from(Callback).outerjoin(Listing, Listing.id == Callback.listing_id)
        .outerjoin(Resident, Resident.id == Callback.resident_id)
        .where(_within(Callback.created_at, ranges))
    )


def _satisfaction_counts(ranges: Ranges) -> Select[Any]:
    return _group_by(
        select(*_groups(Listing, Resident, literal(None)), func.count().label("satisfaction_answers"),
               func.sum(Satisfaction.mark).label("mark_sum"))
        .select_from(Satisfaction).join(Match, Match.id == Satisfaction.match_id)
        .join(Listing, Listing.id == Match.request_id).join(Resident, Resident.id == Listing.resident_id)
        .where(_within(Satisfaction.answered_at, ranges), Satisfaction.mark.is_not(None))
    )


def _sms_counts(ranges: Ranges) -> Select[Any]:
    messages = Message.__table__
    folded = _folded(messages, and_(_within(messages.c.created_at, ranges), messages.c.direction == "outbound",
                                    messages.c.status.not_in(_UNSENT)),
                     func.sum(func.coalesce(messages.c.segments, 1)).label("segments"))
    return _group_by(_per_group(folded, "sms", func.sum(folded.c.segments).label("sms_segments")))


def _call_counts(ranges: Ranges) -> Select[Any]:
    calls = Call.__table__
    minutes = (func.coalesce(calls.c.duration_seconds, 0) + 59) // 60
    folded = _folded(calls, and_(_within(calls.c.created_at, ranges), calls.c.duration_seconds > 0),
                     func.sum(minutes).label("minutes"))
    return _group_by(_per_group(folded, "voice", func.sum(folded.c.minutes).label("call_minutes")))


def _sums(ranges: Ranges) -> tuple[Select[Any], ...]:
    return (_listing_counts(ranges), _match_counts(ranges), _callback_counts(ranges),
            _satisfaction_counts(ranges), _sms_counts(ranges), _call_counts(ranges))


def _medians(session: Session, by: str, period: Period) -> tuple[dict[Any, tuple[int, float]], tuple[int, float | None]]:
    """Per group, and overall: how many listings of the period were called back, and the median hours to
    the first call back. Always from the listings themselves (a listing's first call back can come days
    after it): the middle one or two of each group's ordered waits, taken in SQL with window functions
    (PostgreSQL and SQLite alike), for the groups and the whole in one pass."""
    in_period = _within(Listing.created_at, [(period.start, period.end)])
    first_call = (
        select(Call.listing_id.label("listing_id"), func.min(Call.created_at).label("first_at"))
        .where(Call.purpose == _BROKER_CALL, Call.listing_id.in_(select(Listing.id).where(in_period)))
        .group_by(Call.listing_id).subquery()
    )
    group = dict((column.name, column) for column in _groups(Listing, Resident, literal(None)))[by].label("grp")
    hours = _hours(session, Listing.created_at, first_call.c.first_at)
    waits = (
        select(group, cast(hours, Float).label("hours"))
        .select_from(Listing).join(first_call, first_call.c.listing_id == Listing.id)
        .join(Resident, Resident.id == Listing.resident_id)
        .where(in_period, first_call.c.first_at >= Listing.created_at)
        .cte("waits")
    )
    both = union_all(select(literal(0).label("part"), waits.c.grp, waits.c.hours),
                     select(literal(1), literal(None), waits.c.hours)).subquery()
    ranked = select(
        both.c.part, both.c.grp, both.c.hours,
        func.row_number().over(partition_by=(both.c.part, both.c.grp), order_by=both.c.hours).label("position"),
        func.count().over(partition_by=(both.c.part, both.c.grp)).label("n"),
    ).subquery()
    middle = or_(ranked.c.position == (ranked.c.n + 1) // 2, ranked.c.position == (ranked.c.n + 2) // 2)
    query = (select(ranked.c.part, ranked.c.grp, func.max(ranked.c.n), func.avg(ranked.c.hours))
             .where(middle).group_by(ranked.c.part, ranked.c.grp))
    groups: dict[Any, tuple[int, float]] = {}
    overall: tuple[int, float | None] = (0, None)
    for part, grp, n, median in session.execute(query):
        if part:
            overall = (int(n), float(median))
        else:
            groups[grp] = (int(n), float(median))
    return groups, overall


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.timezone.utc)


def _day_counts(session: Session, ranges: Ranges, starts: list[dt.datetime]) -> dict[int, list[int]]:
    """Matches made and incoming contacts (SMS and calls) in ``ranges``, per bucket: bucket ``i`` runs
    from ``starts[i]`` to ``starts[i + 1]`` (the last to the end of the ranges)."""
    counts: dict[int, list[int]] = {}
    if not ranges:
        return counts

    def bucket(column: Any) -> Any:
        if len(starts) == 1:
            return literal(0)
        return case(*((column < start, index - 1) for index, start in enumerate(starts) if index), else_=len(starts) - 1)

    for position, (column, where) in enumerate((
        (Match.created_at, literal(True)),
        (Message.created_at, Message.direction == "inbound"),
        (Call.created_at, Call.direction == "inbound"),
    )):
        index = bucket(column)
        query = select(index, func.count()).where(_within(column, ranges), where).group_by(index)
        for number, count in session.execute(query):
            into = counts.setdefault(int(number), [0, 0])
            into[0 if position == 0 else 1] += int(count)
    return counts


# --- the daily roll-up ---------------------------------------------------------------------------

# A day is rolled up once it has been over for a whole day (late status callbacks have come in) and
# nothing from it is still waiting to be sent, read or ended.
SETTLE_DAYS = 2
_UNSETTLED_MESSAGES = ("pending", "submitting", "received")
_UNSETTLED_CALLS = ("pending", "submitting", "dialling", "answered", "in_progress")
# Days rolled up per sweep (each about a tenth of a second on a busy city's day): a new installation's
# past is caught up over a few hours of sweeps, after that one day a night.
ROLL_UP_DAYS_PER_SWEEP = 7


def _day_range(day: dt.date, zone: ZoneInfo) -> Ranges:
    return [(_local_midnight(day, zone), _local_midnight(day + dt.timedelta(days=1), zone))]


def _settled(session: Session, ranges: Ranges) -> bool:
    waiting = or_(
        select(Message.id).where(_within(Message.created_at, ranges),
                                 Message.status.in_(_UNSETTLED_MESSAGES)).exists(),
        select(Call.id).where(_within(Call.created_at, ranges), Call.status.in_(_UNSETTLED_CALLS)).exists(),
    )
    return not session.scalar(select(waiting))


# What ``report_days`` keeps per day and group.
_MEASURES = ("requests", "offers", "matches_proposed", "matches_done", "callbacks", "satisfaction_answers",
             "mark_sum", "sms_segments", "call_minutes")


def roll_up_day(session: Session, day: dt.date, zone: ZoneInfo) -> None:
    """Compute ``day``'s figures from the ledgers and keep them (replacing what was kept for it)."""
    unroll_days(session, [day])
    ranges = _day_range(day, zone)
    sums: dict[tuple[str, Any], dict[str, int]] = {}
    for query in _sums(ranges):
        for row in session.execute(query).mappings():
            for grouping in GROUP_COLUMNS:
                into = sums.setdefault((grouping, row[grouping]), {})
                for key, value in row.items():
                    if key not in GROUP_COLUMNS:
                        into[key] = into.get(key, 0) + int(value or 0)
    rows = [{"day": day, "grouping": grouping, "grp": grp, **{key: found.get(key, 0) for key in _MEASURES}}
            for (grouping, grp), found in sums.items() if any(found.values())]
    if rows:
        session.execute(insert(ReportDay), rows)
    reach = [{"day": day, "grouping": grouping, "grp": grp, "residents": as_bitmap(ids)}
             for (grouping, grp), ids in _reach_sets(session, ranges).items()]
    if reach:
        session.execute(insert(ReportReach), reach)
    matches, contacts = _day_counts(session, ranges, [ranges[0][0]]).get(0, [0, 0])
    session.add(RolledDay(day=day, matches=matches, contacts=contacts))
    session.flush()


def roll_up(session: Session, now: dt.datetime, zone: ZoneInfo, *, limit: int = ROLL_UP_DAYS_PER_SWEEP) -> int:
    """Roll up the settled days not rolled up yet, newest first, at most ``limit``; returns how many."""
    firsts = [session.scalar(select(func.min(column))) for column in
              (Listing.created_at, Message.created_at, Call.created_at, Callback.created_at, Match.created_at)]
    known = [moment for moment in firsts if moment is not None]
    if not known:
        return 0
    first_day = min(known).astimezone(zone).date()
    last_day = now.astimezone(zone).date() - dt.timedelta(days=SETTLE_DAYS)
    rolled = set(session.scalars(select(RolledDay.day).where(RolledDay.day >= first_day,
                                                             RolledDay.day <= last_day)))
    done = 0
    day = last_day
    while day >= first_day and done < limit:
        if day not in rolled and _settled(session, _day_range(day, zone)):
            roll_up_day(session, day, zone)
            done += 1
        day -= dt.timedelta(days=1)
    return done


def unroll_days(session: Session, days: Iterable[dt.date]) -> None:
    """Forget what was rolled up for ``days``: the report computes them from the ledgers again until the
    sweep rolls them up anew."""
    days = sorted(set(days))
    for start in range(0, len(days), 500):
        chunk = days[start:start + 500]
        for model in (ReportDay, ReportReach, RolledDay):
            session.execute(delete(model).where(model.day.in_(chunk)), execution_options={"synchronize_session": False})


def _days_around(moments: Iterable[dt.datetime | None]) -> set[dt.date]:
    """The local days of ``moments`` in any zone within a day of UTC: their UTC date and either side."""
    days = set()
    for moment in moments:
        if moment is not None:
            date = moment.astimezone(dt.timezone.utc).date()
            days.update((date - dt.timedelta(days=1), date, date + dt.timedelta(days=1)))
    return days


def _anything_rolled(session: Session) -> bool:
    return session.scalar(select(RolledDay.day).limit(1)) is not None


def unroll_resident(session: Session, resident_id: int) -> None:
    """The resident's district changes (or is erased): every rolled-up day with a row of theirs is computed
    again, under the new district."""
    _unroll_rows(session, listings=Listing.resident_id == resident_id, messages=Message.resident_id == resident_id,
                 calls=Call.resident_id == resident_id, callbacks=Callback.resident_id == resident_id)


def unroll_listing(session: Session, listing_id: int) -> None:
    """The listing's district changes: every rolled-up day with a row about it is computed again."""
    _unroll_rows(session, listings=Listing.id == listing_id, messages=Message.listing_id == listing_id,
                 calls=Call.listing_id == listing_id, callbacks=Callback.listing_id == listing_id)


def _unroll_rows(session: Session, *, listings: Any, messages: Any, calls: Any, callbacks: Any) -> None:
    """Unroll the days of the rows these conditions pick, and of the matches and marks of those listings."""
    if not _anything_rolled(session):
        return
    matches = select(Match.id).where(Match.request_id.in_(select(Listing.id).where(listings)))
    moments: list[Any] = []
    for query in (
        select(Listing.created_at).where(listings),
        select(Message.created_at).where(messages),
        select(Call.created_at).where(calls),
        select(Callback.created_at).where(callbacks),
        select(Match.created_at).where(Match.id.in_(matches)),
        select(Match.done_at).where(Match.id.in_(matches)),
        select(Satisfaction.answered_at).where(Satisfaction.match_id.in_(matches)),
    ):
        moments.extend(session.scalars(query))
    unroll_days(session, _days_around(moments))


def _unroll_changed(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush: a change to a column a rolled-up figure was grouped by unrolls the days it touches
    (a resident's district; a listing's district; the listing a queue item is about)."""
    for instance in list(session.dirty):
        if isinstance(instance, Resident) and _too_new_to_be_rolled_up(instance):
            continue
        if isinstance(instance, Resident) and _changed(instance, "district"):
            unroll_resident(session, instance.id)
        elif isinstance(instance, Listing) and _changed(instance, "district"):
            unroll_listing(session, instance.id)
        elif isinstance(instance, Callback) and _changed(instance, "listing_id") and instance.created_at is not None:
            unroll_days(session, _days_around([instance.created_at]))


def _too_new_to_be_rolled_up(resident: Resident) -> bool:
    """Known for less than a day: every row of theirs came after (a listing's rows may be older than the
    listing, a resident's are not) and lies on a day the sweep does not roll up yet (it stops
    ``SETTLE_DAYS`` before today), so a new caller's first postcode costs the call no query."""
    made = inspect(resident).dict.get("created_at")  # only if loaded: reading it must not cost a query
    return isinstance(made, dt.datetime) and made > dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)


def _changed(instance: Any, name: str) -> bool:
    state = inspect(instance)
    return state.persistent and state.attrs[name].history.has_changes()


event.listen(Session, "before_flush", _unroll_changed)


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


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days, each (first, last)."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _days_within(column: Any, runs: list[tuple[dt.date, dt.date]]) -> Any:
    return or_(*(and_(column >= first, column <= last) for first, last in runs))


def build_report(session: Session, period: Period, by: str, *, min_count: int = DEFAULT_MIN_COUNT,
                 prices: tuple[float | None, float | None] = (None, None), rolled_up: bool = True) -> Report:
    """The report for ``period`` grouped ``by``: rows for every known group (and ``None`` for what has
    none, when there is any), the totals, with small counts suppressed.

    The days rolled up are read from the roll-up, the others (today, always) from the ledgers; the
    figures are the same either way (``rolled_up=False`` reads every day from the ledgers)."""
    if session.get_bind().dialect.name == "postgresql":
        # A year's messages are folded and joined in memory, not in temporary files (this transaction only).
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    all_days = [period.first + dt.timedelta(days=n) for n in range((period.last - period.first).days + 1)]
    rolled: dict[dt.date, tuple[int, int]] = {}
    if rolled_up:
        rolled = {day: (matches, contacts) for day, matches, contacts in session.execute(
            select(RolledDay.day, RolledDay.matches, RolledDay.contacts)
            .where(RolledDay.day >= period.first, RolledDay.day <= period.last))}
    rolled_runs = _runs(sorted(rolled))
    live = [(_local_midnight(first, period.zone), _local_midnight(last + dt.timedelta(days=1), period.zone))
            for first, last in _runs([day for day in all_days if day not in rolled])]

    figures: dict[Any, dict[str, Any]] = {}

    def gather(query: Any) -> None:
        for row in session.execute(query).mappings():
            into = figures.setdefault(row[by], {})
            for key, value in row.items():
                if key not in GROUP_COLUMNS:
                    into[key] = (into.get(key) or 0) + (value or 0)

    if live:
        for query in _sums(live):
            gather(query)
    if rolled_runs:
        gather(select(ReportDay.grp.label(by), *(func.sum(getattr(ReportDay, key)).label(key) for key in _MEASURES))
               .where(_days_within(ReportDay.day, rolled_runs), ReportDay.grouping == by).group_by(ReportDay.grp))

    # Who was reached, in the roll-up's days and the others together, each resident once per group
    # and once in all; and how many both asked and offered.
    reached: dict[tuple[str, Any], int] = {}
    if live:
        for key, ids in _reach_sets(session, live).items():
            reached[key] = as_bitmap_number(ids)
    if rolled_runs:
        for grouping, grp, residents in session.execute(
                select(ReportReach.grouping, ReportReach.grp, ReportReach.residents)
                .where(_days_within(ReportReach.day, rolled_runs),
                       ReportReach.grouping.in_((by, "all", "asked", "offered")))):
            reached[(grouping, grp)] = reached.get((grouping, grp), 0) | from_bitmap(residents)
    for (grouping, grp), residents in reached.items():
        if grouping == by:
            figures.setdefault(grp, {})["residents"] = residents.bit_count()
    reached_total = reached.get(("all", None), 0).bit_count()
    both = (reached.get(("asked", None), 0) & reached.get(("offered", None), 0)).bit_count()
    if rolled and set(session.scalars(select(RolledDay.day).where(
            RolledDay.day >= period.first, RolledDay.day <= period.last))) != set(rolled):
        # A day was rolled up or dropped while this report read it: read every day from the ledgers.
        return build_report(session, period, by, min_count=min_count, prices=prices, rolled_up=False)
    medians, overall_median = _medians(session, by, period)

    known = _known_groups(by)
    groups = [*known, *sorted((g for g in figures if g not in known and g is not None), key=str)]
    if None in figures:
        groups.append(None)

    raw_rows = []
    for group_name in groups:
        found = figures.get(group_name, {})
        contacted, median = medians.get(group_name, (0, None))
        raw = {key: int(found.get(key) or 0) for key in COUNT_KEYS}
        raw["_contacted"], raw["_median"], raw["_mark_sum"] = contacted, median, found.get("mark_sum") or 0
        raw_rows.append(raw)

    raw_totals = {key: sum(row[key] for row in raw_rows) for key in COUNT_KEYS}
    raw_totals["residents"] = reached_total
    raw_totals["_contacted"], raw_totals["_median"] = overall_median
    raw_totals["_mark_sum"] = sum(row["_mark_sum"] for row in raw_rows)

    rows: list[dict[str, Any]] = [{"group": group_name} for group_name in groups]
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
    weeks = _weeks(session, period, live, rolled)
    for key in ("matches", "contacts"):
        cells, _total = suppress([week[key] for week in weeks], sum(week[key] for week in weeks), min_count)
        for week, cell in zip(weeks, cells):
            week[key] = cell
    return Report(period.first, period.last, by, min_count, ordered_rows, totals, reciprocity, weeks,
                  cost_per_match)


def _weeks(session: Session, period: Period, live: Ranges,
           rolled: dict[dt.date, tuple[int, int]]) -> list[dict[str, Any]]:
    """Matches made and incoming contacts (SMS and calls) per week of the period (weeks of local days
    from its first), for the page's line."""
    starts = [period.first + dt.timedelta(days=7 * index) for index in range(((period.last - period.first).days + 7) // 7)]
    counts = _day_counts(session, live, [_local_midnight(start, period.zone) for start in starts])
    for day, (matches, contacts) in rolled.items():
        into = counts.setdefault((day - period.first).days // 7, [0, 0])
        into[0] += matches
        into[1] += contacts
    return [{"week_start": start.isoformat(), "matches": counts.get(index, [0, 0])[0],
             "contacts": counts.get(index, [0, 0])[1]} for index, start in enumerate(starts)]
