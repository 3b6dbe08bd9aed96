"""Requests and offers entered by hand: for an item's resident on the phone, or for a walk-in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from models import Callback, Listing, Resident
from models.districts import find_postcode
from models.leases import claim_item, holds, renew_lease
from models.listing import KINDS, OFFER_TIMINGS, REQUEST_TIMINGS
from models.marketplace import record_listing
from models.phones import InvalidPhoneNumber, parse_phone
from models.resident import LANGUAGES as RESIDENT_LANGUAGES
from models.residents import resident_for, set_postcode

from ..database import get_session
from . import t
from .auth import me
from .common import CATEGORIES, audit_action, callback_or_404

bp = Blueprint("listings", __name__)

MAX_DESCRIPTION = 1000


@dataclass
class ListingForm:
    kind: str = ""
    category: str = ""
    postcode: str | None = None
    timing: str | None = None
    description: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _listing_form(form: Any) -> ListingForm:
    parsed = ListingForm(
        kind=form.get("kind") or "",
        category=form.get("category") or "",
        description=(form.get("description") or "").strip()[:MAX_DESCRIPTION] or None,
    )
    if parsed.kind not in KINDS:
        parsed.errors["kind"] = t("new.error.kind")
    if parsed.category not in CATEGORIES:
        parsed.errors["category"] = t("new.error.category")
    raw_postcode = (form.get("postcode") or "").strip()
    if raw_postcode:
        parsed.postcode = find_postcode(raw_postcode)
        if parsed.postcode is None or len(re.sub(r"\D", "", raw_postcode)) != 4:
            parsed.errors["postcode"] = t("new.error.postcode")
            parsed.postcode = raw_postcode[:8]
    timing = form.get("timing") or None
    allowed = REQUEST_TIMINGS if parsed.kind == "request" else OFFER_TIMINGS
    parsed.timing = timing if timing in allowed else None
    return parsed


def _save_listing(resident: Resident, parsed: ListingForm, *, queue_for_broker: bool) -> Listing:
    db = get_session()
    if parsed.postcode and not resident.postcode:
        set_postcode(resident, parsed.postcode)
    return record_listing(
        db, resident, kind=parsed.kind, channel="broker", category=parsed.category,
        description=parsed.description, postcode=parsed.postcode, timing=parsed.timing,
        queue_for_broker=queue_for_broker,
    )


@bp.post("/dashboard/items/<int:callback_id>/listing")
@login_required
def add_listing(callback_id: int):  # type: ignore[no-untyped-def]
    """A request or offer for this item's resident, told to the broker on the phone."""
    db = get_session()
    callback = callback_or_404(callback_id)
    if not holds(callback, me().id) or callback.resident_id is None:
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    parsed = _listing_form(request.form)
    if parsed.errors:
        for message in parsed.errors.values():
            flash(message, "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id, _anchor="add-listing"))
    resident = db.get(Resident, callback.resident_id)
    assert resident is not None
    listing = _save_listing(resident, parsed, queue_for_broker=False)
    if callback.listing_id is None:
        callback.listing_id = listing.id  # suggestions and the match outcome work on it now
    renew_lease(db, callback_id, me().id)
    audit_action("listing.create", "listing", listing.id, callback_id=callback_id, kind=listing.kind)
    db.commit()
    flash(t("new.saved_here", kind=t(f"kind.{listing.kind}").lower()), "ok")
    return redirect(url_for("dashboard.item.show", callback_id=callback_id))


@bp.route("/dashboard/new", methods=["GET", "POST"])
@login_required
def new_listing():  # type: ignore[no-untyped-def]
    """A walk-in: enter a request or offer for any resident; the broker holds it at once."""
    values: dict[str, Any] = {"phone": "", "language": "nl", "kind": "request", "category": "",
                              "postcode": "", "timing": "", "description": ""}
    if request.method == "GET":
        return render_template("dashboard/new_listing.html", values=values, errors={},
                               categories=CATEGORIES, timings=REQUEST_TIMINGS + OFFER_TIMINGS)
    values.update({key: (request.form.get(key) or "").strip() for key in values})
    parsed = _listing_form(request.form)
    errors = dict(parsed.errors)
    try:
        number = parse_phone(values["phone"])
    except InvalidPhoneNumber:
        errors["phone"] = t("new.error.phone")
    language = values["language"] if values["language"] in RESIDENT_LANGUAGES else "nl"
    if errors:
        return render_template("dashboard/new_listing.html", values=values, errors=errors,
                               categories=CATEGORIES, timings=REQUEST_TIMINGS + OFFER_TIMINGS), 400
    db = get_session()
    resident = resident_for(db, number, language=language)
    listing = _save_listing(resident, parsed, queue_for_broker=True)
    callback = db.scalars(select(Callback).where(Callback.listing_id == listing.id)).one()
    claim_item(db, callback.id, me().id)
    audit_action("listing.create", "listing", listing.id, callback_id=callback.id, kind=listing.kind, how="walk_in")
    db.commit()
    flash(t("new.saved"), "ok")
    return redirect(url_for("dashboard.item.show", callback_id=callback.id))
