"""Coordinators only: the events for the online marketplace that wait or failed, and "send again"."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from models.events import Event, send_again, webhook_enabled

from ..database import get_session
from . import t
from .auth import coordinator_required
from .common import audit_action

bp = Blueprint("events", __name__)

EVENTS_PAGE = 200


@bp.get("/dashboard/events")
@coordinator_required
def deliveries():  # type: ignore[no-untyped-def]
    db = get_session()
    waiting = db.scalars(
        select(Event).where(Event.status.in_(("failed", "pending")))
        .order_by(Event.status, Event.id).limit(EVENTS_PAGE)
    ).all()
    counts = dict(db.execute(select(Event.status, func.count()).group_by(Event.status)).all())
    audit_action("events.view", "event", None)
    db.commit()
    return render_template("dashboard/events.html", events=waiting, counts=counts,
                           enabled=webhook_enabled(current_app.config))


@bp.post("/dashboard/events/<int:event_id>/send-again")
@coordinator_required
def retry(event_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    if db.get(Event, event_id) is None:
        abort(404)
    moved = send_again(db, event_id)
    audit_action("event.send_again", "event", event_id, result="ok" if moved else "refused")
    db.commit()
    flash(t("events.sent_again" if moved else "events.already_delivered", id=event_id), "ok" if moved else "error")
    return redirect(url_for("dashboard.events.deliveries"))
