"""The call state machine: where a caller's answer leads.

Every function here takes the session, the Call row and what the caller did,
changes the rows, and returns the Turn to render. Nothing is kept in
process memory: the Call row (step, tries, data) is the whole state, so any
worker process can take the next step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import texts
from models import Call, Listing, Match, Resident
from models.call import IN_PROGRESS
from models.destinations import call_counts, number_refusal, refusal
from models.marketplace import open_items, record_listing, withdraw_listing, withdrawable
from models.matching import relay_number_for, relay_partner, relay_since
from models.phones import InvalidPhoneNumber, parse_phone
from models.privacy import erase_resident, live_matches
from models.queue import queue_callback
from models.residents import resident_for, set_postcode
from models.vocabulary import AGREED_MATCH_STATUSES, CURRENT_LISTING_STATUSES, RELAY_CALL_PURPOSE

from .params import Answer
from .render import Spoken, Turn, say
from .settings import Settings
from .speech import brokers_call_today, date_and_time, day_phrase
from .steps import LANGUAGE_DIGIT, RELAY_STEP, STEPS, Option, Step

# A caller who keeps pressing '*' (or a line that sends tones by itself)
# still reaches a person: past this many answers the call ends with a callback.
MAX_ANSWERS = 60
STATUS_MAX_ITEMS = 5
ANSWERED_DIAL = ("completed", "answered")
# What a call hears first, before its first question.
WELCOME = "voice.welcome"


@dataclass
class Context:
    """What a step may read and write besides the Call row, through the request's session.

    ``ivr_flows.fast`` has a variant for PostgreSQL that reads nothing more
    and collects the writes, so a step becomes one statement.
    """

    session: Session
    settings: Settings
    now: dt.datetime

    def resident_of(self, call: Call) -> Resident | None:
        return self.session.get(Resident, call.resident_id) if call.resident_id else None

    def listing_of(self, call: Call) -> Listing | None:
        return self.session.get(Listing, call.listing_id) if call.listing_id is not None else None

    def relay_number(self, resident: Resident) -> str | None:
        return relay_number_for(self.session, resident.id,
                                relay_since(self.now, self.settings.relay_days_after_done))

    def relay_target(self, resident: Resident) -> tuple[int, str, str | None] | None:
        """(the match, the partner's number, the outbound policy's refusal or None) for putting this
        resident through to their match partner, the call caps counted for the partner; None when no
        match relays."""
        found = relay_partner(self.session, resident.id, relay_since(self.now, self.settings.relay_days_after_done))
        if found is None:
            return None
        match, other = found
        to_number, in_total = call_counts(self.session, other.id, self.now, self.settings.destinations)
        return match.id, other.phone, refusal(other.phone, self.settings.destinations, "call",
                                              to_number_today=to_number, in_total_today=in_total)

    def add_listing(self, call: Call, resident: Resident, **fields: Any) -> Listing:
        """The call's listing, not yet in the brokers' queue (it goes there when the call ends)."""
        listing = record_listing(self.session, resident, channel="voice", queue_for_broker=False, now=self.now,
                                 **fields)
        call.listing_id = listing.id
        return listing

    def queue_callback(self, reason: str, **fields: Any) -> None:
        queue_callback(self.session, reason, now=self.now, **fields)


# --- small helpers -------------------------------------------------------------


def data(call: Call) -> dict[str, Any]:
    return dict(call.data or {})


def remember(call: Call, **values: Any) -> None:
    """Keep what the caller entered (a new dict, so the JSON column sees the change)."""
    call.data = {**(call.data or {}), **values}


def resident_of(ctx: Context, call: Call) -> Resident | None:
    return ctx.resident_of(call)


def line(call: Call, key: str, **params: Any) -> Spoken:
    return say(call.language, key, **params)


def goodbye(call: Call, key: str, status: str = "finished") -> Turn:
    call.status = status
    return Turn(said=[line(call, key)])


def summary(call: Call) -> str:
    """For the broker: where the caller was and what they keyed in (no numbers)."""
    entered = data(call)
    parts = [f"{name}={entered[name]}" for name in ("kind", "category", "postcode", "timing") if entered.get(name)]
    return f"Telefoonmenu, bij stap {call.step}. Ingetoetst: {', '.join(parts) or 'niets'}."


def _callback_resident(ctx: Context, call: Call) -> Resident | None:
    """The caller, or the number a withheld caller keyed in (even if not yet confirmed)."""
    resident = resident_of(ctx, call)
    if resident is None and data(call).get("phone"):
        resident = resident_for(ctx.session, parse_phone(str(data(call)["phone"])))
        call.resident_id = resident.id
    return resident


# --- the start of a call -----------------------------------------------------------


def first_turn(ctx: Context, call: Call, resident: Resident | None) -> Turn:
    """Welcome, then the main menu; a withheld caller first keys in their number.

    A resident in a match that still relays (``models.matching.still_relays``) hears that they are put
    through to the other person (our number shows, neither learns the other's), unless they press 0 —
    when the outbound policy lets us dial that number; else they hear why, then the menu.
    """
    if resident is not None:
        other = ctx.relay_number(resident)
        if other and number_refusal(other, ctx.settings.destinations) is not None:
            call.step = "main_menu"
            return Turn(said=[line(call, "voice.relay_refused")], ask=call.step)
        # In a match: first said who they are put through to, and that 0 reaches BUUV instead.
        call.step = "relay_announce" if other else "main_menu"
    else:
        call.step = "phone_entry"
    return Turn(said=[line(call, WELCOME)], ask=call.step)


# --- answers to a step ---------------------------------------------------------------


def answer(ctx: Context, call: Call, given: Answer) -> Turn:
    """The caller's answer to the step they are in (``call.step``)."""
    if call.step == RELAY_STEP:
        return _after_relay(call, given)
    step = STEPS[call.step or "main_menu"]
    if step.kind == "record":
        return _after_recording(ctx, call, given)
    if call.status != IN_PROGRESS:
        return Turn()  # the call is over (hung up, or ended by us): nothing more happens
    if call.step_seq >= MAX_ANSWERS:
        return trouble(ctx, call)
    return keyed(ctx, call, step, given.digits or "")


def keyed(ctx: Context, call: Call, step: Step, digits: str) -> Turn:
    """What keys (or silence) do at a menu or digits step, of any call: the step's data decides."""
    if digits == "":
        if step.on_silence is not None:
            return ACTIONS[step.on_silence](ctx, call, None)
        return retry(ctx, call, step, step.no_key)
    if "*" in digits or (digits == "#" and step.kind == "menu"):
        # Repeat the question; it does not count as a try. A lone '#' on a one-key
        # menu is a habit left over from keying in a number ("2034#"), not a choice.
        return Turn(ask=step.name)
    if step.kind == "digits":
        handler = DIGIT_HANDLERS[step.on_digits or ""]
        return handler(ctx, call, digits)
    option = step.option(digits[:1]) if len(digits) == 1 else None
    if option is not None:
        return _go(ctx, call, option)
    if digits == "0" and step.zero_is_broker:
        return broker(ctx, call, None)
    if step.other_keys is not None:
        return ACTIONS[step.other_keys](ctx, call, None)
    return retry(ctx, call, step, step.wrong_key)


def _go(ctx: Context, call: Call, option: Option) -> Turn:
    return ACTIONS[option.action](ctx, call, option)


def retry(ctx: Context, call: Call, step: Step, reason: str | None) -> Turn:
    """The same question again (after ``reason``, if any); after the last try, the step's ``out_of_tries``."""
    call.tries += 1
    if call.tries >= step.max_tries:
        return ACTIONS[step.out_of_tries](ctx, call, None)
    return Turn(said=[line(call, reason)] if reason else [], ask=step.name)


def ask(call: Call, step: str, said: list[Spoken] | None = None) -> Turn:
    """Move on to a new question, with a fresh count of tries."""
    call.step = step
    call.tries = 0
    return Turn(said=said or [], ask=step)


def trouble(ctx: Context, call: Call, option: Option | None = None) -> Turn:
    """The menu did not work out for this caller: a broker calls back."""
    resident = _callback_resident(ctx, call)
    ctx.queue_callback(
        "menu_trouble", resident_id=resident.id if resident else None, listing_id=call.listing_id,
        call_id=call.id, dedupe_key=f"call:{call.id}:menu_trouble", note=summary(call),
    )
    # Brokers see the missed call either way, but a caller whose number we never got is not promised a call.
    return goodbye(call, "voice.trouble" if resident is not None else "voice.trouble_no_number")


# --- actions named by the menu data -----------------------------------------------------


def goto(ctx: Context, call: Call, option: Option) -> Turn:
    return ask(call, option.value or "main_menu")


def start_listing(ctx: Context, call: Call, option: Option) -> Turn:
    remember(call, kind=option.value, category=None, postcode=None, timing=None)
    return ask(call, "category")


def set_category(ctx: Context, call: Call, option: Option) -> Turn:
    remember(call, category=option.value)
    resident = resident_of(ctx, call)
    if resident is not None and resident.postcode:
        remember(call, postcode=resident.postcode)
        return ask(call, "postcode_known")
    return ask(call, "postcode_entry")


def keep_postcode(ctx: Context, call: Call, option: Option) -> Turn:
    postcode = str(data(call).get("postcode") or "")
    resident = resident_of(ctx, call)
    if resident is not None and postcode:
        set_postcode(resident, postcode)  # a postcode outside the data file is kept, district None
    return ask(call, f"when_{data(call).get('kind') or 'request'}")


def set_timing(ctx: Context, call: Call, option: Option) -> Turn:
    """The last choice: the listing is stored now, so a hang-up during the message loses nothing."""
    remember(call, timing=option.value)
    _ensure_listing(ctx, call)
    return ask(call, "record")


def read_status(ctx: Context, call: Call, option: Option) -> Turn:
    remember(call, served="status")
    items = open_items(ctx.session, call.resident_id) if call.resident_id else []
    said = status_lines(ctx, call, items)
    if not call.resident_id:
        return ask(call, "main_menu", said=said)
    # Someone we know also hears they can have everything about them forgotten (8), and, with something
    # open, that they can withdraw it (7).
    return ask(call, "status_menu_open" if items else "status_menu", said=said)


def ask_withdraw(ctx: Context, call: Call, option: Option) -> Turn:
    """'7' after the status: the open listings read back one at a time."""
    return _offer_withdrawal(ctx, call, skipped=[], first=True)


def withdraw_next(ctx: Context, call: Call, option: Option) -> Turn:
    """'2' at a listing read back: the next one."""
    skipped = [*(data(call).get("skipped") or []), data(call).get("withdrawing")]
    return _offer_withdrawal(ctx, call, skipped=skipped, first=False)


def _offer_withdrawal(ctx: Context, call: Call, *, skipped: list[Any], first: bool) -> Turn:
    """Read back the first current listing not yet passed over (in INTREKKEN's order, read afresh, so one
    withdrawn by SMS meanwhile is left out); the last one offers the way back instead of "next"."""
    items = [item for item in withdrawable(ctx.session, call.resident_id) if item.id not in skipped] \
        if call.resident_id is not None else []
    if not items:
        return ask(call, "main_menu", said=[line(call, "voice.withdraw.none")])
    listing = items[0]
    reading = {**_listing_words(ctx, call, listing),
               "day": day_phrase(call.language, listing.created_at, ctx.now, ctx.settings.zone)}
    remember(call, withdrawing=listing.id, skipped=skipped, reading=reading)
    said = [line(call, "voice.withdraw.one_by_one")] if first and len(items) > 1 else []
    return ask(call, "withdraw_last" if len(items) == 1 else "withdraw_choice", said=said)


def withdraw(ctx: Context, call: Call, option: Option) -> Turn:
    """'1' at a listing read back: withdrawn by the one service SMS uses (a match under way goes to a broker
    instead), said plainly, then the main menu."""
    session = ctx.session  # no one-statement step: the fast path hands this one to the ORM path
    listing = session.get(Listing, data(call).get("withdrawing") or 0)
    remember(call, withdrawing=None, skipped=None, reading=None)
    if listing is None or listing.resident_id != call.resident_id or listing.status not in CURRENT_LISTING_STATUSES:
        # Withdrawn by SMS, or closed by a broker, since it was read back.
        return ask(call, "main_menu", said=[line(call, "voice.withdraw.gone")])
    words = _listing_words(ctx, call, listing)
    if withdraw_listing(session, listing, ctx.now, channel="voice", call_id=call.id):
        return ask(call, "main_menu", said=[line(call, "voice.withdraw.done", **words)])
    return ask(call, "main_menu", said=[line(call, "voice.withdraw.match", **words)])


def _listing_words(ctx: Context, call: Call, listing: Listing) -> dict[str, str]:
    return {"kind": texts.t(call.language, f"voice.kind.{listing.kind}"),
            "category": texts.t(call.language, f"voice.category.{listing.category}")}


def ask_forget(ctx: Context, call: Call, option: Option) -> Turn:
    """'8' after the status: read back what goes (and that a match partner will hear it is off), 1 confirms."""
    warn = call.resident_id is not None and bool(live_matches(ctx.session, call.resident_id))
    return ask(call, "forget_confirm", said=[line(call, "voice.forget.match_warning")] if warn else [])


def forget(ctx: Context, call: Call, option: Option) -> Turn:
    """Confirmed with 1: everything about the caller is erased (models.privacy), and the call says goodbye."""
    session = ctx.session  # no one-statement step: the fast path hands this one to the ORM path
    resident = session.get(Resident, call.resident_id) if call.resident_id is not None else None
    if resident is not None:
        erase_resident(session, resident, actor_type="resident", actor_id=resident.id, via="voice")
    return goodbye(call, "voice.forget.done")


def broker(ctx: Context, call: Call, option: Option | None) -> Turn:
    """'0': a broker calls back; the caller hears when."""
    resident = _callback_resident(ctx, call)
    ctx.queue_callback(
        "callback_requested", resident_id=resident.id if resident else None,
        listing_id=call.listing_id, call_id=call.id, note=summary(call),
        dedupe_key=f"resident:{resident.id}:callback_requested" if resident else f"call:{call.id}:callback_requested",
    )
    if resident is None:  # 0 in the language menu before a withheld caller keyed in their number
        return goodbye(call, "voice.trouble_no_number")
    today = brokers_call_today(ctx.now, ctx.settings.broker_hours, ctx.settings.zone)
    return goodbye(call, "voice.callback_today" if today else "voice.callback_next_day")


def relay_dial(ctx: Context, call: Call, option: Option | None) -> Turn:
    """Put the caller through to their match partner; the menu if the match ended meanwhile."""
    resident = resident_of(ctx, call)
    target = ctx.relay_target(resident) if resident is not None else None
    if target is None:
        return ask(call, "main_menu")
    match_id, other, refused = target
    if refused is not None:  # the number, or the day's calls to it or in all (models/destinations.py)
        return ask(call, "main_menu", said=[line(call, "voice.relay_refused")])
    call.purpose = RELAY_CALL_PURPOSE
    call.match_id = match_id
    call.step = RELAY_STEP
    return Turn(dial=other)


def set_language(ctx: Context, call: Call, option: Option) -> Turn:
    language = option.value or "nl"
    call.language = language
    resident = resident_of(ctx, call)
    if resident is not None:
        resident.language = language  # used next time they call, and for our SMS
    remember(call, served="language")
    # A withheld caller chose it before keying in their number (a lone 9): that question again, in it.
    then = "phone_entry" if call.resident_id is None else "main_menu"
    return ask(call, then, said=[line(call, "voice.language_set")])


def confirm_phone(ctx: Context, call: Call, option: Option) -> Turn:
    resident = resident_for(ctx.session, parse_phone(str(data(call)["phone"])))
    resident.touch(ctx.now)
    call.resident_id = resident.id
    if data(call).get("served") == "language":
        resident.language = call.language  # chosen in this call (9 at the number): kept, as set_language does
    else:
        call.language = resident.language  # a returning caller hears their own language from here on
    return ask(call, "main_menu")


ACTIONS: dict[str, Callable[[Context, Call, Option], Turn]] = {
    "goto": goto,
    "start_listing": start_listing,
    "set_category": set_category,
    "keep_postcode": keep_postcode,
    "set_timing": set_timing,
    "read_status": read_status,
    "ask_forget": ask_forget,
    "ask_withdraw": ask_withdraw,
    "withdraw_next": withdraw_next,
    "withdraw": withdraw,
    "forget": forget,
    "broker": broker,
    "set_language": set_language,
    "relay_dial": relay_dial,
    "confirm_phone": confirm_phone,
    "trouble": trouble,
}


# --- numbers keyed in ------------------------------------------------------------------------


def phone_keyed(ctx: Context, call: Call, digits: str) -> Turn:
    if digits == LANGUAGE_DIGIT:  # alone, it asks for another language: Dutch numbers start with 0
        return ask(call, "language_menu")
    try:
        number = parse_phone(digits)
    except InvalidPhoneNumber:
        return retry(ctx, call, STEPS["phone_entry"], "voice.phone_invalid")
    if number_refusal(number.e164, ctx.settings.destinations) is not None:
        # A number we may not text or call back (0900, abroad, ...) never becomes the caller's.
        return retry(ctx, call, STEPS["phone_entry"], "voice.phone_refused")
    remember(call, phone=number.e164, number=digits)
    return ask(call, "phone_confirm")


def postcode_keyed(ctx: Context, call: Call, digits: str) -> Turn:
    if len(digits) != 4 or not digits.isdigit():
        return retry(ctx, call, STEPS["postcode_entry"], "voice.postcode_invalid")
    if digits.startswith("0"):  # four digits keyed: saying "4 cijfers" would only puzzle the caller
        return retry(ctx, call, STEPS["postcode_entry"], "voice.postcode_zero")
    remember(call, postcode=digits)
    return ask(call, "postcode_confirm")


DIGIT_HANDLERS: dict[str, Callable[[Context, Call, str], Turn]] = {
    "phone": phone_keyed,
    "postcode": postcode_keyed,
}


# --- the spoken message, and the end ---------------------------------------------------------


def _ensure_listing(ctx: Context, call: Call) -> Listing | None:
    """The listing of this call, stored from what was entered (once)."""
    if call.listing_id is not None:
        return ctx.listing_of(call)
    entered = data(call)
    if not entered.get("kind") or not entered.get("category"):
        return None
    resident = resident_of(ctx, call)
    if resident is None:
        return None
    # Queued for a broker when the call ends: as new, or as an abandoned call.
    return ctx.add_listing(
        call, resident, kind=str(entered["kind"]), category=str(entered["category"]),
        postcode=entered.get("postcode") or None, timing=entered.get("timing") or None,
    )


def _after_recording(ctx: Context, call: Call, given: Answer) -> Turn:
    """The message is in (or the caller said nothing): the listing is complete.

    Twilio posts here after the <Record>, also when the caller hung up while
    speaking (Digits=hangup), possibly after the status callback already
    marked the call abandoned: the recording is kept either way.
    """
    listing = _ensure_listing(ctx, call)
    if listing is not None and given.has_recording:
        listing.recording_sid = (given.recording_sid or "")[:64]
        listing.recording_url = (given.recording_url or "")[:500]
        listing.recording_duration = given.recording_duration
    hung_up = given.digits == "hangup" or call.status != IN_PROGRESS
    if hung_up:
        if call.status in (IN_PROGRESS, "abandoned"):
            abandon(ctx, call)
        return Turn()
    if listing is not None:
        ctx.queue_callback(
            "new_listing", resident_id=listing.resident_id, listing_id=listing.id, call_id=call.id,
            dedupe_key=f"listing:{listing.id}:new_listing",
        )
    return goodbye(call, f"voice.done_{data(call).get('kind') or 'request'}")


def _after_relay(call: Call, given: Answer) -> Turn:
    """The <Dial> to a match partner ended: goodbye, or the menu when nobody answered."""
    if call.status != IN_PROGRESS:
        return Turn()
    if (given.dial_status or "") in ANSWERED_DIAL:
        call.status = "finished"
        return Turn()
    call.purpose = "menu"
    return ask(call, "main_menu", said=[line(call, "voice.relay_not_reached")])


def abandon(ctx: Context, call: Call) -> None:
    """The caller hung up before the end: keep what was entered, a broker calls back."""
    call.status = "abandoned"
    listing = _ensure_listing(ctx, call)
    resident = _callback_resident(ctx, call)
    # One open item per resident for calls that left nothing behind: someone who hung
    # up twice at the welcome is one call back for a broker, not two cards.
    key = f"resident:{resident.id}:abandoned_call" if resident and listing is None else f"call:{call.id}:abandoned"
    ctx.queue_callback(
        "abandoned_call", resident_id=resident.id if resident else None,
        listing_id=listing.id if listing else None, call_id=call.id, dedupe_key=key, note=summary(call),
    )


def call_ended(ctx: Context, call: Call, twilio_status: str, duration: int | None = None) -> None:
    """Twilio's status callback: the call is over. An unfinished menu call counts as abandoned."""
    call.twilio_status = twilio_status[:32]
    if duration is not None:
        call.duration_seconds = duration
    if call.ended_at is None:
        call.ended_at = ctx.now
    if call.status != IN_PROGRESS:
        return
    if call.purpose == RELAY_CALL_PURPOSE or _nothing_to_follow_up(call):
        call.status = "finished"
        return
    abandon(ctx, call)


def _nothing_to_follow_up(call: Call) -> bool:
    """The caller came for the language or their status, got it, and hung up (or hung up while hearing
    they would be put through to their match partner): no item for a broker."""
    # A number a withheld caller keyed in says who they are, not what they want: past its confirmation
    # they are as any caller we know.
    if call.listing_id is not None or any(data(call).get(name) for name in ("kind", "category", "postcode")):
        return False
    if call.step in ("language_menu", "relay_announce"):
        return True
    # Hanging up while hearing what could be withdrawn withdraws nothing and leaves nothing to do.
    return call.step in _AFTER_SERVED and bool(data(call).get("served"))


_AFTER_SERVED = ("main_menu", "status_menu", "status_menu_open", "withdraw_choice", "withdraw_last")


# --- the status line ('3') -----------------------------------------------------------------------


def status_lines(ctx: Context, call: Call, items: list[Listing]) -> list[Spoken]:
    """The caller's open requests and offers (``items``, newest first) in words, with an appointment when one
    is set."""
    language = call.language
    if not items:
        return [line(call, "voice.status_none")]
    shown = items[:STATUS_MAX_ITEMS]
    meetings = _meetings(ctx.session, [item.id for item in shown if item.status == "matched"])
    lines: list[Spoken] = []
    for item in shown:
        params = {
            "kind": texts.t(language, f"voice.kind.{item.kind}"),
            "category": texts.t(language, f"voice.category.{item.category}"),
            "day": day_phrase(language, item.created_at, ctx.now, ctx.settings.zone),
        }
        if item.status == "matched":
            lines.append(line(call, "voice.status_matched", **params))
            meeting = meetings.get(item.id)
            if meeting is not None and meeting >= ctx.now:
                date, time = date_and_time(language, meeting, ctx.settings.zone)
                lines.append(line(call, "voice.status_appointment", date=date, time=time))
        else:
            lines.append(line(call, "voice.status_open", **params))
    if len(items) > STATUS_MAX_ITEMS:
        lines.append(line(call, "voice.status_more", count=len(items) - STATUS_MAX_ITEMS))
    return lines


def _meetings(session: Session, listing_ids: list[int]) -> dict[int, dt.datetime]:
    if not listing_ids:
        return {}
    rows = session.execute(
        select(Match.request_id, Match.offer_id, Match.meeting_at).where(
            Match.status.in_(AGREED_MATCH_STATUSES),
            Match.meeting_at.is_not(None),
            (Match.request_id.in_(listing_ids)) | (Match.offer_id.in_(listing_ids)),
        )
    ).all()
    found: dict[int, dt.datetime] = {}
    for request_id, offer_id, meeting_at in rows:
        for listing_id in (request_id, offer_id):
            if listing_id in listing_ids:
                found[listing_id] = meeting_at
    return found


# The calls we place answer through the same registry; their actions need this module's helpers.
from .notification import NOTIFICATION_ACTIONS  # noqa: E402

ACTIONS.update(NOTIFICATION_ACTIONS)


def _check_registry() -> None:
    """A menu that names an unknown action or step fails at import, not during a call."""
    for step in STEPS.values():
        for named in (step.other_keys, step.out_of_tries):
            if named is not None and named not in ACTIONS:
                raise RuntimeError(f"step {step.name}: unknown action {named!r}")
        if step.on_digits is not None and step.on_digits not in DIGIT_HANDLERS:
            raise RuntimeError(f"step {step.name}: no digit handler {step.on_digits!r}")
        if step.kind == "digits" and step.on_digits is None:
            raise RuntimeError(f"step {step.name}: a digits step needs on_digits")
        for option in step.options:
            if option.action not in ACTIONS:
                raise RuntimeError(f"step {step.name}: unknown action {option.action!r}")
            if option.action == "goto" and option.value not in STEPS:
                raise RuntimeError(f"step {step.name}: goto unknown step {option.value!r}")


_check_registry()
