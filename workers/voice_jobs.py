"""Voice jobs: recordings past their retention are deleted (Twilio's copy and
ours), and calls whose status callback never came are closed as abandoned.

Both are found by the periodic sweep (listed in ``workers.jobs.SWEEPS``)
and run as jobs that take ids and may run twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioRestException

import ivr_flows
from models import Listing
from models.audit import audit
from models.base import utcnow
from models.jobs import DELETE_RECORDING
from models.recordings import local_recording_path

from .registry import job
from .runtime import get_database, get_queue, job_context, job_transaction
from .twilio_api import NOT_FOUND, twilio_client

log = logging.getLogger("buurtlijn.voice")

def delete_recording_job_id(listing_id: int) -> str:
    return f"delete-recording-{listing_id}"


def close_call_job_id(call_id: int) -> str:
    return f"close-stale-call-{call_id}"


def retention(app: Flask) -> dt.timedelta | None:
    """How long recordings are kept; None (a setting of 0 or less) keeps them until deleted by hand."""
    days = int(app.config.get("BUURTLIJN_RECORDING_RETENTION_DAYS") or 0)
    return dt.timedelta(days=days) if days > 0 else None


def expired_recording_ids(app: Flask, now: dt.datetime) -> list[int]:
    keep = retention(app)
    if keep is None:
        return []
    with get_database(app).transaction() as session:
        return list(
            session.scalars(
                select(Listing.id).where(
                    Listing.recording_sid.is_not(None),
                    Listing.recording_deleted_at.is_(None),
                    Listing.created_at < now - keep,
                )
            )
        )


@job(DELETE_RECORDING, queue="maintenance")
def delete_recording(listing_id: int) -> None:
    """Job: delete one listing's recording at Twilio and forget where it was."""
    with job_context() as app:
        delete_recording_now(app, listing_id)


def delete_recording_now(app: Flask, listing_id: int) -> bool:
    """True when this run deleted it; False when there was nothing (left) to delete.

    Twilio's copy goes first: if that fails the row is untouched and the
    next run tries again. A recording Twilio no longer has (404) counts as
    deleted. No database transaction is held open during the HTTP request.
    """
    db = get_database(app)
    with db.transaction() as session:
        listing = session.get(Listing, listing_id)
        if listing is None or listing.recording_sid is None or listing.recording_deleted_at is not None:
            return False
        recording_sid = listing.recording_sid
    if app.config.get("SENDS_FOR_REAL"):
        try:
            twilio_client(app.config).recordings(recording_sid).delete()
        except TwilioRestException as error:
            if error.status != NOT_FOUND:
                raise
    else:
        path = local_recording_path(app.instance_path, recording_sid)
        if path is not None:
            path.unlink(missing_ok=True)
    now = utcnow()
    with db.transaction() as session:
        deleted = session.execute(
            update(Listing)
            .where(Listing.id == listing_id, Listing.recording_deleted_at.is_(None))
            .values(recording_deleted_at=now, recording_url=None, updated_at=now)
            .returning(Listing.id)  # the ids, for the listing's event (models/events.py)
        ).first() is not None
        if deleted:
            # The SID stays: the audit trail can still say which recording was removed.
            audit(session, "recording.delete", actor_type="system", object_type="listing", object_id=listing_id,
                  detail={"reason": "retention"})
    return bool(deleted)


@job(queue="maintenance")
def close_stale_call(call_id: int) -> None:
    """Job: a call whose status callback never came is over; unfinished, it is an abandoned call."""
    with job_transaction() as (app, session):
        ivr_flows.close_stale_call(session, ivr_flows.settings_from_config(app.config), call_id, utcnow())


def sweep_voice(app: Flask, now: dt.datetime) -> int:
    queue = get_queue(app)
    expired = expired_recording_ids(app, now)
    with get_database(app).transaction() as session:
        stale = ivr_flows.stale_call_ids(session, now)
    for listing_id in expired:
        queue.enqueue(delete_recording, listing_id, job_id=delete_recording_job_id(listing_id))
    for call_id in stale:
        queue.enqueue(close_stale_call, call_id, job_id=close_call_job_id(call_id))
    return len(expired) + len(stale)


def purge_expired_recordings(app: Flask) -> tuple[int, int]:
    """Delete every recording past retention now (the CLI); returns (deleted, failed)."""
    deleted = failed = 0
    for listing_id in expired_recording_ids(app, utcnow()):
        try:
            deleted += delete_recording_now(app, listing_id)
        except Exception as error:
            # Twilio's error names the recording's URI: the type is enough here.
            log.error("could not delete the recording of listing %s: %s", listing_id, type(error).__name__)
            failed += 1
    return deleted, failed
