"""The demo's SMS simulator drives the real webhook over HTTP, signed like Twilio."""

from __future__ import annotations

import json
import urllib.request

import pytest

from gateway import create_app
from gateway.database import get_database
from tests.live import free_port, serving


@pytest.fixture
def demo(tmp_path, fake_twilio):  # type: ignore[no-untyped-def]
    port = free_port()
    app = create_app({
        "BUURTLIJN_DEMO": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_API_BASE_URL": fake_twilio.base_url,  # the demo must not use it
        "BUURTLIJN_API_TOKEN": "demo-api-token",
        "BUURTLIJN_QUIET_HOURS": "",
    })
    from models.migrate import upgrade

    upgrade(get_database(app).engine)
    with serving(app, port) as base:
        yield base
    get_database(app).dispose()


def call(base: str, path: str, payload: dict | None = None, token: str | None = None):  # type: ignore[no-untyped-def]
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_texting_in_the_simulator_shows_the_reply_and_fills_the_queue(demo, fake_twilio):
    sent = call(demo, "/simulator/sms", {"from": "0612345678", "body": "VRAAG boodschappen 2034"})
    assert sent["status"] == 200  # the real webhook accepted the signed request

    conversation = call(demo, "/simulator/messages?phone=0612345678")["messages"]
    assert [(m["direction"], m["status"]) for m in conversation] == [("inbound", "handled"), ("outbound", "shown")]
    assert conversation[1]["body"].startswith("Dank u! Uw vraag (boodschappen)")
    assert conversation[1]["segments"] == 1
    assert fake_twilio.requests == []  # the demo shows; it never sends

    listings = call(demo, "/api/v1/listings", token="demo-api-token")["listings"]
    assert [(x["category"], x["postcode"], x["phone"]) for x in listings] == [("groceries", "2034", "+31612345678")]
    callbacks = call(demo, "/api/v1/callbacks", token="demo-api-token")["callbacks"]
    assert [c["reason"] for c in callbacks] == ["new_listing"]


def test_simulator_page_serves_its_own_assets(demo):
    with urllib.request.urlopen(demo + "/simulator/", timeout=10) as response:
        page = response.read().decode()
    assert "Telefoon-simulator" in page and "https://" not in page.split("<main", 1)[0]
    with urllib.request.urlopen(demo + "/static/simulator.js", timeout=10) as response:
        assert b"buurtlijnSimulator" in response.read()
