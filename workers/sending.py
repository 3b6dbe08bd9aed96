"""Sending one outbound SMS, exactly once, whatever Twilio or the worker does.

The row is claimed (pending -> submitting) and committed *before* Twilio is
called. If the worker dies while Twilio answers, the row stays
``submitting``; the sweep then asks Twilio whether it went out before
sending again, so a killed worker neither loses nor doubles a message.
A request whose answer is lost (a timeout, a dropped connection, a 5xx)
leaves the row ``submitting`` the same way, and ``confirm_sent`` asks Twilio.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from models import Message, Resident
from models.base import utcnow
from models.db import Database
from models.destinations import NUMBER_REFUSALS, refusal, report_refused_number, sms_counts, total_cap
from models.outbox import due_outbound, send_job_id
from models.privacy import ERASURE_CONFIRMATION
from models.limits import bounded_int
from models.queue import queue_callback
from models.workdays import quiet_until

from .twilio_api import (
    INVALID_NUMBER,
    NOT_MOBILE,
    OPTED_OUT,
    callback_url,
    is_transient,
    may_have_reached_twilio,
    settle_time,
    twilio_client,
)

log = logging.getLogger("buurtlijn.sending")

MAX_ATTEMPTS = 6
BACKOFF = (dt.timedelta(seconds=30), dt.timedelta(minutes=2), dt.timedelta(minutes=10),
           dt.timedelta(minutes=30), dt.timedelta(hours=2))
# A send waits in the worker for its slot at most this long; a longer wait
# goes back to the queue (delayed), so a burst queues with us, not at Twilio.
MAX_PACING_SLEEP = 1.0
STALE_SUBMITTING = dt.timedelta(minutes=2)
# Sent to a resident who has just opted out, or has just been erased: the one message still allowed.
ALLOWED_WHEN_OPTED_OUT = frozenset({"opt_out_confirmation", ERASURE_CONFIRMATION})


@dataclass(frozen=True)
class Retry:
    """The message waits; ``delay`` from now it is tried again."""

    job_id: str
    message_id: int
    delay: dt.timedelta


@dataclass(frozen=True)
class Confirm:
    """Twilio may have the message without our knowing: ``delay`` from now, ask it (``confirm_sent``)."""

    job_id: str
    message_id: int
    delay: dt.timedelta


def _confirm_later(message_id: int, settled_at: dt.datetime, now: dt.datetime) -> Confirm:
    """Ask once the request has settled; an id of its own (from ``now``), never the id of the job now running."""
    return Confirm(f"confirm-{message_id}-{int(now.timestamp() * 1000)}", message_id, settled_at - now)


def backoff(config: dict[str, Any], attempt: int) -> dt.timedelta:
    """How long to wait after failed ``attempt`` (1-based): growing, from BUURTLIJN_SEND_BACKOFF_SECONDS."""
    spec = str(config.get("BUURTLIJN_SEND_BACKOFF_SECONDS") or "")
    steps = [dt.timedelta(seconds=float(x)) for x in spec.split(",") if x.strip()] or list(BACKOFF)
    return steps[min(attempt - 1, len(steps) - 1)]


def wait_job_id(message_id: int, attempt: int, until: dt.datetime) -> str:
    """The job that sends after a wait (quiet hours, pacing): its own id, so it never
    collides with the job that is running now; the claim makes sure only one sends."""
    return f"{send_job_id(message_id, attempt)}-w{int(until.timestamp())}"


# --- pacing: a sending rate per gateway number -----------------------------------

# Reserves the next free slot of KEYS[1] (a "next free at" timestamp) with the
# server's clock, so every worker process shares one rate. Returns the wait in
# seconds, or minus the wait when it exceeds ARGV[2] (nothing reserved then).
_RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, free)
local wait = slot - now
if wait > tonumber(ARGV[2]) then
  return tostring(-wait)
end
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil((wait + interval) * 1000) + 1000)
return tostring(wait)
"""


