"""The JSON shapes the outside sees (contract: Listing, Callback, Resident, Match, errors).

Each shape is built here once and described here once (as JSON Schema): the API answers with
these builders, its OpenAPI document is made of these schemas, and events carry the same data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .callback import Callback
from .listing import Listing
from .match import Match
from .resident import Resident
from .vocabulary import (
    CALLBACK_STATUSES,
    CATEGORIES,
    CHANNELS,
    KINDS,
    LISTING_STATUSES,
    MATCH_STATUSES,
    OFFER_TIMINGS,
    QUEUE_REASONS,
    REPORT_GROUPINGS,
    REQUEST_TIMINGS,
    RESIDENT_LANGUAGES,
)



def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def public_phone(phone: str | None) -> str | None:
    """The E.164 number, or None for a member who gave none or a resident who was erased."""
    if phone is None or not phone.startswith("+"):
        return None
    return phone


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
        "phone": public_phone(phone),
        "has_recording": listing.has_recording,
        "created_at": iso(listing.created_at),
    }


def callback_json(callback: Callback, phone: str | None, message: str | None = None) -> dict[str, Any]:
    """``message``: the texts gathered on an ``unrecognised_message`` item (oldest first), for a person to read."""
    return {
        "id": callback.id,
        "reason": callback.reason,
        "status": callback.status,
        "phone": public_phone(phone),
        "listing_id": callback.listing_id,
        "priority": callback.priority,
        "due_at": iso(callback.due_at),
        "attempts": callback.attempts,
        "message": message,
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


def resident_json(resident: Resident, listing_ids: list[int]) -> dict[str, Any]:
    return {
        "id": resident.id,
        "phone": public_phone(resident.phone),
        "language": resident.language,
        "opted_out": resident.opted_out,
        "postcode": resident.postcode,
        "district": resident.district,
        "listings": listing_ids,
    }


def error_json(error: str, message: str) -> dict[str, Any]:
    return {"error": error, "message": message}


# The events the marketplace receives (contract: Marketplace integration), each with the shape of its data.
EVENT_DATA = {
    "listing.created": "Listing",
    "listing.updated": "Listing",
    "match.created": "Match",
    "match.updated": "Match",
    "resident.erased": "ResidentErased",
}


def event_json(event_type: str, data: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
    """An event's body: ``{"type", "timestamp", "data"}``."""
    if event_type not in EVENT_DATA:
        raise ValueError(f"no such event type: {event_type}")
    return {"type": event_type, "timestamp": iso(when), "data": data}


def resident_erased_json(listing_ids: list[int], match_ids: list[int]) -> dict[str, Any]:
    return {"listing_ids": listing_ids, "match_ids": match_ids}


# --- the same shapes as JSON Schema (2020-12, as OpenAPI 3.1 uses it) ----------------------

ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
TIME = {"type": "string", "format": "date-time"}
E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$"}
POSTCODE = {"type": "string", "pattern": "^[1-9][0-9]{3}$"}
TIMINGS = sorted(set(REQUEST_TIMINGS) | set(OFFER_TIMINGS))
# Free text the API accepts: no control characters but the line breaks and tabs people type.
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"
MAX_DESCRIPTION = 2000
MAX_EXTERNAL_REF = 120


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _enum(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "Listing": _object({
        "id": ID,
        "kind": _enum(KINDS),
        "category": _enum(CATEGORIES),
        "description": _nullable({"type": "string"}),
        "postcode": _nullable({"type": "string"}),
        "district": _nullable({"type": "string"}),
        "when": _nullable(_enum(TIMINGS)),
        "channel": _enum(CHANNELS),
        "status": _enum(LISTING_STATUSES),
        "phone": _nullable(E164),
        "has_recording": {"type": "boolean"},
        "created_at": TIME,
    }),
    "Callback": _object({
        "id": ID,
        "reason": {"type": "string", "examples": list(QUEUE_REASONS)},
        "status": _enum(CALLBACK_STATUSES),
        "phone": _nullable(E164),
        "listing_id": _nullable(ID),
        "priority": {"type": "integer"},
        "due_at": TIME,
        "attempts": {"type": "integer", "minimum": 0},
        "message": _nullable({"type": "string", "description": "the texts of an unrecognised_message item"}),
    }),
    "Resident": _object({
        "id": ID,
        "phone": E164,
        "language": _enum(RESIDENT_LANGUAGES),
        "opted_out": {"type": "boolean"},
        "postcode": _nullable({"type": "string"}),
        "district": _nullable({"type": "string"}),
        "listings": {"type": "array", "items": ID},
    }),
    "Match": _object({
        "id": ID,
        "request_id": ID,
        "offer_id": ID,
        "status": _enum(MATCH_STATUSES),
        "created_at": TIME,
        "updated_at": TIME,
    }),
    "Report": _object({
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "by": _enum(REPORT_GROUPINGS),
        "min_count": {"type": "integer", "minimum": 1},
        "rows": {"type": "array", "items": {"$ref": "#/components/schemas/ReportRow"}},
        "totals": {"$ref": "#/components/schemas/ReportTotals"},
    }),
    # Counts are null when suppressed (1 to min_count - 1, or the cell that would reveal one).
    "ReportTotals": _object({
        **{key: _nullable({"type": "integer", "minimum": 0}) for key in (
            "residents", "requests", "offers", "matches_proposed", "matches_done", "callbacks",
            "satisfaction_answers", "sms_segments", "call_minutes")},
        "median_hours_to_contact": _nullable({"type": "number"}),
        "satisfaction_mean": _nullable({"type": "number"}),
    }),
    "ReportRow": {},  # the totals' figures and the group they count: filled in below
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string", "examples": ["bad_request", "not_found", "conflict"]},
            "message": {"type": "string"},
        },
        "required": ["error"],
    },
    "ResidentErased": _object({
        "listing_ids": {"type": "array", "items": ID},
        "match_ids": {"type": "array", "items": ID},
    }),
    "NewListing": _object({
        "kind": _enum(KINDS),
        "category": _enum(CATEGORIES),
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION, "pattern": TEXT_PATTERN},
        "postcode": POSTCODE,
        "when": _nullable(_enum(TIMINGS)),
        "phone": _nullable({"type": "string", "description": "a phone number, E.164 or Dutch national"}),
        "external_ref": _nullable({"type": "string", "maxLength": MAX_EXTERNAL_REF, "pattern": TEXT_PATTERN}),
    }, required=["kind", "category", "description", "postcode", "when"]),
    "ListingChange": _object({"status": _enum(("cancelled", "done"))}),
    "NewMatch": _object({
        "request_id": ID,
        "offer_id": ID,
        "note": _nullable({"type": "string", "maxLength": 2000}),
    }, required=["request_id", "offer_id"]),
}
SCHEMAS["ReportRow"] = _object({
    "group": _nullable({"type": "string", "description": "a district, category or channel code; null: none"}),
    **SCHEMAS["ReportTotals"]["properties"],
})


# The columns each shape is made of: a change to one of them is a change the marketplace hears of.
LISTING_SHAPE_COLUMNS = frozenset({
    "resident_id", "kind", "category", "description", "postcode", "district", "timing", "channel", "status",
    "recording_sid", "recording_deleted_at",
})
MATCH_SHAPE_COLUMNS = frozenset({"request_id", "offer_id", "status"})
