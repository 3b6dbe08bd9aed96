"""The queue, the item page and everything a broker does with an item."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import login_required
from sqlalchemy import select

from models import Broker, Call, Callback, Listing, Resident
from models.audit import audit
from models.base import utcnow
from models.callback import REASON_PRIORITY
from models.claims import (
    MATCH_OUTCOMES,
    REFERRALS,
    ClaimError,
    MatchView,
    OutcomeError,
    QueueFilters,
    QueueRow,
    act_on_match,
    claim_item,
    claim_next,
    has_live_match,
    holds,
    match_view,
    matches_of,
    other_open_items,
    queue_view,
    record_outcome,
    release,
    renew_lease,
    resident_history,
)
from models.districts import district_map, find_postcode
from models.listing import KINDS, OFFER_TIMINGS, REQUEST_TIMINGS
from models.marketplace import record_listing
from models.match import Match
from models.matching import MatchError
from models.phones import InvalidPhoneNumber, mask, parse_phone
from models.residents import resident_for, set_postcode
from models.resident import LANGUAGES as RESIDENT_LANGUAGES
from models.suggestions import suggestions_for
from models.workdays import broker_hours
from workers.callback_jobs import FINAL_STATUSES, PURPOSE, request_bridge_call

from ..database import get_session
from . import ZONE, bp, label, local_time, t
from .auth import me, remote_addr

CATEGORIES = ("groceries", "chores", "transport", "company", "digital", "language", "paperwork", "sitting", "other")
REASONS = tuple(dict.fromkeys((*REASON_PRIORITY, "match_accepted", "letter_or_visit")))
MAX_NOTE = 2000
MAX_RESIDENT_NOTES = 4000
MAX_DESCRIPTION = 1000
DEMO_STEPS = ((0.0, "queued"), (2.0, "ringing"), (5.0, "in-progress"))
_NONCE = re.compile(r"^[0-9a-f]{8,32}$")
MEETING_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends, local time


def _audit(action: str, object_type: str | None, object_id: Any, *, result: str = "ok", **detail: Any) -> None:
    audit(
        get_session(),
        action,
        actor_type="broker",
        actor_id=me().id,
        object_type=object_type,
        object_id=object_id,
        result=result,
        remote_addr=remote_addr(),
        detail={k: v for k, v in detail.items() if v is not None} or None,
    )


def _filters(source: Any) -> QueueFilters:
    """Filters from a query string or form; unknown values are ignored, never an error."""
    district = source.get("district") or None
    category = source.get("category") or None
    reason = source.get("reason") or None
    return QueueFilters(
        district=district if district in district_map().districts else None,
        category=category if category in CATEGORIES else None,
        reason=reason if reason in REASONS else None,
    )


def _filter_args(filters: QueueFilters) -> dict[str, str]:
    return {k: v for k, v in (("district", filters.district), ("category", filters.category),
                              ("reason", filters.reason)) if v}


def _callback_or_404(callback_id: int) -> Callback:
    callback = get_session().get(Callback, callback_id)
    if callback is None:
        abort(404)
    return callback


# --- the queue -------------------------------------------------------------------------


@bp.get("/dashboard")
@login_required
def queue():  # type: ignore[no-untyped-def]
    db = get_session()
    filters = _filters(request.args)
    view = queue_view(db, me().id, filters)
    shown = len(view.mine) + len(view.waiting) + len(view.held) + len(view.scheduled)
    _audit("queue.view", "callback", None, shown=shown, **_filter_args(filters))
    db.commit()
    return render_template(
        "dashboard/queue.html",
        view=view,
        filters=filters,
        filter_args=_filter_args(filters),
        districts=list(district_map().districts.values()),
        categories=CATEGORIES,
        reasons=REASONS,
    )


@bp.post("/dashboard/claim-next")
@login_required
def claim_next_item():  # type: ignore[no-untyped-def]
    db = get_session()
    filters = _filters(request.form)
    callback = claim_next(db, me().id, filters)
    if callback is None:
        _audit("callback.claim_next", "callback", None, result="empty", **_filter_args(filters))
        db.commit()
        flash(t("queue.nothing_waiting"), "info")
        return redirect(url_for("dashboard.queue", **_filter_args(filters)))
    _audit("callback.claim", "callback", callback.id, how="next")
    db.commit()
    return redirect(url_for("dashboard.item", callback_id=callback.id))


@bp.post("/dashboard/items/<int:callback_id>/claim")
@login_required
def claim(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    result = claim_item(db, callback_id, me().id)
    if result.reason == "missing":
        abort(404)
    _audit("callback.claim", "callback", callback_id, result="ok" if result.ok else "refused",
           how="this", refused=None if result.ok else result.reason,
           holder_id=result.holder.id if result.holder else None)
    db.commit()
    if result.ok:
        return redirect(url_for("dashboard.item", callback_id=callback_id))
    if result.reason == "taken":
        flash(t("queue.taken", name=result.holder.name if result.holder else "?"), "error")
    else:
        flash(t("queue.closed"), "error")
    return redirect(url_for("dashboard.queue"))


@bp.post("/dashboard/items/<int:callback_id>/release")
@login_required
def release_item(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    _callback_or_404(callback_id)
    released = release(db, callback_id, me().id)
    _audit("callback.release", "callback", callback_id, result="ok" if released else "refused")
    db.commit()
    flash(t("queue.released") if released else t("queue.lease_lost"), "info" if released else "error")
    return redirect(url_for("dashboard.queue"))


@bp.post("/dashboard/items/<int:callback_id>/heartbeat")
@login_required
def heartbeat(callback_id: int):  # type: ignore[no-untyped-def]
    """The item page calls this while the broker is active, so the lease lasts while they work."""
    db = get_session()
    renewed = renew_lease(db, callback_id, me().id)
    db.commit()
    callback = db.get(Callback, callback_id)
    until = callback.lease_expires_at if renewed and callback is not None else None
    return jsonify(held=renewed, lease_expires_at=until.isoformat() if until else None,
                   until=local_time(until, with_date=False) if until else None), (200 if renewed else 409)


# --- the item page ---------------------------------------------------------------------------


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
    suggestions: list[Any] = field(default_factory=list)
    call: Call | None = None
    match: MatchView | None = None
    counterpart_phone: str = "—"  # always masked: the broker calls them through Buurtlijn
    busy: bool = False  # the request has a match under way: no other can be proposed
    # The resident's other items not closed yet: one call back can settle them all.
    also_open: list[QueueRow] = field(default_factory=list)


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
        phone=(resident.phone if holding else mask(resident.phone)) if resident else "—",
    )
    if resident is not None:
        page.other_listings = sorted(
            (x for x in resident.listings if listing is None or x.id != listing.id),
            key=lambda x: x.id, reverse=True,
        )
        page.history = resident_history(db, resident.id, exclude_callback=callback.id)
        page.also_open = other_open_items(db, callback, broker.id, now)
    page.matches = matches_of(db, [x.id for x in page.other_listings] + ([listing.id] if listing else []))
    page.match = match_view(db, callback)
    if page.match is not None and page.match.counterpart is not None:
        page.counterpart_phone = mask(page.match.counterpart.phone)
    # A request with a match under way gets no other proposal until that match is stopped.
    page.busy = listing is not None and listing.kind == "request" and has_live_match(db, listing.id)
    if listing is not None and listing.status == "open" and callback.status in ("open", "claimed") and not page.busy:
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
def item(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = _callback_or_404(callback_id)
    page = _item_page(callback)
    _audit("callback.view", "callback", callback.id, resident_id=callback.resident_id,
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
        referrals=REFERRALS,
        nonce=secrets.token_hex(16),
        categories=CATEGORIES,
        kinds=KINDS,
        timings={"request": REQUEST_TIMINGS, "offer": OFFER_TIMINGS},
        progress=call_progress(page.call) if page.call else None,
        called_phone=_called_phone(page),
        meeting_min=utcnow().astimezone(ZONE).strftime(MEETING_FORMAT),
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
    callback = _callback_or_404(callback_id)
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
                                hours=broker_hours(current_app.config))
    except ClaimError:
        db.rollback()
        _audit("callback.outcome", "callback", callback_id, result="refused", outcome=chosen, why="not_held")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.queue"))
    except OutcomeError as exc:
        db.rollback()
        _audit("callback.outcome", "callback", callback_id, result="refused", outcome=chosen, why=exc.code)
        db.commit()
        if note:
            session[f"draft_note:{callback_id}"] = note
        flash(t(f"outcome.error.{exc.code}", detail=str(exc)), "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id, _anchor="outcome"))
    _audit("callback.outcome", "callback", callback_id, outcome=chosen, referral=referral,
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
    return redirect(url_for("dashboard.queue"))


@bp.post("/dashboard/items/<int:callback_id>/notes")
@login_required
def save_notes(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = _callback_or_404(callback_id)
    if not holds(callback, me().id) or callback.resident_id is None:
        _audit("resident.notes", "callback", callback_id, result="refused")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id))
    resident = db.get(Resident, callback.resident_id)
    assert resident is not None
    resident.notes = (request.form.get("notes") or "").strip()[:MAX_RESIDENT_NOTES] or None
    renew_lease(db, callback_id, me().id)
    _audit("resident.notes", "resident", resident.id, callback_id=callback_id)
    db.commit()
    flash(t("item.notes_saved"), "ok")
    return redirect(url_for("dashboard.item", callback_id=callback_id, _anchor="resident"))


# --- the match an item is about ------------------------------------------------------------------


@bp.app_template_filter("local_input")
def _local_input_filter(moment: dt.datetime | None) -> str:
    """A moment as the value of a datetime-local input, in local time."""
    return moment.astimezone(ZONE).strftime(MEETING_FORMAT) if moment else ""


class MeetingError(ValueError):
    """The agreed moment cannot be read, or lies in the past."""


def parse_meeting(raw: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """The agreed moment from the form: local time (Europe/Amsterdam) to an aware UTC datetime."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        local = dt.datetime.strptime(raw[:16], MEETING_FORMAT)
    except ValueError as exc:
        raise MeetingError(raw) from exc
    moment = local.replace(tzinfo=ZONE).astimezone(dt.timezone.utc)
    if moment < (now or utcnow()) - dt.timedelta(minutes=5):
        raise MeetingError(raw)
    return moment


