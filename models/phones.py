"""Phone numbers: E.164, default region NL; withheld caller IDs recognised."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from .resident import NO_PHONE_PREFIX

# What Twilio sends when the caller hides their number.
WITHHELD_CALLER_IDS = frozenset(
    {"anonymous", "restricted", "unknown", "private", "unavailable",
     "+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"}
)

_LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "unknown",
    PhoneNumberType.VOIP: "voip",
}


class InvalidPhoneNumber(ValueError):
    """Not a phone number anyone can be reached on."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    region: str | None
    line_type: str  # mobile | fixed_line | voip | unknown


def is_withheld(raw: str | None) -> bool:
    return raw is None or raw.strip().lower() in WITHHELD_CALLER_IDS or raw.strip() == ""


def parse_phone(raw: str | None, region: str = "NL") -> PhoneNumber:
    """Normalise what a person or Twilio gave us; raise InvalidPhoneNumber for junk."""
    if raw is None or is_withheld(raw):
        raise InvalidPhoneNumber("no number")
    text = raw.strip()
    if len(text) > 32:
        raise InvalidPhoneNumber("too long")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("not a valid number")
    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(number),
        line_type=_LINE_TYPES.get(phonenumbers.number_type(number), "unknown"),
    )


def try_parse_phone(raw: str | None, region: str = "NL") -> PhoneNumber | None:
    try:
        return parse_phone(raw, region)
    except InvalidPhoneNumber:
        return None


# The digits after the area code (or 06), grouped as Dutch people write them:
# 06 1234 5678, 023 555 0100, 0251 23 45 67 (a four-digit area code takes pairs).
_DUTCH_GROUPS = {8: (4, 4), 7: (3, 4), 6: (2, 2, 2)}


def _parts(number: phonenumbers.PhoneNumber) -> tuple[str, list[str]]:
    """The number as a broker reads it: its head (06, 023, 0251, +44 20) and the groups after it."""
    national = str(number.national_number)
    head_length = phonenumbers.length_of_national_destination_code(number)
    if number.country_code == 31:
        rest = national[head_length:]
        sizes = _DUTCH_GROUPS.get(len(rest))
        if head_length and sizes:
            groups, start = [], 0
            for size in sizes:
                groups.append(rest[start:start + size])
                start += size
            return "0" + national[:head_length], groups
        written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).split()
    else:
        # Abroad in international form, in spaces only: '+1 202 555 0123', not '+1 202-555-0123'.
        international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        written = re.sub(r"[^\d+]+", " ", international).split()
        if head_length and len(written) > 2:
            return " ".join(written[:2]), written[2:]
    return written[0], written[1:]


def readable(e164: str | None, *, masked: bool = False) -> str:
    """A stored number as a broker reads it: '06 1234 5678', '023 555 0100', '0251 23 45 67', abroad
    '+44 20 7946 0958'. Masked, only the head and the last four digits stay: '06 •••• 5678' (enough to
    recognise, not to dial). None, a member who gave no number, or an erased one: '—'."""
    if not e164 or not e164.startswith("+"):
        return "—"
    unreadable = "•••• " + re.sub(r"\D", "", e164)[-4:] if masked else e164  # as it was stored
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return unreadable
    if not phonenumbers.is_valid_number(number):
        return unreadable
    head, groups = _parts(number)
    if not masked:
        return " ".join([head, *groups])
    if not groups:
        return unreadable
    rest = " ".join(groups)
    keep = 4
    hidden = []
    for char in reversed(rest):
        if char.isdigit():
            hidden.append(char if keep > 0 else "•")
            keep -= 1
        else:
            hidden.append(char)
    return f"{head} {''.join(reversed(hidden))}"


def mask(e164: str | None) -> str:
    """'+31612345678' -> '06 •••• 5678': the number as :func:`readable` groups it, all but its head and
    last four digits hidden."""
    return readable(e164, masked=True)


# A phone number in any form it reaches a log line or a stored text in: E.164 (+31612345678), with the
# international 00 or 31 only, URL-encoded (%2B31612345678, in a query string or a path), national
# (0612345678, 06-12345678, 023 512 3456). A number may follow a '/' or '=' (inside a URL), but not a
# letter or digit: a Twilio SID's hex digits are not a number.
_NUMBER = re.compile(
    r"""
    (?:
        (?:\+|%2[Bb]|(?<![0-9A-Za-z])00)\d(?:[ \-.]?\d){7,14}   # international
      | (?<![0-9A-Za-z])31[1-9]\d{8}                          # international without its +
      | (?<![0-9A-Za-z])0[1-9](?:[ \-.]?\d){8}                 # national
    )
    (?![0-9A-Za-z])
    """,
    re.VERBOSE,
)


def scrub_numbers(text: str) -> str:
    """``text`` with every phone number in it replaced by ``[phone …78]`` (its last two digits)."""
    return _NUMBER.sub(lambda m: "[phone …" + re.sub(r"\D", "", m.group(0))[-2:] + "]", text)
