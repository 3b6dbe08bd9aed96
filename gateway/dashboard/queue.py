"""The queue: the list of items, claiming the next or this one, releasing it, keeping the lease alive."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required

from models import Callback
from models.base import utcnow
from models.districts import district_map
from models.leases import claim_item, claim_next, release, renew_lease
from models.match_page import adopt_current_match
from models.matching import relay_since_in
from models.queue import QueueFilters
from models.queue_view import queue_view
from models.vocabulary import CATEGORIES, QUEUE_REASONS

from ..database import get_session
from . import local_time, local_zone_of_app, t
from .auth import me
from .common import audit_action, callback_or_404

bp = Blueprint("queue", __name__)


def _filters(source: Any) -> QueueFilters:
    """Filters from a query string or form; unknown values are ignored, never an error."""
    district = source.get("district") or None
    category = source.get("category") or None
    reason = source.get("reason") or None
    return QueueFilters(
        district=district if district in district_map().districts else None,
        category=category if category in CATEGORIES else None,
        reason=reason if reason in QUEUE_REASONS else None,
    )


def _filter_args(filters: QueueFilters) -> dict[str, str]:
    return {k: v for k, v in (("district", filters.district), ("category", filters.category),
                              ("reason", filters.reason)) if v}


@bp.get("/dashboard")
@login_required
def index():  # type: ignore[no-untyped-def]
    db = get_session()
    filters = _filters(request.args)
    view = queue_view(db, me().id, filters, zone=local_zone_of_app())
    shown = len(view.mine) + len(view.waiting) + len(view.held) + len(view.scheduled)
    audit_action("queue.view", "callback", None, shown=shown, **_filter_args(filters))
    db.commit()
    return render_template(
        "dashboard/queue.html",
        view=view,
        filters=filters,
        filter_args=_filter_args(filters),
        districts=list(district_map().districts.values()),
    )


def _adopt_match(db: Any, callback: Callback) -> None:
    """A taken item of a resident in a match is about that match (models.match_page.adopt_current_match)."""
    adopt_current_match(db, callback, relay_since_in(current_app.config, utcnow()))


@bp.post("/dashboard/claim-next")
@login_required
def claim_next_item():  # type: ignore[no-untyped-def]
    db = get_session()
    filters = _filters(request.form)
    callback = claim_next(db, me().id, filters)
    if callback is None:
        audit_action("callback.claim_next", "callback", None, result="empty", **_filter_args(filters))
        db.commit()
        flash(t("queue.nothing_waiting"), "info")
        return redirect(url_for("dashboard.queue.index", **_filter_args(filters)))
    _adopt_match(db, callback)
    audit_action("callback.claim", "callback", callback.id, how="next")
    db.commit()
    return redirect(url_for("dashboard.item.show", callback_id=callback.id))


@bp.post("/dashboard/items/<int:callback_id>/claim")
@login_required
def claim(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    result = claim_item(db, callback_id, me().id)
    if result.reason == "missing":
        abort(404)
    if result.ok and result.callback is not None:
        _adopt_match(db, result.callback)
    audit_action("callback.claim", "callback", callback_id, result="ok" if result.ok else "refused",
           how="this", refused=None if result.ok else result.reason,
           holder_id=result.holder.id if result.holder else None)
    db.commit()
    if result.ok:
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    if result.reason == "taken":
        flash(t("queue.taken", name=result.holder.name if result.holder else "?"), "error")
    else:
        flash(t("queue.closed"), "error")
    return redirect(url_for("dashboard.queue.index"))


@bp.post("/dashboard/items/<int:callback_id>/release")
@login_required
def release_item(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback_or_404(callback_id)
    released = release(db, callback_id, me().id)
    audit_action("callback.release", "callback", callback_id, result="ok" if released else "refused")
    db.commit()
    flash(t("queue.released") if released else t("queue.lease_lost"), "info" if released else "error")
    return redirect(url_for("dashboard.queue.index"))


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
