"""A match as a broker sees and moves it from the page of an item about it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .base import utcnow
from .broker import Broker
from .callback import Callback
from .leases import LEASE, ClaimError, holds
from .listing import Listing
from .match import Match
from .matching import (
    Actor, active_matches, cancel_match, complete_match, confirm_match, end_relay, parties, relay_partner, relays,
)
from .outcomes import OutcomeError
from .queue import append_note, close_callback
from .relaying import RelayLine, relays_of
from .resident import Resident
from .vocabulary import AGREED_MATCH_STATUSES, LIVE_MATCH_STATUSES, MATCH_OUTCOMES, QUEUED_CALLBACK_STATUSES

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
MATCH_ACTIONS = tuple(MATCH_OUTCOMES)


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
    relays: list[RelayLine] = field(default_factory=list)  # texts passed on between the two, newest first
    relaying: bool = False  # texts and calls between the two are passed on now (models.matching.still_relays)
    relay_ended_by: Broker | None = None  # the broker who ended the relay, if one did

    @property
    def counterpart(self) -> Resident | None:
        """The other person in the match than the item's resident: the one a broker calls second."""
        if self.item_resident_id == self.requester.id:
            return self.helper
        if self.item_resident_id == self.helper.id:
            return self.requester
        return None

    def side_of(self, resident_id: int) -> str:
        """``requester`` or ``helper``: how the page names this person of the match."""
        return "requester" if resident_id == self.requester.id else "helper"

    @property
    def can_confirm(self) -> bool:
        """Accepted: confirm with the agreed moment; confirmed: move that moment."""
        return self.match.status in AGREED_MATCH_STATUSES

    @property
    def can_complete(self) -> bool:
        return self.match.status in AGREED_MATCH_STATUSES

    @property
    def can_cancel(self) -> bool:
        return self.match.status in LIVE_MATCH_STATUSES


def adopt_current_match(session: Session, callback: Callback, since: dt.datetime) -> bool:
    """An item of a resident who is in a match (a BEL during it, a text for BUUV) is about that match.

    Called when a broker takes the item: its page then shows the match, so the broker can end the relay
    or stop the match from it, as the resident asked. Only an open item about no match yet takes one: the
    resident's accepted or confirmed match, else one that still relays after it was done (``since``:
    ``models.matching.relay_since``). True when it took one.
    """
    if callback.match_id is not None or callback.resident_id is None:
        return False
    if callback.status not in QUEUED_CALLBACK_STATUSES:
        return False
    agreed = active_matches(session, callback.resident_id)
    if agreed:
        callback.match_id = agreed[0].id
        return True
    found = relay_partner(session, callback.resident_id, since)
    if found is None:
        return False
    callback.match_id = found[0].id
    return True


def match_view(session: Session, callback: Callback, relay_since: dt.datetime | None = None) -> MatchView | None:
    """The match an item is about (``match_id``), with both sides and its history.

    ``relay_since`` (``models.matching.relay_since``): given, the view says whether the match relays now.
    """
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
    return MatchView(
        match, request, offer, requester, helper, steps, callback.resident_id, relays_of(session, match.id),
        relaying=relay_since is not None and relays(session, match.id, relay_since),
        relay_ended_by=session.get(Broker, match.relay_ended_by_id) if match.relay_ended_by_id else None,
    )


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
    zone: ZoneInfo,
    meeting_at: dt.datetime | None = None,
    note: str | None = None,
    remote_addr: str | None = None,
    now: dt.datetime | None = None,
) -> MatchActionResult:
    """Confirm, cancel or complete the match this item is about, and close or keep the item.

    ``zone``: the time zone in which both people are told an agreed moment.

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
        match = confirm_match(session, match_id, zone=zone, broker_id=broker.id, meeting_at=meeting_at, note=note,
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
        if callback.status in QUEUED_CALLBACK_STATUSES:
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
    append_note(callback, note)
    return MatchActionResult(action, match, False)


def end_relay_of_item(
    session: Session,
    callback: Callback,
    broker: Broker,
    since: dt.datetime,
    *,
    remote_addr: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """The broker who holds this item ends the relay of its match (``models.matching.end_relay``).

    The item stays as it is: ending the relay is no outcome. False when the
    match did not relay (any more). Raises ClaimError (not held) or
    OutcomeError (the item is about no match).
    """
    if not holds(callback, broker.id, now or utcnow()):
        raise ClaimError("the item is not claimed by this broker")
    match = session.get(Match, callback.match_id) if callback.match_id is not None else None
    if match is None:
        raise OutcomeError("no_match", "this item is not about a match")
    return end_relay(session, match, since, broker.id, remote_addr)
