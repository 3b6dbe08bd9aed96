"""Events for the online marketplace: written in the transaction of the change, delivered by the worker.

With ``BUURTLIJN_WEBHOOK_URL`` set, every session of the app watches what it
writes (``watch``). The hook is the session itself, not a call in each
service: a listing or match created, or a column of its contract shape
changed, by any code through the ORM (the SMS job, the phone menu's ORM
path, the dashboard, the API, the sweeps) is noted at flush, and an UPDATE
statement on ``listings`` or ``matches`` is noted through its RETURNING ids
(a statement without them is refused while events are on, so a new bulk
update cannot slip past). Just before the commit the noted rows are read
again and one ``events`` row each is written with the contract's JSON
(``models.shapes``), in that same transaction: a rollback leaves no event,
a commit leaves no change without one. The phone menu's one-statement path
(ivr_flows/fast.py) hands a step that writes a listing to the ORM path
while events are on.

Delivery (workers/event_jobs.py) takes the oldest pending event of each
listing at a time, so the marketplace hears of one listing's changes in
order; a match's events are ordered with its request's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, and_, event, exists, func, inspect, select, update
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from .base import Base, code, created_at, intpk, timestamp, updated_at, utcnow
from .db import defer_job
from .jobs import DELIVER_EVENTS
from .listing import Listing
from .match import Match
from .resident import Resident
from .shapes import LISTING_SHAPE_COLUMNS, MATCH_SHAPE_COLUMNS, iso, listing_json, match_json
from .vocabulary import EVENT_STATUSES, EVENT_TYPES, check_in

# Waits between tries when the receiver refuses or does not answer (BUURTLIJN_WEBHOOK_BACKOFF_SECONDS).
DEFAULT_BACKOFF = "10,60,300,1800,3600"
# An event is retried at least this long before it is marked failed (the contract: 24 hours).
RETRY_WINDOW = dt.timedelta(hours=24)
# A claimed event whose worker died is tried again after this.
CLAIM_LEASE = dt.timedelta(seconds=60)

NOTED = "buurtlijn.events.noted"
WATCHING = "buurtlijn.events.watching"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(check_in("type", EVENT_TYPES), name="type"),
        CheckConstraint(check_in("status", EVENT_STATUSES), name="status"),
        Index("ix_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_events_order_key_id", "order_key", "id"),
    )

    id: Mapped[intpk]
    # The Standard Webhooks ``webhook-id``: made once, sent with every try.
    webhook_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[code]
    # Events with the same key are delivered one after the other, oldest first ("listing:12").
    order_key: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[code] = mapped_column(default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Retried until this long after it (the creation, or a coordinator's "send again").
    window_started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[timestamp]
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status, if it answered
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[timestamp]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    def body(self) -> dict[str, Any]:
        """What is POSTed: the same on every try, so its signature and webhook-id stay together."""
        return {"type": self.type, "timestamp": iso(self.created_at), "data": self.data}


# --- settings ---------------------------------------------------------------------------------------


def webhook_enabled(config: Mapping[str, Any]) -> bool:
    return bool(config.get("BUURTLIJN_WEBHOOK_URL") and config.get("BUURTLIJN_WEBHOOK_SECRET"))


def backoff_waits(config: Mapping[str, Any]) -> list[float]:
    raw = config.get("BUURTLIJN_WEBHOOK_BACKOFF_SECONDS") or DEFAULT_BACKOFF
    return [float(x) for x in str(raw).split(",") if x.strip()]


def retry_window(config: Mapping[str, Any]) -> dt.timedelta:
    """24 hours; the test suite's apps may shorten it (WEBHOOK_RETRY_WINDOW_SECONDS), never the environment."""
    seconds = config.get("WEBHOOK_RETRY_WINDOW_SECONDS")
    return dt.timedelta(seconds=float(seconds)) if seconds is not None else RETRY_WINDOW


def next_wait(config: Mapping[str, Any], attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed try: the list's entry, its last one repeated."""
    waits = backoff_waits(config)
    return dt.timedelta(seconds=waits[min(attempts, len(waits)) - 1])


# --- writing: the session's hook -----------------------------------------------------------------------


def watch(factory: sessionmaker[Session]) -> None:
    """Make every session of ``factory`` write the events of what it changes (see the module's text)."""
    factory.kw.setdefault("info", {})[WATCHING] = True
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "do_orm_execute", _on_statement)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_soft_rollback", _after_rollback)


def _note(session: Session, model: type, row_id: int, created: bool) -> None:
    noted: dict[tuple[type, int], bool] = session.info.setdefault(NOTED, {})
    # A row made and changed in one transaction is one "created", with what it became.
    noted[(model, row_id)] = noted.get((model, row_id), False) or created


