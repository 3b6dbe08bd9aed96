"""Matches: from a broker's proposal to help given.

The dashboard, the API, SMS answers and keypresses all go through these
functions, so a match moves the same way whoever moves it:

    proposed -> accepted | declined | expired      (the helper answers, or does not)
    accepted -> confirmed                          (a broker has called both and agreed a time)
    accepted | confirmed -> done                   (KLAAR, key 1, or a broker)
    proposed | accepted | confirmed -> cancelled   (a broker)

Residents answer (JA/NEE, KLAAR, NIET GELUKT); brokers propose, confirm,
cancel and may close; the sweep expires. Every step is timestamped on the
row, audited, and moved with a conditional UPDATE so that two answers at
once (an SMS and a keypress, or a JA racing the expiry) move it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, aliased

import texts

from .audit import audit
from .base import UTCDateTime, utcnow
from .callback import Callback
from .districts import district_map
from .listing import Listing
from .match import Match
from .notify import notify_resident, wants_voice
from .queue import close_callback, queue_callback
from .resident import Resident
from .satisfaction import ask_once
from .suggestions import offer_under_way
from .vocabulary import (
    AGREED_MATCH_STATUSES,
    CURRENT_LISTING_STATUSES,
    FINAL_LISTING_STATUSES,
    LIVE_MATCH_STATUSES,
    QUEUED_CALLBACK_STATUSES,
)
from .workdays import quiet_until

log = logging.getLogger("buurtlijn.matching")

DEFAULT_RESPONSE_TIME = dt.timedelta(hours=24)
# A helper who said NEE is not proposed to the same neighbour again this soon.
DECLINE_COOLDOWN = dt.timedelta(days=60)
# A match in these states lets the two people reach each other through our number.
# Which states each state may be reached from.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "accepted": ("proposed",),
    "declined": ("proposed",),
    "expired": ("proposed",),
    "confirmed": ("accepted",),
    "done": AGREED_MATCH_STATUSES,
    "cancelled": LIVE_MATCH_STATUSES,
}
STAMPS = {
    "accepted": "accepted_at",
    "declined": "declined_at",
    "expired": "expired_at",
    "confirmed": "confirmed_at",
    "done": "done_at",
    "cancelled": "cancelled_at",
}


class MatchError(ValueError):
    """The match cannot be made or moved as asked; the message says why.

    ``kind`` tells callers how to answer: ``not_found`` (a listing or match
    does not exist), ``invalid`` (the ids name the wrong things) or
    ``conflict`` (the state does not allow it right now). ``why`` names the reason in one word, for a
    message in the reader's language (the dashboard's ``match.refused.<why>``).
    """

    def __init__(self, message: str, kind: str = "conflict", why: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.why = why or kind


class ProposalNotReached(MatchError):
    """A JA for a proposal that never reached the helper (not sent yet, or not delivered): it accepts nothing."""


@dataclass(frozen=True)
class Actor:
    """Who moves a match, for the audit trail."""

    type: str  # broker | api | resident | system
    id: int | None = None
    remote_addr: str | None = None
    channel: str | None = None  # sms | voice, for residents
    name: str | None = None  # the API client's name

    @classmethod
    def broker(cls, broker_id: int | None, remote_addr: str | None = None) -> "Actor":
        return cls("broker" if broker_id is not None else "system", broker_id, remote_addr)


SYSTEM = Actor("system")


# --- settings -----------------------------------------------------------------


def response_time(config: Mapping[str, Any]) -> dt.timedelta:
    """A helper's time to answer a proposal (BUURTLIJN_MATCH_RESPONSE_HOURS)."""
    hours = config.get("BUURTLIJN_MATCH_RESPONSE_HOURS")
    return dt.timedelta(hours=int(hours)) if hours else DEFAULT_RESPONSE_TIME


# --- reading --------------------------------------------------------------------


