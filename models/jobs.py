"""The background jobs the domain asks for, by name.

A service that must start a job once its transaction commits (send this SMS,
place this call) names it here and hands the name to ``defer_job``; it never
imports workers/, which sits above it. workers/ implements each name with
``@job(NAME)``, and importing workers/ fails at once when a name declared
here has no job: a typo or a job removed never waits for a sweep to notice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobName:
    """A job the domain defers; the function behind it is registered in workers/."""

    name: str


DECLARED: dict[str, JobName] = {}


def declare(name: str) -> JobName:
    if name in DECLARED:
        raise ValueError(f"job {name!r} is declared twice")
    DECLARED[name] = JobName(name)
    return DECLARED[name]


HANDLE_INBOUND_SMS = declare("handle_inbound_sms")
SEND_MESSAGE = declare("send_message")
PLACE_CALL = declare("place_call")
PLACE_BRIDGE_CALL = declare("place_bridge_call")
DELETE_RECORDING = declare("delete_recording")
DELIVER_EVENTS = declare("deliver_events")
