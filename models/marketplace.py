"""Recording requests and offers, and reading a resident's open items."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .audit import audit
from .base import utcnow
from .districts import district_map, find_postcode
from .callback import Callback
from .listing import Listing, end_listing, listing_values
from .match import Match
from .phones import PhoneNumber
from .queue import close_callback, queue_callback
from .resident import Resident
from .shapes import MAX_DESCRIPTION
from .residents import resident_for, resident_without_phone, set_postcode
from .vocabulary import (
    CATEGORIES, CURRENT_LISTING_STATUSES, LIVE_MATCH_STATUSES, TIMINGS, WITHDRAW_DURING_MATCH, WITHDRAWN_OUTCOME,
)



def record_listing(
    session: Session,
    resident: Resident,
    *,
    kind: str,
    channel: str,
    category: str = "other",
    description: str | None = None,
    postcode: str | None = None,
    timing: str | None = None,
    queue_for_broker: bool = True,
    now: dt.datetime | None = None,
) -> Listing:
    """Store a request or offer at once and put it in the brokers' queue."""
    listing = Listing(**listing_values(
        resident, kind=kind, channel=channel, now=now or utcnow(), category=category, description=description,
        postcode=postcode, timing=timing,
    ))
    session.add(listing)
    session.flush()
    if queue_for_broker:
        queue_callback(
            session,
            "new_listing",
            resident_id=resident.id,
            listing_id=listing.id,
            dedupe_key=f"listing:{listing.id}:new_listing",
        )
    return listing


def complete_postcode(session: Session, resident: Resident, postcode: str) -> list[Listing]:
    """Give every open listing of ``resident`` that lacks a postcode this one."""
    district = district_map().district_for(postcode)
    listings = list(
        session.scalars(
            select(Listing).where(
                Listing.resident_id == resident.id,
                Listing.postcode.is_(None),
                Listing.status.in_(CURRENT_LISTING_STATUSES),
            )
        )
    )
    for listing in listings:
        listing.postcode = postcode
        listing.district = district
    return listings


def open_items(session: Session, resident_id: int) -> list[Listing]:
    """The resident's open and matched listings, newest first."""
    return list(
        session.scalars(
            select(Listing)
            .where(Listing.resident_id == resident_id, Listing.status.in_(CURRENT_LISTING_STATUSES))
            .order_by(Listing.created_at.desc(), Listing.id.desc())
        )
    )


# A resident who texts the same request twice (no answer yet, a shaky phone) means it once.
SAME_TEXT_WINDOW = dt.timedelta(days=1)


def same_listing_lately(
    session: Session, resident_id: int, kind: str, description: str | None, now: dt.datetime
) -> Listing | None:
    """The resident's current listing of this kind with this very text, made within the last day."""
    if not description:
        return None
    return session.scalars(
        select(Listing)
        .where(Listing.resident_id == resident_id, Listing.kind == kind, Listing.description == description,
               Listing.status.in_(CURRENT_LISTING_STATUSES), Listing.created_at >= now - SAME_TEXT_WINDOW)
        .order_by(Listing.id.desc())
        .limit(1)
    ).first()


def match_under_way(session: Session, listing_id: int) -> bool:
    """Is a match on this listing (either side) proposed, accepted or confirmed?"""
    return session.scalar(
        select(Match.id).where(or_(Match.request_id == listing_id, Match.offer_id == listing_id),
                               Match.status.in_(LIVE_MATCH_STATUSES)).limit(1)
    ) is not None


def withdrawable(session: Session, resident_id: int) -> list[Listing]:
    """The resident's current listings in a fixed order (oldest first), so "INTREKKEN 2" keeps its meaning."""
    return list(
        session.scalars(
            select(Listing)
            .where(Listing.resident_id == resident_id, Listing.status.in_(CURRENT_LISTING_STATUSES))
            .order_by(Listing.created_at, Listing.id)
        )
    )


def withdraw_listing(
    session: Session, listing: Listing, now: dt.datetime, *, channel: str, message_id: int | None = None,
    call_id: int | None = None,
) -> bool:
    """The resident withdraws ``listing`` (by ``channel``, ``sms`` or ``voice``): cancelled, and the broker's
    waiting item about it closes. Audited either way.

    False when a match on it is under way: a neighbour counts on it, so a broker must settle it: an item
    with the reason ``withdraw_during_match`` is queued (one per listing, whichever way they asked).
    """
    refused = match_under_way(session, listing.id)
    audit(session, "listing.withdraw", actor_type="resident", actor_id=listing.resident_id, object_type="listing",
          object_id=listing.id, result="refused" if refused else "ok",
          detail={"channel": channel, **({"reason": WITHDRAW_DURING_MATCH} if refused else {})})
    if refused:
        queue_callback(
            session, WITHDRAW_DURING_MATCH, resident_id=listing.resident_id, listing_id=listing.id,
            message_id=message_id, call_id=call_id, dedupe_key=f"listing:{listing.id}:{WITHDRAW_DURING_MATCH}",
            now=now,
        )
        return False
    end_listing(listing, "cancelled", now)
    close_waiting_items(session, listing, WITHDRAWN_OUTCOME)
    return True


