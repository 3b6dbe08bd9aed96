"""What a voice step costs when more threads of one process take steps at once.

    python -m bench.voice_threads            # 1, 4, 8 and 16 threads (about 1 minute)
    python -m bench.voice_threads 4 16

No HTTP server: the gateway's WSGI app is called directly, in one process,
by N threads that share the calls of a step (on PostgreSQL, with the
production code path: signed requests, the sealed call state, one write per
step). Each thread count gets calls of its own, walked to the same step
first. Printed per thread count: steps/s, the process's CPU per step and
the PostgreSQL backends' CPU per step.

This is what chose the Procfile's threads per gunicorn worker: a step waits
for PostgreSQL once (the commit), and while it waits another thread takes
Python's lock. Up to a few threads per process that overlap is free; past
that, the threads mostly hand the lock back and forth, and every step costs
more CPU while fewer get done.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import threading
import time
from typing import Any

from . import harness
from .voice_call import VOICE_PATH, Caller, ScriptStep, _next_move, callers

STEPS_BEFORE = 2  # measured: the third webhook of each call (the category), after the welcome and main menu


def _environ(request: harness.SignedRequest) -> dict[str, Any]:
    path, _, query = request.path.partition("?")
    body = request.body.encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "CONTENT_TYPE": harness.FORM_TYPE, "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_TWILIO_SIGNATURE": request.signature,
    }


def _post(app: Any, request: harness.SignedRequest) -> str:
    statuses: list[str] = []
    body = b"".join(app(_environ(request), lambda status, headers, exc_info=None: statuses.append(status)))
    if not statuses or not statuses[0].startswith("200"):
        raise harness.BenchFailure(f"{request.path}: {statuses}")
    return body.decode()


def _backend_cpu(database: harness.BenchDatabase) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in database.backend_pids():
        try:
            fields = open(f"/proc/{pid}/stat").read().split()
        except FileNotFoundError:
            continue
        total += (int(fields[13]) + int(fields[14])) / ticks
    return total


def measure(app: Any, database: harness.BenchDatabase, group: list[Caller], threads: int) -> dict[str, float]:
    moves = {caller.call_sid: ("incoming", VOICE_PATH, {"CallStatus": "ringing"}) for caller in group}

    def request(caller: Caller) -> harness.SignedRequest:
        kind, path, extra = moves[caller.call_sid]
        return ScriptStep("step", path, kind, tuple(extra.items())).request(caller.call_sid, caller.from_)

    for _ in range(STEPS_BEFORE):  # to the step measured, one thread
        for caller in group:
            document = _post(app, request(caller))
            move = _next_move(document, moves[caller.call_sid][1])
            if move is None:
                raise harness.BenchFailure("the call ended before the measured step")
            moves[caller.call_sid] = move
    requests = [request(caller) for caller in group]

    def work(offset: int) -> None:
        for index in range(offset, len(requests), threads):
            _post(app, requests[index])

    workers = [threading.Thread(target=work, args=(offset,)) for offset in range(threads)]
    backend_before, cpu_before, started = _backend_cpu(database), time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    cpu, backend = time.process_time() - cpu_before, _backend_cpu(database) - backend_before
    return {"threads": threads, "steps_per_s": round(len(requests) / seconds),
            "app_cpu_ms": round(cpu / len(requests) * 1000, 3),
            "postgresql_cpu_ms": round(backend / len(requests) * 1000, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("threads", nargs="*", type=int, default=[1, 4, 8, 16])
    parser.add_argument("--calls", type=int, default=3000, help="calls per thread count")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # nothing to say per request here
    database = harness.BenchDatabase("threads").create()
    saved = dict(os.environ)
    try:
        os.environ.update({
            "DATABASE_URL": database.url, "TWILIO_ACCOUNT_SID": harness.ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": harness.AUTH_TOKEN, "TWILIO_PHONE_NUMBER": harness.GATEWAY_NUMBER,
            "PUBLIC_BASE_URL": harness.PUBLIC_BASE_URL, "SECRET_KEY": "bench-threads-secret",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        })
        os.environ.pop("REDIS_URL", None)
        from gateway import create_app
        from gateway.database import get_database

        app = create_app()
        rows = []
        for number, threads in enumerate(args.threads):
            rows.append(measure(app, database, callers(args.calls, number * args.calls), threads))
            print(f"  {threads} threads: {rows[-1]}", flush=True)
        get_database(app).dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        database.drop()
    print()
    print(harness.table(["threads", "steps/s", "app CPU ms/step", "PostgreSQL CPU ms/step"],
                        [[r["threads"], r["steps_per_s"], r["app_cpu_ms"], r["postgresql_cpu_ms"]] for r in rows]))
    harness.write_result("voice_threads", {"benchmark": "voice_threads", "machine": harness.machine_facts(),
                                           "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