def parties(session: Session, match: Match) -> tuple[Resident, Resident]:
    """(requester, helper): who asked, and who offered."""
    request = session.get(Listing, match.request_id)
    offer = session.get(Listing, match.offer_id)
    assert request is not None and offer is not None
    requester = session.get(Resident, request.resident_id)
    helper = session.get(Resident, offer.resident_id)
    assert requester is not None and helper is not None
    return requester, helper


def _with_residents(statuses: tuple[str, ...]):  # type: ignore[no-untyped-def]
    request, offer = aliased(Listing), aliased(Listing)
    query = (
        select(Match)
        .join(request, Match.request_id == request.id)
        .join(offer, Match.offer_id == offer.id)
        .where(Match.status.in_(statuses))
    )
    return query, request, offer


def open_proposals(session: Session, helper_id: int) -> list[Match]:
    """Proposals waiting for this helper's JA or NEE, oldest first."""
    query, _request, offer = _with_residents(("proposed",))
    return list(session.scalars(query.where(offer.resident_id == helper_id).order_by(Match.id)))


def active_matches(session: Session, resident_id: int) -> list[Match]:
    """Accepted and confirmed matches this resident is in (either side), newest first."""
    query, request, offer = _with_residents(AGREED_MATCH_STATUSES)
    return list(
        session.scalars(
            query.where(or_(request.resident_id == resident_id, offer.resident_id == resident_id)).order_by(
                Match.updated_at.desc(), Match.id.desc()
            )
        )
    )


# --- passing on texts and calls between the two ----------------------------------------------

# After the help is done the two may still reach each other a little while (a thank-you, a forgotten
# item); BUURTLIJN_RELAY_DAYS_AFTER_DONE says how long.
DEFAULT_RELAY_DAYS_AFTER_DONE = 3.0


def relay_days_after_done(config: Mapping[str, Any]) -> float:
    """Days texts and calls are still passed on after a match is done (BUURTLIJN_RELAY_DAYS_AFTER_DONE)."""
    value = config.get("BUURTLIJN_RELAY_DAYS_AFTER_DONE")
    return DEFAULT_RELAY_DAYS_AFTER_DONE if value is None or value == "" else float(value)


def relay_since(now: dt.datetime, days_after_done: float) -> dt.datetime:
    """A match done after this moment still relays."""
    return now - dt.timedelta(days=days_after_done)


def relay_since_in(config: Mapping[str, Any], now: dt.datetime) -> dt.datetime:
    """``relay_since`` with the days of the app's configuration."""
    return relay_since(now, relay_days_after_done(config))


def still_relays(since: Any):  # type: ignore[no-untyped-def]
    """The one rule of which matches pass on texts and calls between their two people, as SQL.

    Accepted or confirmed, or done after ``since`` (``relay_since``); and no
    broker ended the relay. ``since``: a datetime, or an SQL expression.
    """
    return and_(
        Match.relay_ended_at.is_(None),
        or_(Match.status.in_(AGREED_MATCH_STATUSES), and_(Match.status == "done", Match.done_at > since)),
    )


def relays(session: Session, match_id: int, since: dt.datetime) -> bool:
    """Does this match pass on texts and calls now (``still_relays``)?"""
    return session.scalar(select(Match.id).where(Match.id == match_id, still_relays(since))) is not None


def relay_partner(session: Session, resident_id: int, since: dt.datetime) -> tuple[Match, Resident] | None:
    """The newest match of this resident that still relays (``still_relays``), and the other person."""
    request, offer = aliased(Listing), aliased(Listing)
    match = session.scalars(
        select(Match)
        .join(request, Match.request_id == request.id)
        .join(offer, Match.offer_id == offer.id)
        .where(still_relays(since), or_(request.resident_id == resident_id, offer.resident_id == resident_id))
        .order_by(Match.updated_at.desc(), Match.id.desc())
        .limit(1)
    ).first()
    if match is None:
        return None
    requester, helper = parties(session, match)
    return match, (helper if requester.id == resident_id else requester)


