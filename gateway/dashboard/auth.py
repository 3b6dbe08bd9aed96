"""Logging in and out, throttling, and the session's idle and absolute timeouts."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from argon2.exceptions import VerificationError
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy import select

from models import Broker
from models.accounts import check_password, end_sessions, hasher
from models.audit import audit
from models.base import utcnow
from models.throttle import Limit, clear_broker_attempts, count_attempt, count_broker_attempt, give_back_attempt

from ..database import get_session
from . import LANGUAGES, bp as dashboard_bp, t

bp = Blueprint("auth", __name__)

IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=10)
ACCOUNT_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 20
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCK_TIME = dt.timedelta(minutes=15)
MAX_EMAIL = 254
MAX_PASSWORD = 1024
SESSION_VERSION = "session_version"  # the broker's session_version when this session logged in

F = TypeVar("F", bound=Callable[..., Any])


class BrokerUser(UserMixin):
    """Flask-Login's view of a broker row (loaded per request)."""

    def __init__(self, broker: Broker):
        self.broker = broker

    def get_id(self) -> str:
        return str(self.broker.id)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return bool(self.broker.active)


def me() -> Broker:
    return current_user.broker  # type: ignore[no-any-return]


def remote_addr() -> str:
    return (request.remote_addr or "unknown")[:64]


def configure(manager: LoginManager) -> None:
    manager.login_view = "dashboard.auth.login"
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)


def _load_user(user_id: str) -> BrokerUser | None:
    if not user_id.isdigit():
        return None
    broker = get_session().get(Broker, int(user_id))
    # A disabled broker, or one who logged out anywhere since, is logged out at their next request.
    # A session from before the versions began holds the first one, 0.
    if broker is None or not broker.active or session.get(SESSION_VERSION, 0) != broker.session_version:
        return None
    return BrokerUser(broker)


def _wants_json() -> bool:
    return request.is_json or request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def _unauthorized():  # type: ignore[no-untyped-def]
    if _wants_json():
        return jsonify(error="login_required"), 401
    flash(t("login.needed"), "info")
    return redirect(url_for("dashboard.auth.login", next=request.full_path.rstrip("?")))


def coordinator_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return _unauthorized()
        if not me().is_coordinator:
            audit(get_session(), "dashboard.forbidden", actor_type="broker", actor_id=me().id,
                  object_type="page", object_id=request.endpoint, result="refused", remote_addr=remote_addr())
            get_session().commit()
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- session timeouts ------------------------------------------------------------------


