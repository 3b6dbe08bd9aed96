"""Working days, broker hours, quiet hours and the time zone they are counted in.

Working days of BUUV's brokers: Monday to Friday, minus the Dutch public holidays.

A caller who asks for a call back on Christmas Eve must not hear that a
broker calls "tomorrow", and a listing must not count as overdue because
Easter Monday passed. Dutch public holidays come from the ``holidays``
package (Easter and Pentecost move every year); Good Friday is not one:
most Dutch organisations, BUUV among them, work that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

# Where Buurtlijn's days and hours are counted, unless BUURTLIJN_TIMEZONE says otherwise.
DEFAULT_TIMEZONE = "Europe/Amsterdam"
NOT_A_DAY_OFF = frozenset({"Good Friday"})
# When brokers call residents back on a working day (BUURTLIJN_BROKER_HOURS).
DEFAULT_BROKER_HOURS = (dt.time(9), dt.time(17))
BrokerHours = tuple[dt.time, dt.time]


@lru_cache(maxsize=64)
def _days_off(year: int) -> frozenset[dt.date]:
    dutch = holidays.country_holidays("NL", years=year, language="en_US")
    return frozenset(day for day, name in dutch.items() if name not in NOT_A_DAY_OFF)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _days_off(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """The first working day after ``day``."""
    day += dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def local_zone(config: Mapping[str, object]) -> ZoneInfo:
    """The time zone of the app's BUURTLIJN_TIMEZONE."""
    return _zone(str(config.get("BUURTLIJN_TIMEZONE") or DEFAULT_TIMEZONE))


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_hours(spec: str) -> tuple[dt.time, dt.time]:
    """'09:00-17:00' -> (09:00, 17:00); a span may run past midnight ('21:00-09:00')."""
    start, _, end = spec.partition("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def broker_hours(config: Mapping[str, object]) -> BrokerHours:
    """The app's BUURTLIJN_BROKER_HOURS: the phone menu's "vandaag" and the call-back retries follow it.

    A malformed setting is a configuration error.
    """
    spec = config.get("BUURTLIJN_BROKER_HOURS")
    if not spec:
        return DEFAULT_BROKER_HOURS
    opens, closes = parse_hours(str(spec))
    if closes <= opens:
        raise ValueError(f"broker hours {spec!r}: the end must come after the start")
    return opens, closes


def quiet_until(now: dt.datetime, config: Mapping[str, object]) -> dt.datetime | None:
    """The end of the quiet hours (BUURTLIJN_QUIET_HOURS) if ``now`` falls inside them, else None.

    Non-urgent messages and calls wait for it; a proposal's time to answer starts then.
    """
    spec = config.get("BUURTLIJN_QUIET_HOURS")
    if not spec or str(spec).strip().lower() in {"off", "none", "0"}:
        return None
    start, end = parse_hours(str(spec))
    local = now.astimezone(local_zone(config))
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    wake = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if wake <= local:
        wake += dt.timedelta(days=1)
    return wake.astimezone(dt.timezone.utc)


# The zone of the default setting, for callers that count without an app (tests, scripts).
DEFAULT_ZONE = local_zone({})
RETRY_AFTER = dt.timedelta(hours=2)
# A later try on another day: an hour after the brokers start (10:00 with the default hours).
RETRY_AFTER_OPENING = dt.timedelta(hours=1)


def next_working_day_at(moment: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
                        zone: ZoneInfo = DEFAULT_ZONE) -> dt.datetime:
    """An hour after the brokers start, on the first working day after ``moment``'s date."""
    day = next_working_day(moment.astimezone(zone).date())
    return (dt.datetime.combine(day, hours[0], tzinfo=zone) + RETRY_AFTER_OPENING).astimezone(dt.timezone.utc)


def next_opening_at(moment: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
                    zone: ZoneInfo = DEFAULT_ZONE) -> dt.datetime:
    """An hour after the brokers start, on ``moment``'s own day if that is still ahead, else the next working day.

    A retry recorded in the night (00:50) lands the same morning, never a day later.
    """
    local = moment.astimezone(zone)
    today = (dt.datetime.combine(local.date(), hours[0], tzinfo=zone) + RETRY_AFTER_OPENING)
    if is_working_day(local.date()) and local < today:
        return today.astimezone(dt.timezone.utc)
    return next_working_day_at(moment, hours, zone)


def within_broker_hours(moment: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
                        zone: ZoneInfo = DEFAULT_ZONE) -> bool:
    local = moment.astimezone(zone)
    return is_working_day(local.date()) and hours[0] <= local.time() < hours[1]


def working_days_ago(moment: dt.datetime, days: int, zone: ZoneInfo = DEFAULT_ZONE) -> dt.datetime:
    """The same local clock time ``days`` working days before ``moment``."""
    local = moment.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day -= dt.timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(dt.timezone.utc)


def retry_time(attempt: int, now: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
               zone: ZoneInfo = DEFAULT_ZONE) -> dt.datetime | None:
    """When to try again after ``attempt`` unanswered calls, within the brokers' ``hours``; None: stop calling."""
    if attempt == 1:
        soon = now + RETRY_AFTER
        return soon if within_broker_hours(soon, hours, zone) else next_opening_at(soon, hours, zone)
    if attempt == 2:
        return next_opening_at(now, hours, zone)
    return None