class Pacer:
    """Spaces sends from one number to BUURTLIJN_SMS_PER_SECOND.

    Through Redis when there is one (all workers share the rate); when Redis
    is absent or down, each process paces itself, which still smooths a burst.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_free: dict[str, float] = {}
        self._redis: dict[str, Any] = {}

    def reserve(self, config: dict[str, Any], number: str, max_wait: float = MAX_PACING_SLEEP) -> float:
        """Seconds to wait before sending from ``number``; negative: too long, come back in -value s."""
        rate = float(config.get("BUURTLIJN_SMS_PER_SECOND") or 0)
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        url = config.get("REDIS_URL")
        if url:
            try:
                key = f"{config.get('BUURTLIJN_QUEUE_PREFIX', 'buurtlijn')}:pace:{number}"
                return float(self._script(url)(keys=[key], args=[interval, max_wait]))
            except (RedisError, OSError) as exc:
                log.info("pacing without Redis (%s)", type(exc).__name__)
        return self._reserve_locally(number, interval, max_wait)

    def _script(self, url: str) -> Any:
        """The slot script, registered once: each call sends its hash (EVALSHA), not its text."""
        script = self._redis.get(url)
        if script is None:
            client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
            script = client.register_script(_RESERVE_SLOT)
            self._redis[url] = script
        return script

    def _reserve_locally(self, number: str, interval: float, max_wait: float) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_free.get(number, 0.0))
            wait = slot - now
            if wait > max_wait:
                return -wait
            self._next_free[number] = slot + interval
            return wait


PACER = Pacer()


def _claim(session: Session, message_id: int, now: dt.datetime) -> bool:
    claimed = session.execute(
        update(Message)
        .where(Message.id == message_id, due_outbound(now))
        .values(status="submitting", attempts=Message.attempts + 1, updated_at=now)
        .returning(Message.id)
    ).scalar_one_or_none()
    return claimed is not None


def _block(message: Message, reason: str, now: dt.datetime) -> None:
    message.status = "blocked"
    message.error_message = reason
    message.status_at = now


def _block_reason(
    config: dict[str, Any], message_id: int, *, phone: str | None, purpose: str | None, opted_out: bool,
    number_status: str | None, sent_today: tuple[int, int],
) -> str | None:
    """Why a message may not go out at all, or None: the same checks on both claim paths."""
    if opted_out and purpose not in ALLOWED_WHEN_OPTED_OUT:
        return "opted_out"
    if number_status is not None and number_status != "ok":
        return f"number_{number_status}"
    reason = refusal(phone, config, "sms", to_number_today=sent_today[0], in_total_today=sent_today[1])
    if reason is not None:
        log.warning("message %s refused by the outbound policy: %s", message_id, reason)
    return reason


def _pace(config: dict[str, Any]) -> float:
    """Seconds to wait for a sending slot of the gateway number (see Pacer.reserve); 0 in the demo."""
    return PACER.reserve(config, config["TWILIO_PHONE_NUMBER"]) if config.get("SENDS_FOR_REAL") else 0.0


@dataclass(frozen=True)
class Claimed:
    """A message this worker now holds (``submitting``, committed) and will hand to Twilio."""

    to: str
    body: str
    attempt: int
    pause: float


# The claim of a due message (models.outbox.due_outbound) with everything its
# checks read, in one autocommit round trip. Messages that are not simply due (waiting, quiet hours) return no
# row and take the session path, which says why.
_CLAIM_DUE = """
UPDATE messages m SET status = 'submitting', attempts = m.attempts + 1, updated_at = %(now)s
WHERE m.id = %(id)s AND m.direction = 'outbound' AND m.status = 'pending'
  AND (m.send_after IS NULL OR m.send_after <= %(now)s)
  AND (m.urgent OR NOT %(quiet)s)
RETURNING m.phone, m.body, m.attempts, m.purpose,
  (SELECT r.opted_out FROM residents r WHERE r.id = m.resident_id),
  (SELECT r.number_status FROM residents r WHERE r.id = m.resident_id),
  (SELECT count(*) FROM messages s
    WHERE s.direction = 'outbound' AND s.phone = m.phone AND s.sent_at >= %(since)s),
  (SELECT count(*) FROM (SELECT 1 FROM messages s
    WHERE s.direction = 'outbound' AND s.sent_at >= %(since)s LIMIT %(total_cap)s) AS sent),
  m.resident_id