def _shape_changed(obj: Any, columns: frozenset[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in columns)


def _after_flush(session: Session, _context: Any) -> None:
    for obj in session.new:
        if isinstance(obj, (Listing, Match)):
            _note(session, type(obj), obj.id, True)
    for obj in session.dirty:
        if isinstance(obj, Listing) and _shape_changed(obj, LISTING_SHAPE_COLUMNS):
            _note(session, Listing, obj.id, False)
        elif isinstance(obj, Match) and _shape_changed(obj, MATCH_SHAPE_COLUMNS):
            _note(session, Match, obj.id, False)


_WATCHED_TABLES: dict[str, type] = {"listings": Listing, "matches": Match}


def _on_statement(state: Any) -> Any:
    """An INSERT or UPDATE statement on listings or matches: note the rows its RETURNING names."""
    if not (state.is_update or state.is_insert):
        return None  # a deletion is the erasure's, which says so itself (record_resident_erased)
    model = _WATCHED_TABLES.get(getattr(getattr(state.statement, "table", None), "name", None))
    if model is None:
        return None
    returning = getattr(state.statement, "_returning", ())  # SQLAlchemy keeps .returning()'s columns here
    first = returning[0] if returning else None
    if (first is None or getattr(first, "key", None) != "id"
            or getattr(getattr(first, "table", None), "name", None) != model.__tablename__):
        raise RuntimeError(
            f"an INSERT or UPDATE of {model.__tablename__} must return its ids first "
            f"(.returning({model.__name__}.id)), so that its events are written (models/events.py)"
        )
    frozen = state.invoke_statement().freeze()
    for row in frozen().all():
        _note(session=state.session, model=model, row_id=row[0], created=state.is_insert)
    return frozen()


def _before_commit(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this hook: changes still pending are noted now
    if not session.info.get(NOTED):
        return
    noted: dict[tuple[type, int], bool] = session.info.pop(NOTED, {})
    first_id = write_events(session, noted)
    if first_id is not None:
        defer_job(session, DELIVER_EVENTS, first_id, job_id=f"deliver-events-{first_id}")


def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(NOTED, None)


def write_events(session: Session, noted: Mapping[tuple[type, int], bool]) -> int | None:
    """One event per noted row, as it is now; returns the first event's id (None: nothing written)."""
    listing_ids = [row_id for (model, row_id) in noted if model is Listing]
    match_ids = [row_id for (model, row_id) in noted if model is Match]
    listings = {
        listing.id: (listing, phone)
        for listing, phone in session.execute(
            select(Listing, Resident.phone).join(Resident, Resident.id == Listing.resident_id)
            .where(Listing.id.in_(listing_ids)).execution_options(populate_existing=True)
        )
    } if listing_ids else {}
    matches = {
        match.id: match
        for match in session.scalars(
            select(Match).where(Match.id.in_(match_ids)).execution_options(populate_existing=True)
        )
    } if match_ids else {}
    now = utcnow()
    first: Event | None = None
    for (model, row_id), created in noted.items():
        verb = "created" if created else "updated"
        if model is Listing and row_id in listings:
            listing, phone = listings[row_id]
            made = _add(session, f"listing.{verb}", listing_key(row_id), listing_json(listing, phone), now)
        elif model is Match and row_id in matches:
            match = matches[row_id]
            made = _add(session, f"match.{verb}", listing_key(match.request_id), match_json(match), now)
        else:
            continue  # made and undone within the transaction (a savepoint rolled back)
        first = first or made
    if first is None:
        return None
    session.flush()
    return first.id


def listing_key(listing_id: int) -> str:
    """The order key of a listing's events (a match's events go with its request's): delivered in order."""
    return f"listing:{listing_id}"


def _add(session: Session, type_: str, order_key: str, data: dict[str, Any], now: dt.datetime) -> Event:
    row = Event(webhook_id=f"msg_{uuid.uuid4().hex}", type=type_, order_key=order_key, data=data, status="pending",
                attempts=0, next_attempt_at=now, window_started_at=now, created_at=now, updated_at=now)
    session.add(row)
    return row


def record_resident_erased(session: Session, listing_ids: Sequence[int], match_ids: Sequence[int]) -> Event | None:
    """The marketplace must forget these listings and matches too: a ``resident.erased`` event.

    Called by the erasure in the same transaction as the erasure itself; nothing
    is written when events are off (no webhook configured).
    """
    if not session.info.get(WATCHING):
        return None
    now = utcnow()
    made = _add(session, "resident.erased", f"erased:{uuid.uuid4().hex[:24]}",
                {"listing_ids": sorted(listing_ids), "match_ids": sorted(match_ids)}, now)
    session.flush()
    defer_job(session, DELIVER_EVENTS, made.id, job_id=f"deliver-events-{made.id}")
    return made


# --- delivering: claims and outcomes -------------------------------------------------------------------


def _due(now: dt.datetime) -> Any:
    """Pending, due, and the oldest pending event of its key (so a key's events go in order)."""
    earlier = aliased(Event)
    return and_(
        Event.status == "pending",
        Event.next_attempt_at <= now,
        ~exists().where(earlier.order_key == Event.order_key, earlier.status == "pending", earlier.id < Event.id),
    )


def due_event_ids(session: Session, now: dt.datetime, limit: int = 1000) -> list[int]:
    return list(session.scalars(select(Event.id).where(_due(now)).order_by(Event.id).limit(limit)))


def claim_events(session: Session, now: dt.datetime, limit: int) -> list[Event]:
    """Take up to ``limit`` due events for one try; another worker skips them until the lease ends."""
    rows = list(session.scalars(
        select(Event).where(_due(now)).order_by(Event.id).limit(limit).with_for_update(skip_locked=True, of=Event)
    ))
    if rows:
        session.execute(
            update(Event).where(Event.id.in_([row.id for row in rows]))
            .values(next_attempt_at=now + CLAIM_LEASE, updated_at=now),
            execution_options={"synchronize_session": False},
        )
    return rows


def record_delivered(session: Session, results: Sequence[tuple[int, int]], now: dt.datetime) -> None:
    """Events the receiver took: (id, HTTP status) each; one statement per status answered."""
    by_status: dict[int, list[int]] = {}
    for event_id, status in results:
        by_status.setdefault(status, []).append(event_id)
    for status, ids in by_status.items():
        session.execute(
            update(Event).where(Event.id.in_(ids), Event.status == "pending")
            .values(status="delivered", delivered_at=now, last_attempt_at=now, last_status=status, last_error=None,
                    attempts=Event.attempts + 1, updated_at=now),
            execution_options={"synchronize_session": False},
        )


def record_refused(session: Session, event: Event, config: Mapping[str, Any], now: dt.datetime, *,
                   status: int | None, error: str) -> str:
    """A try that failed: wait and try again, or, past the retry window, mark it failed. Returns the status."""
    attempts = event.attempts + 1
    retry_at = now + next_wait(config, attempts)
    failed = now - event.window_started_at >= retry_window(config)
    new_status = "failed" if failed else "pending"
    session.execute(
        update(Event).where(Event.id == event.id, Event.status == "pending")
        .values(status=new_status, attempts=attempts, last_attempt_at=now, last_status=status,
                last_error=error[:500], next_attempt_at=retry_at, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    return new_status


def release_untried(session: Session, event_ids: Sequence[int], retry_at: dt.datetime, now: dt.datetime) -> None:
    """Claimed but not tried this round (the receiver is down): due again with the one that was tried."""
    if event_ids:
        session.execute(
            update(Event).where(Event.id.in_(list(event_ids)), Event.status == "pending")
            .values(next_attempt_at=retry_at, updated_at=now),
            execution_options={"synchronize_session": False},
        )


def send_again(session: Session, event_id: int, now: dt.datetime | None = None) -> bool:
    """A coordinator's "send again": a failed (or waiting) event is due now with a fresh retry window."""
    now = now or utcnow()
    moved = session.execute(
        update(Event).where(Event.id == event_id, Event.status.in_(("failed", "pending")))
        .values(status="pending", next_attempt_at=now, window_started_at=now, updated_at=now)
        .returning(Event.id)
    ).scalar_one_or_none()
    if moved is not None:
        defer_job(session, DELIVER_EVENTS, event_id, job_id=f"deliver-events-{event_id}-{int(now.timestamp())}")
    return moved is not None


def next_due_at(session: Session) -> dt.datetime | None:
    """When the next try is due: the earliest of the events at the head of their listing's line."""
    earlier = aliased(Event)
    return session.scalar(select(func.min(Event.next_attempt_at)).where(
        Event.status == "pending",
        ~exists().where(earlier.order_key == Event.order_key, earlier.status == "pending", earlier.id < Event.id),
    ))


__all__ = [
    "Event",
    "backoff_waits",
    "claim_events",
    "due_event_ids",
    "next_wait",
    "record_delivered",
    "record_refused",
    "record_resident_erased",
    "release_untried",
    "retry_window",
    "send_again",
    "watch",
    "webhook_enabled",
]
