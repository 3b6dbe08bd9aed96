"""The webhook side of the message ledger: lean, one statement each."""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from .base import utcnow
from .db import Database, defer_job
from .jobs import HANDLE_INBOUND_SMS
from .limits import bounded_int, one_line, storable_text
from .message import FINAL_OUTBOUND, OUTBOUND_STATUS_RANK, Message
from .queue import queue_callback
from .sql import insert_ignoring_conflict

log = logging.getLogger("buurtlijn.inbox")
MAX_BODY = 1600  # Twilio's own limit; anything longer is not from Twilio
# PostgreSQL delivers a NOTIFY only when its transaction commits, to every
# listener (workers/dispatch.py): "enqueue after commit" without Redis on the
# webhook's path.
INBOUND_CHANNEL = "buurtlijn_inbound"


def handle_job_id(message_id: int) -> str:
    return f"handle-inbound-{message_id}"


def _inbound_values(
    message_sid: str, raw_from: str | None, body: str | None, opt_out_type: str | None
) -> dict[str, object]:
    """The row of an inbound SMS. ``message_sid`` is Twilio's whole SID (the webhook refuses any other):
    cut, two SIDs could collide and one message be lost."""
    now = utcnow()
    raw_from, opt_out_type = one_line(raw_from), one_line(opt_out_type)
    return {
        "direction": "inbound",
        "twilio_sid": message_sid,
        "raw_from": raw_from[:64] if raw_from else None,
        "body": storable_text((body or "")[:MAX_BODY]),
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
    message_sid: str,
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
        defer_job(session, HANDLE_INBOUND_SMS, message_id, job_id=handle_job_id(message_id))
    return message_id


# The INSERT of one or more messages (see InboundBatches) and the NOTIFY that
# wakes the dispatcher for each, in one statement that commits on its own: one
# round trip, and one prepared statement whatever the number of rows.
# PostgreSQL sends the notifications only once the rows are committed. What is
# the same for every inbound message comes from _inbound_values of the first.
_INSERT_MANY_AND_NOTIFY = f"""
WITH inserted AS (
    INSERT INTO messages (direction, twilio_sid, raw_from, body, status, opt_out_type,
                          urgent, attempts, created_at, updated_at)
    SELECT %(direction)s, sid, sender, body, %(status)s, opt_out, %(urgent)s, %(attempts)s,
           %(created_at)s, %(updated_at)s
    FROM unnest(%(sids)s::varchar[], %(senders)s::varchar[], %(bodies)s::text[], %(opt_outs)s::varchar[])
         AS batch(sid, sender, body, opt_out)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT count(pg_notify('{INBOUND_CHANNEL}', id::text)) FROM inserted
"""


class _Waiting:
    """One webhook's message, waiting to be written with others."""

    __slots__ = ("values", "done", "error", "lead")

    def __init__(self, values: dict[str, object]):
        self.values = values
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.lead = False


class InboundBatches:
    """Group commit for inbound SMS: the webhook threads of one process share statements.

    Under load many webhook threads would each run one INSERT and wait for
    its commit. Here the first thread writes; whoever arrives meanwhile waits,
    and the next writer takes all of them in one statement and one commit.
    Nobody waits for a timer: an idle gateway writes each message at once.
    Every thread still answers Twilio only once its own row is committed, and
    a batch that fails is written again row by row, so one bad row fails only
    its own request (Twilio retries it).
    """

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._writing = False
        self._pid = os.getpid()

    def record(self, values: dict[str, object]) -> None:
        mine = _Waiting(values)
        with self._lock:
            if self._pid != os.getpid():  # inherited through a fork: start afresh
                self._queue, self._writing, self._pid = [], False, os.getpid()
            self._queue.append(mine)
            mine.lead = not self._writing
            self._writing = True
        if not mine.lead:
            mine.done.wait()
        if mine.lead:
            self._write_next()
        if mine.error is not None:
            raise mine.error

    def _write_next(self) -> None:
        """Write everything waiting (this thread's own row among it), then hand on the pen."""
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:
            with self._lock:
                follower = self._queue[0] if self._queue else None
                if follower is None:
                    self._writing = False
                else:
                    follower.lead = True
            for waiting in batch:
                waiting.done.set()
            if follower is not None:
                follower.done.set()

    def _write(self, batch: list[_Waiting]) -> None:
        rows = [waiting.values for waiting in batch]
        try:
            self.db.autocommit_row(_INSERT_MANY_AND_NOTIFY, {
                **rows[0], "sids": [r["twilio_sid"] for r in rows], "senders": [r["raw_from"] for r in rows],
                "bodies": [r["body"] for r in rows], "opt_outs": [r["opt_out_type"] for r in rows],
            })
        except BaseException as exc:
            if len(batch) == 1 or not isinstance(exc, Exception):
                for waiting in batch:
                    waiting.error = exc
                return
            log.warning("a batch of %d inbound messages failed; writing them one by one", len(batch), exc_info=True)
            for waiting in batch:
                self._write([waiting])


def record_inbound_and_notify(
    db: Database,
    *,
    message_sid: str,
    raw_from: str | None,
    body: str | None,
    opt_out_type: str | None = None,
) -> None:
    """The same as ``record_inbound`` on PostgreSQL with RQ: stored and announced, committed on return."""
    batches = db.extensions.get("inbound_batches")
    if batches is None:
        batches = db.extensions.setdefault("inbound_batches", InboundBatches(db))
    batches.record(_inbound_values(message_sid, raw_from, body, opt_out_type))


def _rank_expression():  # type: ignore[no-untyped-def]
    return case(OUTBOUND_STATUS_RANK, value=Message.status, else_=0)


def record_status(session: Session, *, message_sid: str | None, status: str, error_code: str | None) -> bool:
    """Move an outbound message's status forward; late or shuffled callbacks change nothing."""
    if not message_sid or status not in OUTBOUND_STATUS_RANK:
        return False
    code = bounded_int(error_code)  # an INTEGER column: a larger code is no code of Twilio's
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
