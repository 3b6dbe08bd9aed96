"""TwiML for the calls Buurtlijn makes to tell someone something.

Twilio fetches ``/twilio/notify/<id>`` when the resident picks up: the
message is spoken inside a ``<Gather>`` (keys work while it speaks), ``*``
repeats it, and for a proposal 1 = ja, 2 = nee (for "is het gelukt?" 1 =
klaar, 2 = niet gelukt). The answer goes through the same functions of
models.matching as an SMS answer. ``/status`` is the call's status callback:
an unanswered call is tried again later.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, current_app, request
from sqlalchemy.orm import Session

import texts
from ivr_flows.settings import settings_from_config
from models import Call, Match, Resident
from models.matching import Actor, MatchError, accept_match, complete_match, decline_match, report_problem
from models.notify import call_answered, call_expects, call_finished, call_text, is_notification, record_answer

from .database import get_session
from .security import twilio_signed
from .twiml import twiml

log = logging.getLogger("buurtlijn.notify")
bp = Blueprint("twilio_notify", __name__, url_prefix="/twilio/notify")

MAX_TRIES = 3  # silences or wrong keys before the call says goodbye
GATHER_TIMEOUT = 8


def _say(language: str, text: str) -> str:
    settings = settings_from_config(current_app.config)
    voice = settings.voice(language)
    body = escape(text)
    if settings.speech_rate:
        body = f'<prosody rate="{settings.speech_rate}">{body}</prosody>'
    return f"<Say language={quoteattr(voice.language)} voice={quoteattr(voice.voice)}>{body}</Say>"


def _response(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def _goodbye(call: Call, key: str):  # type: ignore[no-untyped-def]
    return twiml(_response(_say(call.language, texts.t(call.language, key)), "<Hangup/>"))


def _message(call: Call, *, prefix: str | None = None):  # type: ignore[no-untyped-def]
    """The message inside a Gather; silence comes back to the key URL with no digits."""
    action = f"{request.script_root}/twilio/notify/{call.id}/key"
    spoken = call_text(call) + " " + texts.t(call.language, "match.call.repeat_hint")
    if prefix:
        spoken = f"{prefix} {spoken}"
    gather = (
        f'<Gather input="dtmf" numDigits="1" timeout="{GATHER_TIMEOUT}" action={quoteattr(action)} '
        f'method="POST" actionOnEmptyResult="true">{_say(call.language, spoken)}</Gather>'
    )
    return twiml(_response(gather))


def _load(session: Session, call_id: int) -> Call | None:
    call = session.get(Call, call_id, with_for_update=True)
    return call if is_notification(call) else None


@bp.post("/<int:call_id>")
@twilio_signed
def message(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the resident picked up."""
    session = get_session()
    call = _load(session, call_id)
    if call is None:
        return twiml(_response("<Hangup/>"))
    call_answered(session, call, request.form.get("CallSid"))
    if call_expects(call) == "proposal" and call.match_id is not None:
        match = session.get(Match, call.match_id)
        if match is not None and match.status != "proposed":
            record_answer(call, "too_late")
            session.commit()
            return _goodbye(call, "match.call.too_late")
    session.commit()
    return _message(call)


def _resident(session: Session, call: Call) -> Resident:
    resident = session.get(Resident, call.resident_id)
    assert resident is not None
    return resident


def _answer(session: Session, call: Call, digit: str) -> str | None:
    """Act on key ``digit``; the text key to say goodbye with, or None for a key that means nothing here."""
    expects = call_expects(call)
    match = session.get(Match, call.match_id) if call.match_id is not None else None
    if expects is None or match is None or digit not in ("1", "2"):
        return None
    actor = Actor("resident", call.resident_id, remote_addr=request.remote_addr, channel="voice")
    answered = (call.data or {}).get("answer")
    if answered:  # Twilio repeated this step: the answer counts once
        return {"JA": "match.call.said_yes", "NEE": "match.call.said_no", "KLAAR": "match.call.said_done",
                "NIET GELUKT": "match.call.said_problem"}.get(answered, "match.call.already")
    try:
        if expects == "proposal":
            if digit == "1":
                accept_match(session, match, actor)
                record_answer(call, "JA")
                return "match.call.said_yes"
            decline_match(session, match, actor)
            record_answer(call, "NEE")
            return "match.call.said_no"
        if digit == "1":
            complete_match(session, match, actor)
            record_answer(call, "KLAAR")
            return "match.call.said_done"
        report_problem(session, match, _resident(session, call), actor)
        record_answer(call, "NIET GELUKT")
        return "match.call.said_problem"
    except MatchError:
        record_answer(call, "too_late")
        return "match.call.too_late" if expects == "proposal" else "match.call.already"


@bp.post("/<int:call_id>/key")
@twilio_signed
def key(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the Gather ended, with a key or in silence."""
    session = get_session()
    call = _load(session, call_id)
    if call is None:
        return twiml(_response("<Hangup/>"))
    digits = (request.form.get("Digits") or "").strip()[:1]
    if digits == "*":
        session.commit()
        return _message(call)
    goodbye = _answer(session, call, digits) if digits else None
    if goodbye is not None:
        session.commit()
        return _goodbye(call, goodbye)
    if call_expects(call) is None and digits:
        record_answer(call, "heard")
        session.commit()
        return _goodbye(call, "match.call.goodbye")
    call.tries += 1
    if call.tries >= MAX_TRIES:
        # Heard but not answered: a proposal stays open for an SMS answer or the broker.
        session.commit()
        return _goodbye(call, "match.call.goodbye")
    session.commit()
    return _message(call, prefix=texts.t(call.language, "match.call.not_understood") if digits else None)


@bp.post("/<int:call_id>/status")
@twilio_signed
def status(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the call is over (or could not be made): retry later if nobody answered."""
    session = get_session()
    outcome = call_finished(
        session,
        call_id,
        request.form.get("CallSid"),
        (request.form.get("CallStatus") or "").lower(),
        config=current_app.config,
    )
    session.commit()
    if outcome:
        log.info("notification call %s: %s", call_id, outcome)
    return twiml(_response())
