"""Calling a resident back: the gateway rings the broker's own phone, then bridges.

One click in the dashboard stores a ``calls`` row (purpose ``broker_bridge``)
and, after commit, this job asks Twilio to call the broker. When the broker
answers, Twilio fetches our bridge TwiML (gateway/webhooks_bridge.py), which
dials the resident with the gateway number as caller ID: the resident sees
BUUV's number, never the broker's. In the demo nothing is dialled; the
dashboard shows what would have happened.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from models import Broker, Call, Callback
from models.base import utcnow
from models.db import Database, defer_job

from .runtime import job_context
from .twilio_api import callback_url, twilio_client

log = logging.getLogger("buurtlijn.callbacks")

BRIDGE_JOB = "workers.callback_jobs.place_bridge_call"
PURPOSE = "broker_bridge"
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# The broker's leg moves only forward along this rank (status callbacks may come late or twice).
STATUS_RANK = {
    "pending": 0,
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "answered": 4,
    "completed": 9,
    "busy": 9,
    "no-answer": 9,
    "failed": 9,
    "canceled": 9,
}
FINAL_STATUSES = frozenset(status for status, rank in STATUS_RANK.items() if rank == 9)


def bridge_job_id(call_id: int) -> str:
    return f"bridge-call-{call_id}"


def pending_sid() -> str:
    """A stand-in CallSid until Twilio gives the real one (the column is unique, not null)."""
    return "pending-" + secrets.token_hex(16)


def request_bridge_call(session: Session, callback: Callback, broker: Broker, nonce: str) -> Call:
    """Store the call and enqueue the job after commit; one call per click (``nonce``)."""
    dedupe_key = f"bridge:{callback.id}:{nonce}"[:120]
    existing = session.scalars(select(Call).where(Call.dedupe_key == dedupe_key)).one_or_none()
    if existing is not None:
        return existing
    now = utcnow()
    call = Call(
        call_sid=pending_sid(),
        direction="outbound",
        purpose=PURPOSE,
        resident_id=callback.resident_id,
        listing_id=callback.listing_id,
        callback_id=callback.id,
        broker_id=broker.id,
        language=broker.language,
        status="pending",
        twilio_status="pending",
        dedupe_key=dedupe_key,
        created_at=now,
        updated_at=now,
    )
    session.add(call)
    session.flush()
    defer_job(session, BRIDGE_JOB, call.id, job_id=bridge_job_id(call.id))
    return call


def advance_status(call: Call, status: str) -> bool:
    """Move the broker leg's status forward; a late or repeated status changes nothing."""
    status = status.lower()
    if status not in STATUS_RANK:
        return False
    if STATUS_RANK[status] <= STATUS_RANK.get(call.twilio_status or "pending", 0):
        return False
    call.twilio_status = status
    call.updated_at = utcnow()
    if status in FINAL_STATUSES:
        call.status = "finished" if status == "completed" else "failed"
        call.ended_at = call.updated_at
    return True


def place_bridge_call(call_id: int) -> None:
    """Job: ring the broker's phone (or show it, in the demo). Safe to run twice."""
    with job_context() as app:
        place(app.extensions["buurtlijn.db"], app.config, call_id)


def _fail(db: Database, call_id: int, reason: str, code: int | None = None) -> None:
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if call is None:
            return
        call.status = "failed"
        call.twilio_status = "failed"
        call.error_code = code
        call.data = {**(call.data or {}), "error": reason}
        call.ended_at = utcnow()
    log.warning("bridge call %s failed: %s", call_id, reason)


def place(db: Database, config: dict[str, Any], call_id: int) -> None:
    now = utcnow()
    with db.transaction() as session:
        # The claim (pending -> dialling) is committed before Twilio is called: a job run twice dials once.
        claimed = session.execute(
            update(Call)
            .where(Call.id == call_id, Call.purpose == PURPOSE, Call.status == "pending")
            .values(status="dialling", attempts=Call.attempts + 1, updated_at=now)
            .returning(Call.broker_id)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return
        broker = session.get(Broker, claimed.broker_id) if claimed.broker_id else None
        to = broker.phone if broker is not None else None
    if not to:
        _fail(db, call_id, "no_broker_phone")
        return
    if not config.get("SENDS_FOR_REAL"):
        with db.transaction() as session:
            call = session.get(Call, call_id)
            assert call is not None
            call.status = "in_progress"
            call.twilio_status = "queued"
            call.data = {**(call.data or {}), "demo": True}
        log.info("demo: bridge call %s shown, not placed", call_id)
        return
    answer_url = callback_url(config, f"/twilio/bridge/{call_id}/connect")
    if answer_url is None:
        _fail(db, call_id, "no_public_url")  # Twilio needs a URL it can reach
        return
    try:
        created = twilio_client(config).calls.create(
            to=to,
            from_=config["TWILIO_PHONE_NUMBER"],
            url=answer_url,
            method="POST",
            status_callback=callback_url(config, f"/twilio/bridge/{call_id}/status"),
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
        )
    except TwilioRestException as exc:
        _fail(db, call_id, "twilio_refused", exc.code)
        return
    except Exception as exc:  # network down, timeout: the broker sees it and can try again
        _fail(db, call_id, type(exc).__name__)
        return
    with db.transaction() as session:
        call = session.get(Call, call_id)
        assert call is not None
        if call.call_sid.startswith("pending-"):
            call.call_sid = created.sid
        if call.status == "dialling":
            call.status = "in_progress"
        advance_status(call, created.status or "queued")
