"""Simulator: calling the gateway, pressing keys, speaking a message, hanging up.

The browser is the phone: it holds the TwiML it was given (as a list of
verbs) and asks the server to post the next request. The server signs each
request exactly as Twilio would and sends it over HTTP to the real voice
webhooks, so no call state lives here, in memory or elsewhere. A "spoken"
message becomes a small WAV file in the instance folder, which the
recordings route streams in the demo.
"""

from __future__ import annotations

import math
import struct
import time
import wave
import xml.etree.ElementTree as ET
from typing import Any

from flask import abort, current_app, jsonify, request

from models.phones import is_withheld, mask, try_parse_phone

from models.recordings import local_recording_path
from ..twilio_sim import new_sid, post_signed
from . import bp, webhook_url

VOICE_PATHS = ("/twilio/voice/step",)
MAX_RECORDING_SECONDS = 120


def call_params(call_sid: str, from_: str, **extra: str) -> dict[str, str]:
    """The parameters Twilio posts for an inbound call (plus a request's own, in ``extra``)."""
    config = current_app.config
    to = config["TWILIO_PHONE_NUMBER"]
    country = "NL" if from_.startswith("+31") else ""
    params = {
        "AccountSid": config["TWILIO_ACCOUNT_SID"], "ApiVersion": "2010-04-01", "CallSid": call_sid,
        "CallStatus": "in-progress", "Direction": "inbound", "From": from_, "Caller": from_, "To": to,
        "Called": to, "FromCountry": country, "CallerCountry": country, "ToCountry": "NL", "CalledCountry": "NL",
        "FromCity": "", "FromState": "", "FromZip": "", "ToCity": "", "ToState": "", "ToZip": "",
    }
    params.update(extra)
    return params


def _post(path: str, params: dict[str, str]) -> tuple[int, str]:
    local, public = webhook_url(path)
    return post_signed(local, params, current_app.config["TWILIO_AUTH_TOKEN"], signed_url=public)


def verbs(twiml: str) -> list[dict[str, Any]]:
    """TwiML as a list the browser can play: what is said, and what it waits for."""
    root = ET.fromstring(twiml)
    out: list[dict[str, Any]] = []
    for verb in root:
        if verb.tag == "Say":
            out.append({"verb": "say", "say": [_said(verb)]})
        elif verb.tag == "Gather":
            num_digits = verb.get("numDigits")
            out.append({
                "verb": "gather", "url": verb.get("action"), "numDigits": int(num_digits) if num_digits else None,
                "finishOnKey": verb.get("finishOnKey", "#"), "timeout": int(verb.get("timeout") or 5),
                "actionOnEmptyResult": verb.get("actionOnEmptyResult") == "true",
                "say": [_said(child) for child in verb if child.tag == "Say"],
            })
        elif verb.tag == "Record":
            out.append({"verb": "record", "url": verb.get("action"),
                        "maxLength": int(verb.get("maxLength") or MAX_RECORDING_SECONDS)})
        elif verb.tag == "Redirect":
            out.append({"verb": "redirect", "url": (verb.text or "").strip()})
        elif verb.tag == "Dial":
            numbers = [mask((n.text or "").strip()) for n in verb.iter("Number")]
            out.append({"verb": "dial", "url": verb.get("action"), "number": ", ".join(numbers)})
        elif verb.tag == "Hangup":
            out.append({"verb": "hangup"})
    return out


def _said(say: ET.Element) -> dict[str, str | None]:
    language = say.get("language") or ""
    return {"text": " ".join("".join(say.itertext()).split()), "language": language[:2] if language != "arb" else "ar",
            "voice": say.get("voice")}


def _reply(status: int, body: str) -> Any:
    if status != 200:
        return jsonify(status=status, error=body[:300], verbs=[]), 502
    return jsonify(status=status, verbs=verbs(body))


def _json() -> dict[str, Any]:
    return request.get_json(silent=True) or {}


def _caller(data: dict[str, Any]) -> tuple[str, str]:
    call_sid = str(data.get("call_sid") or "")
    from_ = str(data.get("from") or "")
    if not call_sid.startswith("CA") or not from_:
        abort(400)
    return call_sid, from_


