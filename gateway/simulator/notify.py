"""Simulator: the calls Buurtlijn makes (a proposal, a reminder) ring here.

In the demo nothing is dialled: a notification call waits as ``shown``
until the simulator's user picks up. Picking up and pressing keys become
signed Twilio-style requests to /twilio/notify/..., exactly as Twilio would
send them, and the TwiML that comes back is shown as words and keys.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from flask import abort, current_app, jsonify, request
from sqlalchemy import select

from models import Call, Resident
from models.call import PENDING_SID_PREFIX
from models.notify import is_notification
from models.phones import try_parse_phone
from models.residents import find_resident

from ..database import get_session
from ..twilio_sim import post_signed
from . import bp, webhook_url

# The calls a user can still pick up or is talking in.
VISIBLE = ("shown", "answered")


def _twiml_json(body: str) -> dict[str, Any]:
    """What the caller hears and may do, read from the TwiML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {"said": [], "gather": None, "hangup": True}
    said = [" ".join("".join(say.itertext()).split()) for say in root.iter("Say")]
    gather = root.find("./Gather")
    return {
        "said": said,
        "gather": gather.get("action") if gather is not None else None,
        "hangup": root.find("./Hangup") is not None or gather is None,
    }


def _call(call_id: int) -> Call:
    call = get_session().get(Call, call_id)
    if not is_notification(call):
        abort(404)
    assert call is not None
    return call


def _params(call: Call, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": current_app.config["TWILIO_ACCOUNT_SID"],
        "CallSid": _twilio_call_sid(call),
        "From": current_app.config["TWILIO_PHONE_NUMBER"],
        "To": _phone(call),
        "Direction": "outbound-api",
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def _twilio_call_sid(call: Call) -> str:
    """The CallSid Twilio would have given the call: one the demo only shows keeps its stand-in, so the
    simulator makes a Twilio-shaped SID of it (the same one on every post)."""
    if call.call_sid.startswith(PENDING_SID_PREFIX):
        return "CA" + call.call_sid.removeprefix(PENDING_SID_PREFIX)
    return call.call_sid


def _phone(call: Call) -> str:
    resident = get_session().get(Resident, call.resident_id)
    return resident.phone if resident is not None else ""


def _post(path: str, params: dict[str, str]) -> tuple[int, str]:
    local, public = webhook_url(path)
    return post_signed(local, params, current_app.config["TWILIO_AUTH_TOKEN"], signed_url=public)


@bp.get("/calls")
def notify_calls():  # type: ignore[no-untyped-def]
    """Buurtlijn's calls to this phone that ring now."""
    number = try_parse_phone((request.args.get("phone") or "").strip())
    resident = find_resident(get_session(), number.e164) if number else None
    if resident is None:
        return jsonify(calls=[])
    calls = get_session().scalars(
        select(Call).where(Call.resident_id == resident.id, Call.purpose == "notification",
                           Call.status.in_(VISIBLE)).order_by(Call.id)
    ).all()
    return jsonify(calls=[{"id": c.id, "status": c.status, "expects": (c.data or {}).get("expects")} for c in calls])


@bp.post("/calls/<int:call_id>/answer")
def notify_answer(call_id: int):  # type: ignore[no-untyped-def]
    call = _call(call_id)
    status, body = _post(f"/twilio/notify/{call.id}", _params(call))
    return jsonify(status=status, **_twiml_json(body))


@bp.post("/calls/<int:call_id>/press")
def notify_press(call_id: int):  # type: ignore[no-untyped-def]
    call = _call(call_id)
    data = request.get_json(silent=True) or {}
    digits = str(data.get("digits", ""))[:1]
    status, body = _post(f"/twilio/notify/{call.id}/key", _params(call, Digits=digits))
    return jsonify(status=status, **_twiml_json(body))


@bp.post("/calls/<int:call_id>/hangup")
def notify_hang_up(call_id: int):  # type: ignore[no-untyped-def]
    call = _call(call_id)
    data = request.get_json(silent=True) or {}
    outcome = "completed" if data.get("answered") else "no-answer"
    status, _body = _post(f"/twilio/notify/{call.id}/status", _params(call, CallStatus=outcome, CallDuration="20"))
    return jsonify(status=status)
