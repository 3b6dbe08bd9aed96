"""Working days of BUUV's brokers: Monday to Friday, minus the Dutch public holidays.

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

import holidays

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


def parse_hours(spec: str) -> BrokerHours:
    """'09:00-17:00' -> (09:00, 17:00). A malformed setting is a configuration error."""
    start, _, end = spec.partition("-")
    opens, closes = dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())
    if closes <= opens:
        raise ValueError(f"broker hours {spec!r}: the end must come after the start")
    return opens, closes


def broker_hours(config: Mapping[str, object]) -> BrokerHours:
    """The app's BUURTLIJN_BROKER_HOURS: the phone menu's "vandaag" and the call-back retries follow it."""
    spec = config.get("BUURTLIJN_BROKER_HOURS")
    return parse_hours(str(spec)) if spec else DEFAULT_BROKER_HOURS
