"""What comes from outside is checked where it comes in: numbers the database cannot hold, control
characters, malformed or missing SIDs, status callbacks out of order. A 404 or 400, never a 500; an SMS
never lost; a call's status never moved back. On SQLite and PostgreSQL (there through the voice fast path).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from gateway.twilio_sim import new_sid
from ivr_flows import CallParams
from models import Call, Message
from models.base import utcnow
from models.limits import MalformedRequest
from tests.conftest import API_TOKEN, GATEWAY_NUMBER, TwilioWebhooks, session_of

API = {"Authorization": f"Bearer {API_TOKEN}"}
TOO_BIG = str(2**63)  # one past the largest BIGINT
CALLER = "+31612345678"


def _count(app: Flask, model: Any) -> int:
    with session_of(app) as session:
        return session.scalar(select(func.count()).select_from(model))


# --- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/api/v1/listings/{TOO_BIG}", f"/api/v1/matches/{TOO_BIG}",
                                  f"/recordings/{TOO_BIG}", f"/api/v1/listings/{'9' * 40}"])
def test_an_id_no_row_can_have_is_not_found(client, path):
    response = client.get(path, headers=API)
    assert response.status_code == 404


def test_a_signed_post_to_a_call_no_row_can_have_is_not_found(app):
    response = TwilioWebhooks(app.test_client()).post(f"/twilio/notify/{TOO_BIG}/status",
                                                        {"CallSid": new_sid("CA"), "CallStatus": "completed"})
    assert response.status_code == 404


@pytest.mark.parametrize("field", ["request_id", "offer_id"])
@pytest.mark.parametrize("value", [2**63, 2**64 + 1, 10**40])
def test_a_match_proposal_with_an_id_no_row_can_have_is_refused(client, field, value):
    payload = {"request_id": 1, "offer_id": 2, field: value}
    response = client.post("/api/v1/matches", json=payload, headers=API)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


@pytest.mark.parametrize("district", ["\x00", "Schalkwijk\x00", "Noord\x1b[2J"])
def test_a_filter_with_a_control_character_is_refused(client, district):
    response = client.get("/api/v1/listings", query_string={"district": district}, headers=API)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_an_error_code_no_integer_column_holds_is_no_error_code(app):
    sid = new_sid("SM")
    with session_of(app) as session:
        session.add(Message(direction="outbound", twilio_sid=sid, phone=CALLER, body="Hallo", status="sent",
                            sent_at=utcnow()))
        session.commit()
    twilio = TwilioWebhooks(app.test_client())
    assert twilio.sms_status(sid, "undelivered", error_code=str(2**31)).status_code == 200
    with session_of(app) as session:
        message = session.scalars(select(Message).where(Message.twilio_sid == sid)).one()
        assert (message.status, message.error_code) == ("undelivered", None)


@pytest.mark.parametrize("code", [str(2**31), str(2**64), "\u00b2", "1\x00"])
def test_a_call_callbacks_error_code_is_read_only_within_range(code):
    assert CallParams.read({"CallSid": new_sid("CA"), "ErrorCode": code}).error_code is None
    assert CallParams.read({"CallSid": new_sid("CA"), "ErrorCode": str(2**31 - 1)}).error_code == 2**31 - 1


# --- SMS: control characters and SIDs --------------------------------------------------------------


def test_nul_bytes_in_a_signed_sms_are_left_out_and_the_message_kept(app):
    twilio = TwilioWebhooks(app.test_client())
    sid = new_sid("SM")
    response = twilio.sms(CALLER + "\x00", "HULP\x00 bij\tboodschappen\x07", message_sid=sid, OptOutType="\x00")
    assert response.status_code == 200
    with session_of(app) as session:
        message = session.scalars(select(Message).where(Message.twilio_sid == sid)).one()
        assert (message.raw_from, message.body, message.opt_out_type) == (CALLER, "HULP bij\tboodschappen\x07", None)


def test_nul_bytes_in_a_signed_sms_are_left_out_on_the_queued_path_too(queued_app):
    """On PostgreSQL with RQ the webhook writes in batches (models/inbox.py InboundBatches): the same row."""
    twilio = TwilioWebhooks(queued_app.test_client())
    sid = new_sid("SM")
    assert twilio.sms(CALLER + "\x00", "HULP\x00", message_sid=sid, OptOutType="ST\x00OP").status_code == 200
    assert twilio.sms(CALLER, "HULP", message_sid=sid + "0").status_code == 400  # cut, it would be a replay
    with session_of(queued_app) as session:
        message = session.scalars(select(Message).where(Message.twilio_sid == sid)).one()
        assert (message.raw_from, message.body, message.opt_out_type) == (CALLER, "HULP", "STOP")
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def _without_sids(params: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in params.items() if not name.endswith("Sid") or name == "AccountSid"}


def test_a_signed_sms_without_a_message_sid_is_refused_and_not_stored(app):
    twilio = TwilioWebhooks(app.test_client())
    from gateway.twilio_sim import sms_params
    from tests.conftest import ACCOUNT_SID

    params = _without_sids(sms_params(account_sid=ACCOUNT_SID, from_=CALLER, to=GATEWAY_NUMBER, body="HULP"))
    for _delivery in range(3):  # a replay changes nothing either
        assert twilio.post("/twilio/sms", params).status_code == 400
    assert _count(app, Message) == 0


@pytest.mark.parametrize("sid", [
    "SM" + "a" * 32 + "b" * 40,  # longer than the column: cut, it would collide with the next
    "SM" + "A" * 32, "sm" + "a" * 32, "SM" + "a" * 31, "SM" + "a" * 31 + "\x00", "",
])
def test_a_signed_sms_with_a_malformed_sid_is_refused(app, sid):
    twilio = TwilioWebhooks(app.test_client())
    assert twilio.sms(CALLER, "HULP", message_sid=sid or None, MessageSid=sid, SmsSid=sid,
                      SmsMessageSid=sid).status_code == 400
    assert twilio.sms_status(sid or "x", "delivered").status_code == 400
    assert _count(app, Message) == 0


def test_two_sids_alike_in_their_first_64_characters_are_both_refused_not_merged(app):
    twilio = TwilioWebhooks(app.test_client())
    first, second = ("SM" + "c" * 32 + tail for tail in ("x" * 40, "y" * 40))
    assert [twilio.sms(CALLER, body, message_sid=sid).status_code for sid, body in
            ((first, "HULP"), (second, "VRAAG"))] == [400, 400]
    assert _count(app, Message) == 0


# --- calls: malformed SIDs and the order of status callbacks ---------------------------------------


@pytest.mark.parametrize("sid", ["CA1", "CA" + "f" * 32 + "0", "CA" + "F" * 32, "CA" + "f" * 31 + "\x00"])
def test_a_voice_webhook_with_a_malformed_call_sid_is_refused(app, sid):
    twilio = TwilioWebhooks(app.test_client())
    response = twilio.post("/twilio/voice", {"CallSid": sid, "From": CALLER, "To": GATEWAY_NUMBER,
                                             "CallStatus": "ringing"})
    assert response.status_code == 400
    assert _count(app, Call) == 0


def test_malformed_sids_are_refused_when_read():
    with pytest.raises(MalformedRequest):
        CallParams.read({"CallSid": "CA" + "a" * 32, "RecordingSid": "RE1"})


def _twilio_status(app: Flask, sid: str) -> str | None:
    with session_of(app) as session:
        return session.scalars(select(Call.twilio_status).where(Call.call_sid == sid)).one()


def test_a_calls_status_only_moves_forward_on_the_orm_path(database_url, fake_twilio):
    _status_moves_only_forward(database_url, fake_twilio, fast_path=False)


def test_a_calls_status_only_moves_forward_on_the_fast_path(pg_database_url, fake_twilio):
    """The fast path exists on PostgreSQL only: this case runs there and nowhere else."""
    _status_moves_only_forward(pg_database_url, fake_twilio, fast_path=True)


def _status_moves_only_forward(database_url, fake_twilio, *, fast_path):
    from tests.conftest import app_config, running_app

    with running_app(app_config(database_url, fake_twilio, VOICE_FAST_PATH=fast_path)) as app:
        twilio = TwilioWebhooks(app.test_client())
        sid = new_sid("CA")
        call = {"CallSid": sid, "From": CALLER, "To": GATEWAY_NUMBER}

        def status(value: str) -> None:
            assert twilio.post("/twilio/voice/status", {**call, "CallStatus": value}).status_code == 200

        assert twilio.post("/twilio/voice", {**call, "CallStatus": "ringing"}).status_code == 200
        status("in-progress")
        status("ringing")  # late: the call was answered before
        assert _twilio_status(app, sid) == "in-progress"
        status("completed")
        for late in ("ringing", "in-progress", "queued"):
            status(late)
        assert _twilio_status(app, sid) == "completed"
        status("completed")  # Twilio's retry of the same callback
        assert _twilio_status(app, sid) == "completed"
