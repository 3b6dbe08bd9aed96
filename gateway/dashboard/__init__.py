"""The brokers' dashboard: log in, work the callback queue, call back, record outcomes.

Everything here sits behind a login (Flask-Login); every form carries a CSRF
token (Flask-WTF's CSRFProtect, active app-wide); every view of personal data
and every action is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, g, request, session
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from models import vocabulary
from models.districts import district_map
from models.phones import mask, readable
from models.workdays import local_zone
from texts import DASHBOARD, FALLBACK, category_name

LANGUAGES = DASHBOARD.languages

bp = Blueprint("dashboard", __name__)
login_manager = LoginManager()


def current_language() -> str:
    if "dashboard_language" in g:
        return g.dashboard_language
    if current_user.is_authenticated and current_user.broker.language in LANGUAGES:
        return current_user.broker.language
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else FALLBACK


def t(key: str, **params: Any) -> str:
    return DASHBOARD.t(current_language(), key, **params)


def label(group: str, code: str | None) -> str:
    """The broker-facing name of a code ('reason', 'callback_requested'); the code itself if unknown."""
    key = f"{group}.{code}"
    try:
        return DASHBOARD.t(current_language(), key)
    except KeyError:
        return code or "—"


def category_label(category: str | None) -> str:
    """A category as the residents' catalogue names it, so broker and resident use one word; capitalised."""
    name = category_name(current_language(), category)
    return name[:1].upper() + name[1:]


def local_zone_of_app() -> ZoneInfo:
    """The time zone brokers read and type times in (BUURTLIJN_TIMEZONE)."""
    return local_zone(current_app.config)


def local_time(moment: dt.datetime | None, with_date: bool = True) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(local_zone_of_app())
    return local.strftime("%d-%m-%Y %H:%M" if with_date else "%H:%M")


@bp.app_template_filter("local_time")
def _local_time_filter(moment: dt.datetime | None, with_date: bool = True) -> str:
    return local_time(moment, with_date)


@bp.app_template_filter("masked")
def _masked_filter(phone: str | None) -> str:
    return mask(phone)


@bp.app_template_filter("phone")
def _phone_filter(phone: str | None) -> str:
    """A number the broker may read in full, grouped as in the Netherlands: 06 1234 5678."""
    return readable(phone)


@bp.app_template_filter("district_name")
def _district_name_filter(district: str | None) -> str:
    return district_map().name(district) if district else t("district.none")


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {"t": t, "label": label, "category_label": category_label, "vocabulary": vocabulary,
            "page_language": current_language(), "lang": current_language()}


@bp.errorhandler(CSRFError)
def _csrf_error(_error: CSRFError):  # type: ignore[no-untyped-def]
    from flask import render_template

    return render_template("dashboard/error.html", message=t("error.csrf")), 400


# The error page of a dashboard view, in the broker's language (Flask's own pages are English).
HTTP_ERROR_TEXTS = {400: "error.bad_request", 403: "error.forbidden", 404: "error.not_found", 405: "error.not_allowed"}


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
    from flask import jsonify, render_template

    from .auth import _wants_json

    key = HTTP_ERROR_TEXTS.get(error.code or 500)
    if key is None:
        return error
    if _wants_json():
        return jsonify(error=key.removeprefix("error.")), error.code
    # The helpers by hand: an address no view takes belongs to no blueprint, so its context processor is not run.
    return render_template("dashboard/error.html", message=t(key), **_template_helpers()), error.code


def _routing_error(error: HTTPException):  # type: ignore[no-untyped-def]
    """A dashboard address no view takes (a typo, a wrong method) gets the dashboard's page too; any other
    address gets what the app answers for every HTTP error (the API's JSON under /api/)."""
    if request.path.startswith(("/dashboard/", "/login", "/logout")) or request.path == "/dashboard":
        return _http_error(error)
    general = current_app.error_handler_spec[None][None].get(HTTPException)
    return general(error) if general is not None else error


def init_app(app: Flask) -> None:
    trusted_proxies = int(app.config.get("BUURTLIJN_TRUSTED_PROXIES") or os.environ.get("BUURTLIJN_TRUSTED_PROXIES") or 0)
    if trusted_proxies:
        # Behind a load balancer the client address (for login throttling and the
        # audit log) is in X-Forwarded-For; trust exactly that many hops.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies, x_proto=trusted_proxies)  # type: ignore[method-assign]
    login_manager.init_app(app)
    auth.configure(login_manager)
    for routing_error in (NotFound, MethodNotAllowed):  # raised before any blueprint is chosen
        app.register_error_handler(routing_error, _routing_error)
    app.register_blueprint(bp)
    # Pages that show personal data are never cached by the browser or a proxy.
    app.after_request(_no_store)


def _no_store(response):  # type: ignore[no-untyped-def]
    if "dashboard" in request.blueprints and request.endpoint != "dashboard.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# One blueprint per feature, nested in this one so that each shares its session
# timeouts, CSRF error page, template helpers and no-store; each view still asks
# for a login itself (login_required, coordinator_required).
from . import admin, auth, calls, events, item, language, listings, matches, queue, reports, residents  # noqa: E402

for _feature in (auth, queue, item, matches, calls, listings, language, admin, events, residents, reports):
    bp.register_blueprint(_feature.bp)
