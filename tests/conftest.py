"""Fixtures: the app on SQLite and PostgreSQL, Twilio's side of the webhooks,
the fake Twilio REST server, Redis (the shared one, or a private one a test may
stop) and a real RQ worker process.

Each test process gets its own PostgreSQL database and Redis queue names, so
suites may run side by side on one machine.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from gateway import create_app
from gateway.database import get_database
from gateway.twilio_sim import new_sid, sign, sms_params
from models import Base
from models.migrate import upgrade
from tests.call_simulator import SimulatedCall, flask_poster
from tests.dashboard_support import Brokers, logged_in, make_brokers
from tests.fake_twilio import FakeTwilio, OpenAPISpecNotFound, spec_path
from tests.live import free_port, serving

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
GATEWAY_NUMBER = "+3197010520000"
API_TOKEN = "test-api-token"
DEMO_API_TOKEN = "demo-api-token"
PUBLIC_BASE = "http://localhost"
PG_ADMIN_URL = os.environ.get("BUURTLIJN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("BUURTLIJN_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = os.environ.get("BUURTLIJN_TEST_RUN_ID") or uuid.uuid4().hex[:10]  # names this run's database and keys


# --- databases -------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, built by the migrations."""
    name = f"buurtlijn_test_{RUN_ID}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite needs PostgreSQL: say so plainly
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", pytrace=False)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A transaction an earlier test left open would block this for good: fail loudly instead.
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses it runs twice: on SQLite (the demo) and PostgreSQL (production)."""
    if request.param == "sqlite":
        target = tmp_path / "buurtlijn.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def pg_database_url(postgres_url: str) -> str:
    """PostgreSQL only: for what SQLite cannot show (concurrency, the real worker)."""
    _empty_postgres(postgres_url)
    return postgres_url


# --- the fake Twilio REST server --------------------------------------------


@pytest.fixture(scope="session")
def fake_twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_twilio(fake_twilio_server: FakeTwilio) -> Iterator[FakeTwilio]:
    fake_twilio_server.reset()
    if not fake_twilio_server.running:
        fake_twilio_server.start()
    yield fake_twilio_server
    fake_twilio_server.reset()
    if not fake_twilio_server.running:
        fake_twilio_server.start()


@pytest.fixture
def twilio_openapi_spec() -> Path:
    """Twilio's OpenAPI spec; a test that needs it skips, saying where it looked, when it is absent."""
    try:
        return spec_path()
    except OpenAPISpecNotFound as missing:
        pytest.skip(str(missing))


# --- the app ------------------------------------------------------------------


def app_config(database_url: str, fake: FakeTwilio, **overrides: Any) -> dict[str, Any]:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "REDIS_URL": None,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": GATEWAY_NUMBER,
        "TWILIO_API_BASE_URL": fake.base_url,
        "BUURTLIJN_API_TOKEN": API_TOKEN,
        "BUURTLIJN_QUIET_HOURS": "",  # tests of quiet hours set their own
        "BUURTLIJN_QUEUE_PREFIX": f"buurtlijn-test-{RUN_ID}",
        "WTF_CSRF_ENABLED": True,
    }
    config.update(overrides)
    return config


@contextmanager
def running_app(config: dict[str, Any]) -> Iterator[Flask]:
    """The app for one test; its connections closed afterwards."""
    app = create_app(config)
    try:
        yield app
    finally:
        get_database(app).dispose()


@contextmanager
def session_of(app: Flask) -> Iterator[Any]:
    """A session for assertions; expire_all() before reading what a request changed."""
    session = get_database(app).session()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def app(database_url: str, fake_twilio: FakeTwilio) -> Iterator[Flask]:
    with running_app(app_config(database_url, fake_twilio)) as app:
        yield app


@pytest.fixture
def pg_app(pg_database_url: str, fake_twilio: FakeTwilio) -> Iterator[Flask]:
    """The app on PostgreSQL only, where the voice webhooks are answered below Flask."""
    with running_app(app_config(pg_database_url, fake_twilio)) as app:
        yield app


@pytest.fixture
def notify_app(database_url: str, fake_twilio: FakeTwilio) -> Iterator[Flask]:
    """The app with PUBLIC_BASE_URL set, so calls can be placed and their TwiML signed as Twilio does."""
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE)) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """A session on ``app`` for assertions."""
    with session_of(app) as session:
        yield session


@pytest.fixture
def session(notify_app: Flask) -> Iterator[Any]:
    """A session on ``notify_app`` for assertions."""
    with session_of(notify_app) as session:
        yield session


