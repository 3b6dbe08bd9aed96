"""Twilio's SMS webhooks. Glue only: check, store, hand to a job, answer."""

from __future__ import annotations

import logging

from flask import Blueprint, request

from models.inbox import record_inbound, record_inbound_and_notify, record_status
from models.limits import twilio_sid

from .database import get_database, get_session
from .jobs import get_queue
from .security import twilio_signed
from .twiml import empty_response

log = logging.getLogger("buurtlijn.sms")
bp = Blueprint("twilio_sms", __name__, url_prefix="/twilio")


@bp.post("/sms")
@twilio_signed
def incoming_sms():  # type: ignore[no-untyped-def]
    """Store the message (once per MessageSid) and answer at once.

    The reply goes out as its own SMS from the job that handles the
    message, so this request does one INSERT and nothing a job could do:
    on PostgreSQL with RQ a single round trip that also wakes the dispatcher.
    Twilio always sends a MessageSid: a post without one, or with a malformed
    one, could not be told from its own replays and is refused (400).
    """
    form = request.form
    fields = {
        "message_sid": twilio_sid(form.get("MessageSid") or form.get("SmsSid")),
        "raw_from": form.get("From"),
        "body": form.get("Body", ""),
        "opt_out_type": form.get("OptOutType"),
    }
    db = get_database()
    if db.is_postgresql and not get_queue().in_process:
        record_inbound_and_notify(db, **fields)
    else:
        session = get_session()
        record_inbound(session, **fields)
        session.commit()
    return empty_response()


@bp.post("/sms/status")
@twilio_signed
def sms_status():  # type: ignore[no-untyped-def]
    form = request.form
    session = get_session()
    record_status(
        session,
        message_sid=twilio_sid(form.get("MessageSid") or form.get("SmsSid")),
        status=(form.get("MessageStatus") or form.get("SmsStatus") or "").lower(),
        error_code=form.get("ErrorCode"),
    )
    session.commit()
    return empty_response()
