"""The brokers' queue at work: reading it, claiming items as leases, outcomes.

A claim is a lease: the broker holds the item for ``LEASE`` and every action
renews it. An expired lease returns the item to the queue. Two brokers can
never hold the same item: "this item" is one conditional UPDATE, and "next
item" picks its candidate with ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL (claimers skip each other's rows instead of queueing behind them),
then takes it with the same conditional UPDATE, which alone is enough on
SQLite where writers are serialised.

Order of the queue: the highest priority first (a resident who asked for a
person or got stuck comes before a listing that is merely new); within the
same priority, who has waited longest first (``due_at``, then ``id``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from .base import utcnow
from .broker import Broker
from .callback import Callback
from .listing import Listing
from .match import Match
from .matching import (
    LIVE_STATUSES,
    Actor,
    MatchError,
    cancel_match,
    complete_match,
    confirm_match,
    parties,
    propose_match,
)
from .notify import notify_resident
from .queue import close_callback, queue_callback
from .resident import Resident
from .workdays import DEFAULT_BROKER_HOURS, BrokerHours, is_working_day, next_working_day

LEASE = dt.timedelta(minutes=15)
TIMEZONE = ZoneInfo("Europe/Amsterdam")
# Residents are promised a call within 2 working days for a listing and
# within 1 working day when they asked for a person (texts/nl.toml, [sms]).
PROMISED_WORKING_DAYS = {"new_listing": 2, "not_reached": 2}
DEFAULT_PROMISED_WORKING_DAYS = 1
RETRY_AFTER = dt.timedelta(hours=2)
# A later try on another day: an hour after the brokers start (10:00 with the default hours).
RETRY_AFTER_OPENING = dt.timedelta(hours=1)
MAX_ROWS = 300

OUTCOMES = ("match_proposed", "resolved", "not_reached", "wrong_number", "referred")
REFERRALS = ("sociaal_wijkteam", "huisarts", "other")
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


class ClaimError(ValueError):
    """The action needs a claim the broker does not hold (any more)."""


# --- working days --------------------------------------------------------------


def next_working_day_at(moment: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
                        zone: ZoneInfo = TIMEZONE) -> dt.datetime:
    """An hour after the brokers start, on the first working day after ``moment``'s date."""
    day = next_working_day(moment.astimezone(zone).date())
    return (dt.datetime.combine(day, hours[0], tzinfo=zone) + RETRY_AFTER_OPENING).astimezone(dt.timezone.utc)


def within_broker_hours(moment: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS,
                        zone: ZoneInfo = TIMEZONE) -> bool:
    local = moment.astimezone(zone)
    return is_working_day(local.date()) and hours[0] <= local.time() < hours[1]


def working_days_ago(moment: dt.datetime, days: int, zone: ZoneInfo = TIMEZONE) -> dt.datetime:
    """The same local clock time ``days`` working days before ``moment``."""
    local = moment.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day -= dt.timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(dt.timezone.utc)


def retry_time(attempt: int, now: dt.datetime, hours: BrokerHours = DEFAULT_BROKER_HOURS) -> dt.datetime | None:
    """When to try again after ``attempt`` unanswered calls, within the brokers' ``hours``; None: stop calling."""
    if attempt == 1:
        soon = now + RETRY_AFTER
        return soon if within_broker_hours(soon, hours) else next_working_day_at(now, hours)
    if attempt == 2:
        return next_working_day_at(now, hours)
    return None


def is_overdue(callback: Callback, now: dt.datetime) -> bool:
    days = PROMISED_WORKING_DAYS.get(callback.reason, DEFAULT_PROMISED_WORKING_DAYS)
    return callback.due_at < working_days_ago(now, days)


# --- reading the queue -------------------------------------------------------------


def _claimable(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        Callback.status == "open",
        and_(Callback.status == "claimed", Callback.lease_expires_at < now),
    )


def _filtered(query, filters: QueueFilters):  # type: ignore[no-untyped-def]
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


NOT_CLOSED = ("open", "claimed")


