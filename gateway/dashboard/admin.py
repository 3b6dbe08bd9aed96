"""Coordinators only: broker accounts, API clients and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from models import ApiClient, AuditEvent, Broker
from models.api_clients import revoke_api_client
from models.accounts import AccountError, create_broker, end_sessions
from models.broker import ROLES
from models.phones import InvalidPhoneNumber

from ..database import get_session
from . import t
from .auth import coordinator_required, me
from .common import audit_action

bp = Blueprint("admin", __name__)

AUDIT_PAGE = 100


def _brokers_page(values: dict[str, str], error: str | None, status: int = 200):  # type: ignore[no-untyped-def]
    brokers = get_session().scalars(select(Broker).order_by(Broker.active.desc(), Broker.name)).all()
    return render_template("dashboard/brokers.html", brokers=brokers, values=values, error=error, roles=ROLES), status


@bp.get("/dashboard/brokers")
@coordinator_required
def brokers():  # type: ignore[no-untyped-def]
    audit_action("brokers.view", "broker", None)
    get_session().commit()
    return _brokers_page({"email": "", "name": "", "role": "broker", "phone": ""}, None)


@bp.post("/dashboard/brokers")
@coordinator_required
def add_broker():  # type: ignore[no-untyped-def]
    db = get_session()
    values = {key: (request.form.get(key) or "").strip() for key in ("email", "name", "role", "phone")}
    password = request.form.get("password") or ""
    try:
        broker = create_broker(db, email=values["email"], name=values["name"], role=values["role"],
                               phone=values["phone"] or None, password=password)
    except (AccountError, InvalidPhoneNumber) as exc:
        db.rollback()
        audit_action("broker.create", "broker", None, result="refused", why=str(exc)[:200])
        db.commit()
        return _brokers_page(values, str(exc), 400)
    audit_action("broker.create", "broker", broker.id, role=broker.role, via="dashboard")
    db.commit()
    flash(t("brokers.created", email=broker.email), "ok")
    return redirect(url_for("dashboard.admin.brokers"))


@bp.post("/dashboard/brokers/<int:broker_id>/active")
@coordinator_required
def set_active(broker_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    broker = db.get(Broker, broker_id)
    if broker is None:
        abort(404)
    active = request.form.get("active") == "1"
    if broker.id == me().id and not active:
        flash(t("brokers.not_self"), "error")
        return redirect(url_for("dashboard.admin.brokers"))
    broker.active = active
    if active:
        broker.failed_logins = 0
        broker.locked_until = None
    else:
        end_sessions(db, broker.id)  # a session kept open stays closed when the broker is enabled again
    audit_action("broker.enable" if active else "broker.disable", "broker", broker.id)
    db.commit()
    flash(t("brokers.enabled_done" if active else "brokers.disabled_done", email=broker.email), "ok")
    return redirect(url_for("dashboard.admin.brokers"))


@bp.get("/dashboard/api-clients")
@coordinator_required
def api_clients():  # type: ignore[no-untyped-def]
    """The marketplace's (and others') keys to the JSON API; made with ``buurtlijn create-api-client``."""
    clients = get_session().scalars(select(ApiClient).order_by(ApiClient.revoked_at.is_not(None), ApiClient.name)).all()
    audit_action("api_clients.view", "api_client", None)
    get_session().commit()
    return render_template("dashboard/api_clients.html", clients=clients)


@bp.post("/dashboard/api-clients/<int:client_id>/revoke")
@coordinator_required
def revoke_client(client_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    client = revoke_api_client(db, client_id) or abort(404)
    audit_action("api_client.revoke", "api_client", client.id, name=client.name)
    db.commit()
    flash(t("api_clients.revoked_done", name=client.name), "ok")
    return redirect(url_for("dashboard.admin.api_clients"))


@bp.get("/dashboard/audit")
@coordinator_required
def audit_log():  # type: ignore[no-untyped-def]
    db = get_session()
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE)
    before = request.args.get("before", type=int)
    action = (request.args.get("action") or "").strip()[:64]
    broker_id = request.args.get("broker", type=int)
    if before:
        query = query.where(AuditEvent.id < before)
    if action:
        query = query.where(AuditEvent.action.contains(action, autoescape=True))
    if broker_id:
        query = query.where(AuditEvent.actor_type == "broker", AuditEvent.actor_id == broker_id)
    events = db.scalars(query).all()
    names = {b.id: b.name for b in db.scalars(select(Broker))}
    filters: dict[str, Any] = {k: v for k, v in (("action", action), ("broker", broker_id)) if v}
    audit_action("audit.view", "audit_event", None, action_filter=action or None, broker_filter=broker_id)
    db.commit()
    return render_template("dashboard/audit.html", events=events, names=names, filters=filters,
                           older=events[-1].id if len(events) == AUDIT_PAGE else None, before=before)