def _step_path(data: dict[str, Any]) -> str:
    """Only our own voice step URLs: the browser cannot make the server post elsewhere."""
    url = str(data.get("url") or "")
    if not url.startswith(VOICE_PATHS):
        abort(400)
    return url


@bp.post("/call/start")
def start_call():  # type: ignore[no-untyped-def]
    data = _json()
    raw = str(data.get("from") or "").strip()
    number = None
    if data.get("withheld") or is_withheld(raw):
        from_ = "anonymous"
    else:
        number = try_parse_phone(raw)
        from_ = number.e164 if number else raw  # an invalid number reaches the gateway as it is
    call_sid = new_sid("CA")
    status, body = _post("/twilio/voice", call_params(call_sid, from_, CallStatus="ringing"))
    response = _reply(status, body)
    if status == 200:
        payload = response.get_json()
        # Says why the menu asks for the number: the phone network knows no such number.
        payload.update(call_sid=call_sid, unknown_number=from_ != "anonymous" and number is None, **{"from": from_})
        return jsonify(payload)
    return response


@bp.post("/call/answer")
def answer_call():  # type: ignore[no-untyped-def]
    """Keys pressed (``digits``), silence (``digits`` empty), or a redirect followed (``digits`` null)."""
    data = _json()
    call_sid, from_ = _caller(data)
    extra: dict[str, str] = {}
    if data.get("digits") is not None:
        extra["Digits"] = str(data["digits"])[:40]
    if data.get("finished_on_key"):
        extra["FinishedOnKey"] = str(data["finished_on_key"])[:1]
    return _reply(*_post(_step_path(data), call_params(call_sid, from_, **extra)))


@bp.post("/call/record")
def record_message():  # type: ignore[no-untyped-def]
    """A spoken message: a WAV of the chosen length stands in for the voice."""
    data = _json()
    call_sid, from_ = _caller(data)
    path = _step_path(data)
    seconds = max(1, min(MAX_RECORDING_SECONDS, int(data.get("seconds") or 5)))
    end = "hangup" if data.get("end") == "hangup" else "#"
    recording_sid = new_sid("RE")
    target = local_recording_path(current_app.instance_path, recording_sid)
    assert target is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_murmur(target, seconds)
    account = current_app.config["TWILIO_ACCOUNT_SID"]
    base = current_app.config["BASE_API_URL"]
    params = call_params(
        call_sid, from_, RecordingSid=recording_sid, RecordingDuration=str(seconds), Digits=end,
        RecordingUrl=f"{base}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}",
    )
    status, body = _post(path, params)
    if end == "hangup" and status == 200:
        _status_callback(call_sid, from_, int(data.get("duration") or seconds))
        return jsonify(status=status, verbs=[], ended=True)
    return _reply(status, body)


@bp.post("/call/dial")
def dial_result():  # type: ignore[no-untyped-def]
    data = _json()
    call_sid, from_ = _caller(data)
    dial_status = str(data.get("dial_status") or "no-answer")[:16]
    return _reply(*_post(_step_path(data), call_params(call_sid, from_, DialCallStatus=dial_status,
                                                       DialCallDuration="0")))


@bp.post("/call/hangup")
def hang_up():  # type: ignore[no-untyped-def]
    data = _json()
    call_sid, from_ = _caller(data)
    status = _status_callback(call_sid, from_, int(data.get("duration") or 1))
    return jsonify(status=status, ended=True)


def _status_callback(call_sid: str, from_: str, duration: int) -> int:
    params = call_params(
        call_sid, from_, CallStatus="completed", CallDuration=str(max(1, duration)),
        CallbackSource="call-progress-events", SequenceNumber="0",
        Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
    )
    status, _body = _post("/twilio/voice/status", params)
    return status


def _write_murmur(path: Any, seconds: int, rate: int = 8000) -> None:
    """8 kHz mono, like Twilio's recordings: a soft tone rising and falling like speech."""
    frames = bytearray()
    for n in range(seconds * rate):
        t = n / rate
        envelope = max(0.0, math.sin(math.pi * 3 * t)) * 0.25
        sample = envelope * math.sin(2 * math.pi * (180 + 40 * math.sin(2 * math.pi * 0.7 * t)) * t)
        frames += struct.pack("<h", int(sample * 32767))
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(bytes(frames))
