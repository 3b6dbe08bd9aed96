"""The demo's call simulator drives the real voice webhooks over HTTP, signed like Twilio."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.database import get_database
from models import Call, Callback, Listing
from tests.conftest import DEMO_API_TOKEN
from workers.voice_jobs import delete_recording_now

def post(base: str, path: str, payload: dict) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get(base: str, path: str, token: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def waiting(reply: dict) -> dict:  # type: ignore[type-arg]
    return next(verb for verb in reply["verbs"] if verb["verb"] in ("gather", "record", "dial"))


def said(reply: dict) -> str:  # type: ignore[type-arg]
    return " ".join(item["text"] for verb in reply["verbs"] for item in verb.get("say", []))


def test_the_simulator_page_has_the_call_panel(demo):
    _app, base = demo
    status, _type, page = get(base, "/simulator/")
    html = page.decode()
    assert status == 200
    assert 'id="call-start"' in html and 'class="keypad"' in html
    assert "/static/simulator_call.js" in html and "/static/simulator_call.css" in html
    assert "<script>" not in html and "style=" not in html  # CSP: 'self' only
    for asset in ("/static/simulator_call.js", "/static/simulator_call.css"):
        assert get(base, asset)[0] == 200


def test_a_call_in_the_simulator_makes_a_request_with_its_recording(demo):
    app, base = demo
    reply = post(base, "/simulator/call/start", {"from": "0612345678"})
    assert reply["from"] == "+31612345678" and reply["call_sid"].startswith("CA")
    assert "Welkom bij Buurtlijn" in said(reply)
    assert [(s["language"], s["voice"]) for s in waiting(reply)["say"]][0] == ("nl", "Polly.Lotte")
    caller = {"call_sid": reply["call_sid"], "from": reply["from"]}
    for digits in ("1", "1", "2034", "1", "1"):
        reply = post(base, "/simulator/call/answer", {**caller, "url": waiting(reply)["url"], "digits": digits})
    assert waiting(reply)["verb"] == "record"
    reply = post(base, "/simulator/call/record", {**caller, "url": waiting(reply)["url"], "seconds": 3, "end": "#"})
    assert "Dank u wel!" in said(reply) and reply["verbs"][-1]["verb"] == "hangup"
    assert post(base, "/simulator/call/hangup", {**caller, "duration": 30})["status"] == 200

    status, _type, body = get(base, "/api/v1/listings", DEMO_API_TOKEN)
    [listing] = json.loads(body)["listings"]
    assert (listing["category"], listing["postcode"], listing["has_recording"]) == ("groceries", "2034", True)
    status, content_type, audio = get(base, f"/recordings/{listing['id']}", DEMO_API_TOKEN)
    assert (status, content_type) == (200, "audio/x-wav")
    stored = next((Path(app.instance_path) / "recordings").glob("RE*.wav"))
    assert audio == stored.read_bytes() and len(audio) > 3 * 8000 * 2  # three seconds, 8 kHz, 16 bit
    assert get(base, f"/recordings/{listing['id']}")[0] == 401

    # Retention in the demo removes the local file.
    assert delete_recording_now(app, listing["id"]) is True
    assert not stored.exists()
    assert get(base, f"/recordings/{listing['id']}", DEMO_API_TOKEN)[0] == 404


def test_hanging_up_in_the_simulator_sends_the_status_callback(demo):
    app, base = demo
    reply = post(base, "/simulator/call/start", {"from": "0612345678", "withheld": True})
    assert reply["from"] == "anonymous" and "Wij zien uw nummer niet" in said(reply)
    caller = {"call_sid": reply["call_sid"], "from": reply["from"]}
    reply = post(base, "/simulator/call/answer", {**caller, "url": waiting(reply)["url"], "digits": "0612345678",
                                                  "finished_on_key": "#"})
    assert "nul, zes, één" in said(reply)
    assert post(base, "/simulator/call/hangup", {**caller, "duration": 12})["ended"] is True
    session = get_database(app).session()
    assert session.scalars(select(Call.status)).one() == "abandoned"
    assert [c.reason for c in session.scalars(select(Callback))] == ["abandoned_call"]
    session.close()


def test_the_simulator_says_when_a_number_does_not_exist(demo):
    _app, base = demo
    reply = post(base, "/simulator/call/start", {"from": "0677778888"})  # no such Dutch number
    assert reply["unknown_number"] is True and "Wij zien uw nummer niet" in said(reply)
    assert post(base, "/simulator/call/start", {"from": "0612345678"})["unknown_number"] is False


def test_hanging_up_while_recording_in_the_simulator_keeps_the_message(demo):
    app, base = demo
    reply = post(base, "/simulator/call/start", {"from": "0612345678"})
    caller = {"call_sid": reply["call_sid"], "from": reply["from"]}
    for digits in ("2", "4", "2011", "1", "2"):
        reply = post(base, "/simulator/call/answer", {**caller, "url": waiting(reply)["url"], "digits": digits})
    reply = post(base, "/simulator/call/record", {**caller, "url": waiting(reply)["url"], "seconds": 2,
                                                  "end": "hangup"})
    assert reply["ended"] is True
    session = get_database(app).session()
    listing = session.scalars(select(Listing)).one()
    assert listing.has_recording and listing.kind == "offer"
    assert [c.reason for c in session.scalars(select(Callback))] == ["abandoned_call"]
    session.close()


@pytest.mark.parametrize("url", ["https://example.org/steal", "/twilio/sms", "/simulator/call/start", ""])
def test_the_simulator_only_posts_to_our_voice_steps(demo, url):
    _app, base = demo
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(base, "/simulator/call/answer", {"call_sid": "CA" + "0" * 32, "from": "+31612345678", "url": url,
                                              "digits": "1"})
    assert refused.value.code == 400
