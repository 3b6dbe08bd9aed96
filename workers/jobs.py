"""The SMS jobs, and the sweep: the one list of periodic work.

Arguments are ids; every job re-reads its rows and may run twice. Each job
is a few lines of glue around a plain function that takes the database
(models/, sms/, workers/sending.py), so the demo runs the same code
in-process.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from flask import Flask
from rq import get_current_job
from sqlalchemy import select, true

from models import Message
from models.base import utcnow
from models.workdays import local_zone
from models.inbox import handle_job_id
from models.jobs import HANDLE_INBOUND_SMS, SEND_MESSAGE
from models.outbox import due_outbound, send_job_id
from models.workdays import quiet_until
from sms.flows import handle_inbound, pending_inbound_ids

from . import event_jobs, listing_jobs, match_jobs, notify_jobs, privacy_jobs, voice_jobs
from .registry import job
from .runtime import get_database, get_queue, job_context, job_transaction
from .sending import STALE_SUBMITTING, Confirm, Retry, confirm_sent, deliver, reconcile_stale

log = logging.getLogger("buurtlijn.jobs")

SWEEP_GRACE = dt.timedelta(seconds=20)


def _schedule(app: Flask, retry: Retry | Confirm | None) -> None:
    if isinstance(retry, Confirm):
        get_queue(app).enqueue(confirm_message, retry.message_id, job_id=retry.job_id, delay=retry.delay)
    elif retry is not None:
        get_queue(app).enqueue(send_message, retry.message_id, job_id=retry.job_id, delay=retry.delay)


@job(HANDLE_INBOUND_SMS, queue="inbound")
def handle_inbound_sms(message_id: int) -> None:
    """Read an inbound SMS and act on it (listing, queue item, reply)."""
    with job_transaction() as (app, session):
        handle_inbound(session, message_id, app.config)


@job(SEND_MESSAGE)
def send_message(message_id: int) -> None:
    """Send one outbound SMS through Twilio (or show it, in the demo)."""
    send_messages([message_id])


@job(batches=SEND_MESSAGE)
def send_messages(message_ids: list[int]) -> None:
    """Send several SMS committed together (see registry.BATCHES).

    One message's failure does not hold up the others; it is raised at the
    end, so RQ retries the job and the messages already sent are skipped.
    In a worker, the job then sends whatever else is due (see ``drain``).
    """
    with job_context() as app:
        db = get_database(app)
        first_error: Exception | None = None
        for message_id in message_ids:
            try:
                _schedule(app, deliver(db, app.config, message_id))
            except Exception as exc:
                log.exception("sending message %s failed", message_id)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        if get_current_job() is not None:
            drain(app, skip=set(message_ids))


# A backlog of messages, each committed on its own (a broker's clicks, a
# burst of replies), is one RQ job each. RQ's bookkeeping costs a job more
# than sending its SMS, so a send job in a worker also sends the messages due
# after it and takes their jobs off the queue: the rows in PostgreSQL are the
# work, a job is only the nudge. Bounded, so the inbound queue is not kept
# waiting for long.
DRAIN_BATCH = 50
DRAIN_SECONDS = 1.0


def drain(app: Flask, skip: frozenset[int] | set[int] = frozenset(), seconds: float = DRAIN_SECONDS) -> int:
    """Send messages that are due now, for at most ``seconds``; returns how many were handled."""
    db = get_database(app)
    queue = get_queue(app)
    deadline = time.monotonic() + seconds
    handled = 0
    after = 0
    while time.monotonic() < deadline:
        now = utcnow()
        quiet = quiet_until(now, app.config) is not None
        with db.transaction() as session:
            due = session.execute(
                select(Message.id, Message.attempts)
                .where(due_outbound(now), Message.urgent if quiet else true(), Message.id > after)
                .order_by(Message.id).limit(DRAIN_BATCH)
            ).all()
        if not due:
            break
        done: list[str] = []
        for message_id, attempts in due:
            after = message_id
            if message_id in skip:
                continue
            try:
                _schedule(app, deliver(db, app.config, message_id))
            except Exception:  # its own job stays queued and tries again
                log.exception("sending message %s failed", message_id)
                continue
            done.append(send_job_id(message_id, attempts))
            handled += 1
            if time.monotonic() >= deadline:
                break
        queue.drop_waiting(done)
    return handled


@job()
def reconcile_message(message_id: int) -> None:
    with job_context() as app:
        _schedule(app, reconcile_stale(get_database(app), app.config, message_id))


@job()
def confirm_message(message_id: int) -> None:
    """Ask Twilio about a message whose answer was lost; send it again only if Twilio has none."""
    with job_context() as app:
        _schedule(app, confirm_sent(get_database(app), app.config, message_id))


def sweep_messages(app: Flask, now: dt.datetime, grace: dt.timedelta = SWEEP_GRACE) -> int:
    queue = get_queue(app)
    db = get_database(app)
    count = 0
    with db.transaction() as session:
        inbound = pending_inbound_ids(session, now - grace)
        outbound = session.execute(
            select(Message.id, Message.attempts).where(due_outbound(now), Message.updated_at < now - grace)
        ).all()
        stale = session.scalars(
            select(Message.id).where(
                Message.direction == "outbound",
                Message.status == "submitting",
                Message.updated_at < now - STALE_SUBMITTING,
            )
        ).all()
    for message_id in inbound:
        queue.enqueue(handle_inbound_sms, message_id, job_id=handle_job_id(message_id))
        count += 1
    for message_id, attempts in outbound:
        queue.enqueue(send_message, message_id, job_id=send_job_id(message_id, attempts))
        count += 1
    for message_id in stale:
        queue.enqueue(reconcile_message, message_id, job_id=f"reconcile-{message_id}")
        count += 1
    return count


def sweep(grace: bool = True) -> int:
    """Enqueue everything PostgreSQL says is still waiting. Safe to run any time.

    ``grace=False`` (the dispatcher, when it starts listening) takes even the
    newest rows: nobody was listening when they came in.
    """
    with job_context() as app:
        now = utcnow()
        # The messages' sweep first, with the grace asked for; its failure fails the sweep.
        total = sweep_messages(app, now, SWEEP_GRACE if grace else dt.timedelta(0))
        for step in SWEEPS[1:]:
            try:
                total += step(app, now)
            except Exception:
                log.exception("sweep step %s failed", step.__name__)
        if total:
            log.info("sweep enqueued %d job(s)", total)
        return total


def sweep_idempotency_keys(app: Flask, now: dt.datetime) -> int:
    """Answers kept for an Idempotency-Key past their 24 hours are deleted here, not enqueued."""
    from models.api_clients import forget_old_answers

    with get_database(app).transaction() as session:
        forget_old_answers(session, now)
    return 0


def sweep_reports(app: Flask, now: dt.datetime) -> int:
    """The report's settled days not rolled up yet are rolled up here (models/reports.py), not enqueued."""
    from models.reports import roll_up

    with get_database(app).transaction() as session:
        roll_up(session, now, local_zone(app.config))
    return 0


# The periodic work, all of it: each step finds its rows that wait too long
# and enqueues their jobs again. ``sweep`` runs them in this order, every
# BUURTLIJN_SWEEP_SECONDS in the worker; the messages come first, always.
SWEEPS: tuple[Callable[[Flask, dt.datetime], int], ...] = (
    sweep_messages,
    match_jobs.sweep_matches,
    listing_jobs.sweep_listings,
    notify_jobs.sweep_calls,
    voice_jobs.sweep_voice,
    sweep_idempotency_keys,
    privacy_jobs.sweep_privacy,
    event_jobs.sweep_events,
    sweep_reports,
)
