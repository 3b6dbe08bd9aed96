"""Telling a resident something, in the channel that reaches them.

One entry point for everything we say on our own initiative (a broker
tried to call, a match proposal, a reminder): the text is rendered in the
resident's language from the catalogue and goes out by SMS, or, for people
who cannot use SMS (see ``wants_voice``), as a phone call that speaks it.

A notification call is a ``calls`` row (purpose ``notification``) that
moves ``pending -> submitting -> dialling -> answered -> finished``; a call
nobody answers goes back to ``pending`` for the next try (after 2 hours,
then the next working day at 10:00), and after the last try a broker gets
an item. Like an SMS, the row is committed first and a job places the call.
What the call says and which keys it takes are steps of the phone engine
(ivr_flows/notification.py); ``answer_match`` is where an answer, by SMS or
by key, becomes its match action.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import texts

from .base import utcnow
from .call import PENDING_SID_PREFIX, Call, adopt_call_sid, status_moves_forward
from .db import defer_job
from .jobs import PLACE_CALL
from .message import Message
from .outbox import queue_sms
from .queue import queue_callback
from .resident import NUMBER_NONE, Resident
from .sql import insert_ignoring_conflict
from .vocabulary import ANSWERED_CALL_STATUSES, REACHED_OUTBOUND, TWILIO_CALL_UNANSWERED_STATUSES
from .workdays import local_zone, next_working_day, quiet_until

if TYPE_CHECKING:
    from .match import Match
    from .matching import Actor

# Tries to reach someone by phone before a broker takes over.
MAX_CALL_ATTEMPTS = 3
RETRY_AFTER_FIRST = dt.timedelta(hours=2)
NEXT_DAY_AT = dt.time(10, 0)
# Twilio's final call statuses that mean nobody listened.
# What a call may ask: a proposal (1 = ja, 2 = nee), feedback (1 = klaar, 2 = niet gelukt), or how it went
# (a mark, 1 to 5: models.satisfaction), or whether a listing is still current (1 = ja, 2 = nee:
# models.listing_life).
EXPECTS = ("proposal", "feedback", "satisfaction", "checkin")
@dataclass(frozen=True)
class MatchAnswer:
    """A resident's answer about a match: the same word by SMS and key on a call we place."""

    word: str  # kept on the message (its keyword) or the call (data["answer"])
    answers: str  # what it answers: one of EXPECTS
    texted: str  # the SMS reply's text key
    said: str  # what the call says before it hangs up


MATCH_ANSWERS: dict[str, MatchAnswer] = {
    answer.word: answer
    for answer in (
        MatchAnswer("JA", "proposal", texted="match.accepted_helper", said="match.call.said_yes"),
        MatchAnswer("NEE", "proposal", texted="match.declined_thanks", said="match.call.said_no"),
        MatchAnswer("KLAAR", "feedback", texted="match.done_thanks", said="match.call.said_done"),
        MatchAnswer("NIET GELUKT", "feedback", texted="match.problem_noted", said="match.call.said_problem"),
    )
}


def answer_match(session: Session, match: Match, resident: Resident, actor: Actor, word: str) -> MatchAnswer:
    """The one place an answer becomes a match action, whichever channel it came by.

    Raises models.matching.MatchError when the match can no longer take it
    (expired, cancelled, already answered), and its ProposalNotReached for a
    JA to a proposal that never reached the helper.
    """
    from .matching import (  # it imports this module
        ProposalNotReached, accept_match, complete_match, decline_match, report_problem,
    )

    if word == "JA" and not proposal_reached(session, match.id, resident.id):
        raise ProposalNotReached(f"match {match.id}: the proposal has not reached the helper")

    actions = {
        "JA": lambda: accept_match(session, match, actor),
        "NEE": lambda: decline_match(session, match, actor),
        "KLAAR": lambda: complete_match(session, match, actor),
        "NIET GELUKT": lambda: report_problem(session, match, resident, actor),
    }
    answer = MATCH_ANSWERS[word]
    actions[word]()
    return answer


def proposal_reached(session: Session, match_id: int, helper_id: int) -> bool:
    """Did the proposal of this match reach the helper: its SMS sent or delivered, or its call answered?

    While a match is proposed, what we sent the helper about it is its proposal.
    """
    texted = select(Message.id).where(Message.resident_id == helper_id, Message.match_id == match_id,
                                      Message.direction == "outbound", Message.status.in_(REACHED_OUTBOUND))
    called = select(Call.id).where(Call.resident_id == helper_id, Call.match_id == match_id,
                                   Call.status.in_(ANSWERED_CALL_STATUSES))
    return session.scalar(select(texted.exists())) or bool(session.scalar(select(called.exists())))