def relay_number_query(resident_id: Any = None):  # type: ignore[no-untyped-def]
    """The other person's phone in this resident's newest match that still relays: one SELECT.

    ``resident_id``: the resident's id as an SQL expression; by default the parameter ``resident_id``.
    The parameter ``relay_since`` is ``relay_since(now, days)``.
    """
    request, offer = aliased(Listing), aliased(Listing)
    requester, helper = aliased(Resident), aliased(Resident)
    resident_id = bindparam("resident_id") if resident_id is None else resident_id
    return (
        select(case((request.resident_id == resident_id, helper.phone), else_=requester.phone))
        .select_from(Match)
        .join(request, Match.request_id == request.id)
        .join(offer, Match.offer_id == offer.id)
        .join(requester, requester.id == request.resident_id)
        .join(helper, helper.id == offer.resident_id)
        .where(
            still_relays(bindparam("relay_since", type_=UTCDateTime())),
            or_(request.resident_id == resident_id, offer.resident_id == resident_id),
        )
        .order_by(Match.updated_at.desc(), Match.id.desc())
        .limit(1)
    )


# Built once: every call from a known resident asks it (the same answer as relay_partner).
RELAY_NUMBER_QUERY = relay_number_query()


def relay_number_for(session: Session, resident_id: int, since: dt.datetime) -> str | None:
    """The other person's number while this resident is in a match that still relays.

    Calls and texts to the gateway from one of them are passed on to the
    other, so neither learns the other's number.
    """
    return session.scalar(RELAY_NUMBER_QUERY, {"resident_id": resident_id, "relay_since": since})


def end_relay(session: Session, match: Match, since: dt.datetime, broker_id: int,
              remote_addr: str | None = None) -> bool:
    """A broker stops passing on texts and calls between the two; the match itself goes on.

    Both people are told once, in their language and channel. False when
    the match does not relay (any more): ended before (a second click
    changes nothing), cancelled, or done longer ago than ``since``.
    """
    now = utcnow()
    session.flush()
    ended = session.execute(
        update(Match)
        .where(Match.id == match.id, still_relays(since))
        .values(relay_ended_at=now, relay_ended_by_id=broker_id, updated_at=now)
        .returning(Match.id)
    ).scalar_one_or_none()
    session.refresh(match)
    audit(session, "match.relay_ended", actor_type="broker", actor_id=broker_id, object_type="match",
          object_id=match.id, remote_addr=remote_addr, result="ok" if ended else "refused",
          detail=None if ended else {"why": "already_ended" if match.relay_ended_at else "not_relaying"})
    if ended is None:
        return False
    for person in parties(session, match):
        _tell(session, match, person, "relay_end.told", intent="relay_ended")
    return True


def recently_declined(session: Session, helper_id: int, requester_id: int, now: dt.datetime) -> bool:
    """Did this helper say NEE (or let expire) a proposal for this neighbour lately?"""
    query, request, offer = _with_residents(("declined",))
    found = session.scalar(
        select(func.count())
        .select_from(query.where(
            offer.resident_id == helper_id,
            request.resident_id == requester_id,
            Match.declined_at >= now - DECLINE_COOLDOWN,
        ).subquery())
    )
    return bool(found)


# --- what people are told ------------------------------------------------------------


def when_text(language: str, timing: str | None) -> str:
    key = f"match.when.{timing}" if timing else "match.when.unknown"
    return texts.t(language, key if texts.has(language, key) or texts.has("nl", key) else "match.when.unknown")


def moment_text(language: str, moment: dt.datetime, zone: ZoneInfo) -> str:
    """'dinsdag 14 mei om 14:00', in the resident's language and the local time zone."""
    local = moment.astimezone(zone)
    weekdays = texts.t(language, "match.weekdays").split(",")
    months = texts.t(language, "match.months").split(",")
    return texts.t(
        language,
        "match.moment",
        weekday=weekdays[local.weekday()].strip(),
        day=local.day,
        month=months[local.month - 1].strip(),
        time=local.strftime("%H:%M"),
    )


