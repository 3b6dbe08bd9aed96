"""The item page: what the broker sees about an item and its resident, notes, and the outcome of the call."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_required
from sqlalchemy import select

from models import Broker, Call, Callback, Listing, Message, Resident
from models.base import utcnow
from models.bridge import PURPOSE
from models.leases import ClaimError, holds, renew_lease
from models.marketplace import REOPENABLE_STATUSES, match_under_way
from models.match_page import MatchView, match_view, matches_of
from models.matching import relay_since_in
from models.outcomes import OutcomeError, record_outcome
from models.listing_life import checkins_of
from models.phones import mask, readable
from models.queue_view import QueueRow, other_open_items, resident_history, resident_texts
from models.suggestions import suggestions_for
from models.vocabulary import CURRENT_LISTING_STATUSES, QUEUED_CALLBACK_STATUSES

from ..database import get_session
from . import local_time, local_zone_of_app, t
from .auth import me
from .calls import call_progress
from .common import MAX_NOTE, audit_action, callback_or_404
from .matches import MEETING_FORMAT, refusal_text

bp = Blueprint("item", __name__)

MAX_RESIDENT_NOTES = 4000


@dataclass
class ItemPage:
    callback: Callback
    holding: bool
    holder: Broker | None
    resident: Resident | None
    listing: Listing | None
    phone: str
    other_listings: list[Listing] = field(default_factory=list)
    matches: dict[int, list[Any]] = field(default_factory=dict)
    history: list[Callback] = field(default_factory=list)
    texts: list[Any] = field(default_factory=list)  # what the resident texted, newest first
    checkins: dict[int, list[Any]] = field(default_factory=dict)  # "still current?" asked, per listing
    suggestions: list[Any] = field(default_factory=list)
    call: Call | None = None
    match: MatchView | None = None
    counterpart_phone: str = "—"  # always masked: the broker calls them through Buurtlijn
    busy: bool = False  # the request has a match under way: no other can be proposed
    # The resident's other items not closed yet: one call back can settle them all.
    also_open: list[QueueRow] = field(default_factory=list)
    # What a broker can do with the listing from here (not while another broker holds the item).
    can_close: bool = False
    can_reopen: bool = False


def _item_page(callback: Callback) -> ItemPage:
    db = get_session()
    broker = me()
    now = utcnow()
    holding = holds(callback, broker.id, now)
    if holding:
        renew_lease(db, callback.id, broker.id, now)
    resident = db.get(Resident, callback.resident_id) if callback.resident_id else None
    listing = db.get(Listing, callback.listing_id) if callback.listing_id else None
    holder = None
    if callback.status == "claimed" and callback.claimed_by_id and not holding:
        holder = db.get(Broker, callback.claimed_by_id)
    page = ItemPage(
        callback=callback,
        holding=holding,
        holder=holder,
        resident=resident,
        listing=listing,
        phone=(readable(resident.phone) if holding else mask(resident.phone)) if resident else "—",
    )
    if resident is not None:
        page.other_listings = sorted(
            (x for x in resident.listings if listing is None or x.id != listing.id),
            key=lambda x: x.id, reverse=True,
        )
        page.history = resident_history(db, resident.id, exclude_callback=callback.id)
        page.texts = resident_texts(db, resident.id)
        page.also_open = other_open_items(db, callback, broker.id, now, local_zone_of_app())
    elif callback.message_id is not None:  # a text from a number we could not read: the text itself
        page.texts = [db.get(Message, callback.message_id)]
    listing_ids = [x.id for x in page.other_listings] + ([listing.id] if listing else [])
    page.matches = matches_of(db, listing_ids)
    page.checkins = checkins_of(db, listing_ids)
    page.match = match_view(db, callback, relay_since_in(current_app.config, now))
    if page.match is not None and page.match.counterpart is not None:
        page.counterpart_phone = mask(page.match.counterpart.phone)
    # A request with a match under way gets no other proposal until that match is stopped.
    under_way = listing is not None and match_under_way(db, listing.id)
    page.busy = listing is not None and listing.kind == "request" and under_way
    if listing is not None and holder is None:
        page.can_close = listing.status in CURRENT_LISTING_STATUSES and not under_way
        page.can_reopen = listing.status in REOPENABLE_STATUSES
    if listing is not None and listing.status == "open" and callback.status in QUEUED_CALLBACK_STATUSES and not page.busy:
        page.suggestions = suggestions_for(db, listing, now=now)
    if holding:
        page.call = db.scalars(
            select(Call)
            .where(Call.callback_id == callback.id, Call.purpose == PURPOSE, Call.broker_id == broker.id)
            .order_by(Call.id.desc())
            .limit(1)
        ).first()
    return page


@bp.get("/dashboard/items/<int:callback_id>")
@login_required
def show(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = callback_or_404(callback_id)
    page = _item_page(callback)
    audit_action("callback.view", "callback", callback.id, resident_id=callback.resident_id,
           full_number=page.holding, suggested=[s.listing.id for s in page.suggestions] or None,
           match_id=page.match.match.id if page.match else None)
    db.commit()
    draft = session.pop(f"draft_note:{callback.id}", "")
    draft_match_note = session.pop(f"draft_match_note:{callback.id}", "")
    return render_template(
        "dashboard/item.html",
        page=page,
        callback=callback,
        draft_note=draft,
        draft_match_note=draft_match_note,
        nonce=secrets.token_hex(16),
        progress=call_progress(page.call) if page.call else None,
        called_phone=_called_phone(page),
        meeting_min=utcnow().astimezone(local_zone_of_app()).strftime(MEETING_FORMAT),
        me=me(),
    )


def _called_phone(page: ItemPage) -> str:
    """The number the last bridge call rang, as this page may show it (a counterpart's stays masked)."""
    if page.call is None:
        return page.phone
    counterpart = page.match.counterpart if page.match is not None else None
    if counterpart is not None and page.call.resident_id == counterpart.id:
        return page.counterpart_phone
    return page.phone


@bp.post("/dashboard/items/<int:callback_id>/outcome")
@login_required
def outcome(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = callback_or_404(callback_id)
    note = (request.form.get("note") or "").strip()[:MAX_NOTE] or None
    match_with = request.form.get("match_with", type=int)
    chosen = request.form.get("outcome") or ""
    referral = None
    if match_with is not None:
        chosen = "match_proposed"
    elif chosen.startswith("referred:"):
        chosen, referral = "referred", chosen.split(":", 1)[1]
    try:
        result = record_outcome(db, callback, me(), chosen, note=note, counterpart_id=match_with, referral=referral,
                                config=current_app.config)
    except ClaimError:
        db.rollback()
        audit_action("callback.outcome", "callback", callback_id, result="refused", outcome=chosen, why="not_held")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.queue.index"))
    except OutcomeError as exc:
        db.rollback()
        audit_action("callback.outcome", "callback", callback_id, result="refused", outcome=chosen, why=exc.code)
        db.commit()
        if note:
            session[f"draft_note:{callback_id}"] = note
        flash(t(f"outcome.error.{exc.code}", detail=refusal_text(exc.why)), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id, _anchor="outcome"))
    audit_action("callback.outcome", "callback", callback_id, outcome=chosen, referral=referral,
           match_id=result.match.id if result.match else None,
           retry_at=result.retry_at.isoformat() if result.retry_at else None,
           follow_up=result.follow_up.id if result.follow_up else None)
    db.commit()
    if result.retry_at is not None:
        flash(t("outcome.retry", when=local_time(result.retry_at)), "ok")
    elif result.follow_up is not None:
        flash(t("outcome.follow_up"), "ok")
    else:
        label = t(f"outcome.{chosen}" if referral is None else f"outcome.referred_{referral}")
        flash(t("outcome.saved", outcome=label), "ok")
    return redirect(url_for("dashboard.queue.index"))


@bp.post("/dashboard/items/<int:callback_id>/notes")
@login_required
def save_notes(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = callback_or_404(callback_id)
    if not holds(callback, me().id) or callback.resident_id is None:
        audit_action("resident.notes", "callback", callback_id, result="refused")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    resident = db.get(Resident, callback.resident_id)
    assert resident is not None
    resident.notes = (request.form.get("notes") or "").strip()[:MAX_RESIDENT_NOTES] or None
    renew_lease(db, callback_id, me().id)
    audit_action("resident.notes", "resident", resident.id, callback_id=callback_id)
    db.commit()
    flash(t("item.notes_saved"), "ok")
    return redirect(url_for("dashboard.item.show", callback_id=callback_id, _anchor="resident"))
