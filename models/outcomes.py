"""What came of a broker's call: the item closes, or returns for another try."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .base import utcnow
from .broker import Broker
from .callback import Callback
from .leases import ClaimError, holds
from .listing import Listing, end_listing
from .marketplace import match_under_way
from .match import Match
from .matching import MatchError, propose_match
from .notify import notify_resident
from .queue import append_note, close_callback, queue_callback
from .resident import Resident
from .vocabulary import LISTING_END_BY_OUTCOME, OUTCOMES, REFERRALS
from .workdays import broker_hours, local_zone, retry_time


def _end_listing(session: Session, listing: Listing | None, outcome: str, now: dt.datetime) -> None:
    """A final outcome ends the item's listing too, unless a match on it is under way (its own flow ends it)."""
    if listing is not None and not match_under_way(session, listing.id):
        end_listing(listing, LISTING_END_BY_OUTCOME[outcome], now)


@dataclass(frozen=True)
class OutcomeResult:
    outcome: str
    closed: bool
    retry_at: dt.datetime | None = None
    match: Match | None = None
    follow_up: Callback | None = None


class OutcomeError(ValueError):
    """The outcome cannot be recorded as asked; the ``code`` says why (and ``why`` the match's refusal)."""

    def __init__(self, code: str, message: str = "", why: str | None = None):
        super().__init__(message or code)
        self.code = code
        self.why = why


def record_outcome(
    session: Session,
    callback: Callback,
    broker: Broker,
    outcome: str,
    *,
    note: str | None = None,
    counterpart_id: int | None = None,
    referral: str | None = None,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> OutcomeResult:
    """Record what came of the call; the item closes, or returns for another try.

    The app's ``config`` says when: the brokers' hours and the time zone for a
    retry, the quiet hours and the time to answer for a proposal.
    """
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
            match = propose_match(session, request_id, offer_id, config=config, note=note, broker_id=broker.id)
        except MatchError as exc:
            raise OutcomeError("match_refused", str(exc), exc.why) from exc
        # An item about an earlier match (declined, expired) stays linked to that one.
        if callback.match_id is None:
            callback.match_id = match.id
        close_callback(callback, "match_proposed", note)
        return OutcomeResult(outcome, True, match=match)

    if outcome == "resolved":
        _end_listing(session, listing, outcome, now)
        close_callback(callback, "resolved", note)
        return OutcomeResult(outcome, True)

    if outcome == "referred":
        if referral not in REFERRALS:
            raise OutcomeError("no_referral", "say where the resident was referred to")
        if note is None:
            raise OutcomeError("note_needed", "a referral needs a note")
        _end_listing(session, listing, outcome, now)
        close_callback(callback, f"referred_{referral}"[:32], note)
        return OutcomeResult(outcome, True)

    if outcome == "wrong_number":
        if resident is not None:
            resident.number_status = "invalid"  # nothing more is sent to a stranger's phone
        _end_listing(session, listing, outcome, now)
        close_callback(callback, "wrong_number", note)
        return OutcomeResult(outcome, True)

    # not_reached: try again later, and tell the resident we tried.
    attempt = callback.attempts + 1
    callback.attempts = attempt
    retry_at = retry_time(attempt, now, broker_hours(config), local_zone(config))
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
    append_note(callback, note)
    callback.outcome = "not_reached"
    callback.status = "open"
    callback.claimed_by_id = None
    callback.lease_expires_at = None
    callback.due_at = retry_at
    callback.updated_at = now
    return OutcomeResult(outcome, False, retry_at=retry_at)
