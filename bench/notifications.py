"""Notifications: how fast one worker sends, and how soon a proposal reaches the helper.

    python -m bench.notifications [--messages 1000] [--proposals 30]

1. Throughput: ``--messages`` SMS rows are committed (their jobs enqueued in
   Redis), then ONE worker process drains the queue against the local fake
   Twilio; notifications/s = messages / (last request - first request) as
   the fake saw them. Twice: each message committed on its own (one RQ job
   each, as a broker's clicks make them) and all in one commit (as a sweep
   of reminders makes them: their jobs go in batches). Measured for RQ's forking ``Worker`` (a new work horse
   per job) and for ``SimpleWorker`` (jobs in the worker process itself).
2. Latency: with an idle queue and a running worker, a broker proposes a
   match (models.matching.propose_match, committed as the dashboard does);
   the delay runs from just before the commit to the fake Twilio receiving
   the helper's SMS. p50 / p95 over ``--proposals`` proposals.

Production settings: a fresh PostgreSQL database built by the migrations,
Redis (database 14, a queue prefix of this run, emptied afterwards), the
twilio client against the fake. Pacing is set far above the measured rate
(BUURTLIJN_SMS_PER_SECOND) so the worker itself is measured; quiet hours
are moved out of the way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import create_app  # noqa: E402
from gateway.database import get_database  # noqa: E402
from models.matching import propose_match  # noqa: E402
from models.outbox import queue_sms  # noqa: E402
from models.phones import parse_phone  # noqa: E402
from models.marketplace import record_listing  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.residents import resident_for  # noqa: E402
from tests.fake_twilio import FakeTwilio  # noqa: E402

PG_ADMIN_URL = os.environ.get("BUURTLIJN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BUURTLIJN_BENCH_REDIS", "redis://127.0.0.1:6379/14")
ACCOUNT_SID = "AC" + "b2" * 16
AUTH_TOKEN = "bench-auth-token"
GATEWAY = "+3197010520000"

# The `buurtlijn worker` of the Procfile, with the worker class as a parameter.
WORKER_SCRIPT = """
import sys
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from gateway import create_app
from gateway.cli import rq_log_level
from gateway.jobs import get_queue
from workers.queue import QUEUE_NAMES
from workers.runtime import set_worker_app
app = create_app()
set_worker_app(app)
queue = get_queue(app)
cls = {"Worker": Worker, "SimpleWorker": SimpleWorker}[sys.argv[1]]
burst = sys.argv[2] == "burst"
cls([queue.rq_queue(n) for n in QUEUE_NAMES], connection=queue.redis, serializer=JSONSerializer).work(
    with_scheduler=not burst, burst=burst, logging_level=rq_log_level())
