"""Every webhook and /api/v1 endpoint, fed random input as an attacker with our signing key (or a broken
Twilio) might: strings with NUL, control and any unicode characters, numbers past every column's range,
fields left out. Each Twilio request is signed, so it gets past the signature to the code behind it.

What must hold, whatever comes in:
- no 5xx, ever (a 4xx for what no Twilio sends);
- where a webhook answers 200, it answers well-formed TwiML;
- an SMS that is answered 200 is stored, exactly once, under its MessageSid;
- the same request delivered again (Twilio retries) is answered the same.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import func, select

from gateway.database import get_database
from ivr_flows.steps import STEPS
from models import Call, Message
from models.bridge import PURPOSE as BRIDGE
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import ACCOUNT_SID, API_TOKEN, GATEWAY_NUMBER, PUBLIC_BASE, TwilioWebhooks, parse_twiml, \
    session_of

# Bounded: the whole file runs in well under a minute on both databases. Fixed examples (the same in CI
# every time) and Hypothesis's caches outside the checkout: nothing left behind.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "buurtlijn-hypothesis"))
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MISSING = object()  # the field is left out of the request
CALLER = "+31612345678"

NASTY = st.sampled_from([
    "", " ", "\x00", "\x00\x01\x1f\x7f\x9b", "a\x00b", "\r\n", "\u202e\u200b", "𝟘𝟙", "²", "٣", "-1", "+1", "1.5",
    "1e9", str(2**31 - 1), str(2**31), str(2**63 - 1), str(2**63), str(2**64), "9" * 60, "x" * 2000,
    "' OR 1=1 --", "<Say>hoi</Say>", "]]>", "%00", "&amp;", "null", "NaN", "+31900123456",
])
TEXT = st.one_of(NASTY, st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
HEX32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


def sid(prefix: str) -> st.SearchStrategy[str]:
    return HEX32.map(lambda digits: prefix + digits)


def field(valid: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Mostly what Twilio sends, sometimes anything, sometimes nothing."""
    return st.one_of(valid, valid, TEXT, st.just(MISSING))


def form(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(fields).map(
        lambda drawn: {name: value for name, value in drawn.items() if value is not MISSING})


CALL_STATUSES = st.sampled_from(["queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
                                 "no-answer", "canceled", "COMPLETED"])
NUMBERS = st.sampled_from([CALLER, "+31235550100", "anonymous", "+266696687", "+447700900123", "0612345678"])
SMS_FORM = form(MessageSid=field(sid("SM")), From=field(NUMBERS), To=field(st.just(GATEWAY_NUMBER)),
                Body=field(st.sampled_from(["HULP", "VRAAG boodschappen 2034", "JA", "STOP", "NEE"])),
                OptOutType=field(st.sampled_from(["STOP", "START", "HELP"])), NumMedia=field(st.just("0")),
                AccountSid=st.just(ACCOUNT_SID))
SMS_STATUS_FORM = form(MessageSid=field(sid("SM")), AccountSid=st.just(ACCOUNT_SID),
                       MessageStatus=field(st.sampled_from(["sent", "delivered", "undelivered", "failed", "read"])),
                       ErrorCode=field(st.sampled_from(["30003", "30005", "21614"])))
CALL_FORM = form(CallSid=field(sid("CA")), From=field(NUMBERS), To=field(st.just(GATEWAY_NUMBER)),
                 CallStatus=field(CALL_STATUSES), AccountSid=st.just(ACCOUNT_SID),
                 Digits=field(st.sampled_from(["1", "2", "3", "0", "*", "#", "12", "2034", "0900123456"])),
                 RecordingSid=field(sid("RE")), RecordingUrl=field(st.just("https://api.twilio.com/r/x")),
                 RecordingDuration=field(st.sampled_from(["0", "4", "120"])), ErrorCode=field(st.just("13224")),
                 DialCallStatus=field(st.sampled_from(["completed", "busy", "no-answer"])),
                 AnsweredBy=field(st.sampled_from(["human", "machine_start"])))
STEP_QUERY = st.fixed_dictionaries({
    "s": field(st.sampled_from(sorted(STEPS))), "n": field(st.sampled_from(["0", "1", "2", "3"])), "c": TEXT,
}).map(lambda drawn: {name: value for name, value in drawn.items() if value is not MISSING})
IDS = st.one_of(st.integers(min_value=0, max_value=5), st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
                st.integers(min_value=2**63 - 2, max_value=2**63 + 2), st.integers(min_value=0, max_value=10**60))


@pytest.fixture
def fuzzed(notify_app: Flask) -> tuple[Flask, TwilioWebhooks, dict[str, int]]:
    """The app, Twilio's side of it, and the ids of a notification call and a broker's bridge call to aim at."""
    with get_database(notify_app).transaction() as session:
        resident = resident_for(session, parse_phone(CALLER))
        rows = {
            "notify": Call(call_sid="pending-" + "1" * 32, direction="outbound", purpose="notification",
                           resident_id=resident.id, status="dialling",
                           data={"key": "match.feedback", "params": {"category": "boodschappen"}, "purpose": "test",
                                 "expects": "feedback", "urgent": False, "next_try_at": None, "sids": []}),
            "bridge": Call(call_sid="pending-" + "2" * 32, direction="outbound", purpose=BRIDGE,
                           resident_id=resident.id, status="dialling", twilio_status="pending"),
        }
        session.add_all(rows.values())
        session.flush()
        ids = {name: row.id for name, row in rows.items()}
    return notify_app, TwilioWebhooks(notify_app.test_client(), base=PUBLIC_BASE), ids


# The call's state sealed into a step URL (ivr_flows/tokens.py) is encrypted afresh, and only saves a read:
# an answer with it and one without lead to the same step.
SEALED_STATE = re.compile(r"&amp;c=[^\"<&]*")


def _answer(response: Any) -> tuple[int, str]:
    return response.status_code, SEALED_STATE.sub("", response.get_data(as_text=True))


def _twice(twilio: TwilioWebhooks, path: str, params: dict[str, str], *, same_answer: bool = True) -> Any:
    """Post as Twilio, then deliver the same request again: the same answer, no 5xx, TwiML where 200."""
    first = twilio.post(path, params)
    assert first.status_code < 500, (path, params, first.data)
    assert first.status_code != 403, "a signed request must get past the signature"
    if first.status_code == 200:
        assert first.mimetype == "text/xml", (path, first.mimetype)
        parse_twiml(first.data)
    again = twilio.post(path, params)
    if same_answer or first.status_code != 200:
        assert _answer(again) == _answer(first), (path, params)
    else:
        assert again.status_code == 200
        parse_twiml(again.data)
    return first


def _stored(app: Flask, message_sid: str) -> int:
    with session_of(app) as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.twilio_sid == message_sid))


