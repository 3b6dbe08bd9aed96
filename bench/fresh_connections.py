"""The web server under a burst of new connections, one request each, as a proxy in front of it sends them.

    python -m bench.fresh_connections                 # 16 and 32 at once (about 30 seconds)
    python -m bench.fresh_connections 8 16 32 64

Serves the bare floor (``bench.bare_app``) with the harness's gunicorn
settings and sends it 3,000 signed requests, each on a connection of its
own, from N connections at once; prints requests/s and the closed-loop p50
and p99. Run it before changing the gunicorn version in pyproject.toml.

Why it exists: gunicorn's threaded worker was rewritten after 23.0. On this
machine, with --threads 16 and 32 new connections at once, gunicorn 27.0.1
answered 549 requests/s with a p99 of 3.1 s (a caller would hear three
seconds of silence), 26.2.0 answered 549/s, and 24.1.1 left a request
unanswered for two minutes; 23.0.0 answered 5,970/s with a p99 of 12.6 ms.
"""

from __future__ import annotations

import argparse
import sys

from . import harness
from .voice_call import ScriptStep, callers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("connections", nargs="*", type=int, default=[16, 32])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    import gunicorn

    step = ScriptStep("category", "/twilio/voice/step?s=category&n=2", "gather", (("Digits", "1"),))
    requests = [step.request(caller.call_sid, caller.from_) for caller in callers(args.requests, 0)]
    rows = []
    with harness.bench_environment("fresh") as env:
        for connections in args.connections:
            # One connection per wrk thread, each request on a new one ("Connection: close").
            result = harness.wrk_fixed_count(env.bare.base_url, requests, connections=connections,
                                             fresh_connections=True, next_actions={}, max_seconds=60)
            rows.append([connections, result.requests_per_s, result.closed_loop_p50_ms, result.closed_loop_p99_ms])
    print(f"\ngunicorn {gunicorn.__version__}, {harness.GUNICORN.describe()}, the bare floor\n")
    print(harness.table(["connections at once", "req/s", "p50 ms", "p99 ms"], rows))
    harness.write_result("fresh_connections", {"benchmark": "fresh_connections", "gunicorn": gunicorn.__version__,
                                               "machine": harness.machine_facts(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
