"""Claims on queue items as leases: a broker holds an item for ``LEASE``.

Every action renews the lease; an expired lease returns the item to the
queue. Two brokers can never hold the same item: "this item" is one
conditional UPDATE, and "next item" picks its candidate with ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL (claimers skip each other's rows instead
of queueing behind them), then takes it with the same conditional UPDATE,
which alone is enough on SQLite where writers are serialised.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from .base import utcnow
from .broker import Broker
from .callback import Callback
from .queue import ORDER, QueueFilters, filtered

LEASE = dt.timedelta(minutes=15)


class ClaimError(ValueError):
    """The action needs a claim the broker does not hold (any more)."""


def _claimable(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        Callback.status == "open",
        and_(Callback.status == "claimed", Callback.lease_expires_at < now),
    )


def return_expired_leases(session: Session, now: dt.datetime | None = None) -> int:
    """Put items whose lease ran out back in the queue; returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(Callback)
        .where(Callback.status == "claimed", Callback.lease_expires_at < now)
        .values(status="open", claimed_by_id=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _take(session: Session, callback_id: int, broker_id: int, now: dt.datetime) -> bool:
    """The one statement that makes a broker the holder, if nobody else holds it."""
    taken = session.execute(
        update(Callback)
        .where(
            Callback.id == callback_id,
            or_(_claimable(now), and_(Callback.status == "claimed", Callback.claimed_by_id == broker_id)),
        )
        .values(status="claimed", claimed_by_id=broker_id, lease_expires_at=now + LEASE, updated_at=now)
        .returning(Callback.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return taken is not None


def _reload(session: Session, callback_id: int) -> Callback:
    callback = session.get(Callback, callback_id, populate_existing=True)
    assert callback is not None
    return callback


def claim_next(
    session: Session, broker_id: int, filters: QueueFilters | None = None, now: dt.datetime | None = None
) -> Callback | None:
    """Claim the first waiting item (within ``filters``); None when nothing waits."""
    now = now or utcnow()
    filters = filters or QueueFilters()
    postgres = session.get_bind().dialect.name == "postgresql"
    tried: list[int] = []
    for _attempt in range(20):
        query = filtered(select(Callback.id).where(_claimable(now), Callback.due_at <= now), filters)
        if tried:
            query = query.where(Callback.id.not_in(tried))
        query = query.order_by(*ORDER).limit(1)
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Callback)
        candidate = session.scalar(query)
        if candidate is None:
            return None
        if _take(session, candidate, broker_id, now):
            return _reload(session, candidate)
        tried.append(candidate)  # SQLite: another broker was quicker; try the next one
    return None


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    callback: Callback | None
    reason: str  # claimed | taken | closed | missing
    holder: Broker | None = None


def claim_item(session: Session, callback_id: int, broker_id: int, now: dt.datetime | None = None) -> ClaimResult:
    """Claim this item, or say why not (another broker holds it, it is closed)."""
    now = now or utcnow()
    if _take(session, callback_id, broker_id, now):
        return ClaimResult(True, _reload(session, callback_id), "claimed")
    callback = session.get(Callback, callback_id, populate_existing=True)
    if callback is None:
        return ClaimResult(False, None, "missing")
    if callback.status in ("done", "cancelled"):
        return ClaimResult(False, callback, "closed")
    holder = session.get(Broker, callback.claimed_by_id) if callback.claimed_by_id else None
    return ClaimResult(False, callback, "taken", holder)


def holds(callback: Callback, broker_id: int, now: dt.datetime | None = None) -> bool:
    """True while ``broker_id`` holds a live lease on ``callback``."""
    now = now or utcnow()
    return (
        callback.status == "claimed"
        and callback.claimed_by_id == broker_id
        and callback.lease_expires_at is not None
        and callback.lease_expires_at >= now
    )


def renew_lease(session: Session, callback_id: int, broker_id: int, now: dt.datetime | None = None) -> bool:
    """Extend the broker's lease; False when the item is no longer theirs."""
    now = now or utcnow()
    renewed = session.execute(
        update(Callback)
        .where(Callback.id == callback_id, Callback.status == "claimed", Callback.claimed_by_id == broker_id)
        .values(lease_expires_at=now + LEASE, updated_at=now)
        .returning(Callback.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if renewed is not None:
        _reload(session, callback_id)
    return renewed is not None


def release(session: Session, callback_id: int, broker_id: int, now: dt.datetime | None = None) -> bool:
    """Give the item back to the queue unchanged."""
    now = now or utcnow()
    released = session.execute(
        update(Callback)
        .where(Callback.id == callback_id, Callback.status == "claimed", Callback.claimed_by_id == broker_id)
        .values(status="open", claimed_by_id=None, lease_expires_at=None, updated_at=now)
        .returning(Callback.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if released is not None:
        _reload(session, callback_id)
    return released is not None
