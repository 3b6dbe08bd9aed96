"""`buurtlijn worker` killed with SIGKILL, as the kernel's OOM killer or a crash does.

The worker's companions (the dispatcher and RQ's scheduler) end with it
instead of running on as orphans, and messages queued while it is killed
again and again reach Twilio exactly once each.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections import Counter
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select, update

from gateway.database import get_database
from models import Message
from models.base import utcnow
from models.outbox import queue_sms
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import DeliveryWorker, WorkerProcess, wait_until
from tests.fake_twilio import FakeTwilio

MESSAGES = 200
KILLS = 3


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended; only its parent has not read it


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(gone)"


def test_a_killed_worker_leaves_no_process_behind(rq_worker: WorkerProcess) -> None:
    pid = rq_worker.process.pid
    # The dispatcher (`sweep --every`) and RQ's scheduler (forked, same command line as the worker).
    assert wait_until(lambda: len(_children(pid)) >= 2, timeout=30), (_children(pid), rq_worker.log())
    companions = _children(pid)
    assert any("sweep" in _command(child) for child in companions), [_command(c) for c in companions]

    os.kill(pid, signal.SIGKILL)  # the worker alone: nothing of it can clean up
    rq_worker.process.wait(5)
    try:
        assert wait_until(lambda: not any(_alive(child) for child in companions), timeout=5), (
            [(child, _command(child)) for child in companions if _alive(child)], rq_worker.log())
    finally:
        for child in companions:  # orphans of a failed run must not outlive the test
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def _queue_messages(app: Flask) -> dict[str, str]:
    """MESSAGES texts to as many residents, committed ten at a time (one send job per commit); To -> Body."""
    intended = {}
    for first in range(0, MESSAGES, 10):
        with get_database(app).transaction() as session:
            for number in range(first, first + 10):
                resident = resident_for(session, parse_phone(f"+3161{number:07d}"))
                body = f"Bericht {number} van Buurtlijn"
                queue_sms(session, resident, body, purpose="test")
                intended[resident.phone] = body
    return intended


def _unsettled(app: Flask) -> int:
    with get_database(app).transaction() as session:
        return session.scalar(select(func.count(Message.id)).where(
            Message.direction == "outbound", Message.status.in_(("pending", "submitting"))))


def test_messages_sent_while_the_worker_is_killed_again_and_again_go_out_once(
    delivery_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path,
) -> None:
    fake_twilio.delay = 0.01  # each send takes a moment: a kill may land in the middle of one
    intended = _queue_messages(delivery_app)
    for kill in range(1, KILLS + 1):
        worker = DeliveryWorker(dict(delivery_app.config), tmp_path / f"worker-{kill}.log").start()
        try:
            # Killed once it is well into this round's share, as Twilio is answering.
            share = kill * MESSAGES // (KILLS + 1)
            assert fake_twilio.wait_for(lambda fake: len(fake.messages()) >= share, timeout=30), worker.log()
            worker.kill()
        finally:
            worker.stop()
    killed_at = len(fake_twilio.messages())
    assert killed_at < MESSAGES, "the worker finished before the last kill"

    # Time passes: rows the killed workers left mid-send ('submitting') are old enough to be looked up at
    # Twilio (workers/sending.py's STALE_SUBMITTING) by the restarted worker's sweep.
    with get_database(delivery_app).transaction() as session:
        left_mid_send = session.execute(
            update(Message).where(Message.status == "submitting")
            .values(updated_at=utcnow() - dt.timedelta(minutes=3)).returning(Message.id)).all()
    last = DeliveryWorker(dict(delivery_app.config), tmp_path / "worker-last.log").start()
    try:
        assert wait_until(lambda: _unsettled(delivery_app) == 0, timeout=40), last.log()
    finally:
        last.stop()

    sent = Counter((m["To"], m["Body"]) for m in fake_twilio.messages())
    assert sorted(sent) == sorted(intended.items()), "lost or unexpected messages"
    assert [pair for pair, times in sent.items() if times > 1] == [], f"{len(left_mid_send)} left mid-send"
    with get_database(delivery_app).transaction() as session:
        sids = session.scalars(select(Message.twilio_sid).where(Message.direction == "outbound")).all()
    assert sorted(sids) == sorted(m["sid"] for m in fake_twilio.messages())  # each row holds its own copy
