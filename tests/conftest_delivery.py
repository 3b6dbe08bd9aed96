"""Fixtures and helpers for the match, notification and delivery tests.

Import what you need from a test module (``from tests.conftest_delivery import ...``);
pytest picks up the fixtures it finds in the module's namespace.

* ``notify_app``: the app (SQLite and PostgreSQL) with jobs in-process, Twilio
  the fake, and PUBLIC_BASE_URL set so notification calls can be placed and
  their TwiML signed like Twilio does.
* ``private_redis``: a Redis server of this test alone, on a free port, that a
  test may stop and start (never the machine's shared Redis on 6379).
* ``delivery_worker``: `buurtlijn worker` against ``delivery_app``, with the
  settings these tests need passed through the environment.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway import create_app
from gateway.twilio_sim import new_sid
from models import Call, Listing, Resident
from models.marketplace import record_listing
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import (
    ACCOUNT_SID,
    API_TOKEN,
    GATEWAY_NUMBER,
    RUN_ID,
    TwilioWebhooks,
    WorkerProcess,
    app_config,
    parse_twiml,
    wait_until,
    worker_environment,
)
from tests.fake_twilio import FakeTwilio

PUBLIC_BASE = "http://localhost"
HELPER = "+31612345001"  # a mobile: answers by SMS
REQUESTER = "+31612345002"
LANDLINE_HELPER = "+31235551234"  # a fixed line: answers by keypress
LANDLINE_REQUESTER = "+31235551235"


# --- the app with jobs in-process --------------------------------------------------


@pytest.fixture
def notify_app(database_url: str, fake_twilio: FakeTwilio) -> Iterator[Flask]:
    app = create_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE))
    yield app
    app.extensions["buurtlijn.db"].dispose()


@pytest.fixture
def webhooks(notify_app: Flask) -> TwilioWebhooks:
    return TwilioWebhooks(notify_app.test_client())


@pytest.fixture
def session(notify_app: Flask):  # type: ignore[no-untyped-def]
    session = notify_app.extensions["buurtlijn.db"].session()
    yield session
    session.close()


# --- people and listings ------------------------------------------------------------------


def add_listing(
    app: Flask,
    phone: str,
    kind: str,
    *,
    category: str = "groceries",
    postcode: str = "2034",
    timing: str | None = "asap",
    language: str = "nl",
    prefers_voice: bool = False,
) -> int:
    """A resident (created if new) and an open listing of theirs; returns the listing id."""
    with app.extensions["buurtlijn.db"].transaction() as session:
        resident = resident_for(session, parse_phone(phone), language=language)
        resident.language = language
        resident.prefers_voice = prefers_voice
        resident.postcode = postcode
        listing = record_listing(session, resident, kind=kind, channel="broker", category=category,
                                 postcode=postcode, timing=timing, queue_for_broker=False)
        return listing.id


def post_match(client: FlaskClient, request_id: Any, offer_id: Any, note: Any = None, **extra: Any) -> Any:
    payload = {"request_id": request_id, "offer_id": offer_id, **({"note": note} if note is not None else {}),
               **extra}
    return client.post("/api/v1/matches", json=payload, headers={"Authorization": f"Bearer {API_TOKEN}"})


def bodies(fake: FakeTwilio, to: str) -> list[str]:
    return [m["Body"] for m in fake.messages() if m["To"] == to]


def listing_status(app: Flask, listing_id: int) -> str:
    with app.extensions["buurtlijn.db"].transaction() as session:
        listing = session.get(Listing, listing_id)
        assert listing is not None
        return listing.status


def resident_of(session: Any, phone: str) -> Resident:
    return session.scalars(select(Resident).where(Resident.phone == phone)).one()


# --- Twilio's side of a notification call -----------------------------------------------------


def say_text(element: ET.Element) -> str:
    """All words of a TwiML element (a <Say> with its <prosody>), as one string."""
    return " ".join("".join(element.itertext()).split())


@dataclass
class PhoneCall:
    """Twilio's side of one outbound call: it picks up, presses keys, hangs up."""

    webhooks: TwilioWebhooks
    call_id: int
    call_sid: str
    to: str

    def _params(self, **extra: str) -> dict[str, str]:
        return {"AccountSid": ACCOUNT_SID, "CallSid": self.call_sid, "From": GATEWAY_NUMBER, "To": self.to,
                "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallStatus": "in-progress", **extra}

    def answer(self) -> ET.Element:
        response = self.webhooks.post(f"/twilio/notify/{self.call_id}", self._params())
        assert response.status_code == 200 and response.mimetype == "text/xml", response.data
        return parse_twiml(response.data)

    def press(self, digits: str, action: str | None = None) -> ET.Element:
        path = action or f"/twilio/notify/{self.call_id}/key"
        response = self.webhooks.post(path, self._params(Digits=digits))
        assert response.status_code == 200 and response.mimetype == "text/xml", response.data
        return parse_twiml(response.data)

    def status(self, call_status: str) -> int:
        params = self._params(CallStatus=call_status, CallDuration="0")
        return self.webhooks.post(f"/twilio/notify/{self.call_id}/status", params).status_code


