"""Outside the demo a process with a missing or malformed setting refuses to start, saying which;
the health check tells which of PostgreSQL and Redis is down; nothing is retried that cannot succeed."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import update

from gateway import create_app
from gateway.config import ConfigError
from gateway.database import get_database
from models import Call
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, GATEWAY_NUMBER, ROOT, app_config, wait_until
from tests.delivery_support import LANDLINE_HELPER, REQUESTER, add_listing, post_match
from tests.live import free_port
from workers.notify_jobs import check_silent_call

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def production_env(database_url: str, **settings: str) -> dict[str, str]:
    """What an operator's process sees: the outside environment only, no test flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BUURTLIJN_", "REDIS_", "LOG_LEVEL"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY="fail-fast-test", PYTHONPATH=str(ROOT),
               TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_PHONE_NUMBER=GATEWAY_NUMBER)
    env.update(settings)
    return {k: v for k, v in env.items() if v != "<unset>"}


def buurtlijn(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_naming(result: subprocess.CompletedProcess[str], setting: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], result.stderr
    return lines[0]


# --- refusing to start -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER"])
def test_a_worker_without_twilio_settings_refuses_to_start(tmp_path, redis_url, missing):
    """It used to start and 'show' every message and call instead of sending it."""
    env = production_env(f"sqlite:///{tmp_path / 'x.sqlite3'}", REDIS_URL=redis_url, **{missing: "<unset>"})
    try:
        result = buurtlijn("worker", "--burst", env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker started without " + missing)
    one_line_naming(result, missing)


def test_a_worker_without_any_twilio_setting_names_them_all(tmp_path, redis_url):
    env = production_env(f"sqlite:///{tmp_path / 'x.sqlite3'}", REDIS_URL=redis_url, TWILIO_ACCOUNT_SID="<unset>",
                         TWILIO_AUTH_TOKEN="<unset>", TWILIO_PHONE_NUMBER="<unset>")
    line = one_line_naming(buurtlijn("worker", "--burst", env=env), "TWILIO_ACCOUNT_SID")
    assert "TWILIO_AUTH_TOKEN" in line and "TWILIO_PHONE_NUMBER" in line


@pytest.mark.parametrize(("setting", "value"), [
    ("BUURTLIJN_SMS_DAILY_CAP", "twenty"),  # was a bare traceback
    ("BUURTLIJN_QUIET_HOURS", "21-9"),  # passed start-up and failed at send time
])
def test_a_malformed_setting_stops_the_start_with_one_line(tmp_path, setting, value):
    env = production_env(f"sqlite:///{tmp_path / 'x.sqlite3'}", **{setting: value})
    one_line_naming(buurtlijn("db", "upgrade", env=env), setting)


def test_gunicorn_without_the_twilio_token_does_not_serve(pg_database_url, tmp_path):
    """It used to serve, /healthz said ok, and every webhook got 403."""
    port = free_port()
    env = production_env(pg_database_url, TWILIO_AUTH_TOKEN="<unset>")
    output = tmp_path / "gunicorn.out"
    # The Procfile's web process.
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "gateway:create_app()"], cwd=ROOT, env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(lambda: process.poll() is not None, timeout=30), "gunicorn kept running"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode != 0
    said = output.read_text(errors="replace")
    assert "TWILIO_AUTH_TOKEN is not set" in said
    # One line naming the setting, before any worker boots: no traceback to dig through.
    assert "Traceback" not in said and "Booting worker" not in said, said


@pytest.mark.parametrize(("setting", "value"), [
    ("BUURTLIJN_SMS_DAILY_CAP", "twenty"),
    ("BUURTLIJN_SMS_DAILY_CAP", "-1"),
    ("BUURTLIJN_SWEEP_SECONDS", "0"),
    ("BUURTLIJN_TRUSTED_PROXIES", "one"),
    ("BUURTLIJN_DB_POOL_SIZE", "0"),
    ("BUURTLIJN_DB_MAX_OVERFLOW", "veel"),
    ("BUURTLIJN_QUIET_HOURS", "21-9"),
    ("BUURTLIJN_BROKER_HOURS", "negen tot vijf"),
    ("BUURTLIJN_TIMEZONE", "Europe/Haarlem"),
    ("BUURTLIJN_DESTINATION_COUNTRIES", "NL,XX"),
    ("BUURTLIJN_CALL_DAILY_CAP", "six"),
    ("BUURTLIJN_CALL_DAILY_TOTAL_CAP", "-3"),
    ("BUURTLIJN_SMS_DAILY_TOTAL_CAP", "veel"),
    ("BUURTLIJN_SEND_BACKOFF_SECONDS", "30,twee minuten"),
    ("BUURTLIJN_TWILIO_TIMEOUT_SECONDS", "vijf"),
    ("BUURTLIJN_TWILIO_TIMEOUT_SECONDS", "0"),
    ("BUURTLIJN_DEMO", "misschien"),
    ("BUURTLIJN_SPEECH_RATE", "langzaam"),
    ("BUURTLIJN_DISTRICTS_FILE", "/nowhere/districts.toml"),
    ("TWILIO_ACCOUNT_SID", "ACnot-a-sid"),
    ("TWILIO_PHONE_NUMBER", "0970 1052 0000"),
    ("TWILIO_API_BASE_URL", "api.twilio.com"),
    ("PUBLIC_BASE_URL", "buurtlijn.example.org"),
    ("REDIS_URL", "127.0.0.1:6379"),
    ("DATABASE_URL", "mysql://db/buurtlijn"),
    ("LOG_LEVEL", "LOUD"),
])
def test_every_setting_is_checked_when_the_app_is_built(tmp_path, fake_twilio, setting, value):
    config = app_config(f"sqlite:///{tmp_path / 'x.sqlite3'}", fake_twilio, **{setting: value})
    with pytest.raises(ConfigError) as refused:
        create_app(config)
    assert setting in str(refused.value) and "\n" not in str(refused.value)


def test_the_demo_starts_without_twilio_or_redis(tmp_path):
    app = create_app({"BUURTLIJN_DEMO": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                      "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None, "TWILIO_PHONE_NUMBER": None,
                      "SECRET_KEY": None, "REDIS_URL": None})
    assert app.config["BUURTLIJN_DEMO"] is True and app.config["SENDS_FOR_REAL"] is False
    get_database(app).dispose()


def test_only_the_demo_shows_instead_of_sending(tmp_path, fake_twilio):
    """A test app without Twilio settings still sends (and fails loudly at Twilio), never 'shows'."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
                      "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None, "TWILIO_PHONE_NUMBER": None})
    assert app.config["SENDS_FOR_REAL"] is True
    get_database(app).dispose()


# --- health ---------------------------------------------------------------------------


@pytest.fixture
def app_with(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    built: list[Any] = []

    def build(**settings: Any) -> Any:
        app = create_app(app_config(database_url, fake_twilio, **settings))
        built.append(app)
        return app

    yield build
    for app in built:
        get_database(app).dispose()


def test_healthz_names_redis_when_it_is_down(app_with):
    response = app_with(REDIS_URL=CLOSED_REDIS).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "down", "database": "ok", "redis": "down", "down": ["redis"]}


def test_healthz_names_the_database_when_it_is_down(fake_twilio, redis_url):
    app = create_app(app_config("postgresql+psycopg://postgres@127.0.0.1:1/buurtlijn", fake_twilio,
                                REDIS_URL=redis_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "down", "database": "down", "redis": "ok", "down": ["database"]}
    assert app.test_client().get("/readyz").status_code == 503


def test_healthz_is_ok_when_both_answer(app_with, redis_url):
    response = app_with(REDIS_URL=redis_url).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_readyz_keeps_the_web_in_rotation_while_redis_is_down(app_with):
    """Webhooks still store and answer without Redis; the sweep enqueues once it is back."""
    response = app_with(REDIS_URL=CLOSED_REDIS).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


# --- logs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("log_level", "twilio_at_info"), [(None, False), ("INFO", False), ("DEBUG", True)])
def test_twilios_client_logs_each_request_only_when_debugging(app_with, log_level, twilio_at_info):
    root = logging.getLogger()
    before, before_twilio = root.level, logging.getLogger("twilio").level
    root.setLevel(logging.INFO)  # as `buurtlijn worker` sets it
    try:
        app_with(**({"LOG_LEVEL": log_level} if log_level else {}))
        assert logging.getLogger("twilio.http_client").isEnabledFor(logging.INFO) is twilio_at_info
        assert logging.getLogger("twilio.http_client").isEnabledFor(logging.WARNING)
    finally:
        root.setLevel(before)
        logging.getLogger("twilio").setLevel(before_twilio)


# --- a lookup that can never succeed ------------------------------------------------------------


def test_a_call_twilio_does_not_know_is_not_looked_up_again(notify_app, fake_twilio, session, caplog):
    """Reconciliation used to log 'call N could not be looked up' every sweep, forever."""
    request_id = add_listing(notify_app, REQUESTER, "request", category="transport", timing="asap")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer", category="transport")
    assert post_match(notify_app.test_client(), request_id, offer_id).status_code == 201
    [placed] = [c for c in fake_twilio.calls() if c["To"] == LANDLINE_HELPER]
    call_id = int(placed["Url"].rstrip("/").rsplit("/", 1)[1])
    db = get_database(notify_app)
    with db.transaction() as tx:  # Twilio lost it (another account, a purge): it answers 404
        tx.execute(update(Call).where(Call.id == call_id).values(
            call_sid="CA" + "f" * 32, updated_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)))

    with caplog.at_level(logging.INFO, logger="buurtlijn.calls"):
        check_silent_call(db, notify_app.config, call_id)
    session.expire_all()
    call = session.get(Call, call_id)
    assert call.status not in ("dialling", "answered")  # so the sweep no longer picks it up
    assert call.twilio_status == "failed"
    assert [r.levelno for r in caplog.records if "unknown at Twilio" in r.getMessage()] == [logging.WARNING]
