"""The one registry of background jobs: ``@job`` registers, the queue enqueues by reference.

A job is a function registered here; the queue takes the function itself (or,
from models/, the ``JobName`` it implements) and hands RQ the function's
import path, which RQ's JSON serializer stores. Importing workers/ imports
every job module and then ``check_declared`` makes sure that every name the
domain declared (models/jobs.py) has its job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from models.jobs import DECLARED, JobName

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredJob:
    name: str
    func: Callable[..., Any]
    queue: str  # the short name: outbound, inbound or maintenance

    @property
    def path(self) -> str:
        """What RQ stores and a worker imports."""
        return f"{self.func.__module__}.{self.func.__qualname__}"


JOBS: dict[str, RegisteredJob] = {}
_BY_FUNCTION: dict[Callable[..., Any], RegisteredJob] = {}
# A job kind whose jobs, when one commit defers several, travel as one job of another kind.
BATCHES: dict[str, RegisteredJob] = {}

JobRef = JobName | Callable[..., Any]


def job(name: JobName | None = None, *, queue: str = "outbound", batches: JobName | None = None) -> Callable[[F], F]:
    """Register a function as a job; ``name``: the domain's name it implements (models/jobs.py).

    ``batches``: this job takes a list of the ids that jobs of that kind take one by one.
    """

    def register(func: F) -> F:
        key = name.name if name is not None else func.__name__
        if key in JOBS:
            raise ValueError(f"two jobs are registered as {key!r}: {JOBS[key].path} and {func.__module__}")
        registered = RegisteredJob(key, func, queue)
        JOBS[key] = registered
        _BY_FUNCTION[func] = registered
        if batches is not None:
            BATCHES[batches.name] = registered
        return func

    return register


def registered(ref: JobRef) -> RegisteredJob:
    """The job behind a function or a name; an unknown one is an error, never a silent no-op."""
    found = JOBS.get(ref.name) if isinstance(ref, JobName) else _BY_FUNCTION.get(ref)
    if found is None:
        raise LookupError(f"{ref!r} is not a registered job (see workers/registry.py)")
    return found


def check_declared() -> None:
    """Every job the domain names must exist: fail the import, not the first commit that defers it."""
    missing = sorted(set(DECLARED) - set(JOBS))
    if missing:
        raise ImportError(f"jobs declared in models/jobs.py without a @job in workers/: {', '.join(missing)}")