def _district_name(listing: Listing, language: str) -> str:
    if listing.district:
        return district_map().name(listing.district)
    return texts.t(language, "match.district_unknown")


def _tell(
    session: Session,
    match: Match,
    resident: Resident,
    key: str,
    *,
    intent: str,
    urgent: bool = False,
    expects: str | None = None,
    **params: Any,
) -> None:
    """Tell one person about this match, once per ``intent``, in their channel and language.

    A param may be a function of the language, so that the names in it
    (a weekday, "deze week") come in the language the text is said in: a
    language without SMS texts (Arabic: no GSM-7) reads the Dutch SMS, and
    hears its own language on a call.
    """
    request = session.get(Listing, match.request_id)
    assert request is not None
    language = resident.language
    if not wants_voice(resident) and not texts.has(language, key):
        language = texts.FALLBACK
    values = {"category": texts.category_name(language, request.category)}
    values.update({name: value(language) if callable(value) else value for name, value in params.items()})
    notify_resident(
        session,
        resident,
        key,
        values,
        purpose="match",
        dedupe_key=f"match:{match.id}:{intent}:{resident.id}",
        urgent=urgent,
        match_id=match.id,
        listing_id=match.request_id,
        expects=expects,
        language=language,
    )


def _proposal_params(session: Session, match: Match) -> dict[str, Any]:
    request = session.get(Listing, match.request_id)
    assert request is not None
    return {
        "district": lambda language: _district_name(request, language),
        "when": lambda language: when_text(language, request.timing),
        "number": match.id,
    }


def _send_proposal(session: Session, match: Match, requester: Resident, helper: Resident) -> None:
    # With another proposal still open, "JA" alone would be ambiguous: this one names its number.
    numbered = len(open_proposals(session, helper.id)) > 1
    key = "match.proposal_numbered" if numbered else "match.proposal"
    _tell(session, match, helper, key, intent="proposal", expects="proposal",
          **_proposal_params(session, match))
    # The neighbour who asked hears that we are on it, once per request (not again after a NEE).
    session.flush()
    earlier = session.scalar(
        select(func.count(Match.id)).where(Match.request_id == match.request_id, Match.id != match.id)
    )
    if not earlier and not wants_voice(requester):  # worth a text, not a phone call
        _tell(session, match, requester, "match.requester_searching", intent="searching")


# --- moving a match ----------------------------------------------------------------------


def _move(session: Session, match: Match, to: str, actor: Actor, **detail: Any) -> Match:
    """Move ``match`` to ``to`` if its current state allows; raise MatchError otherwise."""
    allowed = TRANSITIONS[to]
    now = utcnow()
    values: dict[str, Any] = {"status": to, STAMPS[to]: now, "updated_at": now}
    if to in ("declined", "expired", "done", "cancelled"):
        values["closed_by"] = actor.type
        values["close_reason"] = (detail.get("reason") or to)[:64]
    session.flush()
    moved = session.execute(
        update(Match)
        .where(Match.id == match.id, Match.status.in_(allowed))
        .values(**values)
        .returning(Match.id)
    ).scalar_one_or_none()
    session.refresh(match)
    if moved is None:
        audit(session, f"match.{to}", actor_type=actor.type, actor_id=actor.id, object_type="match",
              object_id=match.id, result="refused", remote_addr=actor.remote_addr,
              detail={"status": match.status, **({"channel": actor.channel} if actor.channel else {})})
        raise MatchError(f"match {match.id} is {match.status}; it cannot become {to}", why="state")
    audit(session, f"match.{to}", actor_type=actor.type, actor_id=actor.id, object_type="match",
          object_id=match.id, remote_addr=actor.remote_addr,
          detail={**({"channel": actor.channel} if actor.channel else {}),
                  **{k: v for k, v in detail.items() if v is not None}} or None)
    return match


