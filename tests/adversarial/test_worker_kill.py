"""`buurtlijn worker` killed with SIGKILL, as the kernel's OOM killer or a crash does.

The worker's companions (the dispatcher and RQ's scheduler) end with it
instead of running on as orphans, and messages queued while it is killed
again and again reach Twilio exactly once each.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import WorkerProcess, wait_until


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