"""


def far_quiet_hours() -> str:
    start = (dt.datetime.now() + dt.timedelta(hours=12)).replace(second=0, microsecond=0)
    return f"{start:%H:%M}-{start + dt.timedelta(minutes=1):%H:%M}"


class Run:
    """One database, one queue prefix and one fake Twilio for a measurement."""

    def __init__(self, fake: FakeTwilio):
        self.name = f"buurtlijn_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)
        engine = create_engine(self.url)
        upgrade(engine)
        engine.dispose()
        self.config: dict[str, Any] = {
            "SECRET_KEY": "bench", "DATABASE_URL": self.url, "REDIS_URL": REDIS_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": GATEWAY,
            "TWILIO_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": "http://127.0.0.1:9",
            "BUURTLIJN_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}", "BUURTLIJN_QUIET_HOURS": far_quiet_hours(),
            "BUURTLIJN_SMS_PER_SECOND": 100000, "BUURTLIJN_SMS_DAILY_CAP": 1000000,
            "BUURTLIJN_SMS_DAILY_TOTAL_CAP": 1000000, "BUURTLIJN_SWEEP_SECONDS": 30,
        }
        self.app = create_app(dict(self.config))

    def worker(self, cls: str, burst: bool) -> subprocess.Popen[bytes]:
        env = {**os.environ, **{k: str(v) for k, v in self.config.items()}, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, cls, "burst" if burst else "run"],
                                env=env, cwd=ROOT)

    def close(self) -> None:
        queue = self.app.extensions["buurtlijn.jobs"]
        for name in queue.queue_names:
            queue.redis.delete(f"rq:queue:{name}")
        get_database(self.app).dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def throughput(fake: FakeTwilio, count: int, cls: str, together: bool, budget: float = 60) -> tuple[int, float]:
    """(messages sent, notifications per second) of one worker process draining ``count`` messages.

    ``together``: all committed in one transaction (a sweep of reminders; their
    jobs are batched), else each in its own (one RQ job per message).
    """
    fake.reset()
    run = Run(fake)
    try:
        db = get_database(run.app)
        with run.app.app_context():
            session = db.session()
            try:
                for n in range(count):
                    resident = resident_for(session, parse_phone(f"+3161{n:07d}"))
                    queue_sms(session, resident, f"Bericht {n} van BUUV.", purpose="bench", dedupe_key=f"bench:{n}")
                    if not together:
                        session.commit()
                session.commit()
            finally:
                session.close()
        worker = run.worker(cls, burst=True)
        # A slow worker class is measured over what it sends within the budget.
        fake.wait_for(count, timeout=budget)
        worker.terminate()
        worker.wait(30)
        times = sorted(r.at for r in fake.requests if r.method == "POST")
        sent = len(fake.messages())
        assert sent == len({m["Body"] for m in fake.messages()}), "a message was sent twice"
        return sent, (sent - 1) / (times[-1] - times[0])
    finally:
        run.close()


def latency(fake: FakeTwilio, proposals: int, cls: str) -> list[float]:
    fake.reset()
    run = Run(fake)
    worker = run.worker(cls, burst=False)
    delays: list[float] = []
    try:
        db = get_database(run.app)
        time.sleep(3)  # the worker is up and idle
        for n in range(proposals):
            with run.app.app_context():
                with db.transaction() as session:
                    requester = resident_for(session, parse_phone(f"+3162{n:07d}"))
                    helper = resident_for(session, parse_phone(f"+3163{n:07d}"))
                    requester.opted_out = True  # only the helper's SMS is timed
                    request = record_listing(session, requester, kind="request", channel="broker",
                                             postcode="2034", queue_for_broker=False)
                    offer = record_listing(session, helper, kind="offer", channel="broker",
                                           postcode="2034", queue_for_broker=False)
                    session.flush()
                    request_id, offer_id, to = request.id, offer.id, helper.phone
                session = db.session()
                try:
                    propose_match(session, request_id, offer_id, config=run.app.config)
                    started = time.time()
                    session.commit()  # the broker's click: enqueued after commit
                finally:
                    session.close()
            if not fake.wait_for(lambda f: any(m["To"] == to for m in f.messages()), timeout=20):
                raise SystemExit("a proposal never reached the fake Twilio")
            arrived = next(r.at for r in fake.requests if r.form.get("To") == to)
            delays.append(arrived - started)
            time.sleep(0.2)
        return delays
    finally:
        worker.terminate()
        worker.wait(20)
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--proposals", type=int, default=30)
    parser.add_argument("--worker", action="append", choices=("Worker", "SimpleWorker"),
                        help="worker class to measure (repeatable; default both)")
    args = parser.parse_args()
    classes = args.worker or ["Worker", "SimpleWorker"]
    # Keep-alive, as api.twilio.com: the worker's pooled connection is reused.
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, keep_alive=True) as fake:
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        for cls in classes:
            for together in (False, True):
                sent, rate = throughput(fake, args.messages, cls, together)
                how = "committed together" if together else "each its own commit"
                print(f"throughput  {cls:<12} {sent} of {args.messages} SMS ({how}) sent by one worker process: "
                      f"{rate:7.1f} notifications/s")
        for cls in classes:
            delays = sorted(latency(fake, args.proposals, cls))
            p50 = statistics.median(delays)
            p95 = delays[min(len(delays) - 1, int(round(0.95 * len(delays))) - 1)]
            print(f"latency     {cls:<12} propose -> helper's SMS at Twilio, idle queue: "
                  f"p50 {p50 * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms, max {delays[-1] * 1000:6.1f} ms "
                  f"({len(delays)} proposals)")


if __name__ == "__main__":
    main()