@pytest.fixture
def demo(tmp_path: Path, fake_twilio: FakeTwilio) -> Iterator[tuple[Flask, str]]:
    """`buurtlijn demo` served over real HTTP on SQLite: (the app, its base URL)."""
    port = free_port()
    config = {
        "BUURTLIJN_DEMO": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_API_BASE_URL": fake_twilio.base_url,  # the demo must not use it
        "BUURTLIJN_API_TOKEN": DEMO_API_TOKEN,
        "BUURTLIJN_QUIET_HOURS": "",
    }
    with running_app(config) as app:
        app.instance_path = str(tmp_path / "instance")  # simulated recordings go here, not in the checkout
        upgrade(get_database(app).engine)
        with serving(app, port) as base:
            yield app, base


# --- Twilio's side of the webhooks --------------------------------------------


def parse_twiml(body: str | bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == "Response", f"not TwiML: {body!r}"
    return root


@dataclass
class TwilioWebhooks:
    """Posts to our webhooks as Twilio does: form-encoded, signed."""

    client: FlaskClient
    token: str = AUTH_TOKEN
    base: str = "http://localhost"

    def post(self, path: str, params: dict[str, str], *, signature: str | None = None) -> Any:
        url = self.base + path
        headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, params, self.token)}
        return self.client.post(path, data=params, headers=headers)

    def sms(self, from_: str | None, body: str, *, message_sid: str | None = None, **extra: str) -> Any:
        params = sms_params(account_sid=ACCOUNT_SID, from_=from_ or "", to=GATEWAY_NUMBER, body=body,
                            message_sid=message_sid)
        if from_ is None:
            del params["From"]
        params.update(extra)
        return self.post("/twilio/sms", params)

    def sms_status(self, message_sid: str, status: str, error_code: str | None = None) -> Any:
        params = {"MessageSid": message_sid, "MessageStatus": status, "SmsSid": message_sid,
                  "SmsStatus": status, "AccountSid": ACCOUNT_SID, "From": GATEWAY_NUMBER, "To": "+31612345678",
                  "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        return self.post("/twilio/sms/status", params)

    def delivered(self, fake: Any, to: str) -> None:
        """Twilio's 'delivered' callback for every message the fake Twilio took for ``to`` so far:
        a proposal can be answered only once it reached the phone."""
        for message in fake.messages():
            if message["To"] == to:
                assert self.sms_status(message["sid"], "delivered").status_code == 200


@pytest.fixture
def twilio(client: FlaskClient) -> TwilioWebhooks:
    return TwilioWebhooks(client)


@pytest.fixture
def webhooks(notify_app: Flask) -> TwilioWebhooks:
    return TwilioWebhooks(notify_app.test_client())


@pytest.fixture
def phone(twilio: TwilioWebhooks) -> Any:
    """phone(from_) rings the phone menu through the Flask webhooks and returns the call, answered."""

    def call(from_: str = "+31612345678") -> SimulatedCall:
        return SimulatedCall(flask_poster(twilio), from_=from_).start()

    return call


# --- the dashboard ----------------------------------------------------------------


@pytest.fixture
def brokers(app: Flask) -> Brokers:
    return make_brokers(app)


@pytest.fixture
def mila(notify_app: Flask) -> FlaskClient:
    """Mila, a broker, logged in to the dashboard of ``notify_app``, which can place calls."""
    make_brokers(notify_app)
    return logged_in(notify_app, "mila@buuv.example")


def api_get(client: FlaskClient, path: str) -> Any:
    response = client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --- Redis and a real RQ worker ----------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The shared Redis; when the session ends, what this run left there is deleted (only that)."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}", pytrace=False)
    yield REDIS_TEST_URL
    forget_this_run(client)
    client.close()


def forget_this_run(client: Any) -> None:
    """Delete this run's keys from the shared Redis: never FLUSHDB, other runs share the server.

    Every queue, job, registry and pacing key of this run has its prefix in its name. RQ's workers are
    named without it: they are found through this run's per-queue worker sets, and taken out of RQ's
    shared sets (``rq:workers``, ``rq:queues``) along with this run's queues.
    """
    mine = f"buurtlijn-test-{RUN_ID}"
    workers: set[bytes] = set()
    # Followed by "-" (a queue's name) or ":" (a pacing key), so that no other run's id that starts alike matches.
    for key in client.scan_iter(match=f"rq:workers:{mine}-*", count=1000):
        workers |= client.smembers(key)
    doomed = {key for ending in ("-*", ":*") for key in client.scan_iter(match=f"*{mine}{ending}", count=1000)}
    for worker in workers:
        doomed |= {worker, worker + b":executions"}
    if workers:
        client.srem("rq:workers", *workers)
    queues = [queue for queue in client.smembers("rq:queues") if f"{mine}-".encode() in queue]
    if queues:
        client.srem("rq:queues", *queues)
    if doomed:
        client.delete(*doomed)


