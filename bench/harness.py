"""Shared machinery of the webhook benchmarks: servers, load generators, results.

Every benchmark runs the gateway (``gateway:create_app()``) and the bare floor
(``bench.bare_app:app``) side by side under the SAME gunicorn settings
(:data:`GUNICORN`), each on its own free port, with production configuration:
a fresh PostgreSQL database built by the migrations, Redis for the job queue
(its own database index and queue prefix, emptied afterwards), Twilio pointed
at the local fake (``python -m tests.fake_twilio``), signatures checked against
``PUBLIC_BASE_URL``.

Two load generators:

* :func:`wrk_fixed_count` - maximum throughput, closed loop. ``wrk`` (C, one
  thread) sends a fixed list of pre-signed requests, each exactly once, and
  stops when every one has been answered; requests/s = answered / elapsed.
  A fixed count (rather than a fixed duration) means no request is abandoned
  in flight, so "answered 200" is exact and can be compared with what the
  database stored.
* :func:`paced_latency` - latency at a steady rate, open loop. Each request
  has a scheduled send time (``i / rate``) and is sent then whether or not
  earlier ones have been answered; latency runs from the scheduled time, so a
  stalled server cannot hide its stall (no coordinated omission).

No worker (RQ or the NOTIFY dispatcher) runs during the load: the webhook's
work ends when its transaction commits, and a worker would take CPU from the
server being measured on this 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"

PG_ADMIN_URL = os.environ.get("BUURTLIJN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# A Redis database index of its own: RQ's job keys (rq:job:<id>) are not
# namespaced by the queue prefix, so the bench's jobs must not sit where a test
# run could trip over the same deterministic job ids.
REDIS_URL = os.environ.get("BUURTLIJN_BENCH_REDIS", "redis://127.0.0.1:6379/13")

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-auth-token-" + "0123456789abcdef"
GATEWAY_NUMBER = "+3197010520000"
# Production sits behind a proxy: Twilio signs the public https URL.
PUBLIC_BASE_URL = "https://buurtlijn.bench.invalid"
FILLER_PATH = "/__bench_filler"
# What gunicorn serves as the gateway: the Procfile's app. Overridable only to
# try out a change to the hot path under the very same harness.
GATEWAY_APP = os.environ.get("BENCH_GATEWAY_APP", "gateway:create_app()")
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class GunicornSettings:
    """One set of server settings, used for the gateway and the bare floor alike."""

    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 16
    backlog: int = 2048

    def args(self) -> list[str]:
        args = ["--workers", str(self.workers), "--worker-class", self.worker_class, "--backlog", str(self.backlog)]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args

    def describe(self) -> str:
        return " ".join(self.args()) + " --access-logfile <file>"


# The Procfile's settings, chosen by measurement on the 2-core bench machine
# (see bench/README.md): one process per core with 16 threads each. The
# webhook's wall time is mostly PostgreSQL's commit (fsync); threads overlap
# those waits (sync workers cannot), and 16 gave twice the throughput of 4.
# BENCH_* override it, for both apps alike.
GUNICORN = GunicornSettings(
    workers=int(os.environ.get("BENCH_WORKERS", "2")),
    worker_class=os.environ.get("BENCH_WORKER_CLASS", "gthread"),
    threads=int(os.environ.get("BENCH_THREADS", "16")),
)


def machine_facts() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": _first_line([shutil.which("wrk") or "wrk", "--version"]),
        "postgresql": _first_line(["psql", "--version"]),
        "redis": _first_line(["redis-server", "--version"]),
        "gunicorn": GUNICORN.describe(),
    }


def _first_line(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return "not found"
    return (completed.stdout or completed.stderr).strip().splitlines()[0] if (completed.stdout or completed.stderr) else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


# --- PostgreSQL ------------------------------------------------------------------------


class BenchDatabase:
    """A fresh PostgreSQL database built by the migrations; dropped afterwards. With ``keep_as``, a
    database of that name is kept between runs instead (made when missing, brought up to date)."""

    def __init__(self, label: str, keep_as: str | None = None):
        self.name = keep_as or f"buurtlijn_bench_{label}_{uuid.uuid4().hex[:8]}"
        self.kept = keep_as is not None
        self.url = make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self._engine: Any = None

    def create(self) -> "BenchDatabase":
        from models.migrate import upgrade

        with self._admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": self.name}).first()
            if not (self.kept and exists):
                connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self._engine = create_engine(self.url)
        upgrade(self._engine)
        return self

    def scalar(self, sql: str, **params: Any) -> Any:
        with self._engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()

    def backend_pids(self) -> list[int]:
        """The server processes serving connections to this database (the app's pool)."""
        with self._admin.connect() as connection:
            rows = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                      {"name": self.name})
            return [int(row[0]) for row in rows]

    def inbound_messages(self) -> int:
        return int(self.scalar("SELECT count(*) FROM messages WHERE direction = 'inbound'"))

    def drop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self.kept:
            self._admin.dispose()
            return
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


