"""Placing notification calls through Twilio, exactly once per try.

The same pattern as workers/sending.py for SMS: the ``calls`` row is
claimed (pending -> submitting) and committed before Twilio is asked to
dial; a worker that dies in between leaves ``submitting``, and
``reconcile_call`` asks Twilio whether the call exists before dialling
again. A lost answer (a timeout, a dropped connection, a 5xx) leaves
``submitting`` too, and ``confirm_call`` asks Twilio before dialling again.
What the call says is served by gateway/webhooks_notify.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioRestException

from models import Call, Resident
from models.base import utcnow
from models.db import Database
from models.destinations import NUMBER_REFUSALS, call_counts, refusal, report_refused_number
from models.notify import (
    PENDING_SID_PREFIX,
    call_finished,
    claim_call,
    due_calls,
    give_up,
    is_notification,
    place_call_job_id,
)
from models.jobs import PLACE_CALL
from models.queue import queue_callback
from models.vocabulary import TWILIO_CALL_UNANSWERED_STATUSES
from models.workdays import quiet_until

from .registry import job
from .runtime import get_database, get_queue, job_context
from .sending import MAX_ATTEMPTS, PACER, STALE_SUBMITTING, backoff
from .twilio_api import (
    INVALID_NUMBER,
    NOT_FOUND,
    is_transient,
    may_have_reached_twilio,
    settle_time,
    twilio_client,
)

log = logging.getLogger("buurtlijn.calls")

# A dialled call we heard nothing about for this long is looked up at Twilio.
SILENT_CALL = dt.timedelta(minutes=15)
RING_SECONDS = 30


@dataclass(frozen=True)
class CallRetry:
    job_id: str
    call_id: int
    delay: dt.timedelta


@dataclass(frozen=True)
class CallConfirm:
    """Twilio may have placed the call without our knowing: ``delay`` from now, ask it (``confirm_call``)."""

    job_id: str
    call_id: int
    delay: dt.timedelta


def _confirm_later(call_id: int, settled_at: dt.datetime, now: dt.datetime) -> CallConfirm:
    """Ask once the request has settled; an id of its own (from ``now``), never the id of the job now running."""
    return CallConfirm(f"confirm-call-{call_id}-{int(now.timestamp() * 1000)}", call_id, settled_at - now)


def _wait(call: Call, until: dt.datetime, now: dt.datetime) -> CallRetry:
    call.data = {**(call.data or {}), "next_try_at": until.isoformat()}
    call.updated_at = now
    return CallRetry(f"{place_call_job_id(call.id, call.attempts)}-w{int(until.timestamp())}", call.id, until - now)


def _block(call: Call, reason: str, now: dt.datetime) -> None:
    call.status = "blocked"
    call.ended_at = now
    call.data = {**(call.data or {}), "blocked": reason}


def notify_url(config: dict[str, Any], call_id: int, tail: str = "") -> str | None:
    base = config.get("PUBLIC_BASE_URL")
    return f"{base.rstrip('/')}/twilio/notify/{call_id}{tail}" if base else None


def dial(db: Database, config: dict[str, Any], call_id: int) -> CallRetry | CallConfirm | None:
    """Place notification call ``call_id`` if it is due. Returns a CallRetry when it must wait,
    a CallConfirm when Twilio did not answer and must be asked before dialling again."""
    now = utcnow()
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if not is_notification(call) or call.status != "pending":  # type: ignore[union-attr]
            return None
        assert call is not None
        data = call.data or {}
        next_try = dt.datetime.fromisoformat(data["next_try_at"]) if data.get("next_try_at") else None
        if next_try is not None and next_try > now:
            return _wait(call, next_try, now)
        resident = session.get(Resident, call.resident_id) if call.resident_id else None
        if resident is None:
            _block(call, "no_resident", now)
            return None
        if resident.opted_out:
            _block(call, "opted_out", now)
            return None
        if resident.number_status in ("invalid", "refused"):
            _block(call, f"number_{resident.number_status}", now)
            return None
        to_number_today, in_total_today = call_counts(session, resident.id, now, config)
        refused = refusal(resident.phone, config, "call", to_number_today=to_number_today,
                          in_total_today=in_total_today)
        if refused is not None:
            log.warning("call %s refused by the outbound policy: %s", call.id, refused)
            # Never dialled: a proposal goes back to a broker, the resident's number is shown to one.
            _block(call, refused, now)
            report_refused_number(session, resident, refused, call_id=call.id)
            give_up(session, call, "bad_number" if refused in NUMBER_REFUSALS else refused, status="blocked")
            return None
        wake = None if data.get("urgent") else quiet_until(now, config)
        if wake is not None:
            return _wait(call, wake, now)
        pause = PACER.reserve(config, config["TWILIO_PHONE_NUMBER"]) if config.get("SENDS_FOR_REAL") else 0.0
        if pause < 0:
            return _wait(call, now + dt.timedelta(seconds=-pause), now)
        if not claim_call(session, call.id, now):
            return None
        session.refresh(call)
        to, attempt = resident.phone, call.attempts
    if pause > 0:
        time.sleep(pause)

    if not config.get("SENDS_FOR_REAL"):
        # The demo: the call "rings" in the phone simulator, which answers it like Twilio would.
        with db.transaction() as session:
            session.execute(
                update(Call).where(Call.id == call_id, Call.status == "submitting")
                .values(status="shown", twilio_status="ringing", updated_at=utcnow())
            )
        log.info("demo: notification call %s shown, not placed", call_id)
        return None

    url = notify_url(config, call_id)
    if url is None:
        log.error("notification call %s cannot be placed: PUBLIC_BASE_URL is not set", call_id)
        return _failed(db, config, call_id, attempt, 400, None, "PUBLIC_BASE_URL is not set")
    try:
        created = twilio_client(config).calls.create(
            to=to,
            from_=config["TWILIO_PHONE_NUMBER"],
            url=url,
            method="POST",
            status_callback=notify_url(config, call_id, "/status"),
            status_callback_method="POST",
            timeout=RING_SECONDS,
        )
    except Exception as exc:  # refused, or the answer lost: see _not_placed
        return _not_placed(db, config, call_id, attempt, exc)
    _adopt(db, call_id, created.sid, created.status)
    return None


def _adopt(db: Database, call_id: int, sid: str, twilio_status: str | None) -> None:
    """Twilio has the call: remember its CallSid (the answer webhook may have come first)."""
    with db.transaction() as session:
        call = session.get(Call, call_id, with_for_update=True)
        assert call is not None
        call.call_sid = sid
        call.twilio_status = (twilio_status or "queued")[:32]
        if call.status == "submitting":
            call.status = "dialling"
        call.data = {**(call.data or {}), "sids": [*(call.data or {}).get("sids", []), sid]}
        call.updated_at = utcnow()


def _not_placed(
    db: Database, config: dict[str, Any], call_id: int, attempt: int, error: Exception
) -> CallRetry | CallConfirm | None:
    """Twilio's create failed: a refusal is final or retried (``_failed``); a lost answer is asked about first."""
    status, code, text = None, None, type(error).__name__
    if isinstance(error, TwilioRestException):
        status, code, text = error.status, error.code, str(error.msg)[:500]
    if not may_have_reached_twilio(error):
        return _failed(db, config, call_id, attempt, status, code, text)
    now = utcnow()
    with db.transaction() as session:
        call = session.get(Call, call_id)
        assert call is not None
        if call.status != "submitting":
            return None  # Twilio's answer webhook came first: the call is under way
        # Still 'submitting', as after a worker's death; from now on the settle time runs.
        call.error_code = code
        call.data = {**(call.data or {}), "error": text}
        call.updated_at = now
    settle = settle_time(config)
    log.info("call %s: no answer from Twilio (%s); asking it in %s before dialling again", call_id, text, settle)
    return _confirm_later(call_id, now + settle, now)