def worker_environment(config: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BUURTLIJN_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER",
                "TWILIO_API_BASE_URL", "BUURTLIJN_QUEUE_PREFIX", "BUURTLIJN_QUIET_HOURS", "SECRET_KEY",
                "PUBLIC_BASE_URL", "BUURTLIJN_SWEEP_SECONDS"):
        value = config.get(key)
        if value is not None:
            env[key] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


class WorkerProcess:
    """`buurtlijn worker` as the Procfile runs it, in its own process."""

    def __init__(self, config: dict[str, Any], log_path: Path):
        self.config = config
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        return worker_environment(self.config)

    def start(self) -> "WorkerProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker"],
            env=self.environment(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the worker, as the OOM killer would; its dispatcher and scheduler end with it."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@contextmanager
def running_queued_app(config: dict[str, Any]) -> Iterator[Flask]:
    """The app with jobs going through Redis; this test's queues deleted from Redis afterwards."""
    with running_app(config) as app:
        try:
            yield app
        finally:
            queue = app.extensions["buurtlijn.jobs"]
            for name in queue.queue_names:
                queue.redis.delete(f"rq:queue:{name}")


def own_queue_prefix() -> str:
    return f"buurtlijn-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def queued_app(pg_database_url: str, fake_twilio: FakeTwilio, redis_url: str) -> Iterator[Flask]:
    """The app on PostgreSQL with jobs going through Redis (nothing runs them until a worker starts)."""
    config = app_config(pg_database_url, fake_twilio, REDIS_URL=redis_url, BUURTLIJN_QUEUE_PREFIX=own_queue_prefix(),
                        BUURTLIJN_SWEEP_SECONDS=1)
    with running_queued_app(config) as app:
        yield app


@pytest.fixture
def rq_worker(queued_app: Flask, tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(dict(queued_app.config), tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def new_message_sid() -> str:
    return new_sid("SM")


# --- deliveries: the worker with the sending settings, and a Redis of one test ------------------


# Passed to the delivery worker besides what worker_environment passes.
EXTRA_WORKER_SETTINGS = ("BUURTLIJN_SEND_BACKOFF_SECONDS", "BUURTLIJN_SMS_PER_SECOND",
                         "BUURTLIJN_MATCH_RESPONSE_HOURS", "BUURTLIJN_SMS_DAILY_CAP",
                         "BUURTLIJN_TWILIO_TIMEOUT_SECONDS", "BUURTLIJN_SMS_DAILY_TOTAL_CAP",
                         "BUURTLIJN_CALL_DAILY_CAP", "BUURTLIJN_CALL_DAILY_TOTAL_CAP")


class DeliveryWorker(WorkerProcess):
    def environment(self) -> dict[str, str]:
        env = worker_environment(self.config)
        for key in EXTRA_WORKER_SETTINGS:
            if self.config.get(key) is not None:
                env[key] = str(self.config[key])
        return env


def far_quiet_hours() -> str:
    """Quiet hours twelve hours away: the worker reads them from the environment, where
    an empty value means the default (21:00-09:00), and these tests must not wait for the morning."""
    start = (dt.datetime.now() + dt.timedelta(hours=12)).replace(second=0, microsecond=0)
    return f"{start:%H:%M}-{start + dt.timedelta(minutes=1):%H:%M}"


def delivery_config(database_url: str, fake: FakeTwilio, redis_url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "REDIS_URL": redis_url,
        "BUURTLIJN_QUEUE_PREFIX": own_queue_prefix(),
        "BUURTLIJN_SWEEP_SECONDS": 1,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "BUURTLIJN_SEND_BACKOFF_SECONDS": "1,2,4,8,16",
        # A lost answer is asked about after six of these (workers/twilio_api.py SETTLE_TIMEOUTS).
        "BUURTLIJN_TWILIO_TIMEOUT_SECONDS": 0.5,
        "BUURTLIJN_SMS_PER_SECOND": 50,
        "BUURTLIJN_QUIET_HOURS": far_quiet_hours(),
    }
    return app_config(database_url, fake, **{**settings, **overrides})


@pytest.fixture
def delivery_app(pg_database_url: str, fake_twilio: FakeTwilio, redis_url: str) -> Iterator[Flask]:
    """PostgreSQL, the shared Redis (queue names of this test alone), the fake Twilio."""
    with running_queued_app(delivery_config(pg_database_url, fake_twilio, redis_url)) as app:
        yield app


@pytest.fixture
def delivery_worker(delivery_app: Flask, tmp_path: Path) -> Iterator[DeliveryWorker]:
    worker = DeliveryWorker(dict(delivery_app.config), tmp_path / "worker.log").start()
    yield worker
    worker.stop()


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
    """A Redis this test may stop and start (never the machine's shared Redis on 6379)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/test.sh installs it)", pytrace=False)
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()
