"""Listing life's periodic step: check in on listings left alone, expire those not answered in time.

Listed in workers.jobs.SWEEPS, so the worker's sweep (and the demo's) runs it every
BUURTLIJN_SWEEP_SECONDS. Each listing and each question is handled in its own transaction, and a
question is a row (models/listing_life.py), so a sweep that runs twice asks nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask

from models import Listing
from models.listing_life import ask_checkin, days_setting, due_for_checkin, expire_unanswered, unanswered

from .runtime import get_database

log = logging.getLogger("buurtlijn.listings")

# Rows a sweep handles at most, each way: the sweep runs in the dispatcher's loop, and the first sweep
# after an upgrade finds every listing older than the check days due at once. The next sweep goes on.
PER_SWEEP = 100


def sweep_listings(app: Flask, now: dt.datetime) -> int:
    """Expire the questions whose time is up, then ask about the listings now due. Returns how many."""
    check_after = days_setting(app.config, "BUURTLIJN_LISTING_CHECK_DAYS")
    answer_within = days_setting(app.config, "BUURTLIJN_LISTING_ANSWER_DAYS")
    db = get_database(app)
    done = 0
    # Inside the app context: without Redis (the demo), the jobs the steps defer run here, with this app.
    with app.app_context():
        with db.transaction() as session:
            late = unanswered(session, now, answer_within, PER_SWEEP)
        for checkin_id in late:
            try:
                with db.transaction() as session:
                    done += expire_unanswered(session, checkin_id, now, answer_within)
            except Exception:
                log.exception("check-in %s: expiry failed", checkin_id)
        with db.transaction() as session:
            due = due_for_checkin(session, now, check_after, PER_SWEEP)
        for listing_id in due:
            try:
                with db.transaction() as session:
                    listing = session.get(Listing, listing_id, with_for_update=True)
                    done += listing is not None and ask_checkin(session, listing, now, check_after)
            except Exception:
                log.exception("listing %s: check-in failed", listing_id)
    return done
