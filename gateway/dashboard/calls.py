"""Calling back: the bridge call that rings the broker and then the resident, and its progress."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from flask import Blueprint, current_app, flash, jsonify, redirect, request, url_for
from flask_login import login_required

from models import Call, Resident
from models.base import utcnow
from models.bridge import PURPOSE, request_bridge_call
from models.destinations import call_counts, refusal
from models.vocabulary import TWILIO_CALL_ENDED_STATUSES
from models.leases import holds, renew_lease
from models.match_page import match_view

from ..database import get_session
from . import t
from .auth import me
from .common import audit_action, callback_or_404

bp = Blueprint("calls", __name__)

DEMO_STEPS = ((0.0, "queued"), (2.0, "ringing"), (5.0, "in-progress"))
_NONCE = re.compile(r"^[0-9a-f]{8,32}$")


@bp.post("/dashboard/items/<int:callback_id>/call")
@login_required
def call(callback_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    callback = callback_or_404(callback_id)
    broker = me()
    if not holds(callback, broker.id) or callback.resident_id is None:
        audit_action("call.bridge_request", "callback", callback_id, result="refused", why="not_held")
        db.commit()
        flash(t("call.not_allowed"), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    if not broker.phone:
        audit_action("call.bridge_request", "callback", callback_id, result="refused", why="no_broker_phone")
        db.commit()
        flash(t("item.call_no_phone"), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    nonce = request.form.get("nonce") or ""
    if not _NONCE.match(nonce):
        nonce = secrets.token_hex(16)
    callee_id = callback.resident_id
    if request.form.get("who") == "counterpart":
        found = match_view(db, callback)
        if found is None or found.counterpart is None:
            audit_action("call.bridge_request", "callback", callback_id, result="refused", why="no_counterpart")
            db.commit()
            flash(t("call.no_counterpart"), "error")
            return redirect(url_for("dashboard.item.show", callback_id=callback_id))
        callee_id = found.counterpart.id
        nonce = f"{nonce}-counterpart"  # its own call, not a repeat of the click on the resident's button
    callee = db.get(Resident, callee_id)
    to_number, in_total = call_counts(db, callee_id, utcnow(), current_app.config)
    refused = refusal(callee.phone if callee else None, current_app.config, "call",
                      to_number_today=to_number, in_total_today=in_total)
    if refused is not None:  # the outbound policy: nothing is dialled, the broker sees why
        audit_action("call.bridge_request", "callback", callback_id, result="refused", why=refused)
        db.commit()
        flash(t("call.refused"), "error")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id))
    renew_lease(db, callback_id, broker.id)
    placed = request_bridge_call(db, callback, broker, nonce)
    # The bridge dials the call's resident: for the counterpart, that is the other person in the match.
    placed.resident_id = callee_id
    audit_action("call.bridge_request", "call", placed.id, callback_id=callback_id, resident_id=callee_id,
           counterpart=True if callee_id != callback.resident_id else None)
    db.commit()  # the job that rings the broker runs after this commit
    return redirect(url_for("dashboard.item.show", callback_id=callback_id, _anchor="call"))


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
        state = call.twilio_status if call.twilio_status in TWILIO_CALL_ENDED_STATUSES else "failed"
    label = t(f"call.{state}") if state in _CALL_STATES else t("call.dialling")
    if data.get("resident_status") and data["resident_status"] != "completed":
        label = f"{label} {t('call.resident_not_answered')}"
    return {"id": call.id, "state": state, "label": label, "final": state in TWILIO_CALL_ENDED_STATUSES, "demo": False}


_CALL_STATES = {"pending", "dialling", "queued", "initiated", "ringing", "in-progress", "completed", "busy",
                "no-answer", "failed", "canceled"}


@bp.get("/dashboard/calls/<int:call_id>.json")
@login_required
def call_status(call_id: int):  # type: ignore[no-untyped-def]
    found = get_session().get(Call, call_id)
    if found is None or found.purpose != PURPOSE or (found.broker_id != me().id and not me().is_coordinator):
        return jsonify(error="not_found"), 404
    return jsonify(call_progress(found))