"""
# Gives a claimed message back: blocked for good, or pending until later.
_UNCLAIM = """
UPDATE messages SET status = %(status)s, attempts = attempts - 1, error_message = %(reason)s,
  status_at = CASE WHEN %(blocked)s THEN %(now)s ELSE status_at END,
  send_after = COALESCE(%(send_after)s, send_after), updated_at = %(now)s
WHERE id = %(id)s AND status = 'submitting' RETURNING id
"""
_RECORD_SENT = """
UPDATE messages SET twilio_sid = %(sid)s, status = %(status)s, sent_at = %(now)s, status_at = %(now)s,
  updated_at = %(now)s, error_code = NULL, error_message = NULL, segments = %(segments)s
WHERE id = %(id)s RETURNING id
"""


def _claim_fast(db: Database, config: dict[str, Any], message_id: int, now: dt.datetime) -> Claimed | Retry | None:
    """PostgreSQL: the checks and the claim in one statement; the session path when it is not simply due."""
    row = db.autocommit_row(_CLAIM_DUE, {
        "id": message_id, "now": now, "quiet": quiet_until(now, config) is not None,
        "since": now - dt.timedelta(hours=24), "total_cap": max(total_cap(config, "sms"), 1),
    })
    if row is None:
        return _claim_with_session(db, config, message_id, now)
    to, body, attempts, purpose, opted_out, number_status, to_number_today, in_total_today, resident_id = row

    def unclaim(status: str, reason: str | None = None, send_after: dt.datetime | None = None) -> None:
        db.autocommit_row(_UNCLAIM, {"id": message_id, "status": status, "blocked": status == "blocked",
                                     "reason": reason, "send_after": send_after, "now": now})

    reason = _block_reason(config, message_id, phone=to, purpose=purpose, opted_out=bool(opted_out),
                           number_status=number_status, sent_today=(to_number_today, in_total_today))
    if reason is not None:
        unclaim("blocked", reason)
        if reason in NUMBER_REFUSALS and resident_id is not None:
            with db.transaction() as session:
                report_refused_number(session, session.get(Resident, resident_id), reason, message_id=message_id)
        return None
    pause = _pace(config)
    if pause < 0:  # the burst is long: wait in the queue, not in this worker
        until = now + dt.timedelta(seconds=-pause)
        unclaim("pending", send_after=until)
        return Retry(wait_job_id(message_id, attempts - 1, until), message_id, until - now)
    return Claimed(to, body, attempts, pause)


def _claim_with_session(db: Database, config: dict[str, Any], message_id: int, now: dt.datetime) -> Claimed | Retry | None:
    """Every check in turn through the ORM; says why a message is not sent now."""
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.direction != "outbound" or message.status != "pending":
            return None
        if message.send_after and message.send_after > now:
            return Retry(wait_job_id(message.id, message.attempts, message.send_after), message.id,
                         message.send_after - now)
        resident = session.get(Resident, message.resident_id) if message.resident_id else None
        reason = _block_reason(
            config, message.id, phone=message.phone, purpose=message.purpose,
            opted_out=resident is not None and resident.opted_out,
            number_status=resident.number_status if resident is not None else None,
            sent_today=sms_counts(session, message.phone, now, config) if message.phone else (0, 0),
        )
        if reason is not None:
            _block(message, reason, now)
            report_refused_number(session, resident, reason, message_id=message.id)
            return None
        wake = None if message.urgent else quiet_until(now, config)
        if wake is not None:
            message.send_after = wake
            return Retry(wait_job_id(message.id, message.attempts, wake), message.id, wake - now)
        pause = _pace(config)
        if pause < 0:  # the burst is long: wait in the queue, not in this worker
            until = now + dt.timedelta(seconds=-pause)
            message.send_after = until
            return Retry(wait_job_id(message.id, message.attempts, until), message.id, until - now)
        if not _claim(session, message.id, now):
            return None
        return Claimed(message.phone, message.body, message.attempts + 1, pause)


def deliver(db: Database, config: dict[str, Any], message_id: int) -> Retry | Confirm | None:
    """Send message ``message_id`` if it is still due. Returns a Retry when it must wait,
    a Confirm when Twilio did not answer and must be asked before it is sent again."""
    now = utcnow()
    # 1. Checks and the claim, committed before Twilio is called.
    claim = _claim_fast if db.is_postgresql else _claim_with_session
    claimed = claim(db, config, message_id, now)
    if not isinstance(claimed, Claimed):
        return claimed
    to, body, attempt = claimed.to, claimed.body, claimed.attempt
    if claimed.pause > 0:
        time.sleep(claimed.pause)

    # 2. The demo shows instead of sending.
    if not config.get("SENDS_FOR_REAL"):
        with db.transaction() as session:
            session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(status="shown", sent_at=now, status_at=now, updated_at=now)
            )
        log.info("demo: message %s shown, not sent", message_id)
        return None

    # 3. Twilio.
    try:
        sent = twilio_client(config).messages.create(
            to=to,
            from_=config["TWILIO_PHONE_NUMBER"],
            body=body,
            status_callback=callback_url(config, "/twilio/sms/status"),
        )
    except Exception as exc:  # refused, or the answer lost: see _not_sent
        return _not_sent(db, config, message_id, attempt, exc)
    status = (sent.status or "queued") if sent.status in _TWILIO_START else "queued"
    # Twilio says how many segments it bills: the report's SMS segments.
    segments = bounded_int(getattr(sent, "num_segments", None), minimum=1)
    if db.is_postgresql:
        # Need not wait for the disk: were this commit lost in a crash, the
        # row stays 'submitting' and reconcile_stale adopts Twilio's SID
        # instead of sending again. Saves one fsync per message.
        db.autocommit_row(_RECORD_SENT, {"id": message_id, "sid": sent.sid, "status": status, "now": utcnow(),
                                             "segments": segments},
                          durable=False)
        return None
    with db.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                twilio_sid=sent.sid,
                status=status,
                segments=segments,
                sent_at=utcnow(),
                status_at=utcnow(),
                updated_at=utcnow(),
                error_code=None,
                error_message=None,
            )
        )
    return None


_TWILIO_START = {"accepted", "scheduled", "queued", "sending", "sent"}


def _not_sent(
    db: Database, config: dict[str, Any], message_id: int, attempt: int, error: Exception
) -> Retry | Confirm | None:
    """Twilio's create failed: a refusal is final or retried (``_failed``); a lost answer is asked about first."""
    status, code, text = None, None, type(error).__name__
    if isinstance(error, TwilioRestException):
        status, code, text = error.status, error.code, str(error.msg)[:500]
    if not may_have_reached_twilio(error):
        return _failed(db, config, message_id, attempt, status, code, text)
    now = utcnow()
    with db.transaction() as session:
        # Still 'submitting', as after a worker's death; from now on the settle time runs.
        session.execute(
            update(Message).where(Message.id == message_id, Message.status == "submitting")
            .values(error_code=code, error_message=text, status_at=now, updated_at=now)
        )
    settle = settle_time(config)
    log.info("message %s: no answer from Twilio (%s); asking it in %s before sending again",
             message_id, text, settle)
    return _confirm_later(message_id, now + settle, now)