def gather_of(root: ET.Element) -> ET.Element:
    [gather] = root.findall("./Gather")
    assert gather.get("numDigits") == "1" and int(gather.get("timeout", "5")) >= 8
    assert gather.findall("./Say"), "the message is spoken inside the Gather, so keys work while it speaks"
    return gather


def placed_call(fake: FakeTwilio, session: Any, webhooks: TwilioWebhooks, to: str) -> PhoneCall:
    """The one call the fake Twilio was asked to place to ``to``, as Twilio would then drive it."""
    [created] = [c for c in fake.calls() if c["To"] == to]
    call_id = int(created["Url"].rstrip("/").rsplit("/", 1)[1])
    assert created["Url"] == f"{PUBLIC_BASE}/twilio/notify/{call_id}"
    assert created["StatusCallback"] == f"{PUBLIC_BASE}/twilio/notify/{call_id}/status"
    session.expire_all()
    call = session.get(Call, call_id)
    assert call is not None and call.call_sid == created["sid"]
    return PhoneCall(webhooks, call_id, created["sid"], to)


# --- a private Redis, and the worker ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of one test: no persistence, on its own port, stoppable."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        import redis

        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
            except redis.RedisError:
                return False

        assert wait_until(up, timeout=10), "private redis-server did not start"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/test.sh installs it)", pytrace=False)
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


# Passed to the worker besides what tests.conftest.worker_environment passes.
EXTRA_WORKER_SETTINGS = ("BUURTLIJN_SEND_BACKOFF_SECONDS", "BUURTLIJN_SMS_PER_SECOND",
                         "BUURTLIJN_MATCH_RESPONSE_HOURS", "BUURTLIJN_SMS_DAILY_CAP")


class DeliveryWorker(WorkerProcess):
    def start(self) -> "DeliveryWorker":
        env = worker_environment(self.config)
        for key in EXTRA_WORKER_SETTINGS:
            if self.config.get(key) is not None:
                env[key] = str(self.config[key])
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker"],
            env=env, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT,
        )
        return self


def far_quiet_hours() -> str:
    """Quiet hours twelve hours away: the worker reads them from the environment, where
    an empty value means the default (21:00-09:00), and these tests must not wait for the morning."""
    start = (dt.datetime.now() + dt.timedelta(hours=12)).replace(second=0, microsecond=0)
    return f"{start:%H:%M}-{start + dt.timedelta(minutes=1):%H:%M}"


def delivery_config(database_url: str, fake: FakeTwilio, redis_url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "REDIS_URL": redis_url,
        "BUURTLIJN_QUEUE_PREFIX": f"buurtlijn-test-{RUN_ID}-{uuid.uuid4().hex[:6]}",
        "BUURTLIJN_SWEEP_SECONDS": 1,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "BUURTLIJN_SEND_BACKOFF_SECONDS": "1,2,4,8,16",
        "BUURTLIJN_SMS_PER_SECOND": 50,
        "BUURTLIJN_QUIET_HOURS": far_quiet_hours(),
    }
    return app_config(database_url, fake, **{**settings, **overrides})


@pytest.fixture
def delivery_app(pg_database_url: str, fake_twilio: FakeTwilio, redis_url: str) -> Iterator[Flask]:
    """PostgreSQL, the shared Redis (queue names of this test alone), the fake Twilio."""
    app = create_app(delivery_config(pg_database_url, fake_twilio, redis_url))
    yield app
    queue = app.extensions["buurtlijn.jobs"]
    try:
        for name in queue.queue_names:
            queue.redis.delete(f"rq:queue:{name}")
    finally:
        app.extensions["buurtlijn.db"].dispose()


@pytest.fixture
def delivery_worker(delivery_app: Flask, tmp_path: Path) -> Iterator[DeliveryWorker]:
    worker = DeliveryWorker(dict(delivery_app.config), tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def new_call_sid() -> str:
    return new_sid("CA")


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)
