"""The app's Database and the per-request session."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from models.db import Database

EXTENSION = "buurtlijn.db"


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def get_database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions[EXTENSION]


def get_session() -> Session:
    """The session of this request or job; closed when the app context ends."""
    if "db_session" not in g:
        g.db_session = get_database().session()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
