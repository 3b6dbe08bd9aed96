"""The brokers' callback queue: putting things in it, its order and its filters.

Order of the queue: the highest priority first (a resident who asked for a
person or got stuck comes before a listing that is merely new); within the
same priority, who has waited longest first (``due_at``, then ``id``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, exists, func
from sqlalchemy.orm import Session, aliased

from .base import utcnow
from .callback import REASON_PRIORITY, Callback
from .listing import Listing
from .resident import Resident
from .sql import insert_once

# Within one priority, a request the resident needs "as soon as possible"
# (keyed in the phone menu) comes before the rest; then the longest waiting.
_NOT_URGENT = case(
    (exists().where(Listing.id == Callback.listing_id, Listing.timing == "asap"), 0), else_=1
)
ORDER = (Callback.priority.desc(), _NOT_URGENT, Callback.due_at.asc(), Callback.id.asc())


@dataclass(frozen=True)
class QueueFilters:
    district: str | None = None
    category: str | None = None
    reason: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.district or self.category or self.reason)


def filtered(query, filters: QueueFilters):  # type: ignore[no-untyped-def]
    if filters.reason:
        query = query.where(Callback.reason == filters.reason)
    if filters.category or filters.district:
        listing = aliased(Listing)
        resident = aliased(Resident)
        query = query.outerjoin(listing, listing.id == Callback.listing_id).outerjoin(
            resident, resident.id == Callback.resident_id
        )
        if filters.category:
            query = query.where(listing.category == filters.category)
        if filters.district:
            query = query.where(func.coalesce(listing.district, resident.district) == filters.district)
    return query


def callback_values(
    reason: str,
    *,
    now: dt.datetime,
    resident_id: int | None = None,
    listing_id: int | None = None,
    message_id: int | None = None,
    call_id: int | None = None,
    match_id: int | None = None,
    dedupe_key: str | None = None,
    due_at: dt.datetime | None = None,
    note: str | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """A new queue item's row: ``queue_callback`` stores it, ``ivr_flows.fast`` writes it in SQL."""
    return {
        "reason": reason,
        "status": "open",
        "resident_id": resident_id,
        "listing_id": listing_id,
        "message_id": message_id,
        "call_id": call_id,
        "match_id": match_id,
        "priority": priority if priority is not None else REASON_PRIORITY.get(reason, 10),
        "due_at": due_at or now,
        "attempts": 0,
        "dedupe_key": dedupe_key,
        "note": note,
        "created_at": now,
        "updated_at": now,
    }


def queue_callback(session: Session, reason: str, *, now: dt.datetime | None = None, **fields: Any) -> Callback:
    """Queue an item for a broker (``callback_values`` names the fields); with ``dedupe_key``, at most one
    open item per cause.

    ``dedupe_key`` names the cause ("listing:12:new_listing"): a retried
    webhook or job finds the existing item instead of queueing a second.
    Closing an item clears its key, so the same cause can come back later.
    """
    values = callback_values(reason, now=now or utcnow(), **fields)
    if values["dedupe_key"] is None:
        callback = Callback(**values)
        session.add(callback)
        session.flush()
        return callback
    callback, _created = insert_once(session, Callback, values)
    return callback


def close_callback(callback: Callback, outcome: str, note: str | None = None, status: str = "done") -> None:
    callback.status = status
    callback.outcome = outcome
    if note:
        callback.note = f"{callback.note}\n{note}" if callback.note else note
    callback.closed_at = utcnow()
    callback.claimed_by_id = None
    callback.lease_expires_at = None
    callback.dedupe_key = None


def append_note(callback: Callback, line: str | None) -> None:
    if line:
        callback.note = f"{callback.note}\n{line}" if callback.note else line