def _failed(
    db: Database, config: dict[str, Any], call_id: int, attempt: int, status: int | None, code: int | None, text: str
) -> CallRetry | None:
    now = utcnow()
    with db.transaction() as session:
        call = session.get(Call, call_id)
        assert call is not None
        call.error_code = code
        call.data = {**(call.data or {}), "error": text}
        if is_transient(status, code) and attempt < MAX_ATTEMPTS:
            delay = backoff(config, attempt)
            call.status = "pending"
            log.info("call %s: Twilio busy (%s/%s), retry in %s", call_id, status, code, delay)
            return _wait(call, now + delay, now)
        resident = session.get(Resident, call.resident_id) if call.resident_id else None
        if code == INVALID_NUMBER and resident is not None:
            resident.number_status = "invalid"
            queue_callback(session, "bad_number", resident_id=resident.id, call_id=call.id,
                           dedupe_key=f"resident:{resident.id}:bad_number")
        log.warning("call %s failed for good (%s/%s)", call_id, status, code)
        give_up(session, call, "bad_number" if code == INVALID_NUMBER else "failed")
        return None


def reconcile_call(db: Database, config: dict[str, Any], call_id: int) -> CallRetry | None:
    """A row left 'submitting' by a dead worker: adopt Twilio's call, or dial again."""
    now = utcnow()
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if not is_notification(call) or call.status != "submitting":  # type: ignore[union-attr]
            return None
        assert call is not None
        if call.updated_at > now - STALE_SUBMITTING:
            return None
        resident = session.get(Resident, call.resident_id)
        assert resident is not None
        to, claimed_at = resident.phone, call.updated_at
        known = set(session.scalars(select(Call.call_sid).where(Call.resident_id == resident.id)))
    found = None
    if config.get("SENDS_FOR_REAL"):
        try:
            found = _twilio_call(config, to, claimed_at, known)
        except Exception as exc:  # Twilio unreachable: look again at the next sweep
            log.info("reconcile of call %s postponed: %s", call_id, type(exc).__name__)
            return None
    if found is not None:
        _adopt(db, call_id, found.sid, found.status)
        return None
    with db.transaction() as session:
        moved = session.execute(
            update(Call).where(Call.id == call_id, Call.status == "submitting")
            .values(status="pending", updated_at=now).returning(Call.attempts)
        ).scalar_one_or_none()
    if moved is None:
        return None
    return CallRetry(place_call_job_id(call_id, moved), call_id, dt.timedelta(0))


