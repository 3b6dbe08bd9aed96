"""Wires the app's Database to the job queue: jobs go out after commit."""

from __future__ import annotations

from flask import Flask

from workers.queue import JobQueue
from workers.runtime import QUEUE_EXTENSION, get_database, get_queue

__all__ = ["get_queue", "init_app"]


def init_app(app: Flask) -> None:
    queue = JobQueue(app.config.get("REDIS_URL"), app.config["BUURTLIJN_QUEUE_PREFIX"])
    app.extensions[QUEUE_EXTENSION] = queue
    get_database(app).on_commit_jobs = queue.enqueue_many