def _set_request(session: Session, match: Match, status: str, *, only_from: tuple[str, ...]) -> None:
    """Move the match's request; the offer stays open, for a helper may help again (contract: "Listing life")."""
    now = utcnow()
    session.execute(
        update(Listing)
        .where(Listing.id == match.request_id, Listing.status.in_(only_from))
        .values(status=status, updated_at=now, closed_at=now if status in FINAL_LISTING_STATUSES else None)
        .returning(Listing.id)  # the ids, for the listings' events (models/events.py)
    )


def _close_items(session: Session, match: Match, reasons: tuple[str, ...], outcome: str) -> None:
    """Close the broker items this step has made unnecessary."""
    for callback in session.scalars(
        select(Callback).where(
            Callback.match_id == match.id, Callback.reason.in_(reasons), Callback.status.in_(QUEUED_CALLBACK_STATUSES)
        )
    ):
        close_callback(callback, outcome)


def propose_match(
    session: Session,
    request_id: int,
    offer_id: int,
    *,
    config: Mapping[str, Any],
    note: str | None = None,
    broker_id: int | None = None,
    respond_within: dt.timedelta | None = None,
    actor: Actor | None = None,
) -> Match:
    """Propose the helper behind ``offer_id`` for ``request_id`` and ask them by SMS or phone.

    The helper has ``respond_within`` (default: the app's ``config``'s
    BUURTLIJN_MATCH_RESPONSE_HOURS) to answer, counted from when the question
    can go out (not during the quiet hours of ``config``).
    """
    actor = actor or Actor.broker(broker_id)
    request = session.get(Listing, request_id, with_for_update=True)
    offer = session.get(Listing, offer_id)
    if request is None:
        raise MatchError(f"listing {request_id} does not exist", "not_found")
    if offer is None:
        raise MatchError(f"listing {offer_id} does not exist", "not_found")
    if request.kind != "request":
        raise MatchError(f"listing {request_id} is not a request", "invalid")
    if offer.kind != "offer":
        raise MatchError(f"listing {offer_id} is not an offer", "invalid")
    if request.resident_id == offer.resident_id:
        raise MatchError("a resident cannot be matched with themselves", "invalid", "self")
    if request.status != "open" or offer.status != "open":
        raise MatchError("both listings must be open", why="not_open")
    live = session.scalar(
        select(Match.id).where(Match.request_id == request_id, Match.status.in_(LIVE_MATCH_STATUSES)).limit(1)
    )
    if live is not None:
        raise MatchError(f"request {request_id} already has match {live} under way", why="request_busy")
    if session.scalar(select(offer_under_way(offer_id))):
        raise MatchError(f"offer {offer_id} is helping someone else right now", why="offer_busy")
    helper = session.get(Resident, offer.resident_id)
    requester = session.get(Resident, request.resident_id)
    assert helper is not None and requester is not None
    if helper.opted_out:
        raise MatchError("the helper has opted out of messages; call them instead", why="opted_out")
    if helper.number_status == "invalid":
        raise MatchError("the helper's number does not work; check it first", why="bad_number")
    now = utcnow()
    if recently_declined(session, helper.id, requester.id, now):
        raise MatchError("this helper said no to this neighbour recently; ask someone else", why="declined_recently")

    starts = quiet_until(now, config) or now
    match = Match(
        request_id=request_id,
        offer_id=offer_id,
        status="proposed",
        note=(note or "").strip()[:2000] or None,
        proposed_by_id=broker_id,
        respond_by=starts + (respond_within or response_time(config)),
        created_at=now,
        updated_at=now,
    )
    session.add(match)
    session.flush()
    audit(session, "match.propose", actor_type=actor.type, actor_id=actor.id, object_type="match",
          object_id=match.id, remote_addr=actor.remote_addr,
          detail={"request_id": request_id, "offer_id": offer_id, **({"client": actor.name} if actor.name else {})})
    _send_proposal(session, match, requester, helper)
    return match