def wants_voice(resident: Resident) -> bool:
    """A landline, a number that cannot take SMS, or their own preference."""
    return resident.prefers_voice or resident.line_type == "fixed_line" or resident.number_status == "not_mobile"


def place_call_job_id(call_id: int, attempt: int) -> str:
    return f"place-call-{call_id}-{attempt}"


def notify_resident(
    session: Session,
    resident: Resident,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    purpose: str,
    dedupe_key: str,
    urgent: bool = False,
    listing_id: int | None = None,
    match_id: int | None = None,
    expects: str | None = None,
    language: str | None = None,
) -> Message | None:
    """Queue the catalogue text ``key`` for ``resident``; once per ``dedupe_key``.

    ``expects`` ("proposal" or "feedback") makes a phone call ask for a key
    press; ``language`` overrides the resident's for the SMS text (a
    language with no SMS texts). Returns the SMS row, or None when the
    message goes out as a call, or not at all: a marketplace member without
    a phone hears through the marketplace, which Buurtlijn's events tell.
    """
    if resident.number_status == NUMBER_NONE:
        return None
    if wants_voice(resident):
        queue_call(
            session, resident, key, params, purpose=purpose, dedupe_key=dedupe_key, urgent=urgent,
            listing_id=listing_id, match_id=match_id, expects=expects,
        )
        return None
    body = texts.t(language or resident.language, key, **(params or {}))
    return queue_sms(
        session,
        resident,
        body,
        purpose=purpose,
        dedupe_key=dedupe_key,
        urgent=urgent,
        listing_id=listing_id,
        match_id=match_id,
    )


