"""Events for the marketplace: how fast one worker delivers, and how soon after the commit.

    python -m bench.events [--events 2000] [--latency 50]

1. Throughput: ``--events`` listings are committed, each in its own transaction
   (so each writes its event and defers its delivery job, as the SMS jobs and
   the dashboard do), while no worker runs; then ONE ``buurtlijn worker``
   process (RQ's ``SimpleWorker`` with its scheduler, as the Procfile runs it)
   delivers them to a local receiver (scripts/event_receiver.py, which
   verifies every signature and answers 204 at once). events/s = events /
   (last arrival - first arrival).
2. Latency: with the worker idle, one listing is committed at a time; the
   delay runs from just before its commit to the receiver taking its event.
   p50 / p95 over ``--latency`` listings.

Production settings: a fresh PostgreSQL database built by the migrations,
Redis (database 14, a queue prefix of this run, emptied afterwards).
Targets: at least 200 events/s; p50 below 1 s.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
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
from models.marketplace import record_listing  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.phones import parse_phone  # noqa: E402
from models.residents import resident_for  # noqa: E402

PG_ADMIN_URL = os.environ.get("BUURTLIJN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BUURTLIJN_BENCH_REDIS", "redis://127.0.0.1:6379/14")
SECRET = "whsec_" + base64.b64encode(b"buurtlijn-bench-webhook-secret!!").decode()


def _receiver_class() -> Any:
    spec = importlib.util.spec_from_file_location("event_receiver", ROOT / "scripts" / "event_receiver.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["event_receiver"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.EventReceiver


EventReceiver = _receiver_class()


class Run:
    """One database, one queue prefix, one receiver and (when started) one worker process."""

    def __init__(self, receiver: Any):
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
            "TWILIO_ACCOUNT_SID": "AC" + "b2" * 16, "TWILIO_AUTH_TOKEN": "bench-auth-token",
            "TWILIO_PHONE_NUMBER": "+3197010520000", "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
            "BUURTLIJN_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}", "BUURTLIJN_SWEEP_SECONDS": 30,
            "BUURTLIJN_WEBHOOK_URL": receiver.url, "BUURTLIJN_WEBHOOK_SECRET": SECRET,
        }
        self.app = create_app(dict(self.config))
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        env = {**os.environ, **{k: str(v) for k, v in self.config.items()}, "PYTHONPATH": str(ROOT),
               "LOG_LEVEL": "WARNING"}
        self.worker = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=env, cwd=ROOT)

    def add_listing(self, n: int) -> None:
        """One listing in its own transaction; its event goes with it."""
        with self.app.app_context(), get_database(self.app).transaction() as session:
            resident = resident_for(session, parse_phone(f"+3161{n:07d}"))
            record_listing(session, resident, kind="offer", channel="broker", postcode="2034",
                           queue_for_broker=False)

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(20)
        queue = self.app.extensions["buurtlijn.jobs"]
        for name in queue.queue_names:
            queue.redis.delete(f"rq:queue:{name}")
        get_database(self.app).dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process (and its waited-for children) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def throughput(count: int) -> tuple[int, float, int, float]:
    """(events delivered, events per second, events delivered twice, the worker's CPU ms per event).

    The CPU per event says what the worker could do on a core of its own, whatever else runs.
    """
    with EventReceiver(SECRET) as receiver:
        run = Run(receiver)
        try:
            for n in range(count):
                run.add_listing(n)
            run.start_worker()
            assert run.worker is not None
            time.sleep(0.5)
            cpu_before = cpu_seconds(run.worker.pid)  # its start-up is not delivery
            wait_for(lambda: len(receiver.verified()) >= count, timeout=120)
            cpu = cpu_seconds(run.worker.pid) - cpu_before
            got = receiver.verified()
            times = sorted(r.at for r in got)
            twice = len(got) - len({r.webhook_id for r in got})
            return len(got), (len(got) - 1) / (times[-1] - times[0]), twice, cpu * 1000 / max(len(got), 1)
        finally:
            run.close()


def latency(count: int) -> list[float]:
    with EventReceiver(SECRET) as receiver:
        run = Run(receiver)
        try:
            run.start_worker()
            time.sleep(3)  # the worker is up and idle
            delays = []
            for n in range(count):
                seen = len(receiver.verified())
                started = time.time()
                run.add_listing(n)
                if not wait_for(lambda: len(receiver.verified()) > seen, timeout=30):
                    raise SystemExit("an event never reached the receiver")
                delays.append(receiver.verified()[seen].at - started)
                time.sleep(0.1)
            return delays
        finally:
            run.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    delivered, rate, twice, cpu_ms = throughput(args.events)
    print(f"throughput  {delivered} of {args.events} events (each its own commit) delivered by one worker "
          f"process: {rate:7.1f} events/s, {twice} delivered twice; the worker's CPU {cpu_ms:.2f} ms an event "
          f"(load average {os.getloadavg()[0]:.1f})")
    delays = sorted(latency(args.latency))
    p50 = statistics.median(delays)
    p95 = delays[min(len(delays) - 1, int(round(0.95 * len(delays))) - 1)]
    print(f"latency     commit -> verified at the receiver, idle worker: p50 {p50 * 1000:6.1f} ms, "
          f"p95 {p95 * 1000:6.1f} ms, max {delays[-1] * 1000:6.1f} ms ({len(delays)} events)")
    if delivered < args.events or twice:
        return 1
    return 0 if rate >= 200 and p50 < 1.0 else 2


if __name__ == "__main__":
    sys.exit(main())
