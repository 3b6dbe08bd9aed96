"""The dispatcher: turns PostgreSQL notifications into RQ jobs, and sweeps.

Runs beside the RQ worker (``buurtlijn worker`` starts it as its own
process). It LISTENs on the channels the webhooks NOTIFY on, so a message
stored by a webhook becomes a job within milliseconds, without the webhook
talking to Redis. Every ``interval`` seconds, and whenever it (re)connects,
it also runs the sweep, which enqueues everything PostgreSQL still holds as
waiting: a notification missed while the dispatcher was down is never lost.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from flask import Flask

from models.inbox import INBOUND_CHANNEL, handle_job_id

from .jobs import handle_inbound_sms, sweep
from .runtime import get_database, get_queue

log = logging.getLogger("buurtlijn.dispatch")


def dispatch_forever(app: Flask, interval: int, stop: threading.Event) -> None:
    """Listen and sweep until ``stop`` is set."""
    def run_sweep(grace: bool = True) -> None:
        try:
            with app.app_context():
                sweep(grace=grace)
        except Exception:
            log.exception("sweep failed; trying again in %ss", interval)

    db = get_database(app)
    if not db.is_postgresql:
        while not stop.is_set():
            run_sweep()
            stop.wait(interval)
        return

    queue = get_queue(app)
    backoff = 1.0
    while not stop.is_set():
        try:
            with psycopg.connect(db.libpq_url(), autocommit=True) as connection:
                connection.execute(f"LISTEN {INBOUND_CHANNEL}")
                backoff = 1.0
                run_sweep(grace=False)  # whatever came in while nobody listened
                next_sweep = time.monotonic() + interval
                while not stop.is_set():
                    timeout = max(0.1, min(1.0, next_sweep - time.monotonic()))
                    for notice in connection.notifies(timeout=timeout, stop_after=500):
                        if notice.payload.isdigit():
                            message_id = int(notice.payload)
                            queue.enqueue(handle_inbound_sms, message_id, job_id=handle_job_id(message_id))
                    if time.monotonic() >= next_sweep:
                        run_sweep()
                        next_sweep = time.monotonic() + interval
        except psycopg.Error as exc:
            log.warning("dispatcher lost PostgreSQL (%s); reconnecting in %.0fs", type(exc).__name__, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