def close_waiting_items(session: Session, listing: Listing, outcome: str) -> None:
    """The listing ended on its own (withdrawn, expired): nobody needs to call about it any more."""
    for item in session.scalars(
        select(Callback).where(Callback.listing_id == listing.id, Callback.reason == "new_listing",
                               Callback.status == "open")
    ):
        close_callback(item, outcome)


def record_marketplace_listing(
    session: Session,
    *,
    kind: str,
    category: str,
    description: str,
    postcode: str,
    timing: str | None,
    number: PhoneNumber | None,
    external_ref: str | None,
) -> Listing:
    """A listing the online marketplace posted (channel ``api``).

    With a phone number the resident is found or made as from an SMS, and a broker sees the new
    listing in the queue; without one the member is a resident of their own, told through events.
    """
    if number is not None:
        resident = resident_for(session, number)
        if postcode and not resident.postcode:
            set_postcode(resident, postcode)
    else:
        resident = resident_without_phone(session)
    listing = record_listing(
        session, resident, kind=kind, channel="api", category=category, description=description,
        postcode=postcode, timing=timing, queue_for_broker=number is not None,
    )
    listing.external_ref = external_ref
    return listing


class ListingChangeRefused(ValueError):
    """The listing cannot change as asked; the message says why in English (the API's 409), ``why`` in one
    word for the dashboard's ``listing_life.refused.<why>``."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


# The statuses a listing's owner (or the marketplace for them) can close it with.
CLOSING_STATUSES = ("cancelled", "done")
# The ended statuses a broker can open a listing again from: withdrawn, or ended on silence. A listing
# that is done was helped; a new need is a new listing, so the reports count each need once.
REOPENABLE_STATUSES = ("cancelled", "expired")
# What a broker can correct on a listing; its kind and its resident stay.
EDITABLE_FIELDS = ("category", "description", "timing", "postcode")


def close_listing(session: Session, listing: Listing, status: str, now: dt.datetime | None = None) -> None:
    """Close an open listing as ``done`` or ``cancelled``; a closed one, or one with a match under way
    (which its match's own steps close), is refused."""
    if status not in CLOSING_STATUSES:
        raise ListingChangeRefused(f"status must be one of: {', '.join(CLOSING_STATUSES)}", "status")
    if listing.status not in CURRENT_LISTING_STATUSES:
        raise ListingChangeRefused(f"the listing is {listing.status} already", "ended")
    if match_under_way(session, listing.id):
        raise ListingChangeRefused("a match of this listing is under way; it ends with the match", "match_under_way")
    end_listing(listing, status, now or utcnow())


def reopen_listing(listing: Listing, now: dt.datetime | None = None) -> None:
    """Open a withdrawn or expired listing again (a broker heard the need is still there)."""
    if listing.status not in REOPENABLE_STATUSES:
        raise ListingChangeRefused(
            f"only a listing that is {' or '.join(REOPENABLE_STATUSES)} opens again; this one is {listing.status}",
            "not_reopenable")
    listing.status = "open"
    listing.closed_at = None
    listing.updated_at = now or utcnow()


def edit_listing(
    listing: Listing,
    *,
    category: str,
    description: str | None,
    timing: str | None,
    postcode: str | None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Correct a current listing's category, description, timing and postcode (its district follows the
    postcode); returns the names of the fields that changed. Refused for an ended listing or a value the
    vocabulary does not know."""
    if listing.status not in CURRENT_LISTING_STATUSES:
        raise ListingChangeRefused(f"the listing is {listing.status}; open it again first", "ended")
    if category not in CATEGORIES:
        raise ListingChangeRefused(f"category must be one of: {', '.join(CATEGORIES)}", "category")
    if timing is not None and timing not in TIMINGS[listing.kind]:
        raise ListingChangeRefused(f"timing must be one of: {', '.join(TIMINGS[listing.kind])}", "timing")
    if postcode is not None and (len(postcode) != 4 or find_postcode(postcode) != postcode):
        raise ListingChangeRefused("a postcode is four digits, 1000 to 9999", "postcode")
    description = (description or "").strip()[:MAX_DESCRIPTION] or None
    wanted = {"category": category, "description": description, "timing": timing, "postcode": postcode}
    changed = [name for name in EDITABLE_FIELDS if getattr(listing, name) != wanted[name]]
    for name in changed:
        setattr(listing, name, wanted[name])
    if "postcode" in changed:
        listing.district = district_map().district_for(postcode)
    if changed:
        listing.updated_at = now or utcnow()
    return changed
