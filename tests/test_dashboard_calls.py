"""Calling back: the gateway rings the broker's phone, then bridges to the resident."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from gateway import create_app
from gateway.database import get_database
from ivr_flows import settings_from_config
from models import AuditEvent, Broker, Call
from models.phones import readable
from tests.conftest import ACCOUNT_SID, GATEWAY_NUMBER, PUBLIC_BASE, TwilioWebhooks, app_config, parse_twiml
from tests.dashboard_support import MILA_PHONE, logged_in, make_brokers, post, seed_listing
from workers.callback_jobs import place

RESIDENT = "+31612345678"


def claimed(app, client) -> int:  # type: ignore[no-untyped-def]
    _, callback_id = seed_listing(app, RESIDENT)
    post(client, f"/dashboard/items/{callback_id}/claim")
    return callback_id


def call_params(call: Call, **extra: str) -> dict[str, str]:
    return {"CallSid": call.call_sid, "AccountSid": ACCOUNT_SID, "From": GATEWAY_NUMBER, "To": MILA_PHONE,
            "Direction": "outbound-api", "ApiVersion": "2010-04-01", **extra}


def test_one_click_calls_the_brokers_phone_through_twilio(notify_app, mila, session, fake_twilio):
    callback_id = claimed(notify_app, mila)
    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page)[1]
    response = post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": nonce})
    assert response.location == f"/dashboard/items/{callback_id}#call"

    [placed] = fake_twilio.calls()
    assert placed["To"] == MILA_PHONE and placed["From"] == GATEWAY_NUMBER
    call = session.scalars(select(Call)).one()
    assert placed["Url"] == f"{PUBLIC_BASE}/twilio/bridge/{call.id}/connect"
    assert placed["StatusCallback"] == f"{PUBLIC_BASE}/twilio/bridge/{call.id}/status"
    assert placed["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (call.purpose, call.callback_id, call.call_sid, call.status) == (
        "broker_bridge", callback_id, placed["sid"], "in_progress")
    assert call.broker_id == session.scalars(select(Broker.id).where(Broker.email == "mila@buuv.example")).one()

    # A double click (the same form sent twice) places one call.
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": nonce})
    assert len(fake_twilio.calls()) == 1
    # Running the job again dials nobody twice.
    place(get_database(notify_app), notify_app.config, call.id)
    assert len(fake_twilio.calls()) == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "call.bridge_request")).first()
    assert event.detail["callback_id"] == callback_id


def test_answering_broker_is_bridged_with_the_gateway_number_as_caller_id(notify_app, mila, session, fake_twilio):
    callback_id = claimed(notify_app, mila)
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "a" * 16})
    call = session.scalars(select(Call)).one()
    twilio = TwilioWebhooks(notify_app.test_client(), base=PUBLIC_BASE)

    response = twilio.post(f"/twilio/bridge/{call.id}/connect", call_params(call, CallStatus="in-progress"))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = parse_twiml(response.data)
    say, dial = list(root)
    assert say.tag == "Say" and say.get("language") == "nl-NL" and "verbindt u nu" in "".join(say.itertext())
    # Twilio's default voice has no Dutch: the line is spoken by the voice configured for Dutch.
    assert say.get("voice") == settings_from_config(notify_app.config).voice("nl").voice == "Polly.Lotte"
    assert dial.tag == "Dial" and dial.get("callerId") == GATEWAY_NUMBER
    assert dial.get("action") == f"/twilio/bridge/{call.id}/dialled"
    assert [n.text for n in dial.findall("./Number")] == [RESIDENT]
    assert MILA_PHONE not in response.get_data(as_text=True)

    response = twilio.post(f"/twilio/bridge/{call.id}/dialled", call_params(call, DialCallStatus="no-answer"))
    assert [el.tag for el in parse_twiml(response.data)] == ["Say", "Hangup"]
    progress = mila.get(f"/dashboard/calls/{call.id}.json").get_json()
    assert progress["state"] == "in-progress" and "De bewoner nam niet op." in progress["label"]


def test_call_progress_follows_twilios_status_callbacks_forward_only(notify_app, mila, session):
    callback_id = claimed(notify_app, mila)
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "b" * 16})
    call = session.scalars(select(Call)).one()
    twilio = TwilioWebhooks(notify_app.test_client(), base=PUBLIC_BASE)
    url = f"/twilio/bridge/{call.id}/status"

    assert twilio.post(url, call_params(call, CallStatus="ringing")).status_code == 200
    progress = mila.get(f"/dashboard/calls/{call.id}.json").get_json()
    assert (progress["state"], progress["final"]) == ("ringing", False)
    assert progress["label"] == "Uw telefoon gaat over. Neem op."

    twilio.post(url, call_params(call, CallStatus="completed", CallDuration="95"))
    twilio.post(url, call_params(call, CallStatus="ringing"))  # late and out of order: ignored
    progress = mila.get(f"/dashboard/calls/{call.id}.json").get_json()
    assert (progress["state"], progress["final"]) == ("completed", True)
    session.expire_all()
    assert session.get(Call, call.id).status == "finished"


def test_bridge_webhooks_refuse_unsigned_requests(notify_app, mila, session):
    callback_id = claimed(notify_app, mila)
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "c" * 16})
    call = session.scalars(select(Call)).one()
    twilio = TwilioWebhooks(notify_app.test_client(), base=PUBLIC_BASE)
    response = twilio.post(f"/twilio/bridge/{call.id}/connect", call_params(call), signature="forged")
    assert response.status_code == 403
    # A signed request for a call that is no bridge gets a polite goodbye, not a 500.
    response = twilio.post("/twilio/bridge/9999/connect", call_params(call))
    assert [el.tag for el in parse_twiml(response.data)] == ["Say", "Hangup"]


def test_twilio_refusing_the_call_shows_on_the_page(notify_app, mila, session, fake_twilio):
    callback_id = claimed(notify_app, mila)
    fake_twilio.fail_next("calls", 400, 21211)
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "d" * 16})
    call = session.scalars(select(Call)).one()
    assert (call.status, call.error_code) == ("failed", 21211)
    progress = mila.get(f"/dashboard/calls/{call.id}.json").get_json()
    assert (progress["state"], progress["final"]) == ("failed", True)
    assert "Bellen lukte niet" in mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)


def test_only_the_holder_with_a_phone_can_call(notify_app, mila, session, fake_twilio):
    _, callback_id = seed_listing(notify_app, RESIDENT)
    response = post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "e" * 16}, follow_redirects=True)
    assert "Pak het item eerst op voordat u belt." in response.get_data(as_text=True)
    post(mila, f"/dashboard/items/{callback_id}/claim")
    session.execute(update(Broker).where(Broker.email == "mila@buuv.example").values(phone=None))
    session.commit()
    response = post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "e" * 16}, follow_redirects=True)
    assert "Er staat geen telefoonnummer bij uw account." in response.get_data(as_text=True)
    assert fake_twilio.calls() == [] and session.scalars(select(Call)).all() == []


def test_call_progress_is_private_to_the_broker_who_called(notify_app, mila, session):
    callback_id = claimed(notify_app, mila)
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "f" * 16})
    call = session.scalars(select(Call)).one()
    bram = logged_in(notify_app, "bram@buuv.example")
    assert bram.get(f"/dashboard/calls/{call.id}.json").status_code == 404


def test_demo_shows_the_outbound_call_instead_of_placing_it(database_url, fake_twilio, tmp_path):
    app = create_app(app_config(database_url, fake_twilio, BUURTLIJN_DEMO=True, TWILIO_ACCOUNT_SID=None,
                                TWILIO_AUTH_TOKEN=None))
    assert app.config["SENDS_FOR_REAL"] is False
    make_brokers(app)
    client = logged_in(app, "mila@buuv.example")
    callback_id = claimed(app, client)
    response = post(client, f"/dashboard/items/{callback_id}/call", {"nonce": "0" * 16}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"Demo: de gateway zou nu uw telefoon {readable(MILA_PHONE)} bellen en u dan doorverbinden met {readable(RESIDENT)}" in page
    assert readable(RESIDENT) == "06 1234 5678"
    assert fake_twilio.calls() == []
    session = get_database(app).session()
    call = session.scalars(select(Call)).one()
    progress = client.get(f"/dashboard/calls/{call.id}.json").get_json()
    assert progress["demo"] is True and progress["label"].startswith("Demo:")
    session.close()
    get_database(app).dispose()
