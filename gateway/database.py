"""The app's Database and the per-request session."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from models.db import Database
from models.events import watch, webhook_enabled
from workers.runtime import DATABASE_EXTENSION as EXTENSION
from workers.runtime import get_database

__all__ = ["get_database", "get_session", "init_app"]


def init_app(app: Flask) -> None:
    hooks = [watch] if webhook_enabled(app.config) else []
    app.extensions[EXTENSION] = Database(app.config["DATABASE_URL"], pool_size=app.config["BUURTLIJN_DB_POOL_SIZE"],
                                         max_overflow=app.config["BUURTLIJN_DB_MAX_OVERFLOW"], session_hooks=hooks)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of this request or job; closed when the app context ends."""
    if "db_session" not in g:
        g.db_session = get_database().session()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