def queue_view(
    session: Session, broker_id: int, filters: QueueFilters | None = None, now: dt.datetime | None = None
) -> QueueView:
    """Everything not closed, split as the queue page shows it."""
    now = now or utcnow()
    filters = filters or QueueFilters()
    return_expired_leases(session, now)
    query = _filtered(select(Callback).where(Callback.status.in_(NOT_CLOSED)), filters)
    callbacks = list(session.scalars(query.order_by(*ORDER).limit(MAX_ROWS)))
    view = QueueView()
    for row in queue_rows(session, callbacks, broker_id, now):
        getattr(view, row.kind).append(row)
    view.waiting_count = len(view.waiting)
    view.overdue_count = sum(1 for row in view.waiting + view.held + view.mine if row.overdue)
    return view


def queue_rows(session: Session, callbacks: list[Callback], broker_id: int, now: dt.datetime) -> list[QueueRow]:
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
            overdue=is_overdue(callback, now),
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
        .where(Callback.resident_id.in_(resident_ids), Callback.status.in_(NOT_CLOSED))
        .group_by(Callback.resident_id)
    )
    return {resident_id: count for resident_id, count in rows}


def other_open_items(session: Session, callback: Callback, broker_id: int, now: dt.datetime) -> list[QueueRow]:
    """The resident's other items that are not closed (waiting, scheduled or claimed), oldest first."""
    if callback.resident_id is None:
        return []
    others = list(session.scalars(
        select(Callback)
        .where(Callback.resident_id == callback.resident_id, Callback.id != callback.id,
               Callback.status.in_(NOT_CLOSED))
        .order_by(Callback.due_at, Callback.id)
        .limit(MAX_ROWS)
    ))
    return queue_rows(session, others, broker_id, now)


