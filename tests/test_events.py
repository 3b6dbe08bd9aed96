"""Events for the online marketplace: written with the change, delivered signed, retried, never lost.

Every delivery here goes over real HTTP to scripts/event_receiver.py, which
checks each signature with the Standard Webhooks reference library.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from standardwebhooks import Webhook

from gateway.config import ConfigError
from gateway.database import get_database
from models import Event, Listing, Match
from models.events import record_resident_erased
from models.marketplace import record_listing
from models.matching import accept_match, confirm_match
from models.phones import parse_phone
from models.residents import resident_for
from models.workdays import local_zone
from tests.conftest import (
    DeliveryWorker,
    TwilioWebhooks,
    api_get,
    app_config,
    delivery_config,
    running_app,
    running_queued_app,
    wait_until,
)
from tests.dashboard_support import logged_in, make_brokers
from tests.delivery_support import HELPER, REQUESTER, add_listing, post_match
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(b"buurtlijn-test-webhook-secret-32").decode()
WEBHOOK_SETTINGS = ("BUURTLIJN_WEBHOOK_URL", "BUURTLIJN_WEBHOOK_SECRET", "BUURTLIJN_WEBHOOK_BACKOFF_SECONDS",
                    "BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS")


def _receiver_module() -> Any:
    spec = importlib.util.spec_from_file_location("event_receiver", ROOT / "scripts" / "event_receiver.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["event_receiver"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


EventReceiver = _receiver_module().EventReceiver


@pytest.fixture
def receiver() -> Iterator[Any]:
    with EventReceiver(SECRET) as running:
        yield running


def events_config(url: str, **overrides: Any) -> dict[str, Any]:
    return {"BUURTLIJN_WEBHOOK_URL": url, "BUURTLIJN_WEBHOOK_SECRET": SECRET,
            "BUURTLIJN_WEBHOOK_BACKOFF_SECONDS": "0.2", "BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS": 5, **overrides}


@pytest.fixture
def events_app(database_url: str, fake_twilio: Any, receiver: Any) -> Iterator[Flask]:
    """Jobs in-process: a commit's events are delivered as it commits."""
    with running_app(app_config(database_url, fake_twilio, **events_config(receiver.url))) as app:
        yield app


@contextmanager
def tx(app: Flask) -> Iterator[Any]:
    """A transaction whose deferred jobs run in-process at its commit, as in the demo."""
    with app.app_context(), get_database(app).transaction() as session:
        yield session


def rows(app: Flask) -> list[Event]:
    with get_database(app).transaction() as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def new_listing(app: Flask, phone: str, kind: str, **fields: Any) -> int:
    with tx(app) as session:
        resident = resident_for(session, parse_phone(phone), language="nl")
        resident.postcode = "2034"
        session.flush()
        return record_listing(session, resident, kind=kind, channel="sms", category="groceries", **fields).id


# --- written in the transaction of the change ------------------------------------------------------------


def test_a_rolled_back_change_leaves_no_event_and_a_committed_one_exactly_one(events_app, receiver):
    session = get_database(events_app).session()
    resident = resident_for(session, parse_phone(REQUESTER), language="nl")
    listing = record_listing(session, resident, kind="request", channel="sms", category="groceries")
    session.flush()
    assert listing.id is not None
    session.rollback()
    session.close()
    assert rows(events_app) == []

    listing_id = new_listing(events_app, REQUESTER, "request")
    [event] = rows(events_app)
    assert (event.type, event.order_key) == ("listing.created", f"listing:{listing_id}")
    # data is the API's Listing, the one definition of its shape
    assert event.data == api_get(events_app.test_client(), f"/api/v1/listings/{listing_id}")
    assert event.status == "delivered"
    assert [e["type"] for e in receiver.events()] == ["listing.created"]


