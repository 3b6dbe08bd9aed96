"""JSON API /api/v1 for the online marketplace: bearer token, shapes as in the contract."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import select

from models import Callback, Listing, Match, Resident
from models.audit import audit
from models.limits import MAX_ID, bounded_int, has_controls
from models.phones import InvalidPhoneNumber, parse_phone
from models.shapes import iso, listing_json, match_json
from models.vocabulary import CALLBACK_STATUSES, KINDS, LISTING_STATUSES

from .database import get_session
from .security import api_token_valid, csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_ROWS = 500


@bp.before_request
def _require_token():  # type: ignore[no-untyped-def]
    if not api_token_valid():
        response = jsonify(error="unauthorized", message="A valid bearer token is required.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="buurtlijn"'
        return response
    return None


@bp.errorhandler(404)
def _not_found(_error):  # type: ignore[no-untyped-def]
    return jsonify(error="not_found"), 404


@bp.errorhandler(400)
def _bad_request(error):  # type: ignore[no-untyped-def]
    return jsonify(error="bad_request", message=getattr(error, "description", "")), 400


def callback_json(callback: Callback, phone: str | None) -> dict[str, Any]:
    return {
        "id": callback.id,
        "reason": callback.reason,
        "status": callback.status,
        "phone": phone,
        "listing_id": callback.listing_id,
        "priority": callback.priority,
        "due_at": iso(callback.due_at),
        "attempts": callback.attempts,
    }


def _audit(action: str, object_type: str, object_id: Any, count: int | None = None) -> None:
    audit(
        get_session(),
        action,
        actor_type="api",
        object_type=object_type,
        object_id=object_id,
        remote_addr=request.remote_addr,
        detail={"count": count} if count is not None else None,
    )
    get_session().commit()


def _code_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    """A filter on a code: one of ``allowed``, or absent. A typo answers 400, not an empty list."""
    value = request.args.get(name)
    if value and value not in allowed:
        abort(400, description=f"{name} must be one of: {', '.join(allowed)}")
    return value or None


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
    return {resident_id: phone for resident_id, phone in rows}


@bp.get("/listings")
def list_listings():  # type: ignore[no-untyped-def]
    query = select(Listing).order_by(Listing.id.desc()).limit(MAX_ROWS)
    filters = ((Listing.kind, _code_arg("kind", KINDS)), (Listing.status, _code_arg("status", LISTING_STATUSES)),
               (Listing.district, _text_arg("district")))
    for column, value in filters:
        if value:
            query = query.where(column == value)
    listings = get_session().scalars(query).all()
    phones = _phones({listing.resident_id for listing in listings})
    _audit("api.list_listings", "listing", None, len(listings))
    return jsonify(listings=[listing_json(x, phones.get(x.resident_id)) for x in listings])


@bp.get("/listings/<int:listing_id>")
def get_listing(listing_id: int):  # type: ignore[no-untyped-def]
    listing = get_session().get(Listing, listing_id) or abort(404)
    phones = _phones({listing.resident_id})
    _audit("api.view_listing", "listing", listing_id)
    return jsonify(listing_json(listing, phones.get(listing.resident_id)))


@bp.get("/callbacks")
def list_callbacks():  # type: ignore[no-untyped-def]
    query = select(Callback).order_by(Callback.priority.desc(), Callback.due_at, Callback.id).limit(MAX_ROWS)
    status = _code_arg("status", CALLBACK_STATUSES)
    if status:
        query = query.where(Callback.status == status)
    callbacks = get_session().scalars(query).all()
    phones = _phones({c.resident_id for c in callbacks if c.resident_id})
    _audit("api.list_callbacks", "callback", None, len(callbacks))
    return jsonify(callbacks=[callback_json(c, phones.get(c.resident_id)) for c in callbacks])  # type: ignore[arg-type]


@bp.get("/residents/<path:phone>")
def get_resident(phone: str):  # type: ignore[no-untyped-def]
    try:
        e164 = parse_phone(phone).e164
    except InvalidPhoneNumber:
        abort(400, description=f"not a phone number: give it in E.164, e.g. +31612345678")
    session = get_session()
    resident = session.scalars(select(Resident).where(Resident.phone == e164)).one_or_none() or abort(404)
    listing_ids = session.scalars(
        select(Listing.id).where(Listing.resident_id == resident.id).order_by(Listing.id)
    ).all()
    _audit("api.view_resident", "resident", resident.id)
    return jsonify(
        phone=resident.phone,
        language=resident.language,
        opted_out=resident.opted_out,
        postcode=resident.postcode,
        district=resident.district,
        listings=list(listing_ids),
    )


def _error(status: int, error: str, message: str):  # type: ignore[no-untyped-def]
    return jsonify(error=error, message=message), status


MATCH_ERRORS = {"not_found": (404, "not_found"), "invalid": (400, "bad_request"), "conflict": (409, "conflict")}


@bp.post("/matches")
def create_match():  # type: ignore[no-untyped-def]
    """Propose a match, as a broker's click does: the helper is asked by SMS or phone."""
    from models.matching import Actor, MatchError, propose_match

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, "bad_request", 'Send a JSON object: {"request_id": 1, "offer_id": 2, "note": "..."}.')
    ids: dict[str, int] = {}
    for name in ("request_id", "offer_id"):
        raw = data.get(name)  # a JSON number: "12" is refused as before
        value = bounded_int(raw, MAX_ID, minimum=1) if isinstance(raw, int) else None
        if value is None:
            return _error(400, "bad_request", f"{name} must be a positive integer.")
        ids[name] = value
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        return _error(400, "bad_request", "note must be a string of at most 2000 characters.")
    session = get_session()
    actor = Actor("api", remote_addr=request.remote_addr)
    try:
        match = propose_match(session, ids["request_id"], ids["offer_id"], config=current_app.config, note=note,
                              actor=actor)
    except MatchError as exc:
        session.rollback()
        audit(session, "match.propose", actor_type="api", object_type="listing", object_id=ids["request_id"],
              result="refused", remote_addr=request.remote_addr, detail={**ids, "reason": str(exc)})
        session.commit()
        status, error = MATCH_ERRORS.get(exc.kind, (409, "conflict"))
        return _error(status, error, str(exc))
    session.commit()
    response = jsonify(match_json(match))
    response.status_code = 201
    response.headers["Location"] = f"{request.script_root}/api/v1/matches/{match.id}"
    return response


@bp.get("/matches")
def list_matches():  # type: ignore[no-untyped-def]
    matches = get_session().scalars(select(Match).order_by(Match.id.desc()).limit(MAX_ROWS)).all()
    return jsonify(matches=[match_json(m) for m in matches])


@bp.get("/matches/<int:match_id>")
def get_match(match_id: int):  # type: ignore[no-untyped-def]
    match = get_session().get(Match, match_id) or abort(404)
    return jsonify(match_json(match))
