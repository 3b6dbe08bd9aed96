"""Coordinators only: broker accounts, API clients and the audit log."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from models import ApiClient, AuditEvent, Broker
from models.api_clients import revoke_api_client
from models.accounts import MIN_PASSWORD, AccountError, create_broker, end_sessions
from models.broker import ROLES
from models.limits import MAX_ID
from models.phones import InvalidPhoneNumber
from texts import DASHBOARD

from ..database import get_session
from . import current_language, local_time, local_zone_of_app, t
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
        why = exc.why if isinstance(exc, AccountError) else "phone"
        audit_action("broker.create", "broker", None, result="refused", why=why)
        db.commit()
        return _brokers_page(values, t(f"brokers.error.{why}", minimum=MIN_PASSWORD), 400)
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
    if not active and request.form.get("confirmed") != "1":
        # Disabling logs the broker out everywhere: only the "are you sure?" page's own POST does it.
        return render_template(
            "dashboard/confirm.html", title=t("brokers.confirm.title"),
            question=t("brokers.confirm.question", name=broker.name, email=broker.email),
            action=url_for("dashboard.admin.set_active", broker_id=broker.id), fields={"active": "0"},
            yes=t("brokers.confirm.yes"), no=t("brokers.confirm.no"), back=url_for("dashboard.admin.brokers"))
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


def _audit_filters() -> tuple[Any, dict[str, Any], str | None]:
    """The audit log's query from the request's filters (action, broker, local dates), and an error."""
    query = select(AuditEvent)
    action = (request.args.get("action") or "").strip()[:64]
    broker_id = request.args.get("broker", type=int)
    if action:
        query = query.where(AuditEvent.action.contains(action, autoescape=True))
    if broker_id and 0 < broker_id <= MAX_ID:
        query = query.where(AuditEvent.actor_type == "broker", AuditEvent.actor_id == broker_id)
    filters: dict[str, Any] = {k: v for k, v in (("action", action), ("broker", broker_id)) if v}
    error = None
    zone = local_zone_of_app()
    for name, bound in (("from", AuditEvent.at.__ge__), ("to", AuditEvent.at.__lt__)):
        raw = (request.args.get(name) or "").strip()
        if not raw:
            continue
        try:
            day = dt.date.fromisoformat(raw[:10])
        except ValueError:
            error = t("audit.bad_date")
            continue
        if name == "to":
            day += dt.timedelta(days=1)  # up to and including that day
        query = query.where(bound(dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.timezone.utc)))
        filters[name] = raw[:10]
    return query, filters, error


def audit_sentence(event: AuditEvent, names: dict[int, str]) -> str:
    """The line in words, in the broker's language: "Anna bekeek item 6"."""
    if event.actor_type == "broker" and event.actor_id:
        who = names.get(event.actor_id) or t("audit.broker_unknown", id=event.actor_id)
    else:
        who = {"resident": t("audit.resident"), "api": t("audit.api"), "anonymous": t("audit.anonymous")}.get(
            event.actor_type or "", t("audit.system"))
    key = f"audit.says.{event.action}"
    if DASHBOARD.has(current_language(), key) or DASHBOARD.has("nl", key):
        sentence = t(key, who=who, id=event.object_id if event.object_id is not None else "")
    else:
        sentence = t("audit.someone", who=who, action=event.action)
    sentence = sentence[:1].upper() + sentence[1:]
    return f"{sentence} ({t('audit.refused')})" if event.result not in (None, "ok") else sentence


@bp.get("/dashboard/audit")
@coordinator_required
def audit_log():  # type: ignore[no-untyped-def]
    db = get_session()
    query, filters, error = _audit_filters()
    before = request.args.get("before", type=int)
    if before and 0 < before <= MAX_ID:
        query = query.where(AuditEvent.id < before)
    events = db.scalars(query.order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE)).all()
    names = {b.id: b.name for b in db.scalars(select(Broker))}
    audit_action("audit.view", "audit_event", None, action_filter=filters.get("action"),
                 broker_filter=filters.get("broker"), from_filter=filters.get("from"), to_filter=filters.get("to"))
    db.commit()
    return render_template("dashboard/audit.html", events=events, names=names, filters=filters, error=error,
                           sentences={e.id: audit_sentence(e, names) for e in events},
                           older=events[-1].id if len(events) == AUDIT_PAGE else None, before=before)


AUDIT_CSV_ROWS = 50_000  # a year of a busy office; more is narrowed with the dates


@bp.get("/dashboard/audit.csv")
@coordinator_required
def audit_csv():  # type: ignore[no-untyped-def]
    """The filtered audit log for a spreadsheet: UTF-8 with BOM, semicolons, as Dutch Excel opens it."""
    db = get_session()
    query, filters, _error = _audit_filters()
    events = db.scalars(query.order_by(AuditEvent.id.desc()).limit(AUDIT_CSV_ROWS)).all()
    names = {b.id: b.name for b in db.scalars(select(Broker))}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([t("audit.when"), t("audit.what"), t("audit.action"), t("audit.object"), t("audit.result"),
                     t("audit.from")])
    for event in events:
        writer.writerow([local_time(event.at), audit_sentence(event, names), event.action,
                         f"{event.object_type or ''} {event.object_id or ''}".strip(), event.result,
                         event.remote_addr or ""])
    audit_action("audit.export", "audit_event", None, rows=len(events), **{f"{k}_filter": v for k, v in filters.items()})
    db.commit()
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=auditlog.csv"})