def test_a_whole_match_is_told_in_order_with_the_apis_shapes(events_app, receiver):
    request_id = new_listing(events_app, REQUESTER, "request")
    offer_id = new_listing(events_app, HELPER, "offer")
    client = events_app.test_client()
    response = post_match(client, request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    match_id = response.get_json()["id"]
    with tx(events_app) as session:
        from models.matching import Actor

        accept_match(session, session.get(Match, match_id), Actor("resident", channel="sms"))
    with tx(events_app) as session:
        confirm_match(session, match_id, zone=local_zone(events_app.config), meeting_at=None)

    got = [(e["type"], e["data"]["id"], e["data"]["status"]) for e in receiver.events()]
    # In order per listing (a match goes with its request); different listings' events may pass each other.
    request_line = [("listing.created", request_id, "open"), ("match.created", match_id, "proposed"),
                    ("match.updated", match_id, "accepted"), ("match.updated", match_id, "confirmed"),
                    ("listing.updated", request_id, "matched")]
    # The offer stays open after a match (a helper may help again): nothing more to tell of it.
    offer_line = [("listing.created", offer_id, "open")]
    assert sorted(got) == sorted(request_line + offer_line)
    assert [e for e in got if e in request_line] == request_line
    assert [e for e in got if e in offer_line] == offer_line
    by_key = {(e["type"], e["data"]["id"], e["data"]["status"]): e["data"] for e in receiver.events()}
    assert by_key[offer_line[-1]] == api_get(client, f"/api/v1/listings/{offer_id}")
    assert by_key[request_line[3]] == api_get(client, f"/api/v1/matches/{match_id}")
    assert all(e.status == "delivered" for e in rows(events_app))


def test_an_sms_request_is_told_by_the_job_that_makes_it(events_app, receiver):
    response = TwilioWebhooks(events_app.test_client()).sms(REQUESTER, "VRAAG boodschappen 2034")
    assert response.status_code == 200
    [event] = receiver.events()
    assert event["type"] == "listing.created"
    assert event["data"]["channel"] == "sms" and event["data"]["postcode"] == "2034"
    assert event["data"]["phone"] == REQUESTER


def test_an_update_of_listings_that_does_not_say_which_is_refused_while_events_are_on(events_app):
    listing_id = new_listing(events_app, REQUESTER, "request")
    with pytest.raises(RuntimeError, match="must return its ids"):
        with tx(events_app) as session:
            session.execute(update(Listing).where(Listing.id == listing_id).values(status="cancelled"))
    with tx(events_app) as session:
        session.execute(update(Listing).where(Listing.id == listing_id).values(status="cancelled")
                        .returning(Listing.id))
    assert [(e.type, e.data["status"]) for e in rows(events_app)] == [
        ("listing.created", "open"), ("listing.updated", "cancelled")]


def test_a_change_outside_the_shape_says_nothing(events_app):
    listing_id = new_listing(events_app, REQUESTER, "request")
    with tx(events_app) as session:
        session.get(Listing, listing_id).recording_url = "https://example.invalid/x"  # not in the Listing shape
    assert len(rows(events_app)) == 1


def test_resident_erased_names_the_listings_and_matches(events_app, receiver):
    with tx(events_app) as session:
        record_resident_erased(session, [3, 1], [7])
    assert receiver.events()[-1] == {"type": "resident.erased", "timestamp": receiver.events()[-1]["timestamp"],
                                     "data": {"listing_ids": [1, 3], "match_ids": [7]}}


def test_without_a_webhook_no_events_are_written(app):
    new_listing(app, REQUESTER, "request")
    with tx(app) as session:
        assert record_resident_erased(session, [1], []) is None
    assert rows(app) == []


def test_the_phone_menus_listing_is_told_too(pg_database_url, fake_twilio, receiver):
    """On PostgreSQL the menu's steps are one statement each; the step that makes the listing takes the ORM path."""
    from tests.call_simulator import SimulatedCall, flask_poster

    config = app_config(pg_database_url, fake_twilio, **events_config(receiver.url))
    with running_app(config) as app:
        call = SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=REQUESTER).start()
        call.press("1").press("1").press("2034").press("1").press("1").record(9)
        events = receiver.events()
        assert events and events[0]["type"] == "listing.created", events
        assert events[0]["data"]["channel"] == "voice"
        listing_id = events[0]["data"]["id"]
        assert events[-1]["data"] == api_get(app.test_client(), f"/api/v1/listings/{listing_id}")
        assert events[-1]["data"]["has_recording"] is True
        assert {e["data"]["id"] for e in events} == {listing_id}
        assert len(rows(app)) == len(events)


