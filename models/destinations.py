"""Where Buurtlijn may text or dial: the one outbound policy.

Every place that sends an SMS or places a call asks ``refusal`` first: the
worker's sends (workers/sending.py), the notification calls
(workers/notify_jobs.py), the broker's bridge (both legs), the relay
``<Dial>`` between matched neighbours and a number a withheld caller keys in
(ivr_flows/machine.py). A refused destination never reaches Twilio.

- The number must be valid, in one of BUURTLIJN_DESTINATION_COUNTRIES, and a
  person's line by ``phonenumbers``: mobile or fixed line. Premium rate
  (0900/0906/0909, +44 9…), shared cost, UAN (084/087/088), personal
  numbers, voicemail, VoIP (085), pagers and toll-free numbers are refused:
  they cost far more per call or text than a person's line, or cannot take
  a text at all, and no resident lives on one. Dutch 097 numbers (machine to
  machine) are refused too, though ``phonenumbers`` calls them mobile.
- Daily caps, per number and in total, for SMS and for calls, counted over
  the last 24 hours (BUURTLIJN_SMS_DAILY_CAP, BUURTLIJN_SMS_DAILY_TOTAL_CAP,
  BUURTLIJN_CALL_DAILY_CAP, BUURTLIJN_CALL_DAILY_TOTAL_CAP). The calls are
  those we place and the relay ``<Dial>``s, which ring the other neighbour at
  the organisation's cost as well.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, Literal

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from .call import Call
from .listing import Listing
from .match import Match
from .message import Message
from .queue import queue_callback
from .resident import Resident
from .vocabulary import CAPPED_CALL_PURPOSES, RELAY_CALL_PURPOSE

Channel = Literal["sms", "call"]

# A person's line: the only kinds of number we text or dial.
ALLOWED_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Numbers phonenumbers counts as mobile that belong to machines: Dutch 097 (M2M) numbers.
MACHINE_PREFIXES = {31: ("97",)}
DEFAULT_COUNTRIES = "NL,BE,DE"
DAY = dt.timedelta(hours=24)

# The settings of each channel's caps: (per number, in total).
CAP_SETTINGS: dict[str, tuple[str, str]] = {
    "sms": ("BUURTLIJN_SMS_DAILY_CAP", "BUURTLIJN_SMS_DAILY_TOTAL_CAP"),
    "call": ("BUURTLIJN_CALL_DAILY_CAP", "BUURTLIJN_CALL_DAILY_TOTAL_CAP"),
}
DEFAULT_CAPS = {"BUURTLIJN_SMS_DAILY_CAP": 20, "BUURTLIJN_SMS_DAILY_TOTAL_CAP": 2000,
                "BUURTLIJN_CALL_DAILY_CAP": 6, "BUURTLIJN_CALL_DAILY_TOTAL_CAP": 300}

# Refusals that are about the number itself (never about a day's volume): a broker should know.
NUMBER_REFUSALS = ("number_invalid", "country_not_allowed", "number_not_allowed")


@functools.lru_cache(maxsize=16)
def countries(setting: str) -> frozenset[str]:
    """``NL,BE,DE`` as a set of region codes."""
    return frozenset(code.strip().upper() for code in setting.split(",") if code.strip())


def _countries(config: Mapping[str, Any]) -> frozenset[str]:
    return countries(str(config.get("BUURTLIJN_DESTINATION_COUNTRIES") or DEFAULT_COUNTRIES))


def _cap(config: Mapping[str, Any], name: str) -> int:
    value = config.get(name)
    return DEFAULT_CAPS[name] if value is None or value == "" else int(value)


def number_refusal(phone: str | None, config: Mapping[str, Any]) -> str | None:
    """Why ``phone`` (E.164) is not a destination at all, or None: the part of the policy that needs no count."""
    if not phone:
        return "number_invalid"
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "number_invalid"
    if not phonenumbers.is_valid_number(number):
        return "number_invalid"
    if phonenumbers.region_code_for_number(number) not in _countries(config):
        return "country_not_allowed"
    if phonenumbers.number_type(number) not in ALLOWED_TYPES or str(number.national_number).startswith(
            MACHINE_PREFIXES.get(number.country_code, ())):
        return "number_not_allowed"
    return None


def refusal(
    phone: str | None, config: Mapping[str, Any], channel: Channel, *,
    to_number_today: int | None = None, in_total_today: int | None = None,
) -> str | None:
    """The outbound policy: None when Buurtlijn may text (``channel`` "sms") or dial ("call") ``phone``,
    else the reason code (vocabulary.DESTINATION_REFUSALS).

    ``to_number_today``/``in_total_today``: what went out on this channel in the
    last 24 hours, to this number and in all (``sms_counts``/``call_counts``);
    None leaves that cap unchecked.
    """
    reason = number_refusal(phone, config)
    if reason is not None:
        return reason
    per_number, in_total = CAP_SETTINGS[channel]
    if to_number_today is not None and to_number_today >= _cap(config, per_number):
        return "daily_cap"
    if in_total_today is not None and in_total_today >= _cap(config, in_total):
        return "daily_total_cap"
    return None


def total_cap(config: Mapping[str, Any], channel: Channel) -> int:
    return _cap(config, CAP_SETTINGS[channel][1])


# --- counting what went out ----------------------------------------------------------------------


def sms_counts(session: Session, phone: str, now: dt.datetime, config: Mapping[str, Any]) -> tuple[int, int]:
    """SMS sent in the last 24 hours: to ``phone``, and in all (counted no further than the total cap)."""
    since = now - DAY
    to_number = session.scalar(
        select(func.count(Message.id)).where(
            Message.direction == "outbound", Message.phone == phone, Message.sent_at >= since)
    ) or 0
    sent = select(Message.id).where(Message.direction == "outbound", Message.sent_at >= since)
    return to_number, _bounded_count(session, sent, total_cap(config, "sms"))


def call_counts(session: Session, resident_id: int, now: dt.datetime, config: Mapping[str, Any]) -> tuple[int, int]:
    """Calls that rang someone at our cost in the last 24 hours: to this resident, and in all (each counted
    no further than its cap).

    Those we placed (notification calls and the broker's bridge) count once dialled; a relay call once
    it was put through, for the other person of its match (the one it rang)."""
    since = now - DAY
    placed = select(Call.id).where(
        Call.direction == "outbound", Call.purpose.in_(CAPPED_CALL_PURPOSES), Call.attempts > 0,
        Call.created_at >= since,
    )
    relayed = select(Call.id).where(Call.purpose == RELAY_CALL_PURPOSE, Call.created_at >= since)
    request, offer = aliased(Listing), aliased(Listing)
    relayed_to_resident = (
        relayed.join(Match, Match.id == Call.match_id)
        .join(request, request.id == Match.request_id)
        .join(offer, offer.id == Match.offer_id)
        .where(or_(request.resident_id == resident_id, offer.resident_id == resident_id),
               Call.resident_id != resident_id)
    )
    per_number, _in_total = CAP_SETTINGS["call"]
    number_cap, total = _cap(config, per_number), total_cap(config, "call")
    to_number = (_bounded_count(session, placed.where(Call.resident_id == resident_id), number_cap)
                 + _bounded_count(session, relayed_to_resident, number_cap))
    return to_number, _bounded_count(session, placed, total) + _bounded_count(session, relayed, total)


def _bounded_count(session: Session, query: Any, limit: int) -> int:
    """count(*) that stops at ``limit``: past the cap the exact figure does not matter, and the work stays bounded."""
    return session.scalar(select(func.count()).select_from(query.limit(max(limit, 1)).subquery())) or 0


# --- a refused resident's number -------------------------------------------------------------------


def report_refused_number(
    session: Session, resident: Resident | None, reason: str, *, message_id: int | None = None,
    call_id: int | None = None,
) -> None:
    """A resident's own number is refused by the policy: marked, and a broker is asked to look (as for 21211)."""
    if resident is None or reason not in NUMBER_REFUSALS:
        return
    resident.number_status = "refused"
    queue_callback(
        session, "bad_number", resident_id=resident.id, message_id=message_id, call_id=call_id,
        dedupe_key=f"resident:{resident.id}:bad_number",
        note="Naar dit nummer sturen en bellen we niet (betaalnummer, ander land of geen gewoon nummer).",
    )
