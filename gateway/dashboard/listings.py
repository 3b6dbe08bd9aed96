"""Requests and offers entered by hand: for an item's resident on the phone, or for a walk-in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from models import Callback, Listing, Resident
from models.districts import find_postcode
from models.leases import claim_item, holds, renew_lease
from models.limits import storable_text
from models.marketplace import (
    CLOSING_STATUSES,
    ListingChangeRefused,
    close_listing,
    edit_listing,
    record_listing,
    reopen_listing,
)
from models.phones import InvalidPhoneNumber, parse_phone
from models.residents import resident_for, set_postcode
from models.shapes import MAX_DESCRIPTION  # the API's limit: an edit keeps a marketplace listing's words whole
from models.vocabulary import CATEGORIES, KINDS, RESIDENT_LANGUAGES, TIMINGS

from ..database import get_session
from . import category_label, label, t
from .auth import me
from .common import audit_action, callback_or_404

bp = Blueprint("listings", __name__)



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
        # PostgreSQL's text refuses NUL: a pasted one is dropped, as from a resident's SMS.
        description=storable_text((form.get("description") or "").strip()[:MAX_DESCRIPTION]) or None,
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
    parsed.timing = timing if timing in TIMINGS.get(parsed.kind, ()) else None
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
        return render_template("dashboard/new_listing.html", values=values, errors={})
    values.update({key: (request.form.get(key) or "").strip() for key in values})
    parsed = _listing_form(request.form)
    errors = dict(parsed.errors)
    try:
        number = parse_phone(values["phone"])
    except InvalidPhoneNumber:
        errors["phone"] = t("new.error.phone")
    language = values["language"] if values["language"] in RESIDENT_LANGUAGES else "nl"
    if errors:
        return render_template("dashboard/new_listing.html", values=values, errors=errors), 400
    db = get_session()
    resident = resident_for(db, number, language=language)
    listing = _save_listing(resident, parsed, queue_for_broker=True)
    callback = db.scalars(select(Callback).where(Callback.listing_id == listing.id)).one()
    claim_item(db, callback.id, me().id)
    audit_action("listing.create", "listing", listing.id, callback_id=callback.id, kind=listing.kind, how="walk_in")
    db.commit()
    flash(t("new.saved"), "ok")
    return redirect(url_for("dashboard.item.show", callback_id=callback.id))


# --- a listing's life from its item's page: close, open again, correct --------------------------------


def _item_listing(callback_id: int) -> tuple[Callback, Listing]:
    """The item and the listing it is about, for a change; 404 when the item has none."""
    db = get_session()
    callback = callback_or_404(callback_id)
    listing = db.get(Listing, callback.listing_id, with_for_update=True) if callback.listing_id else None
    if listing is None:
        abort(404)
    return callback, listing


def _held_by_other(callback: Callback) -> bool:
    """Another broker holds the item (and may be on the phone about this very listing)."""
    return callback.status == "claimed" and callback.claimed_by_id != me().id and holds(callback, callback.claimed_by_id)


def _listing_words(listing: Listing) -> dict[str, str]:
    return {"kind": label("kind", listing.kind), "category": category_label(listing.category).lower()}


def _refused(callback: Callback, listing: Listing, action: str, why: str):  # type: ignore[no-untyped-def]
    db = get_session()
    db.rollback()
    audit_action(action, "listing", listing.id, result="refused", why=why, callback_id=callback.id)
    db.commit()
    flash(t(f"listing_life.refused.{why}"), "error")
    return redirect(url_for("dashboard.item.show", callback_id=callback.id, _anchor="listing"))


def _done(callback: Callback, message: str):  # type: ignore[no-untyped-def]
    if holds(callback, me().id):
        renew_lease(get_session(), callback.id, me().id)
    get_session().commit()
    flash(message, "ok")
    return redirect(url_for("dashboard.item.show", callback_id=callback.id, _anchor="listing"))


@bp.post("/dashboard/items/<int:callback_id>/listing/close")
@login_required
def close(callback_id: int):  # type: ignore[no-untyped-def]
    """Close the item's listing as helped or withdrawn, after an "are you sure?" page."""
    callback, listing = _item_listing(callback_id)
    status = request.form.get("status") or ""
    if _held_by_other(callback):
        return _refused(callback, listing, "listing.close", "held")
    if status not in CLOSING_STATUSES:
        return _refused(callback, listing, "listing.close", "status")
    if request.form.get("confirmed") != "1":
        get_session().rollback()  # lets go of the row: nothing changes before the broker says yes
        back = url_for("dashboard.item.show", callback_id=callback_id, _anchor="listing")
        words = _listing_words(listing)
        return render_template(
            "dashboard/confirm.html", title=t("listing_life.confirm_title"),
            question=t(f"listing_life.confirm_{status}"),
            detail=f"{words['kind']}: {words['category']}. {listing.description or ''}".strip(),
            action=url_for("dashboard.listings.close", callback_id=callback_id), fields={"status": status},
            yes=t("listing_life.confirm_yes"), no=t("listing_life.confirm_no"), back=back)
    try:
        close_listing(get_session(), listing, status)
    except ListingChangeRefused as exc:
        return _refused(callback, listing, "listing.close", exc.why)
    audit_action("listing.close", "listing", listing.id, status=status, callback_id=callback_id, via="dashboard")
    return _done(callback, t("listing_life.closed", status=label("listing_status", status), **_listing_words(listing)))


@bp.post("/dashboard/items/<int:callback_id>/listing/reopen")
@login_required
def reopen(callback_id: int):  # type: ignore[no-untyped-def]
    callback, listing = _item_listing(callback_id)
    if _held_by_other(callback):
        return _refused(callback, listing, "listing.reopen", "held")
    was = listing.status
    try:
        reopen_listing(listing)
    except ListingChangeRefused as exc:
        return _refused(callback, listing, "listing.reopen", exc.why)
    audit_action("listing.reopen", "listing", listing.id, was=was, callback_id=callback_id)
    return _done(callback, t("listing_life.reopened", **_listing_words(listing)))


@bp.post("/dashboard/items/<int:callback_id>/listing/edit")
@login_required
def edit(callback_id: int):  # type: ignore[no-untyped-def]
    """Correct the category, description, timing and postcode (the district follows) of the item's listing."""
    callback, listing = _item_listing(callback_id)
    if _held_by_other(callback):
        return _refused(callback, listing, "listing.edit", "held")
    parsed = _listing_form({**request.form.to_dict(), "kind": listing.kind})
    if parsed.errors:
        return _refused(callback, listing, "listing.edit", "category" if "category" in parsed.errors else "postcode")
    timing = request.form.get("timing") or None
    try:
        changed = edit_listing(listing, category=parsed.category, description=parsed.description,
                               timing=timing, postcode=parsed.postcode)
    except ListingChangeRefused as exc:
        return _refused(callback, listing, "listing.edit", exc.why)
    if not changed:
        return _done(callback, t("listing_life.unchanged"))
    audit_action("listing.edit", "listing", listing.id, fields=changed, callback_id=callback_id)
    return _done(callback, t("listing_life.edited", **_listing_words(listing)))
