"""The webhook side of the message ledger: lean, one statement each."""

from __future__ import annotations

import logging

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from .base import utcnow
from .db import Database, defer_job
from .message import FINAL_OUTBOUND, OUTBOUND_STATUS_RANK, Message
from .queue import queue_callback
from .sql import insert_ignoring_conflict

log = logging.getLogger("buurtlijn.inbox")
HANDLE_JOB = "workers.jobs.handle_inbound_sms"
MAX_BODY = 1600  # Twilio's own limit; anything longer is not from Twilio
# PostgreSQL delivers a NOTIFY only when its transaction commits, to every
# listener (workers/dispatch.py): "enqueue after commit" without Redis on the
# webhook's path.
INBOUND_CHANNEL = "buurtlijn_inbound"


def handle_job_id(message_id: int) -> str:
    return f"handle-inbound-{message_id}"


def _inbound_values(
    message_sid: str | None, raw_from: str | None, body: str | None, opt_out_type: str | None
) -> dict[str, object]:
    now = utcnow()
    return {
        "direction": "inbound",
        "twilio_sid": (message_sid or None) and message_sid[:64],
        "raw_from": raw_from[:64] if raw_from else None,
        "body": (body or "")[:MAX_BODY].replace("\x00", ""),
        "status": "received",
        "opt_out_type": opt_out_type[:16] if opt_out_type else None,
        "urgent": False,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def record_inbound(
    session: Session,
    *,
    message_sid: str | None,
    raw_from: str | None,
    body: str | None,
    opt_out_type: str | None = None,
) -> int | None:
    """Store an inbound SMS; a replayed MessageSid stores nothing (returns None).

    Its job is deferred to after the session commits (SQLite, jobs in-process).
    """
    values = _inbound_values(message_sid, raw_from, body, opt_out_type)
    message_id = insert_ignoring_conflict(session, Message.__table__, values, returning=Message.id)
    if message_id is not None:
        defer_job(session, HANDLE_JOB, message_id, job_id=handle_job_id(message_id), queue="inbound")
    return message_id


# The INSERT and the NOTIFY that wakes the dispatcher, in one statement that
# commits on its own: one round trip. PostgreSQL sends the notification only
# once the row is committed.
_INSERT_AND_NOTIFY = f"""
WITH inserted AS (
    INSERT INTO messages (direction, twilio_sid, raw_from, body, status, opt_out_type,
                          urgent, attempts, created_at, updated_at)
    VALUES (%(direction)s, %(twilio_sid)s, %(raw_from)s, %(body)s, %(status)s, %(opt_out_type)s,
            %(urgent)s, %(attempts)s, %(created_at)s, %(updated_at)s)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id, pg_notify('{INBOUND_CHANNEL}', id::text) FROM inserted
"""


def record_inbound_and_notify(
    db: Database,
    *,
    message_sid: str | None,
    raw_from: str | None,
    body: str | None,
    opt_out_type: str | None = None,
) -> int | None:
    """The same as ``record_inbound`` on PostgreSQL with RQ: stored and announced at once."""
    row = db.autocommit_row(_INSERT_AND_NOTIFY, _inbound_values(message_sid, raw_from, body, opt_out_type))
    return row[0] if row else None


def _rank_expression():  # type: ignore[no-untyped-def]
    return case(OUTBOUND_STATUS_RANK, value=Message.status, else_=0)


def record_status(session: Session, *, message_sid: str | None, status: str, error_code: str | None) -> bool:
    """Move an outbound message's status forward; late or shuffled callbacks change nothing."""
    if not message_sid or status not in OUTBOUND_STATUS_RANK:
        return False
    code = int(error_code) if error_code and error_code.isdigit() else None
    now = utcnow()
    new_rank = OUTBOUND_STATUS_RANK[status]
    settled = FINAL_OUTBOUND if status == "read" else FINAL_OUTBOUND | {"delivered"}
    moved = session.execute(
        update(Message)
        .where(
            Message.twilio_sid == message_sid,
            Message.direction == "outbound",
            _rank_expression() < new_rank,
            Message.status.not_in(settled),
        )
        .values(status=status, status_at=now, updated_at=now, error_code=code if code else Message.error_code)
        .returning(Message.id, Message.resident_id)
    ).first()
    if moved is None:
        return False
    if status in ("failed", "undelivered"):
        # The resident did not get what we sent: a person follows up.
        queue_callback(
            session,
            "notification_failed",
            resident_id=moved.resident_id,
            message_id=moved.id,
            dedupe_key=f"message:{moved.id}:delivery_failed",
        )
    return True