def queue_call(
    session: Session,
    resident: Resident,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    purpose: str,
    dedupe_key: str,
    urgent: bool = False,
    listing_id: int | None = None,
    match_id: int | None = None,
    expects: str | None = None,
) -> Call:
    """Store a notification call for ``resident``; a job places it after this transaction commits."""
    if expects is not None and expects not in EXPECTS:
        raise ValueError(f"unknown answer kind {expects!r}")
    texts.t(resident.language, spoken_key(resident.language, key), **(params or {}))  # fails now, not mid-call
    now = utcnow()
    session.flush()
    new_id = insert_ignoring_conflict(
        session,
        Call.__table__,
        {
            # Twilio gives the real CallSid when the call is placed.
            "call_sid": PENDING_SID_PREFIX + uuid.uuid4().hex,
            "direction": "outbound",
            "purpose": "notification",
            "resident_id": resident.id,
            "language": resident.language,
            "step": None,
            "step_seq": 0,
            "tries": 0,
            "status": "pending",
            "data": {"key": key, "params": params or {}, "purpose": purpose, "urgent": urgent,
                     "expects": expects, "next_try_at": None, "sids": []},
            "listing_id": listing_id,
            "match_id": match_id,
            "dedupe_key": dedupe_key,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
        returning=Call.id,
    )
    call = session.scalars(select(Call).where(Call.dedupe_key == dedupe_key)).one()
    if new_id is not None:
        defer_job(session, PLACE_CALL, call.id, job_id=place_call_job_id(call.id, 0))
    return call


def spoken_key(language: str, key: str) -> str:
    """``match.proposal`` is spoken as ``match.spoken.proposal`` when the catalogue has one."""
    section, _, name = key.rpartition(".")
    candidate = f"{section}.spoken.{name}" if section else f"spoken.{name}"
    return candidate if texts.has(language, candidate) or texts.has(texts.FALLBACK, candidate) else key


def spoken_message(language: str, data: dict[str, Any]) -> str:
    """What a notification call says, from its data (``key``, ``params``), in ``language``."""
    return texts.t(language, spoken_key(language, data["key"]), **(data.get("params") or {}))


def call_expects(call: Call) -> str | None:
    return (call.data or {}).get("expects")


def is_notification(call: Call | None) -> bool:
    return call is not None and call.purpose == "notification" and call.direction == "outbound"


def _set_data(call: Call, **changes: Any) -> None:
    # A new dict, so SQLAlchemy sees the JSON change.
    call.data = {**(call.data or {}), **changes}


def next_try_at(attempt: int, now: dt.datetime, zone: ZoneInfo, quiet_end: dt.datetime | None) -> dt.datetime:
    """When to call again after ``attempt`` unanswered tries: in 2 hours, then the next working day at 10:00."""
    if attempt <= 1:
        moment = now + RETRY_AFTER_FIRST
        return max(moment, quiet_end) if quiet_end and quiet_end > now else moment
    day = next_working_day(now.astimezone(zone).date())
    return dt.datetime.combine(day, NEXT_DAY_AT, tzinfo=zone).astimezone(dt.timezone.utc)


def call_answered(session: Session, call: Call, call_sid: str | None) -> None:
    """Twilio fetched the message: someone picked up."""
    now = utcnow()
    adopt_call_sid(session, call, call_sid)
    if call.status in ("pending", "submitting", "dialling", "shown"):
        call.status = "answered"
        call.twilio_status = "in-progress"
    call.updated_at = now


def record_answer(call: Call, answer: str) -> None:
    """The key the resident pressed, kept on the call as the SMS keeps its keyword."""
    _set_data(call, answer=answer, answered_at=utcnow().isoformat())
    call.status = "finished" if call.status in ("answered", "dialling", "shown") else call.status


def call_finished(
    session: Session,
    call_id: int,
    call_sid: str | None,
    twilio_status: str,
    *,
    config: dict[str, Any],
    duration: int | None = None,
) -> str | None:
    """Twilio says the call is over. Returns what happens next: finished | retry | gave_up, or None.

    Late or repeated status callbacks (another attempt's CallSid, a call
    already settled) change nothing.
    """
    call = session.get(Call, call_id, with_for_update=True)
    if not is_notification(call):
        return None
    assert call is not None
    if call_sid and call.call_sid != call_sid and not call.call_sid.startswith(PENDING_SID_PREFIX):
        return None  # an earlier attempt's callback
    twilio_status = (twilio_status or "").lower()
    if not status_moves_forward(call.twilio_status, twilio_status):
        return None  # late ("ringing" after "completed"), repeated, or not Twilio's
    now = utcnow()
    call.twilio_status = twilio_status
    call.updated_at = now
    if duration is not None:
        call.duration_seconds = duration
    if call.status in ("answered", "finished"):
        if call.status == "answered":
            call.status = "finished"
        call.ended_at = call.ended_at or now
        return "finished"
    if call.status not in ("dialling", "shown", "submitting"):
        return None
    if twilio_status not in TWILIO_CALL_UNANSWERED_STATUSES and twilio_status != "completed":
        return None  # still ringing or in progress
    return not_reached(session, call, now, config=config)


def not_reached(session: Session, call: Call, now: dt.datetime, *, config: dict[str, Any]) -> str:
    """Nobody answered this try: try again later, or hand it to a broker."""
    call.ended_at = now
    rings = int((call.data or {}).get("unanswered", 0)) + 1
    _set_data(call, unanswered=rings)
    if rings < MAX_CALL_ATTEMPTS:
        when = next_try_at(rings, now, local_zone(config), quiet_until(now, config))
        call.status = "pending"
        _set_data(call, next_try_at=when.isoformat())
        defer_job(session, PLACE_CALL, call.id, job_id=place_call_job_id(call.id, call.attempts),
                  delay=when - now)
        return "retry"
    give_up(session, call, "not_reached")
    return "gave_up"


def give_up(session: Session, call: Call, reason: str, *, status: str = "failed") -> None:
    """The call will not reach them: a broker takes over (a proposal goes back to the queue)."""
    call.status = status
    call.ended_at = call.ended_at or utcnow()
    _set_data(call, gave_up=reason)
    if call.match_id is not None and call_expects(call) == "proposal":
        from .match import Match
        from .matching import MatchError, expire_match

        match = session.get(Match, call.match_id)
        if match is not None and match.status == "proposed":
            try:
                expire_match(session, match, reason="not_reached")
                return
            except MatchError:
                pass
    if reason == "bad_number":
        return  # the bad_number item for the resident says it already
    if call_expects(call) == "checkin":
        return  # no answer to "still current?": the listing expires after the answer time (models.listing_life)
    queue_callback(
        session, "not_reached" if reason == "not_reached" else "notification_failed",
        resident_id=call.resident_id, call_id=call.id, match_id=call.match_id, listing_id=call.listing_id,
        dedupe_key=f"call:{call.id}:{reason}",
    )


def due_calls(session: Session, now: dt.datetime) -> list[int]:
    """Pending notification calls whose time has come."""
    rows = session.execute(
        select(Call.id, Call.data).where(
            Call.purpose == "notification", Call.direction == "outbound", Call.status == "pending"
        )
    ).all()
    due = []
    for call_id, data in rows:
        when = (data or {}).get("next_try_at")
        if when is None or dt.datetime.fromisoformat(when) <= now:
            due.append(call_id)
    return due


def claim_call(session: Session, call_id: int, now: dt.datetime) -> bool:
    """pending -> submitting, once: the row is the lock against a second dial."""
    claimed = session.execute(
        update(Call)
        .where(Call.id == call_id, Call.purpose == "notification", Call.status == "pending")
        # A new try starts Twilio's statuses over: the last try's "no-answer" must not hold this one's back.
        .values(status="submitting", attempts=Call.attempts + 1, twilio_status="pending", updated_at=now)
        .returning(Call.id)
    ).scalar_one_or_none()
    return claimed is not None