def _twilio_call(config: dict[str, Any], to: str, since: dt.datetime, known: set[str]) -> Any | None:
    """Twilio's call to ``to`` made since ``since`` that no row of ours holds, or None when Twilio has none.
    Raises when Twilio cannot be asked. Filtered here on the creation time: a call still queued or
    ringing has no StartTime yet, so a StartTime filter would miss it."""
    for placed in twilio_client(config).calls.list(to=to, from_=config["TWILIO_PHONE_NUMBER"], limit=50):
        created = placed.date_created
        if placed.sid in known:
            continue
        if created is None or created >= since - dt.timedelta(minutes=1):
            return placed
    return None


def confirm_call(db: Database, config: dict[str, Any], call_id: int) -> CallRetry | CallConfirm | None:
    """A call whose answer from Twilio was lost: ask Twilio whether it placed it, once the request
    has settled. Twilio's call is adopted; only when Twilio has none is it dialled again (after the
    usual back-off, or handed to a broker after MAX_ATTEMPTS)."""
    now = utcnow()
    settle = settle_time(config)
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if not is_notification(call) or call.status != "submitting":  # type: ignore[union-attr]
            return None  # adopted, or answered, meanwhile
        assert call is not None
        settled_at = call.updated_at + settle
        if settled_at > now:
            return _confirm_later(call_id, settled_at, now)
        resident = session.get(Resident, call.resident_id)
        assert resident is not None
        to, since, attempt = resident.phone, call.updated_at - settle, call.attempts
        code, text = call.error_code, str((call.data or {}).get("error") or "no answer")
        known = set(session.scalars(select(Call.call_sid).where(Call.resident_id == resident.id)))
    try:
        found = _twilio_call(config, to, since, known)
    except Exception as exc:  # Twilio still unreachable: ask again later, never dial blind
        log.info("call %s: Twilio could not be asked (%s); asking again in %s", call_id, type(exc).__name__, settle)
        return _confirm_later(call_id, now + settle, now)
    if found is None:
        log.info("call %s: Twilio does not have it; it is dialled again", call_id)
        return _failed(db, config, call_id, attempt, None, code, text)
    _adopt(db, call_id, found.sid, found.status)
    log.info("call %s: Twilio had it; not dialled again", call_id)
    return None