@FUZZ
@given(params=SMS_FORM)
def test_incoming_sms(fuzzed, params):
    app, twilio, _ids = fuzzed
    response = _twice(twilio, "/twilio/sms", params)
    if response.status_code == 200:
        assert _stored(app, params["MessageSid"]) == 1


@FUZZ
@given(params=SMS_STATUS_FORM)
def test_sms_status_callback(fuzzed, params):
    _twice(fuzzed[1], "/twilio/sms/status", params)


@FUZZ
@given(params=CALL_FORM)
def test_incoming_call(fuzzed, params):
    _twice(fuzzed[1], "/twilio/voice", params)


@FUZZ
@given(params=CALL_FORM)
def test_voice_status_callback(fuzzed, params):
    _twice(fuzzed[1], "/twilio/voice/status", params)


@FUZZ
@given(params=CALL_FORM, query=STEP_QUERY)
def test_voice_step(fuzzed, params, query):
    # That a repeated step answers what its first delivery answered is the phone menu's own property, held
    # by random walks with repeats over real calls; random steps of random calls are checked for the rest.
    _twice(fuzzed[1], "/twilio/voice/step?" + urlencode(query), params, same_answer=False)


@FUZZ
@given(params=CALL_FORM, target=st.sampled_from(["notify", "bridge", "unknown", "huge"]),
       action=st.sampled_from(["notify/{id}", "notify/{id}/key", "notify/{id}/status", "bridge/{id}/connect",
                               "bridge/{id}/dialled", "bridge/{id}/status"]))
def test_notify_and_bridge_calls(fuzzed, params, target, action):
    _app, twilio, ids = fuzzed
    call_id = {**ids, "unknown": 10**6, "huge": 2**63}[target]
    _twice(twilio, "/twilio/" + action.format(id=call_id), params)


# --- /api/v1 ---------------------------------------------------------------------------------------

API = {"Authorization": f"Bearer {API_TOKEN}"}
PATH_PART = st.one_of(IDS.map(str), TEXT.filter(bool))


@FUZZ
@given(path=st.sampled_from(["/api/v1/listings/", "/api/v1/matches/", "/recordings/", "/api/v1/residents/"]),
       part=PATH_PART)
def test_api_ids(fuzzed, path, part):
    response = fuzzed[0].test_client().get(path + quote(part, safe=""), headers=API)
    assert response.status_code < 500, (path, part, response.data)


@FUZZ
@given(path=st.sampled_from(["/api/v1/listings", "/api/v1/callbacks", "/api/v1/matches"]),
       query=st.dictionaries(st.sampled_from(["district", "kind", "status", "limit", "page"]), TEXT, max_size=3))
def test_api_queries(fuzzed, path, query):
    response = fuzzed[0].test_client().get(path, query_string=query, headers=API)
    assert response.status_code < 500, (path, query, response.data)


JSON_VALUE = st.one_of(IDS, st.integers(), st.floats(), st.booleans(), st.none(), TEXT, st.lists(IDS, max_size=2))


@FUZZ
@given(payload=st.one_of(
    st.fixed_dictionaries({}, optional={"request_id": JSON_VALUE, "offer_id": JSON_VALUE, "note": JSON_VALUE}),
    JSON_VALUE,
))
def test_api_match_proposals(fuzzed, payload):
    body = json.dumps(payload, allow_nan=True)
    response = fuzzed[0].test_client().post("/api/v1/matches", data=body, content_type="application/json",
                                            headers=API)
    assert response.status_code < 500, (payload, response.data)
