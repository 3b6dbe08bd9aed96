"""The contract's shapes of a Listing and a Match, defined once: the API answers them, events carry them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .listing import Listing
from .match import Match


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the contract writes times."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def listing_json(listing: Listing, phone: str | None) -> dict[str, Any]:
    return {
        "id": listing.id,
        "kind": listing.kind,
        "category": listing.category,
        "description": listing.description,
        "postcode": listing.postcode,
        "district": listing.district,
        "when": listing.timing,
        "channel": listing.channel,
        "status": listing.status,
        "phone": phone,
        "has_recording": listing.has_recording,
        "created_at": iso(listing.created_at),
    }


def match_json(match: Match) -> dict[str, Any]:
    return {
        "id": match.id,
        "request_id": match.request_id,
        "offer_id": match.offer_id,
        "status": match.status,
        "created_at": iso(match.created_at),
        "updated_at": iso(match.updated_at),
    }


# The columns each shape is made of: a change to one of them is a change the marketplace hears of.
LISTING_SHAPE_COLUMNS = frozenset({
    "resident_id", "kind", "category", "description", "postcode", "district", "timing", "channel", "status",
    "recording_sid", "recording_deleted_at",
})
MATCH_SHAPE_COLUMNS = frozenset({"request_id", "offer_id", "status"})
