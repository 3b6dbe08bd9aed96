"""Run every webhook benchmark and print one summary.

    python -m bench.run_all           # or bench/run_all.sh; about 4 minutes
    python -m bench.run_all --only sms

Exit status: 1 if stored rows do not match what was sent (something was
lost), 2 if a performance target was missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from . import harness, sms_webhook, voice_call

# name: (run, report, result file name)
BENCHMARKS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str], str]] = {
    "sms": (sms_webhook.run, sms_webhook.report, "sms_webhook"),
    "voice": (voice_call.run, voice_call.report, "voice_call"),
}


def summary(results: dict[str, dict[str, Any]]) -> str:
    facts = harness.machine_facts()
    lines = ["", "=" * 100, "Summary", "=" * 100,
             f"machine: {facts['nproc']} cores, Python {facts['python']}, {facts['postgresql']}, {facts['redis']}",
             f"gunicorn (gateway and bare floor alike): {facts['gunicorn']}", ""]
    rows = []
    if "sms" in results:
        sms = results["sms"]
        tp, lat = sms["throughput"], sms["latency"]
        rows.append(["POST /twilio/sms", tp["gateway"]["requests_per_s"], tp["bare"]["requests_per_s"],
                     f"{tp['ratio']:.2f}x", lat["gateway"]["p50_ms"], lat["gateway"]["p99_ms"],
                     lat["bare"]["p50_ms"], lat["bare"]["p99_ms"]])
    if "voice" in results:
        for step in results["voice"]["steps"]:
            rows.append([f"voice: {step['label']}", step["gateway"]["requests_per_s"], step["bare"]["requests_per_s"],
                         f"{step['ratio']:.2f}x", step["latency_gateway"]["p50_ms"],
                         step["latency_gateway"]["p99_ms"], step["latency_bare"]["p50_ms"],
                         step["latency_bare"]["p99_ms"]])
    lines.append(harness.table(["webhook", "gateway req/s", "bare req/s", "ratio", "gw p50 ms", "gw p99 ms",
                                "bare p50 ms", "bare p99 ms"], rows))
    lines.append("(throughput: wrk, closed loop; latency: open loop at a steady 100 requests/s)")
    if "sms" in results:
        c = results["sms"]["counts"]
        lines.append(f"SMS: sent {c['requests_sent']}, answered 200 {c['answered_200_client']}, "
                     f"stored {c['inbound_messages_stored']}")
    if "voice" in results:
        v = results["voice"]
        c = v["counts"]
        lines.append(f"Voice: {v['calls_per_second']['gateway']} calls/s sustained by the gateway "
                     f"(bare floor {v['calls_per_second']['bare']}); calls {c['calls_started']}, stored "
                     f"{c['call_rows']} calls and {c['voice_listings_with_recording']} listings with recording")
    lines.append("")
    for name, result in results.items():
        for target, met in result["targets"].items():
            lines.append(f"  {'PASS' if met else 'MISS'}  {name}: {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only this one (repeatable)")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for name in args.only or list(BENCHMARKS):
        run, report, file_name = BENCHMARKS[name]
        print(f"\n### {name} (load average {harness.load_average()[0]:.1f})", flush=True)
        results[name] = run()
        print(report(results[name]), flush=True)
        path = harness.write_result(file_name, results[name])
        print(f"results: {path.relative_to(harness.ROOT)}")
    print(summary(results))
    print(f"\n(all benchmarks: {time.monotonic() - started:.0f} s)")
    if any(result["counts"]["problems"] for result in results.values()):
        print("FAILED: stored rows do not match what was sent", file=sys.stderr)
        return 1
    return 0 if all(all(r["targets"].values()) for r in results.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
