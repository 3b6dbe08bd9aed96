"""The brokers' queue as the dashboard shows it: cards, counts, overdue items, a resident's other items."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .base import utcnow
from .broker import Broker
from .callback import Callback
from .leases import return_expired_leases
from .listing import Listing
from .match import Match
from .message import Message
from .queue import ORDER, QueueFilters, filtered
from .resident import Resident
from .vocabulary import QUEUED_CALLBACK_STATUSES
from .workdays import DEFAULT_ZONE, working_days_ago

# Residents are promised a call within 2 working days for a listing and
# within 1 working day when they asked for a person (texts/nl.toml, [sms]).
PROMISED_WORKING_DAYS = {"new_listing": 2, "not_reached": 2}
DEFAULT_PROMISED_WORKING_DAYS = 1
MAX_ROWS = 300


@dataclass
class QueueRow:
    callback: Callback
    listing: Listing | None
    resident: Resident | None
    holder: Broker | None
    overdue: bool
    match: Match | None = None
    # The resident's other items not closed yet: one call back can settle them all.
    others_open: int = 0
    kind: str = "waiting"  # where the queue shows it: 'mine', 'held', 'scheduled' or 'waiting'


@dataclass
class QueueView:
    mine: list[QueueRow] = field(default_factory=list)
    waiting: list[QueueRow] = field(default_factory=list)
    held: list[QueueRow] = field(default_factory=list)
    scheduled: list[QueueRow] = field(default_factory=list)
    waiting_count: int = 0
    overdue_count: int = 0


def is_overdue(callback: Callback, now: dt.datetime, zone: ZoneInfo = DEFAULT_ZONE) -> bool:
    days = PROMISED_WORKING_DAYS.get(callback.reason, DEFAULT_PROMISED_WORKING_DAYS)
    return callback.due_at < working_days_ago(now, days, zone)


def queue_view(
    session: Session, broker_id: int, filters: QueueFilters | None = None, now: dt.datetime | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> QueueView:
    """Everything not closed, split as the queue page shows it; overdue counted in working days in ``zone``."""
    now = now or utcnow()
    filters = filters or QueueFilters()
    return_expired_leases(session, now)
    query = filtered(select(Callback).where(Callback.status.in_(QUEUED_CALLBACK_STATUSES)), filters)
    callbacks = list(session.scalars(query.order_by(*ORDER).limit(MAX_ROWS)))
    view = QueueView()
    for row in queue_rows(session, callbacks, broker_id, now, zone):
        getattr(view, row.kind).append(row)
    view.waiting_count = len(view.waiting)
    view.overdue_count = sum(1 for row in view.waiting + view.held + view.mine if row.overdue)
    return view


def queue_rows(
    session: Session, callbacks: list[Callback], broker_id: int, now: dt.datetime, zone: ZoneInfo = DEFAULT_ZONE
) -> list[QueueRow]:
    """The items as cards show them, with what they point at read in one query per table."""
    listings = _by_id(session, Listing, {c.listing_id for c in callbacks if c.listing_id})
    residents = _by_id(session, Resident, {c.resident_id for c in callbacks if c.resident_id})
    brokers = _by_id(session, Broker, {c.claimed_by_id for c in callbacks if c.claimed_by_id})
    matches = _by_id(session, Match, {c.match_id for c in callbacks if c.match_id})
    open_counts = _open_item_counts(session, set(residents))
    return [
        QueueRow(
            callback=callback,
            listing=listings.get(callback.listing_id) if callback.listing_id else None,
            resident=residents.get(callback.resident_id) if callback.resident_id else None,
            holder=brokers.get(callback.claimed_by_id) if callback.claimed_by_id else None,
            overdue=is_overdue(callback, now, zone),
            match=matches.get(callback.match_id) if callback.match_id else None,
            others_open=max(open_counts.get(callback.resident_id, 0) - 1, 0) if callback.resident_id else 0,
            kind=_kind(callback, broker_id, now),
        )
        for callback in callbacks
    ]


def _kind(callback: Callback, broker_id: int, now: dt.datetime) -> str:
    """Where the queue shows an item: 'mine', 'held' (by another broker), 'scheduled' or 'waiting'."""
    if callback.status == "claimed":
        return "mine" if callback.claimed_by_id == broker_id else "held"
    return "scheduled" if callback.due_at > now else "waiting"


def _open_item_counts(session: Session, resident_ids: set[int]) -> dict[int, int]:
    """How many items each resident has that are not closed, whatever the queue's filters show."""
    if not resident_ids:
        return {}
    rows = session.execute(
        select(Callback.resident_id, func.count())
        .where(Callback.resident_id.in_(resident_ids), Callback.status.in_(QUEUED_CALLBACK_STATUSES))
        .group_by(Callback.resident_id)
    )
    return {resident_id: count for resident_id, count in rows}


def other_open_items(
    session: Session, callback: Callback, broker_id: int, now: dt.datetime, zone: ZoneInfo = DEFAULT_ZONE
) -> list[QueueRow]:
    """The resident's other items that are not closed (waiting, scheduled or claimed), oldest first."""
    if callback.resident_id is None:
        return []
    others = list(session.scalars(
        select(Callback)
        .where(Callback.resident_id == callback.resident_id, Callback.id != callback.id,
               Callback.status.in_(QUEUED_CALLBACK_STATUSES))
        .order_by(Callback.due_at, Callback.id)
        .limit(MAX_ROWS)
    ))
    return queue_rows(session, others, broker_id, now, zone)


def _by_id(session: Session, model, ids: set[int]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def resident_history(session: Session, resident_id: int, *, exclude_callback: int | None = None) -> list[Callback]:
    """Earlier queue items of this resident, newest first, with their outcomes."""
    query = (
        select(Callback)
        .where(Callback.resident_id == resident_id, Callback.status.in_(("done", "cancelled")))
        .order_by(Callback.closed_at.desc(), Callback.id.desc())
        .limit(20)
    )
    if exclude_callback is not None:
        query = query.where(Callback.id != exclude_callback)
    return list(session.scalars(query))


def resident_texts(session: Session, resident_id: int, *, limit: int = 20) -> list[Message]:
    """What the resident texted us, newest first: a broker reads their own words."""
    return list(session.scalars(
        select(Message)
        .where(Message.resident_id == resident_id, Message.direction == "inbound")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    ))


def item_texts(session: Session, callback_ids: list[int]) -> dict[int, str]:
    """The texts gathered on each item (oldest first, one per line): what the broker must answer."""
    if not callback_ids:
        return {}
    gathered: dict[int, list[str]] = {}
    for callback_id, body in session.execute(
        select(Message.callback_id, Message.body)
        .where(Message.callback_id.in_(callback_ids), Message.direction == "inbound")
        .order_by(Message.id)
    ):
        gathered.setdefault(callback_id, []).append(body)
    return {callback_id: "\n".join(bodies) for callback_id, bodies in gathered.items()}
