"""Public pages: what Buurtlijn is, the accessibility statement, health and readiness checks."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify, render_template
from sqlalchemy import text

from .database import get_database
from .jobs import get_queue

bp = Blueprint("pages", __name__)
log = logging.getLogger("buurtlijn.health")

UP, DOWN, NOT_USED = "ok", "down", "not used"


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return render_template("index.html")


@bp.get("/toegankelijkheid")
def accessibility():  # type: ignore[no-untyped-def]
    return render_template("accessibility.html")


def database_state() -> str:
    try:
        with get_database(current_app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer is "down"; the kind goes to the log
        log.warning("health: the database is down (%s)", type(exc).__name__)
        return DOWN
    return UP


def redis_state() -> str:
    queue = get_queue(current_app)
    if queue.in_process:
        return NOT_USED
    try:
        queue.redis.ping()
    except Exception as exc:  # refused, timed out, wrong password: the jobs cannot get through
        log.warning("health: Redis is down (%s)", type(exc).__name__)
        return DOWN
    return UP


def _answer(states: dict[str, str]):  # type: ignore[no-untyped-def]
    down = [name for name, state in states.items() if state == DOWN]
    body = {"status": "down" if down else "ok", **states}
    if down:
        body["down"] = down
    return jsonify(body), 503 if down else 200


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    """Everything Buurtlijn runs on, each named: 503 when PostgreSQL or Redis is down (for monitoring)."""
    return _answer({"database": database_state(), "redis": redis_state()})


@bp.get("/readyz")
def ready():  # type: ignore[no-untyped-def]
    """For a load balancer: can this web process answer Twilio? Only the database decides.

    Redis down does not take the web out of rotation: webhooks still store
    and answer, and the sweep enqueues what waits once Redis is back.
    """
    return _answer({"database": database_state()})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