# --- delivery --------------------------------------------------------------------------------------


def test_each_event_is_signed_as_standard_webhooks_says(events_app, receiver):
    new_listing(events_app, REQUESTER, "request")
    [got] = receiver.verified()
    [event] = rows(events_app)
    assert got.webhook_id == event.webhook_id
    assert got.headers["content-type"] == "application/json"
    # the reference library's own check, again, and by hand: v1, HMAC-SHA256 of id.timestamp.body
    assert Webhook(SECRET).verify(got.body, got.headers)["type"] == "listing.created"
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{got.webhook_id}.{got.headers['webhook-timestamp']}.".encode() + got.body
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(
        hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60


def test_another_secret_does_not_verify(database_url, fake_twilio):
    other = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
    with EventReceiver(other) as receiver, running_app(
            app_config(database_url, fake_twilio, **events_config(receiver.url))) as app:
        new_listing(app, REQUESTER, "request")
        assert receiver.received and receiver.verified() == []
        [event] = rows(app)
        assert event.status == "pending" and event.last_status == 401


def _deliver(app: Flask) -> int:
    from workers.event_jobs import deliver_due

    with app.app_context():
        return deliver_due(app)


@pytest.fixture
def impatient_app(database_url: str, fake_twilio: Any, receiver: Any) -> Iterator[Flask]:
    """As events_app, with a timeout of one second."""
    config = app_config(database_url, fake_twilio, **events_config(receiver.url, BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS=1))
    with running_app(config) as app:
        yield app


def test_non_2xx_and_timeouts_are_tried_again_with_the_same_webhook_id(impatient_app, receiver):
    events_app = impatient_app
    receiver.status = 503
    new_listing(events_app, REQUESTER, "request")
    [event] = rows(events_app)
    assert (event.status, event.attempts, event.last_status) == ("pending", 1, 503)
    time.sleep(0.25)
    receiver.delay = 2.5  # longer than the 1-second timeout
    receiver.status = 204
    _deliver(events_app)
    [event] = rows(events_app)
    assert (event.status, event.attempts, event.last_status) == ("pending", 2, None)
    assert "no answer" in event.last_error
    time.sleep(0.25)
    receiver.delay = 0
    assert _deliver(events_app) == 1
    [event] = rows(events_app)
    assert (event.status, event.attempts, event.last_status) == ("delivered", 3, 204)
    assert {r.webhook_id for r in receiver.received} == {event.webhook_id}
    assert len(receiver.received) == 3


def test_failed_after_the_retry_window_then_sent_again_from_the_dashboard(database_url, fake_twilio, receiver):
    receiver.status = 500
    config = app_config(database_url, fake_twilio, **events_config(
        receiver.url, WEBHOOK_RETRY_WINDOW_SECONDS=0.6, BUURTLIJN_WEBHOOK_BACKOFF_SECONDS="0.1,0.2"))
    with running_app(config) as app:
        new_listing(app, REQUESTER, "request")
        deadline = time.monotonic() + 10
        while rows(app)[0].status == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
            _deliver(app)
        [event] = rows(app)
        assert event.status == "failed" and event.attempts >= 3 and event.last_error == "HTTP 500"
        _deliver(app)
        assert rows(app)[0].attempts == event.attempts  # failed is left alone

        make_brokers(app)
        broker = logged_in(app, "mila@buuv.example")
        assert broker.get("/dashboard/events").status_code == 403
        coordinator = logged_in(app, "cor@buuv.example")
        page = coordinator.get("/dashboard/events").get_data(as_text=True)
        assert "listing.created" in page and "HTTP 500" in page and "mislukt" in page
        receiver.status = 204
        token = _csrf(page)
        response = coordinator.post(f"/dashboard/events/{event.id}/send-again", data={"csrf_token": token})
        assert response.status_code == 302
        [event] = rows(app)
        assert event.status == "delivered"
        assert {r.webhook_id for r in receiver.received} == {event.webhook_id}


def _csrf(page: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_one_listings_events_wait_for_its_earlier_ones(events_app, receiver):
    receiver.status = 503
    listing_id = new_listing(events_app, REQUESTER, "request")
    other_id = new_listing(events_app, HELPER, "offer")
    with tx(events_app) as session:
        session.get(Listing, listing_id).status = "cancelled"
    receiver.status = 204
    time.sleep(0.25)
    _deliver(events_app)
    got = [(e["type"], e["data"]["id"]) for e in receiver.events()]
    assert sorted(got) == sorted([("listing.created", listing_id), ("listing.created", other_id),
                                  ("listing.updated", listing_id)])
    assert got.index(("listing.created", listing_id)) < got.index(("listing.updated", listing_id))


# --- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["not-whsec", "whsec_***", "whsec_" + base64.b64encode(b"short").decode()])
def test_a_malformed_secret_stops_the_start(database_url, fake_twilio, secret):
    with pytest.raises(ConfigError, match="BUURTLIJN_WEBHOOK_SECRET"):
        running_app(app_config(database_url, fake_twilio, BUURTLIJN_WEBHOOK_URL="http://127.0.0.1:9/e",
                               BUURTLIJN_WEBHOOK_SECRET=secret)).__enter__()


def test_a_url_without_a_secret_stops_the_start(database_url, fake_twilio):
    with pytest.raises(ConfigError, match="BUURTLIJN_WEBHOOK_SECRET must be set too"):
        running_app(app_config(database_url, fake_twilio, BUURTLIJN_WEBHOOK_URL="http://127.0.0.1:9/e")).__enter__()
    with pytest.raises(ConfigError, match="BUURTLIJN_WEBHOOK_URL"):
        running_app(app_config(database_url, fake_twilio, BUURTLIJN_WEBHOOK_URL="ftp://x",
                               BUURTLIJN_WEBHOOK_SECRET=SECRET)).__enter__()


# --- the real worker -------------------------------------------------------------------------------------


class EventsWorker(DeliveryWorker):
    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update({key: str(self.config[key]) for key in WEBHOOK_SETTINGS if self.config.get(key) is not None})
        return env


@contextmanager
def events_worker(database_url: str, fake: Any, redis_url: str, tmp_path: Path, **overrides: Any) -> Iterator[Any]:
    """(the app, a receiver not yet started on its port, a running `buurtlijn worker`)."""
    receiver = EventReceiver(SECRET, port=free_port())
    config = delivery_config(database_url, fake, redis_url,
                             **events_config(receiver.url, BUURTLIJN_WEBHOOK_BACKOFF_SECONDS="0.5,1", **overrides))
    with running_queued_app(config) as app:
        worker = EventsWorker(dict(app.config), tmp_path / "worker.log").start()
        try:
            yield app, receiver, worker
        finally:
            worker.stop()
            receiver.stop()


@pytest.fixture
def worker_setup(pg_database_url, fake_twilio, redis_url, tmp_path) -> Iterator[Any]:
    with events_worker(pg_database_url, fake_twilio, redis_url, tmp_path) as setup:
        yield setup


def _propose(app: Flask) -> tuple[int, int, int]:
    request_id = add_listing(app, REQUESTER, "request")
    offer_id = add_listing(app, HELPER, "offer")
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    return request_id, offer_id, response.get_json()["id"]


def test_the_worker_delivers_verified_events(worker_setup):
    app, receiver, worker = worker_setup
    receiver.start()
    request_id, offer_id, match_id = _propose(app)
    assert wait_until(lambda: len(receiver.verified()) >= 3, timeout=20), worker.log()
    assert [(e["type"], e["data"]["id"]) for e in receiver.events()] == [
        ("listing.created", request_id), ("listing.created", offer_id), ("match.created", match_id)]
    assert wait_until(lambda: all(e.status == "delivered" for e in rows(app)), timeout=10)


def test_a_receiver_down_for_a_while_gets_everything_once_when_it_is_back(worker_setup):
    app, receiver, worker = worker_setup
    _propose(app)
    for _ in range(5):
        add_listing(app, REQUESTER, "request", category="chores")
    assert wait_until(lambda: any(e.attempts > 0 for e in rows(app)), timeout=20), worker.log()
    assert {e.last_error for e in rows(app) if e.attempts} == {"could not connect to the receiver"}
    time.sleep(1.5)  # a few more rounds against nobody
    assert receiver.received == []
    receiver.start()  # the same port, as a restarted receiver
    expected = rows(app)
    assert wait_until(lambda: all(e.status == "delivered" for e in rows(app)), timeout=30), worker.log()
    ids = [r.webhook_id for r in receiver.verified()]
    assert Counter(ids) == Counter(e.webhook_id for e in expected)  # each once, with its own webhook-id
    assert len(ids) == len(expected) == 8


def test_a_retry_is_its_own_nudge_not_the_sweeps(pg_database_url, fake_twilio, redis_url, tmp_path):
    """The try after a refusal comes at its back-off time, also with a later event of that listing waiting."""
    with events_worker(pg_database_url, fake_twilio, redis_url, tmp_path, BUURTLIJN_SWEEP_SECONDS=300) as setup:
        app, receiver, worker = setup
        receiver.status = 503
        receiver.start()
        time.sleep(2)  # the worker's first sweep is behind it
        listing_id = add_listing(app, REQUESTER, "request")
        assert wait_until(lambda: rows(app)[0].attempts > 0, timeout=20), worker.log()
        with get_database(app).transaction() as session:
            session.get(Listing, listing_id).status = "cancelled"
        receiver.status = 204
        assert wait_until(lambda: [e.status for e in rows(app)] == ["delivered"] * 2, timeout=15), worker.log()
        assert [(e["type"], e["data"]["status"]) for e in receiver.events()] == [
            ("listing.created", "open"), ("listing.updated", "cancelled")]


def test_an_erasure_tells_the_marketplace_once_and_keeps_no_copy_of_the_residents_listings(events_app, receiver):
    """Issue 14 meets issue 16: the marketplace forgets an erased resident too, and our outbox holds
    no copy of their words (the events about their listings go; one resident.erased names them)."""
    from models import Resident
    from models.privacy import erase_resident

    request_id = new_listing(events_app, REQUESTER, "request", description="hulp bij de boodschappen, Kerkpad 3")
    other_id = new_listing(events_app, HELPER, "offer")
    with tx(events_app) as session:
        resident = session.scalars(select(Resident).where(Resident.phone == REQUESTER)).one()
        erase_resident(session, resident, actor_type="broker", via="dashboard")
    erased = [e for e in receiver.events() if e["type"] == "resident.erased"]
    assert [e["data"] for e in erased] == [{"listing_ids": [request_id], "match_ids": []}]
    kept = rows(events_app)
    assert not any("Kerkpad" in str(e.data) or REQUESTER in str(e.data) for e in kept)
    # Before the erasure, only the other resident's listing is told; the erasure's own change tells the
    # request's end without a word or a number of theirs.
    [ended] = [e for e in kept if e.order_key == f"listing:{request_id}"]
    assert (ended.type, ended.data["status"], ended.data["description"], ended.data["phone"]) == (
        "listing.updated", "cancelled", None, None)
    assert {e.order_key for e in kept if e.type == "listing.created"} == {f"listing:{other_id}"}
