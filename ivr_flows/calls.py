"""Calls in the database: load by CallSid, answer, store the answer, once per step.

The webhook views call these functions and nothing else. Each does a few
statements in the request's transaction (the caller commits): read the Call
row, maybe add a listing or a callback, update the row. The row's
``step_seq`` is checked by the UPDATE itself (an optimistic lock), so when
Twilio delivers the same step twice at the same time, one wins and the other
answers with the winner's TwiML.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import Call, Resident
from models.call import IN_PROGRESS, inbound_call_values, twilio_status_rank
from models.vocabulary import TWILIO_CALL_ENDED_STATUSES, TWILIO_CALL_STATUS_RANK
from models.phones import is_withheld, try_parse_phone
from models.queue import queue_callback
from models.residents import resident_for

from . import machine
from .machine import WELCOME, Answer, Context
from .render import Turn, render, say
from .settings import Settings
from .steps import STEPS

log = logging.getLogger("buurtlijn.voice")

# A menu call with no news for this long lost its status callback: the sweep closes it.
STALE_MENU_CALL = dt.timedelta(minutes=30)
# Twilio ends any call after 4 hours; a bridged call past that is certainly over.
STALE_RELAY_CALL = dt.timedelta(hours=5)


def load_call(session: Session, call_sid: str) -> Call | None:
    return session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()


def incoming_call(session: Session, settings: Settings, *, call_sid: str, raw_from: str | None, now: dt.datetime) -> str:
    """A call comes in: store it keyed by CallSid and answer with the first question."""
    existing = load_call(session, call_sid)
    if existing is not None:
        return _repeat(existing, 0, settings)
    number = None if is_withheld(raw_from) else try_parse_phone(raw_from)
    resident = resident_for(session, number) if number is not None else None
    if resident is not None:
        resident.touch(now)
    call = Call(**inbound_call_values(call_sid, raw_from, now, **_caller(resident)))
    turn = machine.first_turn(Context(session, settings, now), call, resident)
    _store(call, turn, 0, settings)
    session.add(call)
    try:
        session.flush()
    except IntegrityError:
        # The same call delivered twice at once: the other request stored it first.
        session.rollback()
        existing = load_call(session, call_sid)
        if existing is None:
            raise
        return _repeat(existing, 0, settings)
    return _rendered(call, turn, 0, settings)


def answer_step(
    session: Session, settings: Settings, *, call_sid: str, step: str, seq: int, answer: Answer,
    raw_from: str | None, now: dt.datetime,
) -> str:
    """The caller's answer to ``step`` (the ``seq``-th answer of the call)."""
    call = load_call(session, call_sid)
    if call is None:
        # A step of a call we have no row for (its first webhook was lost): start afresh.
        return incoming_call(session, settings, call_sid=call_sid, raw_from=raw_from, now=now)
    if seq != call.step_seq or step != call.step:
        return _repeat(call, seq, settings)
    try:
        # Any flush (also one inside the step, before a listing is inserted) checks step_seq.
        # No autoflush: reading the resident must not write the call a first time.
        with session.no_autoflush:
            turn = machine.answer(Context(session, settings, now), call, answer)
            _store(call, turn, seq, settings)
        call.updated_at = now
        session.flush()
    except StaleDataError:
        # Another delivery of this very step won the race; answer as it did.
        session.rollback()
        call = load_call(session, call_sid)
        if call is None:
            raise
        return _repeat(call, seq, settings)
    return _rendered(call, turn, seq, settings)


def _store(call: Call, turn: Turn, seq: int, settings: Settings) -> None:
    """Move the call on and keep the answer for a repeated delivery of request ``seq``.

    An answer the row itself says (``_from_row``) is kept as nothing: most
    steps then write a few bytes instead of a kilobyte of TwiML.
    """
    call.step_seq = seq + 1
    call.reply_seq = seq
    call.reply_twiml = None if _says_from_row(call, turn, seq) else _render_answer(call, turn, seq, settings)


def _says_from_row(call: Call, turn: Turn, seq: int) -> bool:
    """``turn`` is what ``_from_row`` renders for a call just moved on by it: the question asked, after the
    welcome when it is the call's first answer."""
    if turn.ask is None or turn.dial is not None:
        return False
    return not turn.said or (seq == 0 and turn.said == [say(call.language, WELCOME)])


def _from_row(call: Call, seq: int) -> Turn:
    """The answer to request ``seq`` as the row says it: the question the call is at, after the welcome when
    the stored answer is the call's first (``_says_from_row``); nothing to say once the call is over."""
    if call.status != IN_PROGRESS or call.step not in STEPS:
        return Turn()
    first = seq == 0 and call.reply_seq == 0
    return Turn(said=[say(call.language, WELCOME)] if first else [], ask=call.step)


def _render_answer(call: Call, turn: Turn, seq: int, settings: Settings) -> str:
    return render(turn, language=call.language, data=call.data or {}, seq=seq + 1, settings=settings)