# --- processes ---------------------------------------------------------------------------


class Server:
    """A child process listening on a port: gunicorn, or the fake Twilio."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Gunicorn(Server):
    """gunicorn serving one WSGI app with :data:`GUNICORN`'s settings and an access log.

    The access log (the Procfile logs access too) tells, server side, which
    status every request got, even one whose client had gone.
    """

    def __init__(self, name: str, app_spec: str, env: dict[str, str], log_dir: Path):
        port = free_port()
        self.access_log = log_dir / f"{name}.access.log"
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN.args(),
            "--access-logfile", str(self.access_log), "--access-logformat", '%(m)s %(U)s %(s)s',
            "--log-level", "warning", "--timeout", "60", app_spec,
        ]
        super().__init__(name, command, env, port, log_dir)

    def access_counts(self, path: str) -> dict[str, int]:
        """How many requests to ``path`` got each status, from the access log."""
        counts: dict[str, int] = {}
        if not self.access_log.exists():
            return counts
        for line in self.access_log.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == path:
                counts[parts[2]] = counts.get(parts[2], 0) + 1
        return counts


def _clean_env() -> dict[str, str]:
    """The inherited environment without any Twilio/Buurtlijn settings of the shell."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "BUURTLIJN_", "DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class BenchEnvironment:
    """Everything one benchmark run needs; use :func:`bench_environment`."""

    database: BenchDatabase
    fake_twilio: Server
    gateway: Gunicorn
    bare: Gunicorn
    queue_prefix: str
    log_dir: Path

    def cpu(self, server: Server) -> CpuMeter:
        """What ``server`` costs in CPU; the bare floor touches no database."""
        return CpuMeter(server, self.database if server is self.gateway else None)


@contextmanager
def bench_environment(label: str, keep_database: str | None = None) -> Iterator[BenchEnvironment]:
    """Start PostgreSQL database, fake Twilio, the gateway and the bare floor; tear all down after
    (all but a database kept by name, ``keep_database``)."""
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    log_dir = Path(tempfile.mkdtemp(prefix=f"buurtlijn-bench-{label}-"))
    queue_prefix = f"buurtlijn-bench-{label}-{uuid.uuid4().hex[:8]}"
    database = BenchDatabase(label, keep_database).create()
    started: list[Server] = []
    try:
        fake_port = free_port()
        fake = Server(
            "fake_twilio",
            [sys.executable, "-m", "tests.fake_twilio", "--port", str(fake_port), "--account-sid", ACCOUNT_SID,
             "--auth-token", AUTH_TOKEN],
            _clean_env(), fake_port, log_dir,
        ).start()
        started.append(fake)
        env = _clean_env() | {
            "DATABASE_URL": database.url,
            "REDIS_URL": REDIS_URL,
            "BUURTLIJN_QUEUE_PREFIX": queue_prefix,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": GATEWAY_NUMBER,
            "TWILIO_API_BASE_URL": fake.base_url,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "SECRET_KEY": "bench-secret-" + uuid.uuid4().hex,
            "BUURTLIJN_API_TOKEN": "bench-api-token",
        }
        gateway = Gunicorn("gateway", GATEWAY_APP, env, log_dir)
        bare = Gunicorn("bare", "bench.bare_app:app", env, log_dir)
        for server in (gateway, bare):
            server.start()
            started.append(server)
        yield BenchEnvironment(database, fake, gateway, bare, queue_prefix, log_dir)
    finally:
        for server in reversed(started):
            server.stop()
        database.drop()
        removed = clear_redis(queue_prefix)
        kept = " kept" if database.kept else ""
        print(f"  (cleaned up: database {database.name}{kept}, {removed} Redis keys; logs in {log_dir})")


