"""Outbound SMS: a committed row first, then a job that sends it once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import Session

from texts import fit_gsm7

from .base import utcnow
from .db import defer_job
from .jobs import SEND_MESSAGE
from .message import Message
from .resident import Resident
from .sql import insert_once


def send_job_id(message_id: int, attempt: int) -> str:
    return f"send-message-{message_id}-{attempt}"


def due_outbound(now: dt.datetime) -> ColumnElement[bool]:
    """Outbound messages waiting to be sent whose time has come (the claim, the sweep, the drain).

    workers/sending.py's one-statement claim (_CLAIM_DUE) spells out the same in SQL.
    """
    return and_(
        Message.direction == "outbound",
        Message.status == "pending",
        or_(Message.send_after.is_(None), Message.send_after <= now),
    )


def queue_sms(
    session: Session,
    resident: Resident,
    body: str,
    *,
    purpose: str,
    dedupe_key: str | None = None,
    urgent: bool = False,
    listing_id: int | None = None,
    match_id: int | None = None,
    send_after: dt.datetime | None = None,
) -> Message:
    """Store an SMS for ``resident``; it is sent by a job after this transaction commits.

    With ``dedupe_key`` the same intent makes one message, however often the
    caller runs. The body is brought into GSM-7 where it reads the same (Arabic stays
    as written), so it costs one segment where the text allows.
    """
    now = utcnow()
    values = {
        "direction": "outbound",
        "resident_id": resident.id,
        "phone": resident.phone,
        "body": fit_gsm7(body),
        "status": "pending",
        "purpose": purpose,
        "dedupe_key": dedupe_key,
        "urgent": urgent,
        "send_after": send_after,
        "attempts": 0,
        "listing_id": listing_id,
        "match_id": match_id,
        "created_at": now,
        "updated_at": now,
    }
    if dedupe_key is None:
        message = Message(**values)
        session.add(message)
        session.flush()
    else:
        message, created = insert_once(session, Message, values)
        if not created:
            return message  # this intent was queued before
    defer_job(session, SEND_MESSAGE, message.id, job_id=send_job_id(message.id, 0))
    return message
