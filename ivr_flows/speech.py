"""Things said in words: digits one by one, days, when a broker calls back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import texts
from models.workdays import is_working_day

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def spoken_digits(language: str, digits: str) -> str:
    """'2034' -> 'twee, nul, drie, vier': one word per digit, a pause between."""
    words = [texts.t(language, f"voice.digit.{d}") for d in digits if d.isdigit()]
    return ", ".join(words)


def day_phrase(language: str, moment: dt.datetime, now: dt.datetime, zone: ZoneInfo) -> str:
    """'van vandaag', 'van dinsdag' (this week), or 'van 3 maart' (longer ago)."""
    day = moment.astimezone(zone).date()
    today = now.astimezone(zone).date()
    age = (today - day).days
    if age <= 0:
        return texts.t(language, "voice.day_today")
    if age == 1:
        return texts.t(language, "voice.day_yesterday")
    if age < 7:
        return texts.t(language, "voice.day_weekday", weekday=weekday_name(language, day))
    return texts.t(language, "voice.day_date", day=day.day, month=month_name(language, day))


def weekday_name(language: str, day: dt.date) -> str:
    return texts.t(language, f"voice.weekday.{WEEKDAYS[day.weekday()]}")


def month_name(language: str, day: dt.date) -> str:
    return texts.t(language, f"voice.month.{MONTHS[day.month - 1]}")


def date_and_time(language: str, moment: dt.datetime, zone: ZoneInfo) -> tuple[str, str]:
    """('dinsdag 3 maart', '14 uur 30') for an appointment."""
    local = moment.astimezone(zone)
    date = texts.t(
        language, "voice.date", weekday=weekday_name(language, local.date()), day=local.day,
        month=month_name(language, local.date()),
    )
    time = texts.t(language, "voice.time", hour=local.hour, minute=f"{local.minute:02d}")
    return date, time


def brokers_call_today(now: dt.datetime, hours: tuple[dt.time, dt.time], zone: ZoneInfo) -> bool:
    """Whether a callback asked for now can still happen today (a working day, before closing).

    Before opening time on a weekday it is still "today": the brokers start
    with the queue in the morning.
    """
    local = now.astimezone(zone)
    return is_working_day(local.date()) and local.time() < hours[1]
