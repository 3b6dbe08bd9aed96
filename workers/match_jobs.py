"""The matches' periodic checks: proposals that expire, reminders, "is het gelukt?".

Listed in workers.jobs.SWEEPS, so the worker's sweep runs them every
BUURTLIJN_SWEEP_SECONDS. Each match is handled in its own transaction and
every step leaves a marker on the row (a status, reminder_sent_at,
feedback_requested_at), so a sweep that runs twice says nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask
from sqlalchemy import exists, select

from models import Call, Match
from models.matching import (
    MatchError,
    ask_feedback,
    expire_match,
    feedback_due,
    reminder_due,
    send_reminder,
)
from models.workdays import local_zone
from models.vocabulary import AGREED_MATCH_STATUSES

from .runtime import get_database

log = logging.getLogger("buurtlijn.matches")

# A proposal whose call is still trying (or ringing) is not expired under it.
CALL_UNDER_WAY = ("pending", "submitting", "dialling", "answered")


def _each(app: Flask, match_ids: list[int], step) -> int:  # type: ignore[no-untyped-def]
    db = get_database(app)
    done = 0
    for match_id in match_ids:
        try:
            with db.transaction() as session:
                match = session.get(Match, match_id, with_for_update=True)
                if match is not None and step(session, match):
                    done += 1
        except MatchError as exc:  # moved by someone else meanwhile
            log.info("match %s skipped: %s", match_id, exc)
        except Exception:
            log.exception("match %s: sweep step failed", match_id)
    return done


def sweep_expired_proposals(app: Flask, now: dt.datetime) -> int:
    """Proposals past respond_by go back to the brokers (match_expired)."""
    db = get_database(app)
    call_under_way = exists().where(
        Call.match_id == Match.id, Call.purpose == "notification", Call.status.in_(CALL_UNDER_WAY)
    )
    with db.transaction() as session:
        ids = list(session.scalars(
            select(Match.id).where(Match.status == "proposed", Match.respond_by < now, ~call_under_way)
        ))

    def expire(session, match):  # type: ignore[no-untyped-def]
        if match.status != "proposed" or match.respond_by is None or match.respond_by >= now:
            return False
        expire_match(session, match)
        return True

    return _each(app, ids, expire)


def sweep_reminders(app: Flask, now: dt.datetime) -> int:
    """The day before the agreed moment (or that morning), both are reminded."""
    db = get_database(app)
    zone = local_zone(app.config)
    with db.transaction() as session:
        ids = list(session.scalars(
            select(Match.id).where(
                Match.status == "confirmed", Match.reminder_sent_at.is_(None), Match.meeting_at.is_not(None),
                Match.meeting_at > now, Match.meeting_at < now + dt.timedelta(days=2),
            )
        ))

    def remind(session, match):  # type: ignore[no-untyped-def]
        which = reminder_due(match, now, zone)
        if which is None:
            return False
        send_reminder(session, match, which, zone)
        return True

    return _each(app, ids, remind)


def sweep_feedback(app: Flask, now: dt.datetime) -> int:
    """After the help, the neighbour who asked is asked: is het gelukt?"""
    db = get_database(app)
    with db.transaction() as session:
        ids = list(session.scalars(
            select(Match.id).where(Match.status.in_(AGREED_MATCH_STATUSES),
                                   Match.feedback_requested_at.is_(None))
        ))

    def ask(session, match):  # type: ignore[no-untyped-def]
        if not feedback_due(match, now):
            return False
        ask_feedback(session, match)
        return True

    return _each(app, ids, ask)


def sweep_matches(app: Flask, now: dt.datetime) -> int:
    # Inside the app context: without Redis (the demo), the jobs the steps defer run here, with this app.
    with app.app_context():
        return sweep_expired_proposals(app, now) + sweep_reminders(app, now) + sweep_feedback(app, now)
