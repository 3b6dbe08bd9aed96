"""Benchmark of a full scripted request call (issue 3), step by step, against the bare floor.

    python -m bench.voice_call            # about 2 minutes

A probe call walks the phone menu the way Twilio does, following the TwiML
the gateway returns (the ``action`` of each <Gather>/<Record>, <Redirect>s),
answering: ``1`` to every one-key menu (ask for help, groceries, "that is
right", as soon as possible), ``2034`` where a number is keyed in, a spoken
message where it is asked to <Record>, and Twilio's final status callback
(``CallStatus=completed``). Every call of the run then takes the same path
with its own CallSid, caller number and RecordingSid, all signed.

For each step, on the gateway and (same requests) on the bare floor, both
under the same gunicorn settings:

1. maximum throughput with wrk: every call of the run answers that step once
   (distinct calls, each really at that point of the menu: step k is sent
   only after all calls got their answer to step k-1), and each answer must
   carry the next step's action URL; ratio to the floor (target >= 0.3);
2. latency p50/p99 per step while calls arrive at a steady pace that makes
   100 webhook requests/s in all (open loop: a call's steps are scheduled
   ``--gap`` seconds apart and latency counts from the scheduled time);
3. calls per second the gateway sustains: 1 / sum over steps of 1/throughput
   (each call takes one request of every step from the same server capacity).

Afterwards PostgreSQL must hold one call row per call started and one voice
listing with its recording per completed call (a mismatch fails the run).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import re
import statistics
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from gateway.twilio_sim import new_sid

from . import harness
from .harness import SignedRequest

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/voice/status"
RATIO_TARGET = 0.3
P99_TARGET_MS = 50.0
POSTCODE = "2034"
MAX_STEPS = 20
FIRST_CALLER = 500_000  # caller numbers apart from the SMS benchmark's residents


# --- Twilio's side of a call ---------------------------------------------------------------


def call_params(call_sid: str, from_: str, **extra: str) -> dict[str, str]:
    """The parameters Twilio posts on every voice webhook of an inbound call."""
    params = {
        "AccountSid": harness.ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
        "CallStatus": "in-progress", "Called": harness.GATEWAY_NUMBER, "CalledCity": "", "CalledCountry": "NL",
        "CalledState": "", "CalledZip": "", "Caller": from_, "CallerCity": "", "CallerCountry": "NL",
        "CallerState": "", "CallerZip": "", "Direction": "inbound", "From": from_, "FromCity": "",
        "FromCountry": "NL", "FromState": "", "FromZip": "", "To": harness.GATEWAY_NUMBER, "ToCity": "",
        "ToCountry": "NL", "ToState": "", "ToZip": "",
    }
    params.update(extra)
    return params


@dataclass(frozen=True)
class ScriptStep:
    """One webhook of the call: where it goes and what Twilio adds to the call's parameters."""

    label: str
    path: str  # path and query
    kind: str  # incoming | gather | record | redirect | status
    extra: tuple[tuple[str, str], ...] = ()
    expect: str = ""  # what the answer must contain: the next step's action, as written in the XML

    def request(self, call_sid: str, from_: str, path: str | None = None) -> SignedRequest:
        """This step of one call; ``path``: the action its previous answer gave (with its sealed state)."""
        extra = dict(self.extra)
        if self.kind == "record":
            recording_sid = new_sid("RE")
            extra["RecordingSid"] = recording_sid
            extra["RecordingUrl"] = (f"https://api.twilio.com/2010-04-01/Accounts/{harness.ACCOUNT_SID}"
                                     f"/Recordings/{recording_sid}")
        if self.kind == "status":
            extra["Timestamp"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        return harness.signed_request(path or self.path, call_params(call_sid, from_, **extra))


@dataclass
class Caller:
    call_sid: str
    from_: str


def callers(count: int, start: int) -> list[Caller]:
    return [Caller(new_sid("CA"), harness.dutch_mobile(FIRST_CALLER + index)) for index in range(start, start + count)]


class CallScriptError(RuntimeError):
    pass


def _relative(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


_STATE_TOKEN = re.compile(r"&c=[A-Za-z0-9_-]+")


def _without_state(path: str) -> str:
    """A step URL without the call's sealed state (ivr_flows/tokens.py): the same for every call."""
    return _STATE_TOKEN.sub("", path)


def _label(path: str, kind: str) -> str:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    return query.get("s") or query.get("step") or f"{kind} {urllib.parse.urlsplit(path).path}"


def _next_move(document: str, current: str) -> tuple[str, str, dict[str, str]] | None:
    """What Twilio does with this TwiML for our scripted caller: (kind, url, extra), or None (call ends)."""
    root = ET.fromstring(document)
    if root.tag != "Response":
        raise CallScriptError(f"not TwiML: {document[:300]}")
    for verb in root:
        if verb.tag == "Gather":
            action = _relative(verb.get("action") or current)
            digits = "1" if verb.get("numDigits") == "1" else POSTCODE
            extra = {"Digits": digits, "msg": "Gather End"}
            finish = verb.get("finishOnKey")
            if finish and verb.get("numDigits") != str(len(digits)):
                extra["FinishedOnKey"] = finish[0]
            return "gather", action, extra
        if verb.tag == "Record":
            action = _relative(verb.get("action") or current)
            return "record", action, {"RecordingDuration": "7", "Digits": "#"}
        if verb.tag == "Redirect":
            return "redirect", _relative((verb.text or "").strip() or current), {}
        if verb.tag in ("Hangup", "Reject"):
            return None
        if verb.tag in ("Dial", "Enqueue", "Connect"):
            raise CallScriptError(f"a request call should not reach <{verb.tag}>: {document[:300]}")
    return None


Poster = Callable[[SignedRequest], tuple[int, str]]


def probe_call(post: Poster, caller: Caller) -> tuple[list[ScriptStep], list[str]]:
    """Walk one call through the menu following the TwiML; returns its steps and the documents."""
    steps: list[ScriptStep] = []
    documents: list[str] = []
    kind, path, extra = "incoming", VOICE_PATH, {"CallStatus": "ringing"}
    seen: set[str] = set()
    while True:
        if len(steps) >= MAX_STEPS or _without_state(path) in seen:
            raise CallScriptError(f"the scripted call loops at {path}: {documents[-1][:400] if documents else ''}")
        seen.add(_without_state(path))
        step = ScriptStep(_label(path, kind) if kind != "incoming" else "incoming call", _without_state(path), kind,
                          tuple(extra.items()))
        status, document = post(step.request(caller.call_sid, caller.from_, path))
        if status != 200:
            raise CallScriptError(f"{path} answered {status}: {document[:300]}")
        documents.append(document)
        move = _next_move(document, path)
        if move is not None:
            step = ScriptStep(step.label, step.path, step.kind, step.extra, expect=escape(_without_state(move[1])))
        elif "<Hangup" in document:
            step = ScriptStep(step.label, step.path, step.kind, step.extra, expect="<Hangup")
        steps.append(step)
        if move is None:
            break
        kind, path, extra = move
    status_extra = {"CallStatus": "completed", "CallDuration": "48", "Duration": "1",
                    "CallbackSource": "call-progress-events", "SequenceNumber": "0"}
    status_step = ScriptStep("status callback (completed)", STATUS_PATH, "status", tuple(status_extra.items()))
    status, document = post(status_step.request(caller.call_sid, caller.from_))
    if status != 200:
        raise CallScriptError(f"{STATUS_PATH} answered {status}: {document[:300]}")
    steps.append(status_step)
    return steps, documents


def http_poster(port: int) -> Poster:
    def post(request: SignedRequest) -> tuple[int, str]:
        status, body = asyncio.run(harness.http_exchange(port, request.raw(f"127.0.0.1:{port}")))
        return status, body.decode("utf-8", "replace")

    return post


def discover_script(port: int) -> tuple[list[ScriptStep], list[str]]:
    """Probe two calls from different numbers; they must take the same path."""
    post = http_poster(port)
    first, documents = probe_call(post, callers(1, 10_000)[0])
    second, _ = probe_call(post, callers(1, 10_001)[0])
    if [s.path for s in first] != [s.path for s in second]:
        raise CallScriptError("two probe calls took different paths: "
                              f"{[s.path for s in first]} vs {[s.path for s in second]}")
    return first, documents


# --- the run ----------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One step's throughput rounds (gateway and floor alternating) and its paced latency."""

    label: str
    path: str
    gateway_rounds: list[harness.ThroughputResult]
    bare_rounds: list[harness.ThroughputResult]
    latency_gateway: harness.LatencyResult | None = None
    latency_bare: harness.LatencyResult | None = None

    @property
    def ratios(self) -> list[float]:
        return [g.requests_per_s / b.requests_per_s if b.requests_per_s else 0.0
                for g, b in zip(self.gateway_rounds, self.bare_rounds)]

    @property
    def ratio(self) -> float:
        """The median of the rounds' own (paired) ratios."""
        return statistics.median(self.ratios)

    @property
    def gateway(self) -> harness.ThroughputResult:
        return _median_run(self.gateway_rounds)

    @property
    def bare(self) -> harness.ThroughputResult:
        return _median_run(self.bare_rounds)

    @property
    def strictest_ratio(self) -> float:
        """The gateway's median round against the floor's fastest."""
        return self.gateway.requests_per_s / max(b.requests_per_s for b in self.bare_rounds)


def _median_run(runs: list[harness.ThroughputResult]) -> harness.ThroughputResult:
    return sorted(runs, key=lambda run: run.requests_per_s)[len(runs) // 2]


@dataclass
class CallLedger:
    started: int = 0
    completed: int = 0
    problems: list[str] = field(default_factory=list)


def throughput_phase(
    env: harness.BenchEnvironment, script: list[ScriptStep], group: list[Caller], *, bare_rates: dict[str, float],
    connections: int, rounds: int = 1, fresh_connections: bool = False,
) -> list[tuple[list[harness.ThroughputResult], list[harness.ThroughputResult]]]:
    """Every call of ``group`` through every step, one step at a time, on both apps.

    Each call posts to the action its own previous answer gave, as Twilio
    does (it carries the call's sealed state); the floor gets the very same
    requests. A step's calls are split into ``rounds`` that alternate gateway
    and floor, each floor round sized to last about as long as the gateway's
    (from ``bare_rates``, updated as the rounds go): on a shared machine other
    work comes and goes, and a pair of rounds sees the same machine.
    """
    out = []
    paths: list[str | None] = [None] * len(group)  # None: the step's own path (the first webhook, the status)
    for number, step in enumerate(script):
        requests = [step.request(caller.call_sid, caller.from_, path) for caller, path in zip(group, paths)]
        actions: dict[int, str] = {}
        gateway_rounds, bare_rounds = [], []
        size = -(-len(requests) // rounds)
        for start in range(0, len(requests), size):
            chunk = requests[start:start + size]
            answered: dict[int, str] = {}
            gateway = harness.wrk_fixed_count(env.gateway.base_url, chunk, connections=connections,
                                              expect=step.expect, cpu=env.cpu(env.gateway),
                                              fresh_connections=fresh_connections, next_actions=answered)
            actions.update({start + index: action for index, action in answered.items()})
            if gateway.ok != len(chunk) or gateway.unexpected:
                raise harness.BenchFailure(
                    f"step {step.label}: {gateway.ok}/{len(chunk)} answered 200, {gateway.unexpected} without "
                    f"{step.expect!r}; see {env.gateway.log_path}:\n{env.gateway.log_tail()}")
            wanted = max(len(chunk), int(bare_rates.get(step.path, 0) * gateway.seconds))
            bare = harness.wrk_fixed_count(env.bare.base_url, list(itertools.islice(itertools.cycle(chunk), wanted)),
                                           connections=connections, cpu=env.cpu(env.bare),
                                           fresh_connections=fresh_connections, next_actions={})
            bare_rates[step.path] = bare.requests_per_s
            gateway_rounds.append(gateway)
            bare_rounds.append(bare)
        out.append((gateway_rounds, bare_rounds))
        paths = next_paths(script, number, actions, len(group))
    return out


def next_paths(script: list[ScriptStep], number: int, actions: dict[int, str], count: int) -> list[str | None]:
    """Where each call posts the step after ``script[number]``: the action its answer gave (None: a fixed URL)."""
    if number + 1 >= len(script) or script[number + 1].kind == "status":
        return [None] * count
    wanted = script[number + 1].path
    paths: list[str | None] = [_relative(html.unescape(actions.get(index, ""))) for index in range(count)]
    strays = sum(1 for path in paths if _without_state(path or "") != wanted)
    if strays:
        raise harness.BenchFailure(f"step {script[number].label}: {strays} answers did not lead to {wanted}")
    return paths


async def _paced_calls(
    port: int, script: list[ScriptStep], group: list[Caller], rate: float, gap: float
) -> tuple[list[list[tuple[float, int]]], list[int]]:
    """Calls start evenly so that all their steps together make ``rate`` requests/s.

    Step j of call i is scheduled at start_i + j * gap and sent then, or as
    soon as step j-1 of that call is answered, if later; latency runs from
    the scheduled time. Returns per step (latency, status) samples and the
    number of unexpected answers per step.
    """
    loop = asyncio.get_running_loop()
    host = f"127.0.0.1:{port}"
    steps = len(script)
    interval = steps / rate
    begin = loop.time() + 0.1
    samples: list[list[tuple[float, int]]] = [[] for _ in script]
    unexpected = [0] * steps

    async def one_call(index: int) -> None:
        caller = group[index]
        start = begin + index * interval
        path: str | None = None  # each step posts to the action the previous answer gave
        for j, step in enumerate(script):
            raw = step.request(caller.call_sid, caller.from_, path).raw(host)
            scheduled = start + j * gap
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            status, body = await harness.http_exchange(port, raw)
            samples[j].append((loop.time() - scheduled, status))
            if status == 200 and step.expect and step.expect.encode() not in body:
                unexpected[j] += 1
            path = _next_path(body.decode("utf-8", "replace"), step)

    await asyncio.gather(*(one_call(i) for i in range(len(group))))
    return samples, unexpected


def _next_path(document: str, step: ScriptStep) -> str | None:
    """The action an answer leads to, for the next step; None when the call goes on at a fixed URL."""
    try:
        move = _next_move(document, step.path)
    except (ET.ParseError, CallScriptError):
        return None  # counted as unexpected above; the floor answers a constant document
    return move[1] if move is not None and "/twilio/voice/step" in move[1] else None


def latency_phase(
    port: int, script: list[ScriptStep], group: list[Caller], rate: float, gap: float
) -> tuple[list[harness.LatencyResult], list[int]]:
    samples, unexpected = asyncio.run(_paced_calls(port, script, group, rate, gap))
    span = len(group) * len(script) / rate
    return [harness.latency_result(s, rate, span) for s in samples], unexpected


def run(
    *, seconds: float = 6.0, connections: int = 16, rate: float = 100.0, latency_seconds: float = 20.0,
    gap: float = 0.3, warmup_calls: int = 300, fresh_connections: bool = True, rounds: int = 3,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "voice_call", "machine": harness.machine_facts(),
        "settings": {"seconds": seconds, "connections": connections, "rate": rate, "latency_seconds": latency_seconds,
                     "gap_s": gap, "warmup_calls": warmup_calls, "fresh_connections": fresh_connections,
                     "rounds": rounds},
        "load_average_before": list(harness.load_average()),
    }
    ledger = CallLedger()
    made = 0

    def fresh(count: int) -> list[Caller]:
        nonlocal made
        made += count
        return callers(count, made - count)

    with harness.bench_environment("voice") as env:
        print(f"gateway {env.gateway.base_url}, bare {env.bare.base_url}; gunicorn {harness.GUNICORN.describe()}")
        script, documents = discover_script(env.gateway.port)
        ledger.started += 2
        ledger.completed += 2
        print("scripted call: " + " -> ".join(step.label for step in script))

        # Warm-up, which also tells how many calls fill `seconds` on the slowest step.
        bare_rates: dict[str, float] = {}
        warm = throughput_phase(env, script, fresh(warmup_calls), bare_rates=bare_rates, connections=connections,
                                fresh_connections=fresh_connections)
        ledger.started += warmup_calls
        ledger.completed += warmup_calls
        slowest = min(g[0].requests_per_s for g, _ in warm)
        calls = max(300 * rounds, int(slowest * seconds))
        print(f"warm-up: slowest step {slowest:,.0f} req/s; {calls} calls per step in the measured run, "
              f"{rounds} rounds each")

        measured = throughput_phase(env, script, fresh(calls), bare_rates=bare_rates, connections=connections,
                                    rounds=rounds, fresh_connections=fresh_connections)
        ledger.started += calls
        ledger.completed += calls

        paced_calls = max(10, int(rate * latency_seconds / len(script)))
        lat_gateway, unexpected = latency_phase(env.gateway.port, script, fresh(paced_calls), rate, gap)
        ledger.started += paced_calls
        ledger.completed += paced_calls
        bare_group = callers(paced_calls, 0)
        lat_bare, _ = latency_phase(env.bare.port, script, bare_group, rate, gap)
        for step, latency, wrong in zip(script, lat_gateway, unexpected):
            if latency.ok != latency.sent or wrong:
                ledger.problems.append(f"paced step {step.label}: {latency.ok}/{latency.sent} answered 200, "
                                       f"{wrong} without the next action")
        counts = stored_counts(env, ledger)

    results["load_average_after"] = list(harness.load_average())
    steps = [StepResult(step.label, step.path, g, b, lg, lb)
             for step, (g, b), lg, lb in zip(script, measured, lat_gateway, lat_bare)]
    gateway_calls = 1 / sum(1 / s.gateway.requests_per_s for s in steps)
    bare_calls = 1 / sum(1 / s.bare.requests_per_s for s in steps)
    results["script"] = [{"label": s.label, "path": s.path, "kind": s.kind, "expect": s.expect} for s in script]
    results["probe_twiml"] = documents
    results["steps"] = [
        {"label": s.label, "path": s.path, "gateway": vars(s.gateway), "bare": vars(s.bare), "ratio": round(s.ratio, 3),
         "ratio_to_fastest_floor_round": round(s.strictest_ratio, 3),
         "rounds": [{"gateway": g.requests_per_s, "bare": b.requests_per_s, "ratio": round(r, 3)}
                    for g, b, r in zip(s.gateway_rounds, s.bare_rounds, s.ratios)],
         "latency_gateway": s.latency_gateway.summary() if s.latency_gateway else None,
         "latency_bare": s.latency_bare.summary() if s.latency_bare else None}
        for s in steps
    ]
    results["calls_per_second"] = {"gateway": round(gateway_calls, 1), "bare": round(bare_calls, 1),
                                   "ratio": round(gateway_calls / bare_calls, 3)}
    all_gateway = [x for s in steps if s.latency_gateway for x in s.latency_gateway.latencies_ms]
    results["latency_all_steps_gateway"] = {"p50_ms": round(harness.percentile(all_gateway, 50), 2),
                                            "p99_ms": round(harness.percentile(all_gateway, 99), 2),
                                            "requests": len(all_gateway)}
    results["counts"] = counts
    results["targets"] = {
        "every step >= 0.3x the floor": all(s.ratio >= RATIO_TARGET for s in steps),
        "every step p99 < 50 ms at 100 req/s": all(
            s.latency_gateway is not None and s.latency_gateway.p99_ms < P99_TARGET_MS for s in steps),
        "stored calls and listings == calls made": not counts["problems"],
    }
    return results


def stored_counts(env: harness.BenchEnvironment, ledger: CallLedger) -> dict[str, Any]:
    database = env.database
    calls = int(database.scalar("SELECT count(*) FROM calls WHERE direction = 'inbound'"))
    listings = int(database.scalar("SELECT count(*) FROM listings WHERE channel = 'voice'"))
    recorded = int(database.scalar(
        "SELECT count(*) FROM listings WHERE channel = 'voice' AND recording_sid IS NOT NULL"))
    open_calls = int(database.scalar("SELECT count(*) FROM calls WHERE direction = 'inbound' AND ended_at IS NULL"))
    counts = {"calls_started": ledger.started, "calls_completed": ledger.completed, "call_rows": calls,
              "voice_listings": listings, "voice_listings_with_recording": recorded,
              "calls_not_ended": open_calls}
    problems = list(ledger.problems)
    if calls != ledger.started:
        problems.append(f"{calls} call rows for {ledger.started} calls started")
    if listings != ledger.completed or recorded != ledger.completed:
        problems.append(f"{listings} voice listings ({recorded} with recording) for {ledger.completed} calls")
    if open_calls:
        problems.append(f"{open_calls} calls not ended after their status callback")
    counts["problems"] = problems
    return counts


def report(results: dict[str, Any]) -> str:
    lines = ["", "Voice: a full scripted request call, each step vs the bare floor (same gunicorn settings, same run)",
             harness.connections_line(results["settings"]), ""]
    rows = []
    for step in results["steps"]:
        g, b, lg, lb = step["gateway"], step["bare"], step["latency_gateway"], step["latency_bare"]
        cpu_g, cpu_b = g.get("cpu_ms_per_request") or {}, b.get("cpu_ms_per_request") or {}
        rounds = " ".join(f"{r['ratio']:.2f}" for r in step.get("rounds", []))
        rows.append([step["label"], g["requests_per_s"], b["requests_per_s"], f"{step['ratio']:.2f}x", rounds,
                     f"{step.get('ratio_to_fastest_floor_round', step['ratio']):.2f}x",
                     lg["p50_ms"], lg["p99_ms"], lb["p99_ms"], cpu_g.get("total", "-"), cpu_b.get("total", "-")])
    lines.append(harness.table(
        ["step", "gateway req/s", "bare req/s", "ratio", "rounds", "vs fastest", "gw p50 ms", "gw p99 ms",
         "bare p99", "gw CPU ms/req", "bare CPU ms/req"],
        rows))
    lines.append("(req/s: each app's median round; ratio: the median of the paired rounds' ratios; vs fastest: the "
                 "gateway's median round against the floor's fastest. CPU ms/req: gunicorn + the PostgreSQL backends "
                 "+ Redis, user and system time per answered request, median round)")
    cps, lat = results["calls_per_second"], results["latency_all_steps_gateway"]
    lines += ["", f"Calls per second sustained (1 / sum of 1/throughput over the steps): gateway {cps['gateway']}, "
                  f"bare floor {cps['bare']} ({cps['ratio']:.2f}x)",
              f"Latency at {results['settings']['rate']:.0f} requests/s, all gateway steps together: "
              f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms over {lat['requests']} requests"]
    counts = results["counts"]
    lines.append(f"Calls started {counts['calls_started']}, completed {counts['calls_completed']}; stored: "
                 f"{counts['call_rows']} calls, {counts['voice_listings']} voice listings "
                 f"({counts['voice_listings_with_recording']} with recording), {counts['calls_not_ended']} not ended")
    lines += harness.verdict_lines(results)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the slowest step's throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="gateway/floor rounds per step (paired ratios)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--rate", type=float, default=100.0, help="steady rate of the latency run, requests/s")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="length of each latency run")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between a call's steps in the latency run")
    parser.add_argument("--kept-alive", action="store_true",
                        help="throughput over wrk's 16 kept-alive connections instead of a new connection per "
                             "request (the default, as webhooks reach gunicorn through a proxy): gunicorn's two "
                             "workers then split the 16 connections once, and the floor swings with that split")
    args = parser.parse_args(argv)
    results = run(seconds=args.seconds, connections=args.connections, rate=args.rate,
                  latency_seconds=args.latency_seconds, gap=args.gap, fresh_connections=not args.kept_alive,
                  rounds=args.rounds)
    return harness.finish("voice_call", results, report(results),
                          "what the database holds does not match the calls made")

if __name__ == "__main__":
    sys.exit(main())