def check_silent_call(db: Database, config: dict[str, Any], call_id: int) -> None:
    """No status callback came for a dialled call: ask Twilio how it ended."""
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if not is_notification(call) or call.status not in ("dialling", "answered"):  # type: ignore[union-attr]
            return
        assert call is not None
        sid = call.call_sid
    if sid.startswith(PENDING_SID_PREFIX) or not config.get("SENDS_FOR_REAL"):
        return
    try:
        status = twilio_client(config).calls(sid).fetch().status
    except TwilioRestException as exc:
        if exc.status != NOT_FOUND:
            log.info("call %s could not be looked up: %s", call_id, exc.status)
            return
        # Twilio has no such call and never will: asking again every sweep cannot help.
        # Counted as a call that failed, it is tried again or handed to a broker.
        log.warning("call %s is unknown at Twilio (404): counted as failed", call_id)
        status = "failed"
    except Exception as exc:  # Twilio unreachable: look again at the next sweep
        log.info("call %s could not be looked up: %s", call_id, type(exc).__name__)
        return
    if status in TWILIO_CALL_UNANSWERED_STATUSES or status == "completed":
        with db.transaction() as session:
            call_finished(session, call_id, sid, status, config=config)


# --- jobs ------------------------------------------------------------------------------


def _schedule(app: Flask, retry: CallRetry | CallConfirm | None) -> None:
    if isinstance(retry, CallConfirm):
        get_queue(app).enqueue(confirm_placed_call, retry.call_id, job_id=retry.job_id, delay=retry.delay or None)
    elif retry is not None:
        get_queue(app).enqueue(place_call, retry.call_id, job_id=retry.job_id, delay=retry.delay or None)


@job(PLACE_CALL)
def place_call(call_id: int) -> None:
    """Place one notification call through Twilio (or let it ring in the demo's simulator)."""
    with job_context() as app:
        _schedule(app, dial(get_database(app), app.config, call_id))


@job()
def reconcile_stale_call(call_id: int) -> None:
    with job_context() as app:
        _schedule(app, reconcile_call(get_database(app), app.config, call_id))


@job()
def confirm_placed_call(call_id: int) -> None:
    """Ask Twilio about a call whose answer was lost; dial again only if Twilio has none."""
    with job_context() as app:
        _schedule(app, confirm_call(get_database(app), app.config, call_id))


@job(queue="maintenance")
def check_call(call_id: int) -> None:
    with job_context() as app:
        check_silent_call(get_database(app), app.config, call_id)


def sweep_calls(app: Flask, now: dt.datetime) -> int:
    """Calls due (first try or a retry), calls a dead worker left, calls Twilio never reported on."""
    queue = get_queue(app)
    db = get_database(app)
    with db.transaction() as session:
        # A row just written has its job on the way; the grace keeps the sweep from racing it.
        grace = now - dt.timedelta(seconds=20)
        calls = [session.get(Call, call_id) for call_id in due_calls(session, now)]
        due = [(c.id, c.attempts) for c in calls if c is not None and c.updated_at < grace]
        stale = session.scalars(
            select(Call.id).where(Call.purpose == "notification", Call.status == "submitting",
                                  Call.updated_at < now - STALE_SUBMITTING)
        ).all()
        silent = session.scalars(
            select(Call.id).where(Call.purpose == "notification", Call.status.in_(("dialling", "answered")),
                                  Call.updated_at < now - SILENT_CALL)
        ).all()
    for call_id, attempts in due:
        queue.enqueue(place_call, call_id, job_id=place_call_job_id(call_id, attempts))
    for call_id in stale:
        queue.enqueue(reconcile_stale_call, call_id, job_id=f"reconcile-call-{call_id}")
    for call_id in silent:
        queue.enqueue(check_call, call_id, job_id=f"check-call-{call_id}")
    return len(due) + len(stale) + len(silent)
