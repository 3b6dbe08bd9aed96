"""The demo: a broker proposes, the simulator shows the helper's SMS or rings the landline helper."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from gateway import create_app
from gateway.database import get_database
from models import Match, Message
from tests.delivery_support import LANDLINE_HELPER, REQUESTER, add_listing, post_match
from tests.live import free_port


@pytest.fixture
def demo(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """`buurtlijn demo` as it runs: SQLite, jobs in-process, nothing sent, served over HTTP."""
    from models.migrate import upgrade

    port = free_port()
    for key in ("REDIS_URL", "DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({"BUURTLIJN_DEMO": True, "BUURTLIJN_API_TOKEN": "test-api-token", "BUURTLIJN_QUIET_HOURS": "",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                      "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
    upgrade(get_database(app).engine)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["DEMO_HOST"] = f"127.0.0.1:{port}"
    yield app
    server.shutdown()
    get_database(app).dispose()


class _Browser:
    """The simulator page's own requests, addressed to the server the demo runs as."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.client = app.test_client()
        self.base = f"http://{app.config['DEMO_HOST']}"

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.client.get(path, base_url=self.base)

    def post(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.post(path, base_url=self.base, **kwargs)


_browser = _Browser


def test_demo_sms_helper_answers_ja_in_the_simulator(demo):
    client = _browser(demo)
    request_id = add_listing(demo, REQUESTER, "request")
    offer_id = add_listing(demo, "0612345001", "offer")
    assert post_match(client, request_id, offer_id).status_code == 201

    [proposal] = client.get("/simulator/messages?phone=0612345001").get_json()["messages"]
    assert proposal["status"] == "shown" and proposal["body"].endswith("Antwoord JA of NEE.")
    page = client.get("/simulator/").get_data(as_text=True)
    assert "Buurtlijn belt u" in page and "simulator_notify.js" in page

    sent = client.post("/simulator/sms", json={"from": "0612345001", "body": "JA"}).get_json()
    assert sent["status"] == 200
    helper = [m["body"] for m in client.get("/simulator/messages?phone=0612345001").get_json()["messages"]]
    requester = [m["body"] for m in client.get(f"/simulator/messages?phone={REQUESTER}").get_json()["messages"]]
    assert helper[-1].startswith("Dank u wel! Iemand van BUUV belt u")
    assert requester[-1].startswith("Goed nieuws!")


def test_demo_landline_helper_answers_by_keypress_in_the_simulator(demo):
    client = _browser(demo)
    request_id = add_listing(demo, REQUESTER, "request")
    offer_id = add_listing(demo, LANDLINE_HELPER, "offer")
    match_id = post_match(client, request_id, offer_id).get_json()["id"]

    [ringing] = client.get("/simulator/calls?phone=0235551234").get_json()["calls"]
    assert (ringing["status"], ringing["expects"]) == ("shown", "proposal")
    heard = client.post(f"/simulator/calls/{ringing['id']}/answer").get_json()
    assert heard["status"] == 200 and "Druk 1 voor ja" in heard["said"][0] and heard["gather"]
    said = client.post(f"/simulator/calls/{ringing['id']}/press", json={"digits": "1"}).get_json()
    assert said["hangup"] and said["said"][0].startswith("Dank u wel!")
    assert client.post(f"/simulator/calls/{ringing['id']}/hangup", json={"answered": True}).get_json()["status"] == 200

    with get_database(demo).transaction() as session:
        assert session.get(Match, match_id).status == "accepted"
        told = session.scalars(select(Message).where(Message.phone == REQUESTER)).all()
        assert told[-1].body.startswith("Goed nieuws!") and told[-1].status == "shown"
    assert client.get("/simulator/calls?phone=0235551234").get_json()["calls"] == []
