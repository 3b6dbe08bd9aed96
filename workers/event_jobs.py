"""Delivering the marketplace's events (models/events.py), signed as Standard Webhooks says.

One job delivers whatever is due, in batches, for up to ``DRAIN_SECONDS``: the
rows in PostgreSQL are the work, a job is only the nudge (a commit that wrote
events defers one; the sweep enqueues one for anything due; a failed try
schedules one for when the next try is due). Each event is POSTed with its own
``webhook-id`` on every try; a 2xx delivers it, anything else (another status,
a timeout, no connection) counts as a failed try. When the receiver cannot be
reached at all, the round stops there: the rest wait with the one that failed
instead of each waiting out its own timeout. No transaction is held open while
the receiver is asked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from flask import Flask
from standardwebhooks import Webhook

from models.base import utcnow
from models.events import (
    Event,
    claim_events,
    due_event_ids,
    next_due_at,
    next_wait,
    record_delivered,
    record_refused,
    release_untried,
    webhook_enabled,
)
from models.jobs import DELIVER_EVENTS

from .registry import job
from .runtime import get_database, get_queue, job_context

log = logging.getLogger("buurtlijn.events")

BATCH = 100
DRAIN_SECONDS = 2.0
PARALLEL = 8  # POSTs at once, each on its own kept-alive connection
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """This process's senders (none inherited through a fork)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(PARALLEL, thread_name_prefix="events")
    return _pools[pid]


@dataclass(frozen=True)
class Try:
    """What one POST came to: ``status`` when the receiver answered, ``reached`` False when it did not."""

    delivered: bool
    reached: bool
    status: int | None = None
    error: str = ""


class Sender:
    """The receiver's URL, the signing key and kept-alive connections (urllib3's pool, shared by threads)."""

    def __init__(self, config: Mapping[str, Any]):
        self.url = str(config["BUURTLIJN_WEBHOOK_URL"])
        self.webhook = Webhook(str(config["BUURTLIJN_WEBHOOK_SECRET"]))
        self.timeout = float(config.get("BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS") or 5)
        self.http = urllib3.PoolManager(maxsize=PARALLEL, retries=False,
                                        timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))

    def headers(self, webhook_id: str, body: str, now: dt.datetime) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": "Buurtlijn-Webhooks/1",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.webhook.sign(webhook_id, now, body),
        }

    def post(self, event: Event) -> Try:
        body = json.dumps(event.body(), ensure_ascii=False, separators=(",", ":"))
        headers = self.headers(event.webhook_id, body, utcnow())
        try:
            response = self.http.request("POST", self.url, body=body.encode(), headers=headers, redirect=False)
        except urllib3.exceptions.NewConnectionError:  # before TimeoutError, which urllib3 makes it a kind of
            return Try(False, False, error="could not connect to the receiver")
        except urllib3.exceptions.TimeoutError:
            return Try(False, False, error=f"no answer within {self.timeout:g} s")
        except urllib3.exceptions.HTTPError as exc:
            return Try(False, False, error=f"{type(exc).__name__}: could not reach the receiver")
        if 200 <= response.status < 300:
            return Try(True, True, response.status)
        return Try(False, True, response.status, f"HTTP {response.status}")


_senders: dict[tuple[Any, ...], Sender] = {}
_senders_lock = threading.Lock()


def sender_for(config: Mapping[str, Any]) -> Sender:
    """This process's Sender for these settings; none inherited through a fork."""
    key = (os.getpid(), config.get("BUURTLIJN_WEBHOOK_URL"), config.get("BUURTLIJN_WEBHOOK_SECRET"),
           config.get("BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS"))
    found = _senders.get(key)
    if found is None:
        with _senders_lock:
            found = _senders.setdefault(key, Sender(config))
    return found


@job(DELIVER_EVENTS, queue="maintenance")
def deliver_events(_first_event_id: int = 0) -> None:
    """Deliver the events that are due (the id names the commit that asked; every due one goes)."""
    with job_context() as app:
        deliver_due(app)


def deliver_due(app: Flask, seconds: float = DRAIN_SECONDS) -> int:
    """Deliver due events for at most ``seconds``; returns how many the receiver took."""
    if not webhook_enabled(app.config):
        return 0
    db = get_database(app)
    sender = sender_for(app.config)
    deadline = time.monotonic() + seconds
    delivered = 0
    more = False
    while True:
        now = utcnow()
        with db.transaction() as session:
            batch = claim_events(session, now, BATCH)
        if not batch:
            break
        taken: list[tuple[int, int]] = []
        refused: list[tuple[Event, Try]] = []
        untried: list[int] = []
        # A batch holds at most one event of each listing (the oldest pending), so its events may go
        # side by side: the receiver's answer time overlaps instead of adding up.
        for start in range(0, len(batch), PARALLEL):
            chunk = batch[start:start + PARALLEL]
            outcomes = list(_pool().map(sender.post, chunk))
            for event, outcome in zip(chunk, outcomes):
                if outcome.delivered:
                    taken.append((event.id, outcome.status or 200))
                else:
                    refused.append((event, outcome))
            if any(not outcome.reached for outcome in outcomes):  # down: the others wait with these
                untried = [other.id for other in batch[start + PARALLEL:]]
                break
        now = utcnow()
        with db.transaction() as session:
            record_delivered(session, taken, now)
            for event, outcome in refused:
                status = record_refused(session, event, app.config, now, status=outcome.status, error=outcome.error)
                log.info("event %s (%s) not delivered (%s); %s", event.id, event.type, outcome.error,
                         "failed for good" if status == "failed" else "will try again")
            if untried:
                down = next(event for event, outcome in refused if not outcome.reached)
                release_untried(session, untried, now + next_wait(app.config, down.attempts + 1), now)
        delivered += len(taken)
        # The nudges of events delivered here have nothing left to do: off the queue with them.
        get_queue(app).drop_waiting([f"deliver-events-{event_id}" for event_id, _status in taken], queue="maintenance")
        if untried or (refused and not taken):
            break
        if time.monotonic() >= deadline:
            more = True
            break
    _schedule_next(app, more)
    return delivered


def _schedule_next(app: Flask, more: bool) -> None:
    """The next nudge: at once when due work is left, else at the next try's time."""
    queue = get_queue(app)
    if more:
        queue.enqueue(deliver_events, 0, job_id=f"deliver-events-more-{time.monotonic_ns()}")
        return
    with get_database(app).transaction() as session:
        next_at = next_due_at(session)
    if next_at is None:
        return
    wait = max(next_at - utcnow(), dt.timedelta(0))
    if wait <= dt.timedelta(0):
        return  # due now but not taken: another worker has it, or the sweep will
    # An id of its own: one shared by the time alone could be overwritten while that job runs, and lost with it.
    queue.enqueue(deliver_events, 0, job_id=f"deliver-events-at-{int(next_at.timestamp())}-{time.monotonic_ns()}",
                  delay=wait + dt.timedelta(milliseconds=50))


def sweep_events(app: Flask, now: dt.datetime) -> int:
    """Enqueue a delivery when events are due (a nudge lost with Redis, a worker that died mid-round)."""
    if not webhook_enabled(app.config):
        return 0
    with get_database(app).transaction() as session:
        due = due_event_ids(session, now, limit=1)
    if not due:
        return 0
    get_queue(app).enqueue(deliver_events, due[0], job_id=f"deliver-events-{due[0]}")
    return 1