@dashboard_bp.before_request
def _enforce_session_timeouts():  # type: ignore[no-untyped-def]
    if request.endpoint in ("dashboard.auth.login", "dashboard.static") or not current_user.is_authenticated:
        return None
    now = time.time()
    login_at = session.get("login_at", 0)
    seen_at = session.get("seen_at", 0)
    reason = None
    if now - login_at > ABSOLUTE_TIMEOUT.total_seconds():
        reason = t("login.expired", hours=int(ABSOLUTE_TIMEOUT.total_seconds() // 3600))
    elif now - seen_at > IDLE_TIMEOUT.total_seconds():
        reason = t("login.idle", minutes=int(IDLE_TIMEOUT.total_seconds() // 60))
    if reason is None:
        session["seen_at"] = now
        return None
    broker_id = me().id
    audit(get_session(), "logout.timeout", actor_type="broker", actor_id=broker_id, object_type="broker",
          object_id=broker_id, remote_addr=remote_addr())
    get_session().commit()
    language = me().language
    logout_user()
    session.clear()
    session["lang"] = language  # the login page keeps speaking the broker's language
    if _wants_json():
        return jsonify(error="login_required"), 401
    flash(reason, "info")
    return redirect(url_for("dashboard.auth.login", next=request.full_path.rstrip("?")))


# --- throttling -------------------------------------------------------------------------

ACCOUNT_LIMIT = Limit(ACCOUNT_MAX_FAILURES, LOCK_TIME)
UNKNOWN_ACCOUNT_LIMIT = Limit(ACCOUNT_MAX_FAILURES, LOCK_TIME, FAILURE_WINDOW)
ADDRESS_LIMIT = Limit(ADDRESS_MAX_FAILURES, LOCK_TIME, FAILURE_WINDOW)


@functools.cache
def _dummy_hash() -> str:
    return hasher.hash("not-a-real-password-only-for-timing")


def _spend_hash_time(password: str) -> None:
    """Verify against a dummy so an unknown e-mail address takes as long as a known one."""
    try:
        hasher.verify(_dummy_hash(), password)
    except VerificationError:
        pass


def _safe_next(target: str | None, default: str | None = None) -> str:
    """Only paths on this site: never an open redirect."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return default or url_for("dashboard.queue.index")


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET" and request.args.get("lang") in LANGUAGES:
        session["lang"] = request.args["lang"]
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next"),
                                   url_for("dashboard.reports.page") if me().is_viewer else None))
    if request.method == "GET":
        return render_template("dashboard/login.html", email="", error=None)

    email = (request.form.get("email") or "").strip().lower()[:MAX_EMAIL]
    password = (request.form.get("password") or "")[:MAX_PASSWORD]
    if not email or not password:
        return render_template("dashboard/login.html", email=email, error=t("login.missing")), 400
    db = get_session()
    now = utcnow()
    address_key = f"addr:{remote_addr()}"
    address_open = count_attempt(db, address_key, ADDRESS_LIMIT, now)
    broker = db.scalars(select(Broker).where(Broker.email == email)).one_or_none()
    account_open = address_open and (
        count_broker_attempt(db, broker.id, ACCOUNT_LIMIT, now) if broker is not None
        else count_attempt(db, f"email:{email}", UNKNOWN_ACCOUNT_LIMIT, now))
    if not account_open:
        if address_open:
            give_back_attempt(db, address_key)  # refused for the account: not a guess the address made
        audit(db, "login.locked", actor_type="broker" if broker else "anonymous",
              actor_id=broker.id if broker else None, object_type="broker",
              object_id=broker.id if broker else None, result="refused", remote_addr=remote_addr(),
              detail={"by": "address" if not address_open else "account"})
        db.commit()
        minutes = int(LOCK_TIME.total_seconds() // 60)
        return render_template("dashboard/login.html", email=email, error=t("login.locked", minutes=minutes)), 429
    db.commit()  # counted before the password is checked, where every concurrent attempt sees it

    if broker is not None:
        ok = check_password(broker, password) and broker.active
    else:
        _spend_hash_time(password)
        ok = False
    if not ok:
        audit(db, "login.failure", actor_type="broker" if broker else "anonymous",
              actor_id=broker.id if broker else None, object_type="broker",
              object_id=broker.id if broker else None, result="refused", remote_addr=remote_addr(),
              detail={"inactive": True} if broker is not None and not broker.active else None)
        db.commit()
        return render_template("dashboard/login.html", email=email, error=t("login.wrong")), 401

    with db.no_autoflush:  # the address's row before the broker's (a rehash waits), as counting takes them
        give_back_attempt(db, address_key)
        clear_broker_attempts(db, broker.id)
    broker.last_login_at = now
    audit(db, "login.success", actor_type="broker", actor_id=broker.id, object_type="broker",
          object_id=broker.id, remote_addr=remote_addr())
    db.commit()
    # A viewer (the municipality) sees only the reports.
    target = _safe_next(request.args.get("next") or request.form.get("next"),
                        url_for("dashboard.reports.page") if broker.is_viewer else None)
    session.clear()  # a fresh session: nothing from before the login carries over
    login_user(BrokerUser(broker))
    session.permanent = True
    session["login_at"] = session["seen_at"] = time.time()
    session[SESSION_VERSION] = broker.session_version
    return redirect(target)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    language = session.get("lang")
    message = t("login.logged_out")
    if current_user.is_authenticated:
        broker_id = me().id
        language = me().language
        end_sessions(get_session(), broker_id)  # a copy of this cookie ends too, and the broker's other sessions
        audit(get_session(), "logout", actor_type="broker", actor_id=broker_id, object_type="broker",
              object_id=broker_id, remote_addr=remote_addr())
        get_session().commit()
    logout_user()
    session.clear()
    if language:
        session["lang"] = language  # the login page keeps speaking the broker's language
    flash(message, "info")
    return redirect(url_for("dashboard.auth.login"))
