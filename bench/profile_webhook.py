"""Where a webhook's time goes: py-spy samples every gunicorn worker under wrk load.

    pip install py-spy
    python -m bench.profile_webhook sms            # POST /twilio/sms
    python -m bench.profile_webhook sms --top 40
    python -m bench.profile_webhook voice          # every step of a scripted call
    python -m bench.profile_webhook voice-incoming # POST /twilio/voice only

Wall-clock sampling (idle stacks included), so time spent waiting for
PostgreSQL or Redis shows up next to CPU time; ``--cpu`` samples only
running code (where the CPU goes). Only samples taken inside a
request (gunicorn's ``handle_request``) count; the percentages are shares of
request time. The collapsed stacks are kept in bench/results/ for a flame
graph (e.g. speedscope.app or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from . import harness

REQUEST_FRAME = "handle_request"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def profile(
    load: Callable[[harness.BenchEnvironment], None],
    *,
    label: str,
    cpu_only: bool = False,
) -> tuple[Path, Counter[str], Counter[str], int]:
    """Run ``load(env)`` against the gateway while py-spy records; returns the aggregates."""
    if not shutil.which("py-spy"):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    raw = harness.RESULTS / f"profile-{label}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    with harness.bench_environment(f"profile-{label}") as env:
        assert env.gateway.process is not None
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(env.gateway.process.pid), "--subprocesses", "--function",
             *([] if cpu_only else ["--idle"]),
             "--rate", "250", "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(1.0)  # py-spy attaches to every worker
        try:
            load(env)
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            _, errors = spy.communicate(timeout=60)
        if not raw.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors}")
    inclusive, leaf, total = aggregate(raw.read_text().splitlines())
    return raw, inclusive, leaf, total


def aggregate(lines: Sequence[str]) -> tuple[Counter[str], Counter[str], int]:
    """Inclusive and leaf sample counts per function, over samples inside a request."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or REQUEST_FRAME not in stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        # Only what happens inside the request: drop gunicorn's outer frames.
        start = max(i for i, frame in enumerate(frames) if frame.split(" (")[0].endswith(REQUEST_FRAME))
        frames = frames[start:]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        leaf[frames[-1]] += count
    return inclusive, leaf, total


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def print_report(inclusive: Counter[str], leaf: Counter[str], total: int, top: int) -> None:
    print(f"\n{total} samples inside requests (wall clock, all workers)\n")
    print("inclusive (the function and everything it calls):")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("\nleaf (where the sample actually was: CPU work or a blocking call):")
    for frame, count in leaf.most_common(top // 2):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def _sms_load(env: harness.BenchEnvironment) -> None:
    from .sms_webhook import sms_requests

    harness.wrk_fixed_count(env.gateway.base_url, sms_requests(3000, 0))


def _voice_load(steps: slice) -> Callable[[harness.BenchEnvironment], None]:
    """A scripted call's steps (see bench/voice_call.py) for 1,000 calls, one step after the other."""

    def load(env: harness.BenchEnvironment) -> None:
        from .voice_call import callers, discover_script, next_paths

        script, _ = discover_script(env.gateway.port)
        group = callers(1000, 0)
        paths: list[str | None] = [None] * len(group)  # each call follows the actions its own answers gave
        for number, step in enumerate(script[: steps.stop]):
            requests = [step.request(caller.call_sid, caller.from_, path) for caller, path in zip(group, paths)]
            actions: dict[int, str] = {}
            harness.wrk_fixed_count(env.gateway.base_url, requests, expect=step.expect, next_actions=actions)
            paths = next_paths(script, number, actions, len(group))

    return load


TARGETS: dict[str, Callable[[harness.BenchEnvironment], None]] = {
    "sms": _sms_load,
    "voice": _voice_load(slice(None)),  # every step of the call
    "voice-incoming": _voice_load(slice(0, 1)),  # the incoming call (first webhook) only
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--from-file", type=Path, help="aggregate collapsed stacks py-spy wrote earlier")
    parser.add_argument("--cpu", action="store_true", help="CPU time only (leave out waiting on sockets)")
    args = parser.parse_args(argv)
    if args.from_file:
        raw = args.from_file.resolve()
        inclusive, leaf, total = aggregate(raw.read_text().splitlines())
    else:
        raw, inclusive, leaf, total = profile(TARGETS[args.target], label=args.target, cpu_only=args.cpu)
    print_report(inclusive, leaf, total, args.top)
    print(f"\ncollapsed stacks: {raw.relative_to(harness.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
