"""Likely matches for a listing: open offers for a request, open requests for an offer.

Order: the same category first; then the same district, the neighbouring
districts, the rest; then, for helpers, who has been asked least in the
last weeks (nobody should be asked too much); then who has waited longest.
Helpers who declined this resident before are left out, and so are pairs
already proposed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from .base import utcnow
from .districts import district_map
from .listing import Listing
from .match import Match
from .resident import SUGGESTABLE_NUMBER_STATUSES, Resident
from .vocabulary import LIVE_MATCH_STATUSES

RECENT = dt.timedelta(days=30)
MAX_CANDIDATES = 500

SAME_DISTRICT, NEIGHBOURING, FURTHER = 0, 1, 2


@dataclass(frozen=True)
class Suggestion:
    listing: Listing
    resident: Resident
    same_category: bool
    proximity: int  # SAME_DISTRICT | NEIGHBOURING | FURTHER
    recent_matches: int  # how often the helper was asked lately

    @property
    def by_call(self) -> bool:
        """Reached by a call, not SMS (a landline, or their wish): the broker sees it before proposing."""
        from .notify import wants_voice

        return wants_voice(self.resident)

    @property
    def sort_key(self) -> tuple[int, int, int, dt.datetime, int]:
        return (
            0 if self.same_category else 1,
            self.proximity,
            self.recent_matches,
            self.listing.created_at,
            self.listing.id,
        )


def proximity(district: str | None, other: str | None) -> int:
    if district is None or other is None:
        return FURTHER
    if district == other:
        return SAME_DISTRICT
    return NEIGHBOURING if other in district_map().neighbours(district) else FURTHER


def _declined_partners(session: Session, listing: Listing) -> set[int]:
    """Residents on the other side of a declined match with this listing's resident."""
    request, offer = aliased(Listing), aliased(Listing)
    base = (
        select(offer.resident_id if listing.kind == "request" else request.resident_id)
        .select_from(Match)
        .join(request, Match.request_id == request.id)
        .join(offer, Match.offer_id == offer.id)
        .where(Match.status == "declined")
    )
    if listing.kind == "request":
        query = base.where(request.resident_id == listing.resident_id)
    else:
        query = base.where(offer.resident_id == listing.resident_id)
    return set(session.scalars(query))


def _already_paired(session: Session, listing: Listing) -> set[int]:
    """Counterpart listings already in a live match with this listing."""
    mine, theirs = (
        (Match.request_id, Match.offer_id) if listing.kind == "request" else (Match.offer_id, Match.request_id)
    )
    return set(session.scalars(select(theirs).where(mine == listing.id, Match.status.in_(LIVE_MATCH_STATUSES))))


def recent_match_counts(session: Session, helper_ids: set[int], now: dt.datetime) -> dict[int, int]:
    """Matches proposed to each helper (over all their offers) since ``now - RECENT``."""
    if not helper_ids:
        return {}
    offer = aliased(Listing)
    rows = session.execute(
        select(offer.resident_id, func.count(Match.id))
        .select_from(Match)
        .join(offer, Match.offer_id == offer.id)
        .where(offer.resident_id.in_(helper_ids), Match.created_at >= now - RECENT)
        .group_by(offer.resident_id)
    )
    return {resident_id: count for resident_id, count in rows}


def offer_under_way(listing_id):  # type: ignore[no-untyped-def]
    """An offer helps one neighbour at a time: true while a match on it is under way (the helper's limit)."""
    return exists().where(Match.offer_id == listing_id, Match.status.in_(LIVE_MATCH_STATUSES))


def suggestions_for(
    session: Session, listing: Listing, *, limit: int = 8, now: dt.datetime | None = None
) -> list[Suggestion]:
    """The best counterparts for ``listing``, best first."""
    now = now or utcnow()
    other_kind = "offer" if listing.kind == "request" else "request"
    excluded_residents = _declined_partners(session, listing) | {listing.resident_id}
    excluded_listings = _already_paired(session, listing)
    query = (
        select(Listing, Resident)
        .join(Resident, Resident.id == Listing.resident_id)
        .where(
            Listing.kind == other_kind,
            Listing.status == "open",
            Resident.number_status.in_(SUGGESTABLE_NUMBER_STATUSES),
            Resident.opted_out.is_(False),  # they cannot be asked by SMS; a proposal would be refused
            Listing.resident_id.not_in(excluded_residents),
            ~offer_under_way(Listing.id),
        )
        .order_by((Listing.category == listing.category).desc(), Listing.created_at.desc())
        .limit(MAX_CANDIDATES)
    )
    if excluded_listings:
        query = query.where(Listing.id.not_in(excluded_listings))
    candidates = session.execute(query).all()
    helpers = {candidate.resident_id for candidate, _ in candidates} if other_kind == "offer" else set()
    recent = recent_match_counts(session, helpers, now)
    district = listing.district
    found = [
        Suggestion(
            listing=candidate,
            resident=resident,
            same_category=candidate.category == listing.category,
            proximity=proximity(district, candidate.district or resident.district),
            recent_matches=recent.get(candidate.resident_id, 0),
        )
        for candidate, resident in candidates
    ]
    found.sort(key=lambda suggestion: suggestion.sort_key)
    return found[:limit]
