"""Twilio's side of a broker's call-back: connect the answering broker to the resident. Glue only.

``/twilio/bridge/<call_id>/connect`` is the TwiML Twilio fetches when the
broker picks up; ``/status`` receives the broker leg's progress; ``/dialled``
hears how the resident leg ended. All three are signed by Twilio. What the
broker hears is lines of the phone engine (ivr_flows.steps.LINES), in the
broker's language and its voice.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from ivr_flows import CallParams, Turn, render, render_line
from models import Broker, Call, Resident
from models.audit import audit
from models.base import utcnow
from models.bridge import PURPOSE, advance_status
from models.call import adopt_call_sid
from models.destinations import number_refusal

from .database import get_session
from .security import twilio_signed
from .twiml import empty_response, twiml
from .webhooks_voice import voice_settings

bp = Blueprint("twilio_bridge", __name__, url_prefix="/twilio/bridge")


def _bridge_call(call_id: int) -> Call | None:
    call = get_session().get(Call, call_id)
    return call if call is not None and call.purpose == PURPOSE else None


def _broker_language(call: Call | None) -> str:
    broker = get_session().get(Broker, call.broker_id) if call is not None and call.broker_id else None
    return broker.language if broker is not None else "nl"


def _adopt_sid(call: Call, params: CallParams) -> None:
    adopt_call_sid(get_session(), call, params.call_sid)


@bp.post("/<int:call_id>/connect")
@twilio_signed
def connect(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    params = CallParams.read(request.form)
    call = _bridge_call(call_id)
    language = _broker_language(call)
    resident = session.get(Resident, call.resident_id) if call is not None and call.resident_id else None
    if call is None or resident is None:
        return twiml(render_line("bridge_unknown", language=language, settings=voice_settings()))
    _adopt_sid(call, params)
    advance_status(call, "in-progress")
    refused = number_refusal(resident.phone, current_app.config)
    if refused is not None:  # checked at the click too; the number may have changed since
        call.data = {**(call.data or {}), "blocked": refused}
        session.commit()
        return twiml(render_line("bridge_refused", language=language, settings=voice_settings()))
    call.data = {**(call.data or {}), "broker_answered_at": utcnow().isoformat()}
    audit(session, "call.bridge_connect", actor_type="system", object_type="call", object_id=call.id,
          detail={"callback_id": call.callback_id, "broker_id": call.broker_id})
    session.commit()
    return twiml(render_line("bridge_connecting", language=language, settings=voice_settings(),
                             number=resident.phone, action=url_for("twilio_bridge.dialled", call_id=call.id)))


@bp.post("/<int:call_id>/dialled")
@twilio_signed
def dialled(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    call = _bridge_call(call_id)
    if call is None:
        return empty_response()
    status = (CallParams.read(request.form).answer.dial_status or "")[:32]
    call.data = {**(call.data or {}), "resident_status": status}
    session.commit()
    settings = voice_settings()
    if status == "completed":
        return twiml(render(Turn(), language="nl", data={}, seq=0, settings=settings))
    return twiml(render_line("bridge_not_answered", language=_broker_language(call), settings=settings))


@bp.post("/<int:call_id>/status")
@twilio_signed
def status(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    call = _bridge_call(call_id)
    if call is None:
        return empty_response()
    params = CallParams.read(request.form)
    _adopt_sid(call, params)
    advance_status(call, params.call_status)
    if params.duration is not None:
        call.duration_seconds = params.duration
    if params.error_code is not None:
        call.error_code = params.error_code
    session.commit()
    return empty_response()
