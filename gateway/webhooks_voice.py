"""Twilio's voice webhooks. Glue only: read Twilio's parameters, one call into
``ivr_flows``, answer TwiML. Whatever goes wrong, the caller hears an apology
in their language and a broker calls back: never an HTTP error Twilio would
read out as "an application error has occurred".
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, request

import ivr_flows
from ivr_flows import fast
from ivr_flows.params import CallParams, int_or_none
from models.base import utcnow

from .database import get_database, get_session
from .logs import scrub
from .security import twilio_signed
from .twiml import empty_response, twiml

log = logging.getLogger("buurtlijn.voice")
bp = Blueprint("twilio_voice", __name__, url_prefix="/twilio")
EXTENSION = "buurtlijn.ivr"


def voice_settings(app: Flask | None = None) -> ivr_flows.Settings:
    """The phone menu's settings, read from the config once per app."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.extensions.get(EXTENSION)
    if settings is None:
        settings = ivr_flows.settings_from_config(app.config)
        app.extensions[EXTENSION] = settings
    return settings


def uses_fast_path(app: Flask | None = None) -> bool:
    """The voice webhooks take ``ivr_flows.fast`` on PostgreSQL, unless ``VOICE_FAST_PATH`` is off: then every
    step takes the ORM path of ``ivr_flows.calls``, as on SQLite (the differential test compares the two)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return get_database(app).is_postgresql and bool(app.config.get("VOICE_FAST_PATH", True))


def _answer(work: Callable[[], str]) -> Response:
    """Run one step (it commits its own writes); on any failure, apologise and hang up."""
    try:
        return twiml(work())
    except Exception:
        _log_failure(f"voice webhook {request.path} failed; the caller hears an apology")
        try:
            get_session().rollback()
        except Exception:
            _log_failure("rollback failed")
        params = CallParams.read(request.form)
        try:
            with get_database().transaction() as fresh:
                body = ivr_flows.apology(
                    fresh, voice_settings(), call_sid=params.call_sid, raw_from=params.from_, now=utcnow()
                )
        except Exception:
            _log_failure("could not record the failed call")
            body = ivr_flows.sorry_goodbye(voice_settings())
        return twiml(body)


def _committed(body: str) -> str:
    get_session().commit()
    return body


@bp.post("/voice")
@twilio_signed
def incoming_call():  # type: ignore[no-untyped-def]
    params = CallParams.read(request.form)
    db = get_database()
    call_sid, raw_from = params.call_sid, params.from_

    def work() -> str:
        if uses_fast_path():  # two statements in autocommit (ivr_flows.fast)
            return fast.incoming_call(db, voice_settings(), call_sid=call_sid, raw_from=raw_from, now=utcnow())
        return _committed(ivr_flows.incoming_call(
            get_session(), voice_settings(), call_sid=call_sid, raw_from=raw_from, now=utcnow()))

    return _answer(work)


@bp.post("/voice/step")
@twilio_signed
def step():  # type: ignore[no-untyped-def]
    params = CallParams.read(request.form)
    db = get_database()
    fields = {
        "call_sid": params.call_sid, "step": request.args.get("s", ""),
        "seq": int_or_none(request.args.get("n")) or 0, "answer": params.answer, "raw_from": params.from_,
    }

    token = request.args.get("c")

    def work() -> str:
        if uses_fast_path():  # one write that commits itself, when the step allows (ivr_flows.fast)
            body = fast.answer_step(db, voice_settings(), now=utcnow(), token=token, **fields)
            if body is not None:
                return body
        return _committed(ivr_flows.answer_step(get_session(), voice_settings(), now=utcnow(), **fields))

    return _answer(work)


@bp.post("/voice/status")
@twilio_signed
def call_status():  # type: ignore[no-untyped-def]
    params = CallParams.read(request.form)
    db = get_database()
    if uses_fast_path():
        try:
            if fast.end_call(db, call_sid=params.call_sid, status=params.call_status, now=utcnow(),
                             duration=params.duration):
                return empty_response()
        except Exception:
            _log_failure("voice status callback failed on the fast path; trying the ORM path")
    session = get_session()
    try:
        ivr_flows.call_status(
            session, voice_settings(), call_sid=params.call_sid, status=params.call_status, raw_from=params.from_,
            now=utcnow(), duration=params.duration,
        )
        session.commit()
    except Exception:
        # The call row stays "in progress"; the sweep closes it as abandoned later.
        _log_failure("voice status callback failed; the sweep will close the call")
        session.rollback()
    return empty_response()


def _log_failure(message: str) -> None:
    """The traceback, without the phone numbers or recording URLs an error message may quote."""
    log.error("%s\n%s", message, scrub(traceback.format_exc()))
