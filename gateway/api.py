"""JSON API /api/v1 for the online marketplace: bearer token, shapes as in the contract (models/shapes.py)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy import and_, delete, or_, select
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from models import Callback, Listing, Match, Resident
from models.api_clients import IdempotentAnswer
from models.audit import audit
from models.limits import MAX_ID, bounded_int, has_controls
from models.phones import InvalidPhoneNumber, parse_phone
from models.privacy import ERASED_PHONE_PREFIX, is_erased
from models.queue_view import item_texts
from models.shapes import (
    MAX_DESCRIPTION,
    MAX_EXTERNAL_REF,
    SCHEMAS,
    callback_json,
    error_json,
    listing_json,
    match_json,
    resident_json,
)
from models.sql import insert_ignoring_conflict
from models.vocabulary import (
    CALLBACK_STATUSES,
    CATEGORIES,
    IDEMPOTENCY_HOURS,
    KINDS,
    LISTING_STATUSES,
    TIMINGS,
)

from .database import get_session
from .openapi import DEFAULT_LIMIT, MAX_LIMIT, document, query_parameters
from .security import ApiCaller, api_caller, csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_IDEMPOTENCY_KEY = 255
# How long a retry waits for the first of two identical requests to finish before answering 409.
IDEMPOTENCY_WAIT_SECONDS = 10.0
# Errors kept for an Idempotency-Key like successes: they say what state the thing was in.
KEPT_ERRORS = (409,)


@bp.before_request
def _require_token():  # type: ignore[no-untyped-def]
    if request.endpoint == "api.openapi":
        return None  # the description of the API is public, as the marketplace's developers need it first
    caller = api_caller()
    if caller is None:
        response = _error(401, "unauthorized", "A valid bearer token is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="buurtlijn"'
        return response
    g.api_caller = caller
    if request.method not in ("GET", "HEAD", "OPTIONS") and not caller.may_write:
        return _error(403, "forbidden", "This token may only read.")
    if request.url_rule is not None and request.method != "OPTIONS":
        unknown = sorted(set(request.args) - query_parameters(request.url_rule.rule, request.method))
        if unknown:  # a misspelt filter would otherwise answer everything, unfiltered
            return _error(400, "bad_request", f"unknown query parameter(s): {', '.join(unknown)[:200]}")
    return None


def caller() -> ApiCaller:
    return g.api_caller  # type: ignore[no-any-return]


def _error(status: int, error: str, message: str) -> Response:
    response = jsonify(error_json(error, message))
    response.status_code = status
    return response


HTTP_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
               422: "unprocessable"}


def json_http_error(error: HTTPException) -> Response:
    """Every HTTP error under /api/ as the contract's JSON error (the app's handler sends others on)."""
    code = error.code or 500
    if code == 405 and not _routed(request.path):
        code = 404  # Werkzeug says 405 for an id past BIGINT on a PATCH: there is no such row at all
    message = error.description if code != 404 else "No such thing here."
    response = _error(code, HTTP_ERRORS.get(code, "error"), str(message or ""))
    if code == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def _routed(path: str) -> bool:
    """Whether any of the app's rules takes ``path`` (with some method)."""
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
    except MethodNotAllowed:
        return True
    except HTTPException:
        return False
    return True


def init_app(app: Any) -> None:
    """JSON errors for /api/ paths, also for what fails before a view is found (an unknown path, a
    wrong method, an id past BIGINT), which the blueprint's own handlers never see."""
    def handle(error: HTTPException) -> Any:
        if request.path.startswith(bp.url_prefix or "/api/v1"):
            return json_http_error(error)
        return error

    app.register_error_handler(HTTPException, handle)


def _audit(action: str, object_type: str, object_id: Any, count: int | None = None, *, commit: bool = True,
           result: str = "ok", **detail: Any) -> None:
    """An audit line naming the API client; reads of personal data and every write go through it."""
    who = caller()
    audit(
        get_session(),
        action,
        actor_type="api",
        actor_id=who.client_id,
        object_type=object_type,
        object_id=object_id,
        result=result,
        remote_addr=request.remote_addr,
        detail={"client": who.name, **({"count": count} if count is not None else {}), **detail},
    )
    if commit:
        get_session().commit()


