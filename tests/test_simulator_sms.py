"""The demo's SMS simulator drives the real webhook over HTTP, signed like Twilio."""

from __future__ import annotations

import json
import urllib.request

from tests.conftest import DEMO_API_TOKEN


def call(base: str, path: str, payload: dict | None = None, token: str | None = None):  # type: ignore[no-untyped-def]
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_texting_in_the_simulator_shows_the_reply_and_fills_the_queue(demo, fake_twilio):
    _app, base = demo
    sent = call(base, "/simulator/sms", {"from": "0612345678", "body": "VRAAG boodschappen 2034"})
    assert sent["status"] == 200  # the real webhook accepted the signed request

    conversation = call(base, "/simulator/messages?phone=0612345678")["messages"]
    assert [(m["direction"], m["status"]) for m in conversation] == [("inbound", "handled"), ("outbound", "shown")]
    assert conversation[1]["body"].startswith("Dank u! Uw vraag (boodschappen)")
    assert conversation[1]["segments"] == 1
    assert fake_twilio.requests == []  # the demo shows; it never sends

    listings = call(base, "/api/v1/listings", token=DEMO_API_TOKEN)["listings"]
    assert [(x["category"], x["postcode"], x["phone"]) for x in listings] == [("groceries", "2034", "+31612345678")]
    callbacks = call(base, "/api/v1/callbacks", token=DEMO_API_TOKEN)["callbacks"]
    assert [c["reason"] for c in callbacks] == ["new_listing"]


def test_simulator_page_serves_its_own_assets(demo):
    _app, base = demo
    with urllib.request.urlopen(base + "/simulator/", timeout=10) as response:
        page = response.read().decode()
    assert "Telefoon-simulator" in page and "https://" not in page.split("<main", 1)[0]
    with urllib.request.urlopen(base + "/static/simulator.js", timeout=10) as response:
        assert b"buurtlijnSimulator" in response.read()