def _by_id(session: Session, model, ids: set[int]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


# --- claims ----------------------------------------------------------------------


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
        query = _filtered(select(Callback.id).where(_claimable(now), Callback.due_at <= now), filters)
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


# --- outcomes --------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeResult:
    outcome: str
    closed: bool
    retry_at: dt.datetime | None = None
    match: Match | None = None
    follow_up: Callback | None = None


class OutcomeError(ValueError):
    """The outcome cannot be recorded as asked; the ``code`` says why."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


def _append_note(callback: Callback, line: str | None) -> None:
    if line:
        callback.note = f"{callback.note}\n{line}" if callback.note else line


def record_outcome(
    session: Session,
    callback: Callback,
    broker: Broker,
    outcome: str,
    *,
    note: str | None = None,
    counterpart_id: int | None = None,
    referral: str | None = None,
    now: dt.datetime | None = None,
    hours: BrokerHours = DEFAULT_BROKER_HOURS,
) -> OutcomeResult:
    """Record what came of the call; the item closes, or returns for another try within the brokers' ``hours``."""
    now = now or utcnow()
    note = (note or "").strip() or None
    if not holds(callback, broker.id, now):
        raise ClaimError("the item is not claimed by this broker")
    if outcome not in OUTCOMES:
        raise OutcomeError("unknown_outcome", f"unknown outcome {outcome!r}")
    resident = session.get(Resident, callback.resident_id) if callback.resident_id else None
    listing = session.get(Listing, callback.listing_id) if callback.listing_id else None

    if outcome == "match_proposed":
        if listing is None or counterpart_id is None:
            raise OutcomeError("no_counterpart", "pick a suggestion to propose")
        request_id, offer_id = (
            (listing.id, counterpart_id) if listing.kind == "request" else (counterpart_id, listing.id)
        )
        try:
            match = propose_match(session, request_id, offer_id, note=note, broker_id=broker.id)
        except MatchError as exc:
            raise OutcomeError("match_refused", str(exc)) from exc
        # An item about an earlier match (declined, expired) stays linked to that one.
        if callback.match_id is None:
            callback.match_id = match.id
        close_callback(callback, "match_proposed", note)
        return OutcomeResult(outcome, True, match=match)

    if outcome == "resolved":
        close_callback(callback, "resolved", note)
        return OutcomeResult(outcome, True)

    if outcome == "referred":
        if referral not in REFERRALS:
            raise OutcomeError("no_referral", "say where the resident was referred to")
        if note is None:
            raise OutcomeError("note_needed", "a referral needs a note")
        close_callback(callback, f"referred_{referral}"[:32], note)
        return OutcomeResult(outcome, True)

    if outcome == "wrong_number":
        if resident is not None:
            resident.number_status = "invalid"  # nothing more is sent to a stranger's phone
        if listing is not None and listing.status == "open":
            listing.status = "cancelled"
            listing.closed_at = now
        close_callback(callback, "wrong_number", note)
        return OutcomeResult(outcome, True)

    # not_reached: try again later, and tell the resident we tried.
    attempt = callback.attempts + 1
    callback.attempts = attempt
    retry_at = retry_time(attempt, now, hours)
    if resident is not None:
        notify_resident(
            session,
            resident,
            "broker.tried_call" if retry_at is not None else "broker.tried_call_last",
            purpose="broker_tried",
            dedupe_key=f"callback:{callback.id}:tried:{attempt}",
            listing_id=callback.listing_id,
        )
    if retry_at is None:
        close_callback(callback, "not_reached", note)
        follow_up = queue_callback(
            session,
            "letter_or_visit",
            resident_id=callback.resident_id,
            listing_id=callback.listing_id,
            dedupe_key=f"callback:{callback.id}:letter_or_visit",
            priority=25,
            note=f"{attempt}x niet bereikt",
        )
        return OutcomeResult(outcome, True, follow_up=follow_up)
    _append_note(callback, note)
    callback.outcome = "not_reached"
    callback.status = "open"
    callback.claimed_by_id = None
    callback.lease_expires_at = None
    callback.due_at = retry_at
    callback.updated_at = now
    return OutcomeResult(outcome, False, retry_at=retry_at)


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


def matches_of(session: Session, listing_ids: list[int]) -> dict[int, list[Match]]:
    """The matches each listing is part of, newest first."""
    if not listing_ids:
        return {}
    found: dict[int, list[Match]] = {listing_id: [] for listing_id in listing_ids}
    rows = session.scalars(
        select(Match)
        .where(or_(Match.request_id.in_(listing_ids), Match.offer_id.in_(listing_ids)))
        .order_by(Match.id.desc())
    )
    for match in rows:
        for listing_id in (match.request_id, match.offer_id):
            if listing_id in found:
                found[listing_id].append(match)
    return found


# --- items about a match -------------------------------------------------------------

# What the item page lists as the match's history: (step, the column that stamps it).
MATCH_STEPS = (
    ("proposed", "created_at"),
    ("accepted", "accepted_at"),
    ("declined", "declined_at"),
    ("expired", "expired_at"),
    ("confirmed", "confirmed_at"),
    ("reminder", "reminder_sent_at"),
    ("feedback", "feedback_requested_at"),
    ("problem", "problem_reported_at"),
    ("done", "done_at"),
    ("cancelled", "cancelled_at"),
)
MATCH_ACTIONS = ("confirm", "cancel", "done")
# The item's own outcome when a broker moves its match from the item page.
MATCH_OUTCOMES = {"confirm": "match_confirmed", "cancel": "match_cancelled", "done": "match_done"}


@dataclass(frozen=True)
class MatchStep:
    step: str
    at: dt.datetime


@dataclass
class MatchView:
    """A match as a broker sees it on the page of an item about it."""

    match: Match
    request: Listing
    offer: Listing
    requester: Resident
    helper: Resident
    steps: list[MatchStep]
    item_resident_id: int | None

    @property
    def counterpart(self) -> Resident | None:
        """The other person in the match than the item's resident: the one a broker calls second."""
        if self.item_resident_id == self.requester.id:
            return self.helper
        if self.item_resident_id == self.helper.id:
            return self.requester
        return None

    @property
    def can_confirm(self) -> bool:
        """Accepted: confirm with the agreed moment; confirmed: move that moment."""
        return self.match.status in ("accepted", "confirmed")

    @property
    def can_complete(self) -> bool:
        return self.match.status in ("accepted", "confirmed")

    @property
    def can_cancel(self) -> bool:
        return self.match.status in LIVE_STATUSES


def match_view(session: Session, callback: Callback) -> MatchView | None:
    """The match an item is about (``match_id``), with both sides and its history."""
    if callback.match_id is None:
        return None
    match = session.get(Match, callback.match_id)
    if match is None:
        return None
    request = session.get(Listing, match.request_id)
    offer = session.get(Listing, match.offer_id)
    assert request is not None and offer is not None
    requester, helper = parties(session, match)
    steps = [MatchStep(step, getattr(match, column)) for step, column in MATCH_STEPS if getattr(match, column)]
    steps.sort(key=lambda step: step.at)
    return MatchView(match, request, offer, requester, helper, steps, callback.resident_id)


def has_live_match(session: Session, request_id: int) -> bool:
    """Is a match for this request proposed, accepted or confirmed (so no other can be proposed)?"""
    return session.scalar(
        select(Match.id).where(Match.request_id == request_id, Match.status.in_(LIVE_STATUSES)).limit(1)
    ) is not None


@dataclass(frozen=True)
class MatchActionResult:
    action: str
    match: Match
    closed: bool  # the item left the queue; otherwise the broker still holds it


def act_on_match(
    session: Session,
    callback: Callback,
    broker: Broker,
    action: str,
    *,
    meeting_at: dt.datetime | None = None,
    note: str | None = None,
    remote_addr: str | None = None,
    now: dt.datetime | None = None,
) -> MatchActionResult:
    """Confirm, cancel or complete the match this item is about, and close or keep the item.

    The matching functions move the match, tell both people and audit the
    step; this decides what happens to the item. Confirm and complete close
    it. Cancel keeps it with the broker while the request is still open, so
    that they can propose another helper (or record another outcome) and a
    neighbour who still needs help is never left without an item.
    Raises ClaimError (not held), OutcomeError (unknown action, no match)
    or MatchError (the match's state does not allow it).
    """
    now = now or utcnow()
    note = (note or "").strip() or None
    if not holds(callback, broker.id, now):
        raise ClaimError("the item is not claimed by this broker")
    if action not in MATCH_ACTIONS:
        raise OutcomeError("unknown_outcome", f"unknown match action {action!r}")
    if callback.match_id is None or session.get(Match, callback.match_id) is None:
        raise OutcomeError("no_match", "this item is not about a match")
    match_id = callback.match_id

    if action == "confirm":
        # Closed first with its own outcome: confirm_match then closes only the other items it makes unneeded.
        close_callback(callback, MATCH_OUTCOMES[action], note)
        match = confirm_match(session, match_id, broker_id=broker.id, meeting_at=meeting_at, note=note,
                              remote_addr=remote_addr)
        return MatchActionResult(action, match, True)

    if action == "done":
        close_callback(callback, MATCH_OUTCOMES[action], note)
        match = session.get(Match, match_id)
        assert match is not None
        complete_match(session, match, Actor.broker(broker.id, remote_addr))
        return MatchActionResult(action, match, True)

    held_key = callback.dedupe_key
    match = cancel_match(session, match_id, broker_id=broker.id, reason="broker", remote_addr=remote_addr)
    request = session.get(Listing, match.request_id)
    if request is None or request.status != "open":
        if callback.status in ("open", "claimed"):
            close_callback(callback, MATCH_OUTCOMES[action], note)
        return MatchActionResult(action, match, True)
    # cancel_match closes open "helper said yes" items; this one stays with the broker to find another helper.
    callback.status = "claimed"
    callback.claimed_by_id = broker.id
    callback.lease_expires_at = now + LEASE
    callback.outcome = None
    callback.closed_at = None
    callback.dedupe_key = held_key
    callback.updated_at = now
    _append_note(callback, note)
    return MatchActionResult(action, match, False)