def _code_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    """A filter on a code: one of ``allowed``, or absent. A typo answers 400, not an empty list."""
    value = request.args.get(name)
    if value is not None and value not in allowed:  # an empty one too: the document says what is allowed
        abort(400, description=f"{name} must be one of: {', '.join(allowed)}")
    return value


def _text_arg(name: str) -> str | None:
    """A free-text filter (a district): control characters (a NUL, which PostgreSQL refuses) answer 400."""
    value = request.args.get(name)
    if value and has_controls(value):
        abort(400, description=f"{name} must not hold control characters")
    return value or None


def _phones(resident_ids: set[int]) -> dict[int, str]:
    if not resident_ids:
        return {}
    rows = get_session().execute(select(Resident.id, Resident.phone).where(Resident.id.in_(resident_ids)))
    # An erased resident's rows stay for the counts, without a number.
    return {resident_id: phone for resident_id, phone in rows if not phone.startswith(ERASED_PHONE_PREFIX)}


# --- paging: keyset, so that rows inserted while a client pages are neither skipped nor repeated ----------


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = bounded_int(raw, MAX_LIMIT, minimum=1) if raw.isascii() and raw.isdigit() else None
    if value is None:
        abort(400, description=f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return value


def encode_cursor(listing: str, key: list[Any]) -> str:
    raw = json.dumps({"l": listing, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(listing: str, types: tuple[type, ...]) -> list[Any] | None:
    """The position after which the page starts, from ``cursor``: opaque to the client, checked here."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        key = decoded["k"]
        if decoded["l"] != listing or len(key) != len(types):
            raise ValueError
        for value, kind in zip(key, types):
            if type(value) is not kind:
                raise ValueError
            if kind is int and not -MAX_ID <= value <= MAX_ID:
                raise ValueError
        return [_parse_time(value) if kind is str else value for value, kind in zip(key, types)]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        abort(400, description="cursor is not one this API gave out; start again without it")


def _parse_time(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if not dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc) <= value <= dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc):
        raise ValueError("out of range")
    return value.astimezone(dt.timezone.utc)


def _updated_since() -> dt.datetime | None:
    raw = request.args.get("updated_since")
    if raw is None:
        return None
    try:
        if not raw.isascii():
            raise ValueError
        return _parse_time(raw)
    except (ValueError, OverflowError):
        abort(400, description="updated_since must be an ISO 8601 date and time, e.g. 2026-12-01T09:00:00Z")


def _page(rows: list[Any], limit: int, listing: str, key: Callable[[Any], list[Any]]) -> tuple[list[Any], str | None]:
    """The page's rows and the cursor of the next page (None on the last): one row more was read to know."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(listing, key(rows[-1]))


# --- reading ------------------------------------------------------------------------------------------


@bp.get("/listings")
def list_listings():  # type: ignore[no-untyped-def]
    limit, after, since = _limit(), _cursor("listings", (int,)), _updated_since()
    query = select(Listing).order_by(Listing.id.desc()).limit(limit + 1)
    filters = ((Listing.kind, _code_arg("kind", KINDS)), (Listing.status, _code_arg("status", LISTING_STATUSES)),
               (Listing.district, _text_arg("district")))
    for column, value in filters:
        if value:
            query = query.where(column == value)
    if after is not None:
        query = query.where(Listing.id < after[0])
    if since is not None:
        query = query.where(Listing.updated_at >= since)
    listings, next_cursor = _page(list(get_session().scalars(query)), limit, "listings", lambda x: [x.id])
    phones = _phones({listing.resident_id for listing in listings})
    _audit("api.list_listings", "listing", None, len(listings))
    return jsonify(listings=[listing_json(x, phones.get(x.resident_id)) for x in listings], next_cursor=next_cursor)


@bp.get("/listings/<int:listing_id>")
def get_listing(listing_id: int):  # type: ignore[no-untyped-def]
    listing = get_session().get(Listing, listing_id) or abort(404)
    phones = _phones({listing.resident_id})
    _audit("api.view_listing", "listing", listing_id)
    return jsonify(listing_json(listing, phones.get(listing.resident_id)))


@bp.get("/callbacks")
def list_callbacks():  # type: ignore[no-untyped-def]
    # The queue's order: most urgent first, then longest due, then oldest.
    limit, after = _limit(), _cursor("callbacks", (int, str, int))
    query = select(Callback).order_by(Callback.priority.desc(), Callback.due_at, Callback.id).limit(limit + 1)
    status = _code_arg("status", CALLBACK_STATUSES)
    if status:
        query = query.where(Callback.status == status)
    if after is not None:
        priority, due_at, last_id = after
        query = query.where(or_(
            Callback.priority < priority,
            and_(Callback.priority == priority, or_(
                Callback.due_at > due_at, and_(Callback.due_at == due_at, Callback.id > last_id)))))
    callbacks, next_cursor = _page(list(get_session().scalars(query)), limit, "callbacks",
                                   lambda c: [c.priority, c.due_at.isoformat(), c.id])
    phones = _phones({c.resident_id for c in callbacks if c.resident_id})
    texts = item_texts(get_session(), [c.id for c in callbacks if c.reason == "unrecognised_message"])
    _audit("api.list_callbacks", "callback", None, len(callbacks))
    return jsonify(callbacks=[callback_json(c, phones.get(c.resident_id), texts.get(c.id))  # type: ignore[arg-type]
                              for c in callbacks],
                   next_cursor=next_cursor)


@bp.get("/residents/<path:ref>")
def get_resident(ref: str):  # type: ignore[no-untyped-def]
    """A resident by E.164 phone or by id (so integrations need not put numbers in URLs)."""
    session = get_session()
    if ref.isdigit() and not ref.startswith("0"):
        resident_id = bounded_int(ref, MAX_ID, 1)
        resident = session.get(Resident, resident_id) if resident_id is not None else None
    else:
        try:
            e164 = parse_phone(ref).e164
        except InvalidPhoneNumber:
            abort(400, description="not a phone number or id: give the phone in E.164, e.g. +31612345678")
        resident = session.scalars(select(Resident).where(Resident.phone == e164)).one_or_none()
    if resident is None or is_erased(resident):
        abort(404)
    listing_ids = session.scalars(
        select(Listing.id).where(Listing.resident_id == resident.id).order_by(Listing.id)
    ).all()
    _audit("api.view_resident", "resident", resident.id)
    return jsonify(resident_json(resident, list(listing_ids)))


@bp.get("/matches")
def list_matches():  # type: ignore[no-untyped-def]
    limit, after, since = _limit(), _cursor("matches", (int,)), _updated_since()
    query = select(Match).order_by(Match.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(Match.id < after[0])
    if since is not None:
        query = query.where(Match.updated_at >= since)
    matches, next_cursor = _page(list(get_session().scalars(query)), limit, "matches", lambda m: [m.id])
    return jsonify(matches=[match_json(m) for m in matches], next_cursor=next_cursor)


@bp.get("/matches/<int:match_id>")
def get_match(match_id: int):  # type: ignore[no-untyped-def]
    match = get_session().get(Match, match_id) or abort(404)
    return jsonify(match_json(match))


# --- Idempotency-Key: the first answer again, for the same key and body, for 24 hours ----------------------


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """The first answer to a key is stored with the change; a retry (same key, same body) gets it back and
    changes nothing, another body 422. Two identical requests at once: the unique (client, key) row lets
    one through, the other waits for its answer."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or has_controls(key):
            return _error(400, "bad_request", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} ASCII characters.")
        session = get_session()
        client = caller().name
        fingerprint = hashlib.sha256(
            b"\0".join([request.method.encode(), request.path.encode(), request.get_data()])
        ).hexdigest()
        now = dt.datetime.now(dt.timezone.utc)
        expired = now - dt.timedelta(hours=IDEMPOTENCY_HOURS)
        deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
        while True:
            session.execute(delete(IdempotentAnswer).where(
                IdempotentAnswer.client == client, IdempotentAnswer.key == key, IdempotentAnswer.created_at < expired))
            new_id = insert_ignoring_conflict(
                session, IdempotentAnswer.__table__,
                {"client": client, "key": key, "fingerprint": fingerprint, "created_at": now},
                returning=IdempotentAnswer.__table__.c.id)
            if new_id is not None:
                session.commit()  # the key is taken: an identical request now waits for this one's answer
                break
            session.rollback()
            first = session.scalars(select(IdempotentAnswer).where(
                IdempotentAnswer.client == client, IdempotentAnswer.key == key)).one_or_none()
            if first is None:
                continue  # it expired or its request failed in between: try to take the key again
            if first.fingerprint != fingerprint:
                return _error(422, "idempotency_key_reused",
                              "This Idempotency-Key was used with another request in the last 24 hours.")
            if first.status_code is not None:
                response = current_app.response_class(first.body, status=first.status_code,
                                                      mimetype="application/json")
                if first.location:
                    response.headers["Location"] = first.location
                response.headers["Idempotent-Replayed"] = "true"
                return response
            if time.monotonic() > deadline:
                return _error(409, "in_progress", "A request with this Idempotency-Key is still running; retry.")
            time.sleep(0.05)
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except Exception:
            session.rollback()
            _forget(client, key)
            raise
        if response.status_code >= 400 and response.status_code not in KEPT_ERRORS:
            _forget(client, key)  # bad input changed nothing: the corrected request may use the same key
            return response
        session.rollback()  # nothing of the view's is pending; the answer is stored on its own
        row = session.scalars(select(IdempotentAnswer).where(
            IdempotentAnswer.client == client, IdempotentAnswer.key == key)).one()
        row.status_code = response.status_code
        row.body = response.get_data(as_text=True)
        row.location = response.headers.get("Location")
        session.commit()
        return response

    return wrapper


def _forget(client: str, key: str) -> None:
    """The request failed: the key is free again, so that a retry runs."""
    session = get_session()
    session.execute(delete(IdempotentAnswer).where(IdempotentAnswer.client == client, IdempotentAnswer.key == key))
    session.commit()


# --- writing ------------------------------------------------------------------------------------------


def _json_object(example: str) -> dict[str, Any]:
    if not request.is_json:
        abort(415, description=f"Send JSON (Content-Type: application/json): {example}")
    try:
        data = json.loads(request.get_data())
    except (ValueError, RecursionError):
        abort(400, description=f"The body is not valid JSON. Send {example}")
    if not isinstance(data, dict):
        abort(400, description=f"Send a JSON object: {example}")
    return data


def _refuse_unknown(data: dict[str, Any], schema: str) -> None:
    unknown = sorted(set(data) - set(SCHEMAS[schema]["properties"]))
    if unknown:
        abort(400, description=f"unknown field(s): {', '.join(unknown)}")


def _text(data: dict[str, Any], name: str, maximum: int, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > maximum or has_controls(value.replace("\n", "").replace("\t", "")):
        abort(400, description=f"{name} must be a string of at most {maximum} characters, without control characters")
    return value


NEW_LISTING_EXAMPLE = ('{"kind": "offer", "category": "groceries", "description": "...", "postcode": "2034", '
                       '"when": "evenings", "phone": "+31612345678"}')


@bp.post("/listings")
@idempotent
def create_listing():  # type: ignore[no-untyped-def]
    """An online member's request or offer joins the queue and the suggestions (channel ``api``)."""
    from models.marketplace import record_marketplace_listing
    from sms.parsing import find_postcode

    data = _json_object(NEW_LISTING_EXAMPLE)
    _refuse_unknown(data, "NewListing")
    missing = [name for name in SCHEMAS["NewListing"]["required"] if name not in data]
    if missing:
        abort(400, description=f"missing field(s): {', '.join(missing)}")
    kind, category, timing = data["kind"], data["category"], data["when"]
    if kind not in KINDS:
        abort(400, description=f"kind must be one of: {', '.join(KINDS)}")
    if category not in CATEGORIES:
        abort(400, description=f"category must be one of: {', '.join(CATEGORIES)}")
    if timing is not None and timing not in TIMINGS[kind]:
        abort(400, description=f"when of a {kind} must be null or one of: {', '.join(TIMINGS[kind])}")
    description = _text(data, "description", MAX_DESCRIPTION, required=True)
    postcode = data["postcode"]
    if not isinstance(postcode, str) or len(postcode) != 4 or find_postcode(postcode) != postcode:
        abort(400, description="postcode must be four digits, e.g. 2034")
    external_ref = _text(data, "external_ref", MAX_EXTERNAL_REF, required=False)
    number = None
    if data.get("phone") is not None:
        try:
            number = parse_phone(data["phone"]) if isinstance(data["phone"], str) else None
        except InvalidPhoneNumber:
            number = None
        if number is None:
            abort(400, description="phone is not a phone number: give it in E.164, e.g. +31612345678")
    session = get_session()
    listing = record_marketplace_listing(
        session, kind=kind, category=category, description=description or "", postcode=postcode, timing=timing,
        number=number, external_ref=external_ref,
    )
    _audit("listing.create", "listing", listing.id, commit=False, kind=kind)
    session.commit()
    response = jsonify(listing_json(listing, number.e164 if number else None))
    response.status_code = 201
    response.headers["Location"] = f"{request.script_root}/api/v1/listings/{listing.id}"
    return response


@bp.patch("/listings/<int:listing_id>")
@idempotent
def change_listing(listing_id: int):  # type: ignore[no-untyped-def]
    """The marketplace closes a listing: ``done`` (helped) or ``cancelled`` (withdrawn)."""
    from models.marketplace import CLOSING_STATUSES, ListingChangeRefused, close_listing

    data = _json_object('{"status": "cancelled"}')
    _refuse_unknown(data, "ListingChange")
    status = data.get("status")
    if status not in CLOSING_STATUSES:
        abort(400, description=f"status must be one of: {', '.join(CLOSING_STATUSES)}")
    session = get_session()
    listing = session.get(Listing, listing_id, with_for_update=True) or abort(404)
    try:
        close_listing(session, listing, status)
    except ListingChangeRefused as exc:
        session.rollback()
        return _error(409, "conflict", str(exc))
    _audit("listing.close", "listing", listing.id, commit=False, status=status)
    session.commit()
    phones = _phones({listing.resident_id})
    return jsonify(listing_json(listing, phones.get(listing.resident_id)))


MATCH_ERRORS = {"not_found": (404, "not_found"), "invalid": (400, "bad_request"), "conflict": (409, "conflict")}


@bp.post("/matches")
@idempotent
def create_match():  # type: ignore[no-untyped-def]
    """Propose a match, as a broker's click does: the helper is asked by SMS or phone."""
    from models.matching import Actor, MatchError, propose_match

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, "bad_request", 'Send a JSON object: {"request_id": 1, "offer_id": 2, "note": "..."}.')
    _refuse_unknown(data, "NewMatch")
    ids: dict[str, int] = {}
    for name in ("request_id", "offer_id"):
        raw = data.get(name)  # a JSON number: "12" is refused as before
        value = bounded_int(raw, MAX_ID, minimum=1) if isinstance(raw, int) and not isinstance(raw, bool) else None
        if value is None:
            return _error(400, "bad_request", f"{name} must be a positive integer.")
        ids[name] = value
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000 or has_controls(note.replace("\n", ""))):
        return _error(400, "bad_request", "note must be a string of at most 2000 characters.")
    session = get_session()
    actor = Actor("api", caller().client_id, remote_addr=request.remote_addr, name=caller().name)
    try:
        match = propose_match(session, ids["request_id"], ids["offer_id"], config=current_app.config, note=note,
                              actor=actor)
    except MatchError as exc:
        session.rollback()
        _audit("match.propose", "listing", ids["request_id"], result="refused", **ids, reason=str(exc))
        status, error = MATCH_ERRORS.get(exc.kind, (409, "conflict"))
        return _error(status, error, str(exc))
    session.commit()
    response = jsonify(match_json(match))
    response.status_code = 201
    response.headers["Location"] = f"{request.script_root}/api/v1/matches/{match.id}"
    return response


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(document())


@bp.get("/reports")
def get_report():  # type: ignore[no-untyped-def]
    """Anonymous counts for a period, by district, category or channel (contract: Reports)."""
    from models.reports import ReportError, build_report, parse_period
    from models.workdays import local_zone

    args = request.args
    try:
        period, by = parse_period(args.get("from"), args.get("to"), args.get("by"), local_zone(current_app.config))
    except ReportError as exc:
        return _error(400, "bad_request", str(exc))
    session = get_session()
    report = build_report(session, period, by, min_count=current_app.config["BUURTLIJN_REPORT_MIN_COUNT"])
    audit(session, "report.view", actor_type="api", object_type="report", remote_addr=request.remote_addr,
          detail={"from": args["from"], "to": args["to"], "by": by})
    session.commit()
    return jsonify(report.as_json())