def accept_match(session: Session, match: Match, actor: Actor) -> Match:
    """The helper said JA: both are told, they can reach each other, a broker confirms."""
    _move(session, match, "accepted", actor)
    requester, helper = parties(session, match)
    if actor.type != "resident":
        # A JA by SMS is answered by its reply, a keypress by the call itself;
        # when a broker records the helper's yes, the helper hears it by message.
        _tell(session, match, helper, "match.accepted_helper", intent="accepted")
    _tell(session, match, requester, "match.accepted_requester", intent="accepted")
    queue_callback(
        session, "match_accepted", resident_id=requester.id, listing_id=match.request_id, match_id=match.id,
        dedupe_key=f"match:{match.id}:accepted",
        note="De helper zei ja. Bel beiden, spreek een tijd af en bevestig de match.",
    )
    return match


def decline_match(session: Session, match: Match, actor: Actor, reason: str = "declined") -> Match:
    """The helper said NEE: back to the brokers, and not this pair again soon."""
    _move(session, match, "declined", actor, reason=reason)
    requester, _helper = parties(session, match)
    queue_callback(
        session, "match_declined", resident_id=requester.id, listing_id=match.request_id, match_id=match.id,
        dedupe_key=f"match:{match.id}:declined",
    )
    return match


def expire_match(session: Session, match: Match, reason: str = "no_answer") -> Match:
    """No answer in time (or the helper could not be reached): back to the brokers."""
    _move(session, match, "expired", SYSTEM, reason=reason)
    requester, _helper = parties(session, match)
    queue_callback(
        session, "match_expired", resident_id=requester.id, listing_id=match.request_id, match_id=match.id,
        dedupe_key=f"match:{match.id}:expired",
        note="De helper was niet te bereiken." if reason == "not_reached" else None,
    )
    return match


def _get(session: Session, match_id: int) -> Match:
    match = session.get(Match, match_id)
    if match is None:
        raise MatchError(f"match {match_id} does not exist", "not_found")
    return match


def confirm_match(
    session: Session,
    match_id: int,
    *,
    zone: ZoneInfo,
    broker_id: int | None = None,
    meeting_at: dt.datetime | None = None,
    note: str | None = None,
    remote_addr: str | None = None,
) -> Match:
    """A broker has spoken to both and confirms; ``meeting_at`` is the agreed moment, if any.

    The people are told the moment as a clock in ``zone`` (models.workdays.local_zone).

    The request becomes ``matched`` (the offer stays open), both people are told what was agreed.
    On a match that is already confirmed, a new ``meeting_at`` moves the
    appointment (and its reminder).
    """
    match = _get(session, match_id)
    if meeting_at is not None and meeting_at.tzinfo is None:
        raise MatchError("meeting_at must carry a time zone", "invalid")
    actor = Actor.broker(broker_id, remote_addr)
    if match.status == "confirmed":
        if meeting_at is None or meeting_at == match.meeting_at:
            return match
        return _reschedule(session, match, meeting_at, actor, zone)
    match.meeting_at = meeting_at
    if note:
        match.note = f"{match.note}\n{note}" if match.note else note
    _move(session, match, "confirmed", actor, meeting_at=meeting_at.isoformat() if meeting_at else None)
    _set_request(session, match, "matched", only_from=("open",))
    _close_items(session, match, ("match_accepted",), "confirmed")
    _tell_agreed(session, match, zone, intent="confirmed")
    return match


def _tell_agreed(session: Session, match: Match, zone: ZoneInfo, *, intent: str) -> None:
    for person in parties(session, match):
        meeting_at = match.meeting_at
        if meeting_at is not None:
            _tell(session, match, person, "match.confirmed", intent=intent,
                  moment=lambda language: moment_text(language, meeting_at, zone))
        else:
            _tell(session, match, person, "match.confirmed_no_time", intent=intent)


