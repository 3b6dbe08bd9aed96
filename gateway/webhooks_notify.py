"""Twilio's side of the calls Buurtlijn makes to tell someone something. Glue only.

Twilio fetches ``/twilio/notify/<id>`` when the resident picks up and posts
each key to ``/key``; what is said and what keys do are steps of the phone
engine (ivr_flows/notification.py). ``/status`` is the call's status
callback: an unanswered call is tried again later (models.notify).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request, url_for

from ivr_flows.notification import key_pressed, picked_up
from ivr_flows.params import CallParams
from models.base import utcnow
from models.notify import call_finished

from .database import get_session
from .security import twilio_signed
from .twiml import empty_response, twiml
from .webhooks_voice import voice_settings

log = logging.getLogger("buurtlijn.notify")
bp = Blueprint("twilio_notify", __name__, url_prefix="/twilio/notify")


@bp.post("/<int:call_id>")
@twilio_signed
def message(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the resident picked up."""
    session = get_session()
    body = picked_up(session, voice_settings(), call_id, CallParams.read(request.form),
                     action=url_for("twilio_notify.key", call_id=call_id))
    session.commit()
    return twiml(body)


@bp.post("/<int:call_id>/key")
@twilio_signed
def key(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the Gather ended, with a key or in silence."""
    session = get_session()
    body = key_pressed(session, voice_settings(), call_id, CallParams.read(request.form),
                       action=url_for("twilio_notify.key", call_id=call_id), now=utcnow(),
                       remote_addr=request.remote_addr)
    session.commit()
    return twiml(body)


@bp.post("/<int:call_id>/status")
@twilio_signed
def status(call_id: int):  # type: ignore[no-untyped-def]
    """Twilio: the call is over (or could not be made): retry later if nobody answered."""
    session = get_session()
    params = CallParams.read(request.form)
    outcome = call_finished(session, call_id, params.call_sid, params.call_status, config=current_app.config,
                            duration=params.duration)
    session.commit()
    if outcome:
        log.info("notification call %s: %s", call_id, outcome)
    return empty_response()