def _failed(
    db: Database, config: dict[str, Any], message_id: int, attempt: int, status: int | None, code: int | None, text: str
) -> Retry | None:
    now = utcnow()
    with db.transaction() as session:
        message = session.get(Message, message_id)
        assert message is not None
        resident = session.get(Resident, message.resident_id) if message.resident_id else None
        message.error_code = code
        message.error_message = text
        message.status_at = now
        if is_transient(status, code) and attempt < MAX_ATTEMPTS:
            delay = backoff(config, attempt)
            message.status = "pending"
            message.send_after = now + delay
            log.info("message %s: Twilio busy (%s/%s), retry in %s", message_id, status, code, delay)
            return Retry(send_job_id(message_id, attempt), message_id, delay)
        message.status = "failed"
        if code == OPTED_OUT and resident is not None:
            resident.opted_out = True
            resident.opted_out_at = resident.opted_out_at or now
            return None
        if code in (INVALID_NUMBER, NOT_MOBILE) and resident is not None:
            resident.number_status = "invalid" if code == INVALID_NUMBER else "not_mobile"
            if code == NOT_MOBILE:
                resident.line_type = "fixed_line"
            queue_callback(
                session, "bad_number", resident_id=resident.id, message_id=message_id,
                dedupe_key=f"resident:{resident.id}:bad_number",
            )
            return None
        queue_callback(
            session, "notification_failed", resident_id=message.resident_id, message_id=message_id,
            dedupe_key=f"message:{message_id}:send_failed",
        )
        log.warning("message %s failed for good (%s/%s)", message_id, status, code)
        return None


