"""The worker's companions die with it.

``buurtlijn worker`` has two companion processes: the dispatcher (``buurtlijn
sweep --every N``, started with ``--parent``) and RQ's scheduler (forked by
RQ). A worker killed with SIGKILL runs no clean-up, so on Linux each
companion asks the kernel to signal it when its parent goes
(``PR_SET_PDEATHSIG``): left running, they would hold their PostgreSQL
connections and Redis locks beside the restarted worker's own.

The kernel sends the signal when the *thread* that started the child ends;
the worker starts both companions from its main thread, which lives as long
as the worker does.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Looked up once, on import, so that a freshly forked child need not load anything.
_PRCTL = _load_prctl()


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``signum`` to this process when ``parent_pid`` (our parent) ends.

    False where the kernel cannot (not Linux). A parent that is already gone
    when this runs gets the signal sent at once.
    """
    armed = _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os.kill(os.getpid(), signum)
    return armed


def forks_die_with_this_process(signum: int = signal.SIGTERM) -> None:
    """Every child this process forks from now on (RQ's scheduler) gets ``signum`` when it ends.

    SIGTERM for the scheduler: it stops within a second and releases its Redis
    lock, so the restarted worker's scheduler takes over at once.
    """
    forker = [os.getpid()]  # who is forking, noted before each fork (a child inherits the hook)

    def note_forker() -> None:
        forker[0] = os.getpid()

    os.register_at_fork(before=note_forker, after_in_child=lambda: die_with_parent(forker[0], signum))
