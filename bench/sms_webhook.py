"""Benchmark of the incoming-SMS webhook (issue 2) against the bare floor, same run.

    python -m bench.sms_webhook            # about 2.5 minutes

Measures, for ``POST /twilio/sms`` on the gateway and the same requests on
the bare Flask app (bench/bare_app.py), both under the same gunicorn settings:

1. maximum throughput (requests/s) with wrk, each request a distinct signed
   message sent exactly once; the gateway/bare ratio (target >= 0.3);
2. latency p50/p90/p99 at a steady 100 requests/s, open loop, measured from
   each request's scheduled send time (target: gateway p99 < 50 ms);
3. that PostgreSQL holds exactly as many inbound messages as requests got 200,
   client side and in gunicorn's access log (a mismatch fails the run).

Results: a table on stdout and bench/results/sms_webhook-<time>.json.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from typing import Any

from gateway.twilio_sim import new_sid, sms_params

from . import harness
from .harness import BenchEnvironment, SignedRequest

PATH = "/twilio/sms"
RATIO_TARGET = 0.3
P99_TARGET_MS = 50.0
RESIDENTS = 2000  # distinct senders the messages cycle through

# What residents text: the keywords of the contract, with and without postcode.
BODIES = (
    "VRAAG boodschappen 2034",
    "AANBOD klussen in huis 2011",
    "vraag: iemand die mee gaat naar de dokter 2025",
    "STATUS",
    "BEL",
    "REQUEST shopping 2031",
    "Goedemorgen, ik zoek iemand om mee te wandelen",
    "2034",
    "OFFER computer help",
    "HULP",
)


def sms_requests(count: int, start: int) -> list[SignedRequest]:
    """``count`` signed incoming-SMS requests, each with its own MessageSid."""
    requests = []
    for index in range(start, start + count):
        params = sms_params(
            account_sid=harness.ACCOUNT_SID,
            from_=harness.dutch_mobile(index % RESIDENTS),
            to=harness.GATEWAY_NUMBER,
            body=BODIES[index % len(BODIES)],
            message_sid=new_sid("SM"),
        )
        requests.append(harness.signed_request(PATH, params))
    return requests


class Ledger:
    """Counts what the gateway was sent and answered, to hold against the database."""

    def __init__(self, env: BenchEnvironment):
        self.env = env
        self.sent = 0
        self.ok = 0
        self.problems: list[str] = []

    def record(self, phase: str, sent: int, ok: int) -> None:
        self.sent += sent
        self.ok += ok
        stored = self.env.database.inbound_messages()
        if stored != self.ok:
            self.problems.append(f"after {phase}: {stored} inbound messages stored, {self.ok} requests got 200")

    def final(self) -> dict[str, Any]:
        stored = self.env.database.inbound_messages()
        access = self.env.gateway.access_counts(PATH)
        server_ok = access.get("200", 0)
        counts = {"requests_sent": self.sent, "answered_200_client": self.ok, "answered_200_server_log": server_ok,
                  "status_counts_server_log": access, "inbound_messages_stored": stored}
        if not (stored == self.ok == server_ok == self.sent):
            self.problems.append(
                f"sent {self.sent}, got 200 {self.ok} (server log {server_ok}), stored {stored}: must all be equal")
        counts["problems"] = list(self.problems)
        return counts


def run(
    *,
    seconds: float = 30.0,
    connections: int = 16,
    rate: float = 100.0,
    latency_seconds: float = 20.0,
    warmup: int = 1500,
    rounds: int = 5,
    fresh_connections: bool = True,
) -> dict[str, Any]:
    results: dict[str, Any] = {"benchmark": "sms_webhook", "machine": harness.machine_facts(),
                               "settings": {"seconds": seconds, "connections": connections, "rate": rate,
                                            "latency_seconds": latency_seconds, "warmup": warmup, "rounds": rounds,
                                            "fresh_connections": fresh_connections},
                               "load_average_before": list(harness.load_average())}
    made = 0

    def fresh(count: int) -> list[SignedRequest]:
        """Requests never sent before in this run (every MessageSid is new)."""
        nonlocal made
        made += count
        return sms_requests(count, made - count)

    with harness.bench_environment("sms") as env:
        ledger = Ledger(env)
        print(f"gateway {env.gateway.base_url}, bare {env.bare.base_url}; gunicorn {harness.GUNICORN.describe()}")

        # Warm-up, which also tells how many requests fill `seconds` of load.
        warm_gateway = harness.wrk_fixed_count(env.gateway.base_url, fresh(warmup), connections=connections,
                                               fresh_connections=fresh_connections)
        ledger.record("warm-up", warm_gateway.sent, warm_gateway.ok)
        warm_bare = harness.wrk_fixed_count(env.bare.base_url, sms_requests(warmup * 2, 0), connections=connections,
                                            fresh_connections=fresh_connections)
        print(f"warm-up: gateway {warm_gateway.requests_per_s:,.0f} req/s, bare {warm_bare.requests_per_s:,.0f} req/s")

        # Rounds alternate gateway and floor, so that both see the same
        # machine: on a shared box other work comes and goes. Each round
        # lasts about `seconds / rounds` for either app (sized from the
        # app's previous round). Each app's figure is its median round; the
        # ratio is the median of the rounds' own (paired) ratios, and the
        # strictest reading, the gateway's median against the floor's fastest
        # round, is reported beside it.
        round_seconds = seconds / rounds
        gateway_rate, bare_rate = warm_gateway.requests_per_s, warm_bare.requests_per_s
        bare_pool = sms_requests(5000, 0)
        gateway_rounds, bare_rounds = [], []
        for _ in range(rounds):
            gateway_run = harness.wrk_fixed_count(env.gateway.base_url, fresh(max(500, int(gateway_rate * round_seconds))),
                                                  connections=connections, cpu=env.cpu(env.gateway),
                                                  fresh_connections=fresh_connections)
            ledger.record("throughput", gateway_run.sent, gateway_run.ok)
            gateway_rounds.append(gateway_run)
            bare_count = max(1000, int(bare_rate * round_seconds))
            bare_rounds.append(harness.wrk_fixed_count(
                env.bare.base_url, list(itertools.islice(itertools.cycle(bare_pool), bare_count)),
                connections=connections, cpu=env.cpu(env.bare), fresh_connections=fresh_connections))
            gateway_rate, bare_rate = gateway_run.requests_per_s, bare_rounds[-1].requests_per_s
        ratios = [g.requests_per_s / b.requests_per_s for g, b in zip(gateway_rounds, bare_rounds)]
        ratio = statistics.median(ratios)
        gateway_tp = _median_run(gateway_rounds)
        bare_tp = _median_run(bare_rounds)
        strictest = gateway_tp.requests_per_s / max(b.requests_per_s for b in bare_rounds)

        count = int(rate * latency_seconds)
        gateway_lat = harness.paced_latency(env.gateway.port, fresh(count), rate)
        ledger.record("paced latency", gateway_lat.sent, gateway_lat.ok)
        bare_lat = harness.paced_latency(env.bare.port, sms_requests(count, 0), rate)
        counts = ledger.final()

    results["throughput"] = {
        "gateway": vars(gateway_tp), "bare": vars(bare_tp), "ratio": round(ratio, 3),
        "ratio_to_fastest_floor_round": round(strictest, 3),
        "rounds": [{"gateway": g.requests_per_s, "bare": b.requests_per_s, "ratio": round(r, 3)}
                   for g, b, r in zip(gateway_rounds, bare_rounds, ratios)],
        "warmup": {"gateway": vars(warm_gateway), "bare": vars(warm_bare)},
    }
    results["load_average_after"] = list(harness.load_average())
    results["latency"] = {"gateway": gateway_lat.summary(), "bare": bare_lat.summary()}
    results["counts"] = counts
    results["targets"] = {
        "ratio >= 0.3": ratio >= RATIO_TARGET,
        "gateway p99 < 50 ms at 100 req/s": gateway_lat.p99_ms < P99_TARGET_MS,
        "stored == sent == 200s": not counts["problems"],
    }
    return results


def cpu_line(gateway: dict[str, float] | None, bare: dict[str, float] | None) -> str:
    """CPU per request, and the throughput ratio it implies when the CPU is what runs out."""
    if not gateway or not bare:
        return "CPU per request: not measured"
    return (f"CPU per request: gateway {gateway['total']:.2f} ms (gunicorn {gateway['gunicorn']:.2f}, PostgreSQL "
            f"{gateway['postgresql']:.2f}, Redis {gateway['redis']:.2f}); bare {bare['total']:.2f} ms "
            f"(gunicorn {bare['gunicorn']:.2f}); CPU-bound ratio bare/gateway {bare['total'] / gateway['total']:.2f}x")


def _median_run(runs: list[harness.ThroughputResult]) -> harness.ThroughputResult:
    return sorted(runs, key=lambda run: run.requests_per_s)[len(runs) // 2]


def report(results: dict[str, Any]) -> str:
    tp, lat, counts = results["throughput"], results["latency"], results["counts"]
    lines = ["", "SMS webhook: POST /twilio/sms vs the bare floor (same gunicorn settings, same run)",
             harness.connections_line(results["settings"]),
             "rounds (gateway / bare req/s): " + ", ".join(
                 f"{r['gateway']:,.0f} / {r['bare']:,.0f} = {r['ratio']:.2f}x" for r in tp["rounds"]),
             f"load average before / after: {results['load_average_before'][0]:.1f} / "
             f"{results['load_average_after'][0]:.1f} (nproc {results['machine']['nproc']})", ""]
    lines.append(harness.table(
        ["app (median round)", "requests", "200", "seconds", "req/s", "closed-loop p50 ms", "p99 ms"],
        [[name, tp[name]["sent"], tp[name]["ok"], tp[name]["seconds"], tp[name]["requests_per_s"],
          tp[name]["closed_loop_p50_ms"], tp[name]["closed_loop_p99_ms"]] for name in ("gateway", "bare")]))
    lines.append(f"ratio gateway / bare (median of the rounds' ratios): {tp['ratio']:.2f}x; "
                 f"gateway's median round / the floor's fastest: {tp['ratio_to_fastest_floor_round']:.2f}x")
    lines.append(cpu_line(tp["gateway"]["cpu_ms_per_request"], tp["bare"]["cpu_ms_per_request"]))
    lines += ["", f"Latency at a steady {results['settings']['rate']:.0f} requests/s (open loop, from scheduled send):"]
    lines.append(harness.table(
        ["app", "requests", "200", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [[name, lat[name]["sent"], lat[name]["ok"], lat[name]["p50_ms"], lat[name]["p90_ms"], lat[name]["p99_ms"],
          lat[name]["max_ms"]] for name in ("gateway", "bare")]))
    lines += ["", f"Gateway requests sent: {counts['requests_sent']}, answered 200: {counts['answered_200_client']} "
                  f"(server log: {counts['answered_200_server_log']}), inbound messages stored in PostgreSQL: "
                  f"{counts['inbound_messages_stored']}"]
    lines += harness.verdict_lines(results)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="target length of all throughput rounds of one app")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--rate", type=float, default=100.0, help="steady rate of the latency run, requests/s")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="length of each latency run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating gateway/bare throughput rounds")
    parser.add_argument("--kept-alive", action="store_true",
                        help="throughput over wrk's 16 kept-alive connections instead of a new connection per "
                             "request (the default, as webhooks reach gunicorn through a proxy)")
    args = parser.parse_args(argv)
    results = run(seconds=args.seconds, connections=args.connections, rate=args.rate,
                  latency_seconds=args.latency_seconds, rounds=args.rounds, fresh_connections=not args.kept_alive)
    return harness.finish("sms_webhook", results, report(results),
                          "the stored messages do not match the requests answered 200")

if __name__ == "__main__":
    sys.exit(main())
