"""The job registry: jobs are functions enqueued by reference, names the domain uses are checked at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.jobs import DECLARED, HANDLE_INBOUND_SMS, SEND_MESSAGE
from workers import jobs as sms_jobs
from workers.queue import JobQueue
from workers.registry import JOBS, registered

ROOT = Path(__file__).resolve().parent.parent


def test_every_job_the_domain_names_is_registered():
    assert set(DECLARED) <= set(JOBS)
    assert registered(SEND_MESSAGE).func is sms_jobs.send_message
    assert registered(HANDLE_INBOUND_SMS).queue == "inbound"


def test_a_name_without_its_job_stops_the_import():
    program = "from models.jobs import declare\ndeclare('send_postcard')\nimport workers\n"
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "send_postcard" in result.stderr


def test_a_name_is_declared_once():
    from models.jobs import declare

    with pytest.raises(ValueError):
        declare("send_message")


def test_enqueueing_what_is_not_a_job_fails_loudly():
    def not_a_job(message_id: int) -> None:
        raise AssertionError("never runs")

    queue = JobQueue(None)  # in-process: it would simply have run
    with pytest.raises(LookupError):
        queue.enqueue(not_a_job, 1)
    with pytest.raises(LookupError):
        queue.enqueue("workers.jobs.send_message", 1)  # a dotted string is no reference


def test_rq_gets_the_import_path_and_the_jobs_queue(monkeypatch):
    sent = []

    class FakeRQ:
        def enqueue_call(self, func, args, **options):  # type: ignore[no-untyped-def]
            sent.append((func, args, options["job_id"]))

    queue = JobQueue("redis://127.0.0.1:1/0", prefix="t")
    monkeypatch.setattr(queue, "rq_queue", lambda short: sent.append(short) or FakeRQ())
    assert queue.enqueue(HANDLE_INBOUND_SMS, 7, job_id="handle-inbound-7")
    assert sent == ["inbound", ("workers.jobs.handle_inbound_sms", (7,), "t--handle-inbound-7")]


def test_the_periodic_work_is_one_fixed_list_and_the_sweep_runs_all_of_it(app, monkeypatch):
    assert isinstance(sms_jobs.SWEEPS, tuple)  # nobody adds to it from elsewhere
    ran = []
    steps = tuple(
        (lambda name: lambda _app, _now, *_rest: ran.append(name) or 0)(step.__name__) for step in sms_jobs.SWEEPS
    )
    monkeypatch.setattr(sms_jobs, "SWEEPS", steps)
    monkeypatch.setattr(sms_jobs, "sweep_messages", steps[0])
    with app.app_context():
        sms_jobs.sweep()
    assert ran == ["sweep_messages", "sweep_matches", "sweep_listings", "sweep_calls", "sweep_voice",
                   "sweep_idempotency_keys", "sweep_privacy", "sweep_events", "sweep_reports"]