@bp.post("/dashboard/items/<int:callback_id>/match")
@login_required
def match_action(callback_id: int):  # type: ignore[no-untyped-def]
    """Confirm (with the agreed moment), complete or cancel the match this item is about."""
    db = get_session()
    callback = _callback_or_404(callback_id)
    action = request.form.get("action") or ""
    note = (request.form.get("note") or "").strip()[:MAX_NOTE] or None
    back = url_for("dashboard.item", callback_id=callback_id, _anchor="match-actions")
    match_id = callback.match_id

    def refuse(why: str, message: str):  # type: ignore[no-untyped-def]
        db.rollback()
        _audit("callback.match_action", "callback", callback_id, result="refused", match_action=action, why=why,
               match_id=match_id)
        db.commit()
        if note:
            session[f"draft_match_note:{callback_id}"] = note
        flash(message, "error")
        return redirect(back)

    try:
        meeting_at = parse_meeting(request.form.get("meeting_at")) if action == "confirm" else None
    except MeetingError:
        return refuse("bad_moment", t("match.error.moment"))
    current = db.get(Match, match_id) if match_id else None
    if action == "confirm" and current is not None and current.status == "confirmed" and meeting_at is None:
        return refuse("no_new_moment", t("match.error.new_moment"))
    try:
        result = act_on_match(db, callback, me(), action, meeting_at=meeting_at, note=note,
                              remote_addr=remote_addr())
    except ClaimError:
        db.rollback()
        _audit("callback.match_action", "callback", callback_id, result="refused", match_action=action,
               why="not_held")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.queue"))
    except OutcomeError as exc:
        message = t("match.error.no_match") if exc.code == "no_match" else t("outcome.error.unknown_outcome")
        return refuse(exc.code, message)
    except MatchError:
        db.rollback()
        latest = db.get(Match, match_id) if match_id else None
        status = label("match_status", latest.status if latest else None)
        return refuse("match_state", t("match.error.state", status=status))
    # The match's own step is audited by models.matching; this records what became of the item.
    _audit("callback.outcome", "callback", callback_id, outcome=MATCH_OUTCOMES[action] if result.closed else None,
           match_action=action, match_id=result.match.id,
           meeting_at=meeting_at.isoformat() if meeting_at else None)
    db.commit()
    if action == "confirm":
        if result.match.meeting_at is not None:
            flash(t("match.confirmed_at", when=local_time(result.match.meeting_at)), "ok")
        else:
            flash(t("match.confirmed"), "ok")
    elif action == "done":
        flash(t("match.done"), "ok")
    elif result.closed:
        flash(t("match.cancelled_closed"), "ok")
    else:
        flash(t("match.cancelled_search"), "ok")
        return redirect(url_for("dashboard.item", callback_id=callback_id, _anchor="outcome"))
    return redirect(url_for("dashboard.queue"))


