"""Retention: once a day, what is kept longer than its time is erased (models/privacy.py).

The sweep (``workers.jobs.SWEEPS``) asks every time whether a day has passed since the last run,
which the audit log records (one indexed lookup); if so it enqueues ``apply_retention``. The last
message to someone just erased forgets their number at every sweep, not once a day.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask
from sqlalchemy import select

from models import AuditEvent
from models.audit import audit
from models.base import utcnow
from models.privacy import apply_retention as apply_retention_rules
from models.privacy import forget_sent_farewells

from .registry import job
from .runtime import get_database, get_queue, job_transaction

log = logging.getLogger("buurtlijn.privacy")

RETENTION_EVERY = dt.timedelta(days=1)
# The audit line of each run: also what tells the sweep when the last one was.
RETENTION_OBJECT = ("retention", "daily")


def keep_for(app: Flask) -> dt.timedelta:
    return dt.timedelta(days=int(app.config.get("BUURTLIJN_RETENTION_DAYS") or 365))


@job(queue="maintenance")
def apply_retention() -> None:
    """Job: erase what is past its retention, and say so in the audit log."""
    with job_transaction() as (app, session):
        now = utcnow()
        done = apply_retention_rules(session, now, keep_for(app))
        audit(session, "retention.apply", actor_type="system", object_type=RETENTION_OBJECT[0],
              object_id=RETENTION_OBJECT[1], detail={"days": keep_for(app).days, **done})
    log.info("retention applied: %s", ", ".join(f"{count} {kind}" for kind, count in done.items() if count) or "nothing")


def last_retention_run(session) -> dt.datetime | None:  # type: ignore[no-untyped-def]
    return session.scalar(select(AuditEvent.at).where(
        AuditEvent.object_type == RETENTION_OBJECT[0], AuditEvent.object_id == RETENTION_OBJECT[1],
    ).order_by(AuditEvent.at.desc()).limit(1))


def sweep_privacy(app: Flask, now: dt.datetime) -> int:
    with get_database(app).transaction() as session:
        forget_sent_farewells(session)
        last = last_retention_run(session)
    if last is not None and now - last < RETENTION_EVERY:
        return 0
    get_queue(app).enqueue(apply_retention, job_id=f"apply-retention-{now:%Y%m%d}")
    return 1