def _reschedule(session: Session, match: Match, meeting_at: dt.datetime, actor: Actor, zone: ZoneInfo) -> Match:
    match.meeting_at = meeting_at
    match.reminder_sent_at = None
    match.feedback_requested_at = None
    match.updated_at = utcnow()
    audit(session, "match.reschedule", actor_type=actor.type, actor_id=actor.id, object_type="match",
          object_id=match.id, remote_addr=actor.remote_addr, detail={"meeting_at": meeting_at.isoformat()})
    _tell_agreed(session, match, zone, intent=f"moved-{int(meeting_at.timestamp())}")
    return match


def complete_match(session: Session, match: Match, actor: Actor) -> Match:
    """The help has happened (KLAAR, key 1, or a broker's word): the request is done, the offer stays open."""
    _move(session, match, "done", actor, reason="done")
    _set_request(session, match, "done", only_from=CURRENT_LISTING_STATUSES)
    _close_items(session, match, ("match_accepted",), "done")
    _ask_how_it_went(session, match)
    return match


def _ask_how_it_went(session: Session, match: Match) -> None:
    """Both neighbours are asked once, in their channel and language, for a mark from 1 to 5 (contract:
    Reports); the answer is kept by models.satisfaction.record_mark."""
    for person in parties(session, match):
        voice = wants_voice(person)
        if person.opted_out and not voice:
            continue
        if ask_once(session, match.id, person.id, "voice" if voice else "sms"):
            _tell(session, match, person, "match.satisfaction", intent="satisfaction", expects="satisfaction")


def report_problem(session: Session, match: Match, resident: Resident, actor: Actor) -> Match:
    """NIET GELUKT / key 2: a broker calls. The match stays as it is until the broker decides."""
    now = utcnow()
    match.problem_reported_at = now
    match.updated_at = now
    queue_callback(
        session, "problem_reported", resident_id=resident.id, listing_id=match.request_id, match_id=match.id,
        dedupe_key=f"match:{match.id}:problem",
    )
    audit(session, "match.problem_reported", actor_type=actor.type, actor_id=actor.id, object_type="match",
          object_id=match.id, remote_addr=actor.remote_addr,
          detail={"channel": actor.channel} if actor.channel else None)
    return match


def cancel_match(
    session: Session,
    match_id: int,
    *,
    broker_id: int | None = None,
    reason: str | None = None,
    remote_addr: str | None = None,
) -> Match:
    """A broker stops the match; whoever knew of it is told, the request opens again."""
    match = _get(session, match_id)
    was = match.status
    _move(session, match, "cancelled", Actor.broker(broker_id, remote_addr), reason=reason or "cancelled")
    requester, helper = parties(session, match)
    if was == "confirmed":
        _set_request(session, match, "open", only_from=("matched",))
    if was == "proposed":
        _tell(session, match, helper, "match.proposal_withdrawn", intent="cancelled")
    else:
        for person in (requester, helper):
            _tell(session, match, person, "match.cancelled", intent="cancelled")
    _close_items(session, match, ("match_accepted",), "cancelled")
    return match


def leave_match(session: Session, match: Match, leaving_id: int) -> Resident:
    """A resident who is being erased leaves a live match: it is cancelled, and only the other person
    is told (the one leaving hears it in their own last message). A broker gets an item to help the
    other person on; their listing opens again. Returns the other person."""
    was = match.status
    _move(session, match, "cancelled", SYSTEM, reason="erased")
    requester, helper = parties(session, match)
    other = helper if requester.id == leaving_id else requester
    if was == "confirmed":
        _set_request(session, match, "open", only_from=("matched",))
    key = "match.proposal_withdrawn" if was == "proposed" and other is helper else "match.cancelled"
    _tell(session, match, other, key, intent="cancelled")
    _close_items(session, match, ("match_accepted",), "cancelled")
    queue_callback(
        session, "match_declined", resident_id=other.id,
        listing_id=match.offer_id if other is helper else match.request_id, match_id=match.id,
        dedupe_key=f"match:{match.id}:partner_erased",
    )
    return other


