"""The phone menu under gunicorn with three worker processes on PostgreSQL.

Every worker restarts after a single request (``--max-requests 1``), so each
step of the call is answered by a process that has never seen the call
before (forked from a master that never answers a request): whatever the
menu remembers must come from the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.call_simulator import SimulatedCall, http_poster
from tests.conftest import ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, GATEWAY_NUMBER, ROOT, wait_until
from tests.live import free_port


@pytest.fixture
def gunicorn(pg_database_url, fake_twilio, tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    access_log = tmp_path / "access.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BUURTLIJN_", "REDIS_"))}
    env.update(
        DATABASE_URL=pg_database_url, SECRET_KEY="gunicorn-test", PYTHONPATH=str(ROOT),
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_PHONE_NUMBER=GATEWAY_NUMBER,
        TWILIO_API_BASE_URL=fake_twilio.base_url, BUURTLIJN_API_TOKEN=API_TOKEN, BUURTLIJN_QUIET_HOURS="",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "3", "--max-requests", "1", "--preload",
         "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
         "gateway:create_app()"],
        cwd=ROOT, env=env, stdout=(tmp_path / "gunicorn.out").open("wb"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        assert wait_until(up, timeout=30), (tmp_path / "gunicorn.out").read_text(errors="replace")
        yield base, access_log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_a_whole_call_across_worker_processes_that_each_answer_once(gunicorn):
    base, access_log = gunicorn
    call = SimulatedCall(http_poster(base, AUTH_TOKEN)).start()
    call.press("9").press("2")  # English, saved on the resident
    call.press("1").press("1").press("2034").press("1").press("1").record(8)
    assert call.ended
    assert "Thank you!" in call.said

    request = urllib.request.Request(base + "/api/v1/listings", headers={"Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        [listing] = json.loads(response.read())["listings"]
    assert (listing["category"], listing["postcode"], listing["when"], listing["has_recording"]) == \
           ("groceries", "2034", "asap", True)

    again = SimulatedCall(http_poster(base, AUTH_TOKEN)).start()
    assert again.said.startswith("Welcome to Buurtlijn")  # remembered in the database, not in a process
    again.hang_up()

    expected = len(call.requests) + len(again.requests)

    def voice_lines() -> list[list[str]]:
        lines = [line.split() for line in access_log.read_text().splitlines()]
        return [line for line in lines if line[2].startswith("/twilio/voice")]

    # A worker logs a request just after answering it: give the last one a moment.
    assert wait_until(lambda: len(voice_lines()) == expected, timeout=10), voice_lines()
    assert all(status == "200" for _pid, _method, _path, status in voice_lines())
    voice = [(pid, path) for pid, _method, path, _status in voice_lines()]
    assert len({pid for pid, _path in voice}) == len(voice), "each request had a process of its own"