def reconcile_stale(db: Database, config: dict[str, Any], message_id: int) -> Retry | None:
    """A row left 'submitting' by a dead worker: adopt Twilio's copy, or send again."""
    now = utcnow()
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != "submitting" or message.updated_at > now - STALE_SUBMITTING:
            return None
        to, body, claimed_at = message.phone, message.body, message.updated_at
        # Twilio's copies we already hold belong to other rows (the same text can go twice).
        known = set(session.scalars(
            select(Message.twilio_sid).where(Message.phone == to, Message.direction == "outbound",
                                             Message.twilio_sid.is_not(None))
        ))
    found_sid, found_status = None, None
    if config.get("SENDS_FOR_REAL"):
        try:
            found_sid, found_status = _twilio_copy(config, to, body, claimed_at, known)
        except Exception as exc:  # Twilio unreachable: look again at the next sweep
            log.info("reconcile of message %s postponed: %s", message_id, type(exc).__name__)
            return None
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != "submitting":
            return None
        if found_sid:
            message.twilio_sid = found_sid
            message.status = found_status if found_status in _TWILIO_START else "queued"
            message.sent_at = message.sent_at or now
        else:
            message.status = "pending"
            message.send_after = None
        message.updated_at = now
        return None if found_sid else Retry(send_job_id(message_id, message.attempts), message_id, dt.timedelta(0))


def _twilio_copy(
    config: dict[str, Any], to: str, body: str, since: dt.datetime, known: set[str | None]
) -> tuple[str | None, str | None]:
    """Twilio's copy of a message with this body to ``to``, made since ``since``, that no row of ours
    holds yet: (sid, status), or (None, None) when Twilio has none. Raises when Twilio cannot be asked.

    Twilio's list for the number, newest first (the daily cap keeps it short), filtered here on the
    creation time: a message still queued at Twilio has no DateSent yet, so a DateSent filter would miss it.
    """
    for sent in twilio_client(config).messages.list(to=to, from_=config["TWILIO_PHONE_NUMBER"], limit=50):
        created = sent.date_created
        if sent.sid in known:
            continue
        if sent.body == body and (created is None or created >= since - dt.timedelta(minutes=1)):
            return sent.sid, sent.status
    return None, None


def confirm_sent(db: Database, config: dict[str, Any], message_id: int) -> Retry | Confirm | None:
    """A message whose answer from Twilio was lost: ask Twilio whether it has it, once the
    request has settled. Twilio's copy is adopted; only when Twilio has none is it sent again
    (after the usual back-off, or given up after MAX_ATTEMPTS)."""
    now = utcnow()
    settle = settle_time(config)
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != "submitting":
            return None  # adopted or sent meanwhile
        settled_at = message.updated_at + settle
        if settled_at > now:
            return _confirm_later(message_id, settled_at, now)
        to, body, since = message.phone, message.body, message.updated_at - settle
        attempt, code, text = message.attempts, message.error_code, message.error_message or "no answer"
        known = set(session.scalars(
            select(Message.twilio_sid).where(Message.phone == to, Message.direction == "outbound",
                                             Message.twilio_sid.is_not(None))
        ))
    try:
        found_sid, found_status = _twilio_copy(config, to or "", body, since, known)
    except Exception as exc:  # Twilio still unreachable: ask again later, never send blind
        log.info("message %s: Twilio could not be asked (%s); asking again in %s", message_id, type(exc).__name__,
                 settle)
        return _confirm_later(message_id, now + settle, now)
    if found_sid is None:
        log.info("message %s: Twilio does not have it; it is sent again", message_id)
        return _failed(db, config, message_id, attempt, None, code, text)
    with db.transaction() as session:
        session.execute(
            update(Message).where(Message.id == message_id, Message.status == "submitting")
            .values(twilio_sid=found_sid, status=found_status if found_status in _TWILIO_START else "queued",
                    sent_at=func.coalesce(Message.sent_at, now), status_at=now, updated_at=now,
                    error_code=None, error_message=None)
        )
    log.info("message %s: Twilio had it; not sent again", message_id)
    return None