# --- calling back ------------------------------------------------------------------------------


@bp.post("/dashboard/items/<int:callback_id>/call")
@login_required
def call(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = _callback_or_404(callback_id)
    broker = me()
    if not holds(callback, broker.id) or callback.resident_id is None:
        _audit("call.bridge_request", "callback", callback_id, result="refused", why="not_held")
        db.commit()
        flash(t("call.not_allowed"), "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id))
    if not broker.phone:
        _audit("call.bridge_request", "callback", callback_id, result="refused", why="no_broker_phone")
        db.commit()
        flash(t("item.call_no_phone"), "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id))
    nonce = request.form.get("nonce") or ""
    if not _NONCE.match(nonce):
        nonce = secrets.token_hex(16)
    callee_id = callback.resident_id
    if request.form.get("who") == "counterpart":
        found = match_view(db, callback)
        if found is None or found.counterpart is None:
            _audit("call.bridge_request", "callback", callback_id, result="refused", why="no_counterpart")
            db.commit()
            flash(t("call.no_counterpart"), "error")
            return redirect(url_for("dashboard.item", callback_id=callback_id))
        callee_id = found.counterpart.id
        nonce = f"{nonce}-counterpart"  # its own call, not a repeat of the click on the resident's button
    renew_lease(db, callback_id, broker.id)
    placed = request_bridge_call(db, callback, broker, nonce)
    # The bridge dials the call's resident: for the counterpart, that is the other person in the match.
    placed.resident_id = callee_id
    _audit("call.bridge_request", "call", placed.id, callback_id=callback_id, resident_id=callee_id,
           counterpart=True if callee_id != callback.resident_id else None)
    db.commit()  # the job that rings the broker runs after this commit
    return redirect(url_for("dashboard.item", callback_id=callback_id, _anchor="call"))


def call_progress(call: Call, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the item page shows about a bridge call; the demo simulates the steps."""
    now = now or utcnow()
    data = call.data or {}
    if data.get("demo"):
        elapsed = (now - call.created_at).total_seconds()
        state = [name for start, name in DEMO_STEPS if elapsed >= start][-1]
        return {"id": call.id, "state": state, "label": t(f"call.demo.{state}"),
                "final": state == DEMO_STEPS[-1][1], "demo": True}
    state = call.status if call.status in ("pending", "dialling") else (call.twilio_status or call.status)
    if call.status == "failed":
        state = call.twilio_status if call.twilio_status in FINAL_STATUSES else "failed"
    label = t(f"call.{state}") if state in _CALL_STATES else t("call.dialling")
    if data.get("resident_status") and data["resident_status"] != "completed":
        label = f"{label} {t('call.resident_not_answered')}"
    return {"id": call.id, "state": state, "label": label, "final": state in FINAL_STATUSES, "demo": False}


_CALL_STATES = {"pending", "dialling", "queued", "initiated", "ringing", "in-progress", "completed", "busy",
                "no-answer", "failed", "canceled"}


@bp.get("/dashboard/calls/<int:call_id>.json")
@login_required
def call_status(call_id: int):  # type: ignore[no-untyped-def]
    found = get_session().get(Call, call_id)
    if found is None or found.purpose != PURPOSE or (found.broker_id != me().id and not me().is_coordinator):
        return jsonify(error="not_found"), 404
    return jsonify(call_progress(found))


# --- entering requests and offers by hand ---------------------------------------------------------


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
    callback = _callback_or_404(callback_id)
    if not holds(callback, me().id) or callback.resident_id is None:
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id))
    parsed = _listing_form(request.form)
    if parsed.errors:
        for message in parsed.errors.values():
            flash(message, "error")
        return redirect(url_for("dashboard.item", callback_id=callback_id, _anchor="add-listing"))
    resident = db.get(Resident, callback.resident_id)
    assert resident is not None
    listing = _save_listing(resident, parsed, queue_for_broker=False)
    if callback.listing_id is None:
        callback.listing_id = listing.id  # suggestions and the match outcome work on it now
    renew_lease(db, callback_id, me().id)
    _audit("listing.create", "listing", listing.id, callback_id=callback_id, kind=listing.kind)
    db.commit()
    flash(t("new.saved_here", kind=t(f"kind.{listing.kind}").lower()), "ok")
    return redirect(url_for("dashboard.item", callback_id=callback_id))


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
    _audit("listing.create", "listing", listing.id, callback_id=callback.id, kind=listing.kind, how="walk_in")
    db.commit()
    flash(t("new.saved"), "ok")
    return redirect(url_for("dashboard.item", callback_id=callback.id))


# --- the broker's own settings ------------------------------------------------------------------------


@bp.post("/dashboard/language")
@login_required
def switch_language():  # type: ignore[no-untyped-def]
    broker = me()
    broker.language = "en" if broker.language == "nl" else "nl"
    _audit("broker.language", "broker", broker.id, language=broker.language)
    get_session().commit()
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("dashboard.queue")
    return redirect(target)
