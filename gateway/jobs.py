"""Wires the app's Database to the job queue: jobs go out after commit."""

from __future__ import annotations

from flask import Flask, current_app

from workers.queue import JobQueue

EXTENSION = "buurtlijn.jobs"


def init_app(app: Flask) -> None:
    queue = JobQueue(app.config.get("REDIS_URL"), app.config["BUURTLIJN_QUEUE_PREFIX"])
    app.extensions[EXTENSION] = queue
    app.extensions["buurtlijn.db"].on_commit_jobs = queue.enqueue_many


def get_queue(app: Flask | None = None) -> JobQueue:
    return (app or current_app).extensions[EXTENSION]
