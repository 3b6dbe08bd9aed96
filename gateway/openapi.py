"""The OpenAPI 3.1 document of /api/v1: every path, parameter, body, answer and error, the bearer scheme,
and the events sent to the marketplace (``webhooks``). Made of the shapes in models/shapes.py, so that it
says what the API answers."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from models.shapes import EVENT_DATA, SCHEMAS
from models.vocabulary import CALLBACK_STATUSES, KINDS, LISTING_STATUSES, REPORT_GROUPINGS

DEFAULT_LIMIT, MAX_LIMIT = 100, 500  # the same as gateway.api's, checked by tests/test_api_openapi.py


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_ref("Error"))}


ERRORS = {
    "400": _error("Bad input: a parameter, a field or the JSON itself; the message says which."),
    "401": {**_error("No valid bearer token."), "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "403": _error("The token may only read."),
    "404": _error("No such thing."),
    "409": _error("The change does not fit the current state, or a request with the same Idempotency-Key is "
                  "still running."),
    "413": _error("The body is larger than 64 KiB."),
    "415": _error("The body is not sent as application/json."),
    "422": _error("The Idempotency-Key was used with another request in the last 24 hours."),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/{code}"} for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _id_path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": SCHEMAS["Match"]["properties"]["id"]}


PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
           "How many to answer at most."),
    _query("cursor", {"type": "string", "minLength": 1},
           "Where the next page starts: the next_cursor of the page before, as it was given."),
]
UPDATED_SINCE = _query("updated_since", {"type": "string", "format": "date-time"},
                       "Only what changed at or after this moment (ISO 8601; without a zone, UTC).")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": "Send a retried request with the same key: within 24 hours the first answer comes back and "
                   "nothing changes again; the same key with another body answers 422.",
}
REPLAYED = {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]},
                                   "description": "This is the first answer to the Idempotency-Key, again."}}


def _page(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": _ref(item)},
                       "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": [key, "next_cursor"],
        "additionalProperties": False,
    }


def _ok(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json(schema)}
    if headers:
        answer["headers"] = headers
    return answer


def _created(what: str, schema: str) -> dict[str, Any]:
    return _ok(f"The new {what}.", _ref(schema), {
        "Location": {"required": True, "schema": {"type": "string"}, "description": f"Where the {what} is read."},
        **REPLAYED,
    })


def _paths() -> dict[str, Any]:
    return {
        "/listings": {
            "get": {
                "operationId": "listListings",
                "summary": "Requests and offers, newest first, a page at a time.",
                "parameters": [
                    _query("kind", {"type": "string", "enum": list(KINDS)}, "Only requests or only offers."),
                    _query("status", {"type": "string", "enum": list(LISTING_STATUSES)}, "Only this status."),
                    _query("district", {"type": "string", "pattern": SCHEMAS["NewListing"]["properties"]
                                        ["description"]["pattern"]}, "Only this district (its code)."),
                    *PAGING, UPDATED_SINCE,
                ],
                "responses": {"200": _ok("A page of listings.", _page("listings", "Listing")),
                              **_errors("400", "401")},
            },
            "post": {
                "operationId": "createListing",
                "summary": "An online member's request or offer (channel api); with a phone, the resident is "
                           "found or made as from an SMS.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": _json(_ref("NewListing"))},
                "responses": {"201": _created("listing", "Listing"),
                              **_errors("400", "401", "403", "409", "413", "415", "422")},
            },
        },
        "/listings/{listing_id}": {
            "parameters": [_id_path("listing_id")],
            "get": {
                "operationId": "getListing",
                "responses": {"200": _ok("The listing.", _ref("Listing")), **_errors("401", "404")},
            },
            "patch": {
                "operationId": "changeListing",
                "summary": "Close a listing: done (helped) or cancelled (withdrawn). A closed listing, or one "
                           "whose match is under way, answers 409.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": _json(_ref("ListingChange"))},
                "responses": {"200": _ok("The listing as it is now.", _ref("Listing"), REPLAYED),
                              **_errors("400", "401", "403", "404", "409", "413", "415", "422")},
            },
        },
        "/callbacks": {
            "get": {
                "operationId": "listCallbacks",
                "summary": "The brokers' queue, most urgent first, a page at a time.",
                "parameters": [_query("status", {"type": "string", "enum": list(CALLBACK_STATUSES)},
                                      "Only this status."), *PAGING],
                "responses": {"200": _ok("A page of the queue.", _page("callbacks", "Callback")),
                              **_errors("400", "401")},
            },
        },
        "/residents/{ref}": {
            "get": {
                "operationId": "getResident",
                "parameters": [{"name": "ref", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1},
                                "description": "The resident's number in E.164 (e.g. +31612345678) or their id, "
                                               "so that an integration need not put numbers in URLs."}],
                "responses": {"200": _ok("The resident.", _ref("Resident")), **_errors("400", "401", "404")},
            },
        },
        "/matches": {
            "get": {
                "operationId": "listMatches",
                "summary": "Matches, newest first, a page at a time.",
                "parameters": [*PAGING, UPDATED_SINCE],
                "responses": {"200": _ok("A page of matches.", _page("matches", "Match")), **_errors("400", "401")},
            },
            "post": {
                "operationId": "proposeMatch",
                "summary": "Propose a match, as a broker's click does: the helper is asked by SMS or phone.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": _json(_ref("NewMatch"))},
                "responses": {"201": _created("match", "Match"),
                              **_errors("400", "401", "403", "404", "409", "413", "415", "422")},
            },
        },
        "/matches/{match_id}": {
            "parameters": [_id_path("match_id")],
            "get": {
                "operationId": "getMatch",
                "responses": {"200": _ok("The match.", _ref("Match")), **_errors("401", "404")},
            },
        },
        "/reports": {
            "get": {
                "operationId": "getReport",
                "summary": "Anonymous counts for a period by district, category or channel; small counts are null.",
                "parameters": [
                    {**_query("from", {"type": "string", "format": "date"}, "The first day (YYYY-MM-DD, local)."),
                     "required": True},
                    {**_query("to", {"type": "string", "format": "date"},
                              "The last day, included (YYYY-MM-DD); at most 10 years after from."), "required": True},
                    {**_query("by", {"type": "string", "enum": list(REPORT_GROUPINGS)}, "How rows are grouped."),
                     "required": True},
                ],
                "responses": {"200": _ok("The report.", _ref("Report")), **_errors("400", "401")},
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {"200": _ok("OpenAPI 3.1.", {"type": "object"})},
            },
        },
    }


WEBHOOK_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The event's id: the same on every retry; a receiver that saw it already ignores it."},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
     "description": "Seconds since 1970 (UTC) when this attempt was sent."},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "v1, then the base64 HMAC-SHA256 of id.timestamp.body with the secret's decoded bytes "
                    "(Standard Webhooks)."},
]


def _webhooks() -> dict[str, Any]:
    hooks = {}
    for event_type, data in EVENT_DATA.items():
        body = {
            "type": "object",
            "properties": {"type": {"const": event_type}, "timestamp": {"type": "string", "format": "date-time"},
                           "data": _ref(data)},
            "required": ["type", "timestamp", "data"],
            "additionalProperties": False,
        }
        hooks[event_type] = {"post": {
            "operationId": f"event_{event_type.replace('.', '_')}",
            "summary": f"Sent to BUURTLIJN_WEBHOOK_URL: {event_type}.",
            "parameters": WEBHOOK_HEADERS,
            "requestBody": {"required": True, "content": _json(body)},
            "responses": {"2XX": {"description": "Received; any other answer, or none within the timeout, "
                                                 "is retried for at least 24 hours."}},
        }}
    return hooks


@functools.cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Buurtlijn API",
            "version": "1",
            "description": "Buurtlijn's queue, listings and matches for BUUV's online marketplace. Every error "
                           "answers JSON: {\"error\": a code, \"message\": what to change}.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "BUURTLIJN_API_TOKEN, or a token from "
                                                          "buurtlijn create-api-client (read or write)."}},
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": ERRORS,
        },
    }


def document() -> dict[str, Any]:
    return copy.deepcopy(_document())


@functools.cache
def query_parameters(rule: str, method: str) -> frozenset[str]:
    """The query parameters the document allows for a route (a Flask rule such as
    ``/api/v1/listings/<int:listing_id>``): the API refuses any other."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix("/api/v1"))
    operation = _document()["paths"].get(path, {}).get(method.lower(), {})
    return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
