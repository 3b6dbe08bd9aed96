"""What the outside may hand us: integers within the columns' range, Twilio's SIDs, text without control characters.

Every number, SID and short text that comes from a request (a URL, a query
string, a form, a JSON body) is read through these, so a value the database
cannot hold is turned away at the edge (a 400 or 404), never a 500.
"""

from __future__ import annotations

import re

# The largest row id: ids are BIGINT on PostgreSQL and SQLite's 64-bit INTEGER (``base.IdType``).
MAX_ID = 2**63 - 1
# The largest value of an INTEGER column on PostgreSQL (error codes, durations, counters).
MAX_INTEGER = 2**31 - 1
_LONGEST_NUMBER = len(str(MAX_ID))

# Twilio's SIDs: two capital letters and 32 hex digits (SM..., CA..., RE...).
_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
# Every C0 and C1 control character and DEL, which PostgreSQL (NUL) or a screen should not get.
_CONTROLS = dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)])


class MalformedRequest(ValueError):
    """A request no Twilio or API client of ours sends: answered 400, nothing stored."""


def bounded_int(raw: object, maximum: int = MAX_INTEGER, minimum: int = 0) -> int | None:
    """A whole number from outside within ``minimum``..``maximum``, or None.

    Takes text of ASCII digits (a form or query value) or a JSON integer; anything
    else (a sign, a space, a superscript digit, a float, a bool) is None.
    """
    if isinstance(raw, str):
        if not (0 < len(raw) <= _LONGEST_NUMBER and raw.isascii() and raw.isdigit()):
            return None
        value = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        return None
    return value if minimum <= value <= maximum else None


def twilio_sid(raw: str | None) -> str:
    """A SID as Twilio writes it, whole; anything else is a ``MalformedRequest`` (never cut to fit)."""
    if raw is None or not _SID.fullmatch(raw):
        raise MalformedRequest("not a Twilio SID")
    return raw


def one_line(raw: str | None) -> str | None:
    """A short field (a number, a code) without control characters; None stays None."""
    if raw is None or raw.isprintable():
        return raw
    return raw.translate(_CONTROLS)


def storable_text(raw: str) -> str:
    """A message's text as it can be stored: without NUL, which PostgreSQL's text refuses. Everything else a
    resident wrote is kept (the dashboard's templates escape it)."""
    return raw.replace("\x00", "") if "\x00" in raw else raw


def has_controls(raw: str) -> bool:
    """Whether ``raw`` holds a control character (a filter value with one is refused)."""
    return not raw.isprintable() and raw != raw.translate(_CONTROLS)