def _rendered(call: Call, turn: Turn, seq: int, settings: Settings) -> str:
    """What Twilio gets for the answer to request ``seq``, once ``_store`` has run."""
    return call.reply_twiml or _render_answer(call, turn, seq, settings)


def _repeat(call: Call, seq: int, settings: Settings) -> str:
    """A request we answered before gets the same answer; an out-of-date one, the current question."""
    if call.reply_seq == seq and call.reply_twiml:
        return call.reply_twiml
    return render(_from_row(call, seq), language=call.language, data=call.data or {}, seq=call.step_seq,
                  settings=settings)


def call_status(
    session: Session, settings: Settings, *, call_sid: str, status: str, raw_from: str | None, now: dt.datetime,
    duration: int | None = None,
) -> None:
    """Twilio's status callback. When the call is over, an unfinished menu is an abandoned call.

    Before that, the status only moves forward: a callback that arrives late ("ringing" after "in-progress"
    or "completed") changes nothing, and neither does a status Twilio does not have.
    """
    status = (status or "").lower()
    if status not in TWILIO_CALL_ENDED_STATUSES:
        rank = TWILIO_CALL_STATUS_RANK.get(status)
        if rank is not None:
            session.execute(
                update(Call).where(Call.call_sid == call_sid, twilio_status_rank() < rank)
                .values(twilio_status=status).execution_options(synchronize_session=False)
            )
        return
    for attempt in (1, 2):
        try:
            call = load_call(session, call_sid)
            if call is None:
                call = _unanswered_call(session, call_sid, raw_from, now)
            machine.call_ended(Context(session, settings, now), call, status, duration)
            session.flush()
            return
        except StaleDataError:
            # A step of this call was taken at the same moment: read it again.
            session.rollback()
            if attempt == 2:
                raise


def _caller(resident: Resident | None) -> dict[str, Any]:
    """A call's columns taken from its caller, when we know who it is."""
    return {"resident_id": resident.id, "language": resident.language} if resident is not None else {}


def _unanswered_call(session: Session, call_sid: str, raw_from: str | None, now: dt.datetime) -> Call:
    """A call that ended before we stored it (our first answer never got through)."""
    number = None if is_withheld(raw_from) else try_parse_phone(raw_from)
    resident = resident_for(session, number) if number is not None else None
    call = Call(**{**inbound_call_values(call_sid, raw_from, now, **_caller(resident)),
                   "step": "main_menu", "step_seq": 1, "twilio_status": None})
    session.add(call)
    session.flush()
    return call


def stale_call_ids(session: Session, now: dt.datetime) -> list[int]:
    """Calls still marked in progress long after any caller would have hung up."""
    return list(
        session.scalars(
            select(Call.id).where(
                Call.status == IN_PROGRESS,
                Call.direction == "inbound",
                ((Call.purpose == "menu") & (Call.updated_at < now - STALE_MENU_CALL))
                | ((Call.purpose == "relay") & (Call.updated_at < now - STALE_RELAY_CALL)),
            )
        )
    )


def close_stale_call(session: Session, settings: Settings, call_id: int, now: dt.datetime) -> bool:
    """Treat a call whose status callback never came as ended; True when it was still open."""
    call = session.get(Call, call_id)
    if call is None or call.status != IN_PROGRESS or call.purpose not in ("menu", "relay"):
        return False
    limit = STALE_RELAY_CALL if call.purpose == "relay" else STALE_MENU_CALL
    if call.updated_at >= now - limit:
        return False
    machine.call_ended(Context(session, settings, now), call, "no-status-callback")
    return True


def apology(session: Session, settings: Settings, *, call_sid: str, raw_from: str | None, now: dt.datetime) -> str:
    """When answering failed: sorry, a broker calls back, goodbye. Best effort, never raises."""
    language = "nl"
    try:
        call = load_call(session, call_sid) if call_sid else None
        if call is None:
            number = None if is_withheld(raw_from) else try_parse_phone(raw_from)
            resident = resident_for(session, number) if number is not None else None
            queue_callback(
                session, "menu_trouble", resident_id=resident.id if resident else None,
                dedupe_key=f"callsid:{call_sid}:error" if call_sid else None,
                note="Telefoonmenu: technische fout.",
            )
            if resident is not None:
                language = resident.language
        else:
            language = call.language
            if call.status == IN_PROGRESS:
                call.status = "failed"
            queue_callback(
                session, "menu_trouble", resident_id=call.resident_id, listing_id=call.listing_id, call_id=call.id,
                dedupe_key=f"call:{call.id}:error", note="Telefoonmenu: technische fout. " + machine.summary(call),
            )
        session.commit()
    except Exception as error:  # the database itself may be what failed; the caller still hears us
        log.error("could not queue a callback after a failed call step: %s", type(error).__name__)
        session.rollback()
    return sorry_goodbye(settings, language)


def sorry_goodbye(settings: Settings, language: str = "nl") -> str:
    """'Sorry, something went wrong; a broker calls you back. Goodbye.' Needs no database."""
    return render(Turn(said=[say(language, "voice.error")]), language=language, data={}, seq=0, settings=settings)