# --- the sweeps' side ------------------------------------------------------------------------


REMINDER_DAY_BEFORE_AT = dt.time(10, 0)  # local: the day before, from mid-morning
REMINDER_SAME_DAY_AT = dt.time(9, 0)  # local: same-day help, when quiet hours end
REMINDER_MIN_LEAD = dt.timedelta(hours=1)  # later than this before the moment, a reminder only confuses
FEEDBACK_AFTER_MEETING = dt.timedelta(hours=3)
FEEDBACK_WITHOUT_MEETING = dt.timedelta(days=7)


def reminder_due(match: Match, now: dt.datetime, zone: ZoneInfo) -> str | None:
    """'tomorrow' or 'today' when this confirmed match's reminder should go out now, else None."""
    if match.status != "confirmed" or match.meeting_at is None or match.reminder_sent_at is not None:
        return None
    if match.meeting_at - now < REMINDER_MIN_LEAD:
        return None
    local_now = now.astimezone(zone)
    meeting_day = match.meeting_at.astimezone(zone).date()
    if meeting_day - local_now.date() == dt.timedelta(days=1) and local_now.time() >= REMINDER_DAY_BEFORE_AT:
        # Agreed this very day for tomorrow: the confirmation just said it; the morning one will do.
        confirmed_today = match.confirmed_at is not None and match.confirmed_at.astimezone(zone).date() == local_now.date()
        return None if confirmed_today else "tomorrow"
    if meeting_day == local_now.date() and local_now.time() >= REMINDER_SAME_DAY_AT:
        confirmed_recently = match.confirmed_at is not None and now - match.confirmed_at < dt.timedelta(hours=3)
        return None if confirmed_recently else "today"
    return None


def send_reminder(session: Session, match: Match, which: str, zone: ZoneInfo) -> None:
    match.reminder_sent_at = utcnow()
    for person in parties(session, match):
        assert match.meeting_at is not None
        local = match.meeting_at.astimezone(zone)
        _tell(session, match, person, f"match.reminder_{which}", intent=f"reminder-{int(match.meeting_at.timestamp())}",
              time=local.strftime("%H:%M"))
    audit(session, "match.reminder", actor_type="system", object_type="match", object_id=match.id,
          detail={"which": which})


def feedback_due(match: Match, now: dt.datetime) -> bool:
    if match.status not in AGREED_MATCH_STATUSES or match.feedback_requested_at is not None:
        return False
    if match.meeting_at is not None:
        return now >= match.meeting_at + FEEDBACK_AFTER_MEETING and match.status == "confirmed"
    since = match.confirmed_at or match.accepted_at
    return since is not None and now >= since + FEEDBACK_WITHOUT_MEETING


def ask_feedback(session: Session, match: Match) -> None:
    """'Is het gelukt? Antwoord KLAAR' to the neighbour who asked for help."""
    match.feedback_requested_at = utcnow()
    requester, _helper = parties(session, match)
    _tell(session, match, requester, "match.feedback", intent="feedback", expects="feedback")
    audit(session, "match.feedback_requested", actor_type="system", object_type="match", object_id=match.id)


__all__ = [
    "Actor",
    "MatchError",
    "accept_match",
    "active_matches",
    "ask_feedback",
    "cancel_match",
    "complete_match",
    "confirm_match",
    "decline_match",
    "end_relay",
    "expire_match",
    "open_proposals",
    "parties",
    "propose_match",
    "relay_days_after_done",
    "relay_number_for",
    "relay_partner",
    "relay_since",
    "relays",
    "report_problem",
    "still_relays",
]
