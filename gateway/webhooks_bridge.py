"""Twilio's side of a broker's call-back: connect the answering broker to the resident.

``/twilio/bridge/<call_id>/connect`` is the TwiML Twilio fetches when the
broker picks up; ``/status`` receives the broker leg's progress; ``/dialled``
hears how the resident leg ended. All three are signed by Twilio.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flask import Blueprint, current_app, request, url_for

from models import Broker, Call, Resident
from models.audit import audit
from models.base import utcnow
from models.bridge import PURPOSE, advance_status

from .dashboard.i18n import say_language, translate
from .database import get_session
from .security import twilio_signed
from .twiml import empty_response, twiml

bp = Blueprint("twilio_bridge", __name__, url_prefix="/twilio/bridge")

DIAL_TIMEOUT_SECONDS = 30


def _response(*elements: ET.Element) -> str:
    root = ET.Element("Response")
    root.extend(elements)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


def _say(text: str, language: str) -> ET.Element:
    say = ET.Element("Say", {"language": say_language(language)})
    say.text = text
    return say


def _bridge_call(call_id: int) -> Call | None:
    call = get_session().get(Call, call_id)
    return call if call is not None and call.purpose == PURPOSE else None


def _adopt_sid(call: Call) -> None:
    sid = request.form.get("CallSid", "")
    if sid and call.call_sid.startswith("pending-"):
        call.call_sid = sid[:64]


@bp.post("/<int:call_id>/connect")
@twilio_signed
def connect(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    call = _bridge_call(call_id)
    broker = session.get(Broker, call.broker_id) if call is not None and call.broker_id else None
    language = broker.language if broker is not None else "nl"
    resident = session.get(Resident, call.resident_id) if call is not None and call.resident_id else None
    if call is None or resident is None:
        return twiml(_response(_say(translate(language, "bridge.unknown"), language), ET.Element("Hangup")))
    _adopt_sid(call)
    advance_status(call, "in-progress")
    call.data = {**(call.data or {}), "broker_answered_at": utcnow().isoformat()}
    audit(session, "call.bridge_connect", actor_type="system", object_type="call", object_id=call.id,
          detail={"callback_id": call.callback_id, "broker_id": call.broker_id})
    session.commit()
    dial = ET.Element(
        "Dial",
        {
            "callerId": current_app.config["TWILIO_PHONE_NUMBER"],
            "action": url_for("twilio_bridge.dialled", call_id=call.id),
            "method": "POST",
            "timeout": str(DIAL_TIMEOUT_SECONDS),
        },
    )
    number = ET.SubElement(dial, "Number")
    number.text = resident.phone
    return twiml(_response(_say(translate(language, "bridge.connecting"), language), dial))


@bp.post("/<int:call_id>/dialled")
@twilio_signed
def dialled(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    call = _bridge_call(call_id)
    if call is None:
        return empty_response()
    status = (request.form.get("DialCallStatus") or "").lower()[:32]
    call.data = {**(call.data or {}), "resident_status": status}
    session.commit()
    broker = session.get(Broker, call.broker_id) if call.broker_id else None
    language = broker.language if broker is not None else "nl"
    if status == "completed":
        return twiml(_response(ET.Element("Hangup")))
    return twiml(_response(_say(translate(language, "bridge.not_answered"), language), ET.Element("Hangup")))


@bp.post("/<int:call_id>/status")
@twilio_signed
def status(call_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    call = _bridge_call(call_id)
    if call is None:
        return empty_response()
    _adopt_sid(call)
    advance_status(call, request.form.get("CallStatus", ""))
    error = request.form.get("ErrorCode", "")
    if error.isdigit():
        call.error_code = int(error)
    session.commit()
    return empty_response()
