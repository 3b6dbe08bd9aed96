"""The operator commands as the Procfile and the README run them."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys

from sqlalchemy import create_engine, inspect, text

from models import Base
from tests.conftest import ROOT


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=120,
    )


def base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BUURTLIJN_", "REDIS_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY="cli-test", PYTHONPATH=str(ROOT))
    return env


def test_release_step_migrates_and_is_safe_to_run_twice(postgres_url):
    admin = create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = "buurtlijn_cli_" + os.urandom(4).hex()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        for _ in range(2):
            result = run("db", "upgrade", env=base_env(url))
            assert result.returncode == 0, result.stderr
            assert "database schema is up to date" in result.stdout
        engine = create_engine(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_web_refuses_to_start_without_secret_key_outside_the_demo(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    del env["SECRET_KEY"]
    result = run("db", "upgrade", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("hours", ["17:00-09:00", "negen tot vijf"])
def test_malformed_broker_hours_stop_the_start_with_a_clear_message(tmp_path, hours):
    env = base_env(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    env["BUURTLIJN_BROKER_HOURS"] = hours
    result = run("db", "upgrade", env=env)
    assert result.returncode != 0
    assert "BUURTLIJN_BROKER_HOURS" in result.stderr and "Traceback" not in result.stderr


def test_worker_needs_redis(tmp_path):
    result = run("worker", env=base_env(f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr
