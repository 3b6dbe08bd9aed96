"""Public pages: what Buurtlijn is, the accessibility statement, a health check."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template
from sqlalchemy import text

from .database import get_session

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return render_template("index.html")


@bp.get("/toegankelijkheid")
def accessibility():  # type: ignore[no-untyped-def]
    return render_template("accessibility.html")


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    get_session().execute(text("SELECT 1"))
    return jsonify(status="ok")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
