"""Calling a resident back through the broker's own phone: the domain's side.

One click in the dashboard stores a ``calls`` row (purpose ``broker_bridge``)
and, after commit, a job (workers/callback_jobs.py) asks Twilio to call the
broker. When the broker answers, Twilio fetches our bridge TwiML
(gateway/webhooks_bridge.py), which dials the resident with the gateway
number as caller ID: the resident sees BUUV's number, never the broker's.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import utcnow
from .broker import Broker
from .call import PENDING_SID_PREFIX, Call, status_moves_forward
from .callback import Callback
from .db import defer_job
from .jobs import PLACE_BRIDGE_CALL
from .vocabulary import TWILIO_CALL_ENDED_STATUSES

PURPOSE = "broker_bridge"


def bridge_job_id(call_id: int) -> str:
    return f"bridge-call-{call_id}"


def pending_sid() -> str:
    """A stand-in CallSid until Twilio gives the real one (the column is unique, not null)."""
    return PENDING_SID_PREFIX + secrets.token_hex(16)


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
    defer_job(session, PLACE_BRIDGE_CALL, call.id, job_id=bridge_job_id(call.id))
    return call


def advance_status(call: Call, status: str) -> bool:
    """Move the broker leg's status forward; a late or repeated status changes nothing."""
    status = status.lower()
    if not status_moves_forward(call.twilio_status, status):
        return False
    call.twilio_status = status
    call.updated_at = utcnow()
    if status in TWILIO_CALL_ENDED_STATUSES:
        call.status = "finished" if status == "completed" else "failed"
        call.ended_at = call.updated_at
    return True
