"""What a job needs around it: the app (config), its database and a transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from models.db import Database

from .queue import JobQueue

# Where an app keeps its Database and its JobQueue (gateway.database and gateway.jobs put them there).
DATABASE_EXTENSION = "buurtlijn.db"
QUEUE_EXTENSION = "buurtlijn.jobs"
_app: Flask | None = None
_lock = threading.Lock()


def worker_app() -> Flask:
    """The app of this worker process, built once from the environment."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                from gateway import create_app
                from gateway.config import WORKER_NEEDS

                _app = create_app(needs=WORKER_NEEDS)
    return _app


def get_database(app: Flask | None = None) -> Database:
    """The Database of ``app``, or of the running app (a request or a job)."""
    return (app or current_app).extensions[DATABASE_EXTENSION]  # type: ignore[no-any-return]


def get_queue(app: Flask | None = None) -> JobQueue:
    """The JobQueue of ``app``, or of the running app."""
    return (app or current_app).extensions[QUEUE_EXTENSION]  # type: ignore[no-any-return]


def set_worker_app(app: Flask) -> None:
    global _app
    _app = app


@contextmanager
def job_context() -> Iterator[Flask]:
    """The running app (in-process jobs) or the worker's own."""
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    app = worker_app()
    with app.app_context():
        yield app


@contextmanager
def job_transaction() -> Iterator[tuple[Flask, Session]]:
    """A fresh session (never the request's) that commits at the end of the block."""
    with job_context() as app:
        with get_database(app).transaction() as session:
            yield app, session
