"""Calling a resident back: the job that rings the broker's own phone.

The call is stored by models/bridge.py (one click in the dashboard); this
job asks Twilio to call the broker. In the demo nothing is dialled; the
dashboard shows what would have happened.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from twilio.base.exceptions import TwilioRestException

from models import Broker, Call
from models.base import utcnow
from models.bridge import PURPOSE, advance_status
from models.db import Database
from models.destinations import number_refusal
from models.jobs import PLACE_BRIDGE_CALL

from .registry import job
from .runtime import get_database, job_context
from .twilio_api import callback_url, twilio_client

log = logging.getLogger("buurtlijn.callbacks")

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@job(PLACE_BRIDGE_CALL)
def place_bridge_call(call_id: int) -> None:
    """Job: ring the broker's phone (or show it, in the demo). Safe to run twice."""
    with job_context() as app:
        place(get_database(app), app.config, call_id)


def _fail(db: Database, call_id: int, reason: str, code: int | None = None) -> None:
    with db.transaction() as session:
        call = session.get(Call, call_id)
        if call is None:
            return
        call.status = "failed"
        call.twilio_status = "failed"
        call.error_code = code
        call.data = {**(call.data or {}), "error": reason}
        call.ended_at = utcnow()
    log.warning("bridge call %s failed: %s", call_id, reason)


def place(db: Database, config: dict[str, Any], call_id: int) -> None:
    now = utcnow()
    with db.transaction() as session:
        # The claim (pending -> dialling) is committed before Twilio is called: a job run twice dials once.
        claimed = session.execute(
            update(Call)
            .where(Call.id == call_id, Call.purpose == PURPOSE, Call.status == "pending")
            .values(status="dialling", attempts=Call.attempts + 1, updated_at=now)
            .returning(Call.broker_id)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return
        broker = session.get(Broker, claimed.broker_id) if claimed.broker_id else None
        to = broker.phone if broker is not None else None
    if not to:
        _fail(db, call_id, "no_broker_phone")
        return
    refused = number_refusal(to, config)
    if refused is not None:  # the broker's own phone is dialled first: the same policy holds
        _fail(db, call_id, refused)
        return
    if not config.get("SENDS_FOR_REAL"):
        with db.transaction() as session:
            call = session.get(Call, call_id)
            assert call is not None
            call.status = "in_progress"
            call.twilio_status = "queued"
            call.data = {**(call.data or {}), "demo": True}
        log.info("demo: bridge call %s shown, not placed", call_id)
        return
    answer_url = callback_url(config, f"/twilio/bridge/{call_id}/connect")
    if answer_url is None:
        _fail(db, call_id, "no_public_url")  # Twilio needs a URL it can reach
        return
    try:
        created = twilio_client(config).calls.create(
            to=to,
            from_=config["TWILIO_PHONE_NUMBER"],
            url=answer_url,
            method="POST",
            status_callback=callback_url(config, f"/twilio/bridge/{call_id}/status"),
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
        )
    except TwilioRestException as exc:
        _fail(db, call_id, "twilio_refused", exc.code)
        return
    except Exception as exc:  # network down, timeout: the broker sees it and can try again
        _fail(db, call_id, type(exc).__name__)
        return
    with db.transaction() as session:
        call = session.get(Call, call_id)
        assert call is not None
        if call.call_sid.startswith("pending-"):
            call.call_sid = created.sid
        if call.status == "dialling":
            call.status = "in_progress"
        advance_status(call, created.status or "queued")