def clear_redis(queue_prefix: str) -> int:
    """Delete the queues this run filled and the jobs in them."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    removed = 0
    queue_keys = [key for key in connection.scan_iter(match=f"rq:*{queue_prefix}*", count=1000)]
    for key in queue_keys:
        if key.startswith(b"rq:queue:"):
            job_ids = connection.lrange(key, 0, -1)
            for start in range(0, len(job_ids), 500):
                chunk = [b"rq:job:" + job_id for job_id in job_ids[start:start + 500]]
                removed += connection.delete(*chunk)
                removed += connection.delete(*[k + b":dependents" for k in chunk])
    if queue_keys:
        removed += connection.delete(*queue_keys)
    connection.srem("rq:queues", *[b"rq:queue:" + name.encode() for name in _queue_names(queue_prefix)])
    connection.close()
    return removed


def _queue_names(prefix: str) -> list[str]:
    from workers.queue import QUEUE_NAMES

    return [f"{prefix}-{name}" for name in QUEUE_NAMES]


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request as Twilio sends it: form-encoded, signed for the public URL."""

    path: str  # path and query, as sent
    body: str  # form-encoded
    signature: str
    method: str = "POST"

    def raw(self, host: str) -> bytes:
        """The whole HTTP/1.1 request, closing the connection after the answer."""
        body = self.body.encode()
        head = (
            f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: TwilioProxy/1.1\r\n"
            f"Content-Type: {FORM_TYPE}\r\nContent-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {self.signature}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


def signed_request(path: str, params: dict[str, str]) -> SignedRequest:
    from urllib.parse import urlencode

    from gateway.twilio_sim import sign

    return SignedRequest(path=path, body=urlencode(params), signature=sign(PUBLIC_BASE_URL + path, params, AUTH_TOKEN))


def dutch_mobile(index: int) -> str:
    """A distinct, valid Dutch mobile number per index (+316 and eight digits)."""
    return f"+316{20000000 + index:08d}"


# --- wrk: maximum throughput -----------------------------------------------------------------

_WRK_SCRIPT = r"""
-- Fixed-count load: every line of the request file is sent exactly once
-- (thread t takes lines t, t+n, ...). When a thread has sent all of its own,
-- its connections send a cheap filler (GET of an unknown path: 404/405) until
-- the last real answer is in; then the thread stops and says so on stdout,
-- and the harness interrupts wrk's fixed-duration sleep (SIGINT).
-- Elapsed time is the thread's own: first real request to last real answer.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[2])
  expect = args[3]
  if expect == "" then expect = nil end
  local headers_close = args[4] == "close"
  -- With one connection per thread, answers come in the order of the requests:
  -- the action each answer leads to is written next to its request's line number.
  if args[5] ~= "" then record = io.open(args[5] .. "." .. tid, "w") end
  reqs = {}
  lines = {}
  current = -1
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then
      lines[#reqs + 1] = i
      local method, path, sig, body = line:match("^(%S+)\t(%S+)\t(%S*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
        ["User-Agent"] = "TwilioProxy/1.1",
      }
      if headers_close then headers["Connection"] = "close" end
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
    end
    i = i + 1
  end
  filler = wrk.format("GET", "__FILLER__")
  idx = 0
  sent = 0
  ok = 0
  bad = 0
  unexpected = 0
  fillers = 0
  answered = 0
  started_us = 0
  finished_us = 0
  -- wrk calls request() once on thread 0 right after init to inspect it
  -- (script_verify_request); that request is never sent, so do not use one up.
  verifying = (tid == 0)
  if #reqs == 0 then finish() end
end

function finish()
  if record then record:close() record = nil end
  finished_us = now_us()
  if started_us == 0 then started_us = finished_us end
  io.write("WRKDONE " .. tid .. "\n")
  io.flush()
  wrk.thread:stop()
end

function request()
  if verifying then
    verifying = false
    return reqs[1] or filler
  end
  if idx < #reqs then
    if idx == 0 then started_us = now_us() end
    idx = idx + 1
    sent = sent + 1
    current = lines[idx]
    return reqs[idx]
  end
  fillers = fillers + 1
  return filler
end

function response(status, headers, body)
  if status == 404 or status == 405 then
    return
  end
  answered = answered + 1
  if status == 200 then
    ok = ok + 1
    if expect and not string.find(body, expect, 1, true) then unexpected = unexpected + 1 end
    if record then
      local action = string.match(body, 'action="([^"]*)"') or string.match(body, "<Redirect[^>]*>([^<]*)</Redirect>")
      record:write(current .. "\t" .. (action or "") .. "\n")
    end
  else
    bad = bad + 1
  end
  if answered == #reqs then finish() end
end

function done(summary, latency, requests)
  local s, o, b, u, f = 0, 0, 0, 0, 0
  local first, last = nil, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    o = o + t:get("ok")
    b = b + t:get("bad")
    u = u + t:get("unexpected")
    f = f + t:get("fillers")
    local st, fi = t:get("started_us"), t:get("finished_us")
    if fi == 0 then fi = now_us() end
    if first == nil or st < first then first = st end
    if fi > last then last = fi end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"sent": %d, "ok": %d, "bad": %d, "unexpected": %d, "fillers": %d, "elapsed_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    s, o, b, u, f, last - first, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("__FILLER__", FILLER_PATH)


@dataclass
class ThroughputResult:
    sent: int
    ok: int
    bad: int
    unexpected: int
    seconds: float
    requests_per_s: float
    closed_loop_p50_ms: float
    closed_loop_p99_ms: float
    errors: int
    connections: int
    # CPU time per answered request, by process group (None: not measured).
    cpu_ms_per_request: dict[str, float] | None = None


def wrk_fixed_count(
    base_url: str,
    requests: Sequence[SignedRequest],
    *,
    connections: int = 16,
    threads: int = 1,
    expect: str = "",
    max_seconds: int = 120,
    cpu: "CpuMeter | None" = None,
    fresh_connections: bool = False,
    next_actions: dict[int, str] | None = None,
) -> ThroughputResult:
    """Send each request once with wrk; requests/s = answered / elapsed.

    ``expect``: a string every 200 answer must contain (counted as
    ``unexpected`` otherwise), e.g. the next step's action URL. ``cpu``:
    also measure the CPU time the server's processes spent per request.
    ``next_actions``: filled with the action URL (as written in the XML; ""
    for none) of each 200 answer, by the request's index. wrk then runs one
    connection per thread, so that answers pair with their requests.
    """
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="buurtlijn-wrk-") as folder:
        request_file = Path(folder) / "requests.tsv"
        with request_file.open("w") as out:
            for item in requests:
                out.write(f"{item.method}\t{item.path}\t{item.signature}\t{item.body}\n")
        script = Path(folder) / "fixed_count.lua"
        script.write_text(_WRK_SCRIPT)
        record = Path(folder) / "next"
        if next_actions is not None:
            threads = connections
        before = cpu.sample() if cpu else None
        command = [
            "wrk", "--threads", str(threads), "--connections", str(max(connections, threads)),
            "--duration", f"{max_seconds}s", "--timeout", "10s", "--script", str(script), base_url,
            "--", str(request_file), str(threads), expect, "close" if fresh_connections else "keep",
            str(record) if next_actions is not None else "",
        ]
        output, returncode = _run_wrk(command, threads, max_seconds)
        after = cpu.sample() if cpu else None
        if next_actions is not None:
            for part in Path(folder).glob("next.*"):
                for line in part.read_text().splitlines():
                    index, _, action = line.partition("\t")
                    next_actions[int(index)] = action
    line = next((ln for ln in output.splitlines() if ln.startswith("WRKJSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({returncode}):\n{output}")
    data = json.loads(line[len("WRKJSON "):])
    if data["ok"] + data["bad"] < data["sent"]:
        raise RuntimeError(f"wrk: {data['sent'] - data['ok'] - data['bad']} requests got no answer "
                           f"within {max_seconds} s: {data}")
    seconds = data["elapsed_us"] / 1e6
    errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    return ThroughputResult(
        sent=data["sent"], ok=data["ok"], bad=data["bad"], unexpected=data["unexpected"], seconds=round(seconds, 3),
        requests_per_s=round(data["ok"] / seconds, 1) if seconds else 0.0,
        closed_loop_p50_ms=round(data["p50_us"] / 1000, 2), closed_loop_p99_ms=round(data["p99_us"] / 1000, 2),
        errors=errors, connections=connections,
        cpu_ms_per_request=CpuMeter.per_request(before, after, data["ok"]) if before and after else None,
    )


class CpuMeter:
    """CPU seconds (user + system) spent by the processes that serve one app.

    On a shared machine throughput moves with everything else that runs;
    the CPU a request costs moves far less, so it is reported next to it.
    Groups: the gunicorn master and its workers; the PostgreSQL backends
    connected to the bench database; the Redis server (shared, approximate).
    """

    def __init__(self, server: "Server", database: "BenchDatabase | None"):
        self.server = server
        self.database = database

    def sample(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"gunicorn": {}, "postgresql": {}, "redis": {}}
        if self.server.process is not None:
            master = self.server.process.pid
            for pid in [master, *_children(master)]:
                groups["gunicorn"][pid] = _cpu_seconds(pid)
        if self.database is not None:
            for pid in self.database.backend_pids():
                groups["postgresql"][pid] = _cpu_seconds(pid)
        for pid in _pids_named("redis-server"):
            groups["redis"][pid] = _cpu_seconds(pid)
        return groups

    @staticmethod
    def per_request(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                    requests: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for group, pids in after.items():
            spent = sum(seconds - before.get(group, {}).get(pid, 0.0) for pid, seconds in pids.items())
            out[group] = round(1000 * spent / requests, 3) if requests else 0.0
        out["total"] = round(sum(out.values()), 3)
        return out


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == name:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _run_wrk(command: list[str], threads: int, max_seconds: int) -> tuple[str, int]:
    """Run wrk; once every thread has its answers, cut its fixed-duration sleep short."""
    import signal

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    finished = 0
    deadline = time.monotonic() + max_seconds + 30
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("WRKDONE "):
                finished += 1
                if finished == threads:
                    process.send_signal(signal.SIGINT)  # wrk then joins its threads and reports
            if time.monotonic() > deadline:
                break
        return "".join(lines), process.wait(30)
    finally:
        if process.poll() is None:  # interrupted or overdue: never leave wrk running
            process.kill()
            process.wait(5)


# --- paced, open-loop latency -------------------------------------------------------------------


@dataclass
class LatencyResult:
    sent: int
    ok: int
    statuses: dict[str, int]
    rate_per_s: float
    achieved_rate_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latencies_ms")
        return data


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 is a latency some request really had)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_result(samples: Sequence[tuple[float, int]], rate: float, span: float) -> LatencyResult:
    """``samples``: (latency seconds, HTTP status; 0 = no answer)."""
    statuses: dict[str, int] = {}
    for _, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ms = [latency * 1000 for latency, _ in samples]
    return LatencyResult(
        sent=len(samples), ok=statuses.get("200", 0), statuses=statuses, rate_per_s=rate,
        achieved_rate_per_s=round(len(samples) / span, 1) if span > 0 else 0.0,
        p50_ms=round(percentile(ms, 50), 2), p90_ms=round(percentile(ms, 90), 2),
        p99_ms=round(percentile(ms, 99), 2), max_ms=round(max(ms), 2) if ms else float("nan"),
        mean_ms=round(statistics.fmean(ms), 2) if ms else float("nan"), latencies_ms=ms,
    )


async def http_exchange(port: int, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body). Status 0: no answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            writer.write(raw)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(-1), timeout)
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError):
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0, b""
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


async def _paced(port: int, raws: Sequence[bytes], rate: float) -> tuple[list[tuple[float, int]], float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    samples: list[tuple[float, int]] = [(0.0, 0)] * len(raws)

    async def one(index: int, scheduled: float) -> None:
        status, _ = await http_exchange(port, raws[index])
        samples[index] = (loop.time() - scheduled, status)

    tasks = []
    for index in range(len(raws)):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    return samples, loop.time() - start


def paced_latency(port: int, requests: Sequence[SignedRequest], rate: float) -> LatencyResult:
    """Send ``requests`` at a steady ``rate`` (open loop); latency from each scheduled send time."""
    host = f"127.0.0.1:{port}"
    raws = [item.raw(host) for item in requests]
    samples, _ = asyncio.run(_paced(port, raws, rate))
    return latency_result(samples, rate, len(raws) / rate)


# --- output ----------------------------------------------------------------------------------------


def connections_line(settings: dict[str, Any]) -> str:
    """How the throughput load reached the servers."""
    if settings.get("fresh_connections", False):
        return f"throughput: {settings['connections']} clients at once, each request on a connection of its own"
    return f"throughput: {settings['connections']} kept-alive connections (--kept-alive)"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = [" | ".join(str(h).ljust(w) for h, w in zip(headers, widths)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def _numeric(text_: str) -> bool:
    return text_.replace(",", "").replace(".", "").replace("x", "").replace("-", "").isdigit()


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def verdict_lines(results: dict[str, Any]) -> list[str]:
    """The count mismatches (if any) and one PASS/MISS line per target."""
    lines = [f"!! COUNT MISMATCH: {problem}" for problem in results["counts"]["problems"]]
    return lines + [""] + [f"  {'PASS' if met else 'MISS'}  {target}" for target, met in results["targets"].items()]


def finish(name: str, results: dict[str, Any], report: str, mismatch: str) -> int:
    """Print the report, keep the JSON; exit status 1 for a count mismatch, 2 for a missed target."""
    print(report)
    path = write_result(name, results)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if results["counts"]["problems"]:
        print(f"FAILED: {mismatch}", file=sys.stderr)
        return 1
    return 0 if all(results["targets"].values()) else 2


class BenchFailure(SystemExit):
    """A target missed or a count that does not add up: the run exits non-zero."""


def load_average() -> tuple[float, float, float]:
    """The machine's 1/5/15-minute load: other work on it makes every figure noisier."""
    return os.getloadavg()
