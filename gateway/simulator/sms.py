"""Simulator: texting the gateway, and reading what it texts back."""

from __future__ import annotations

from flask import current_app, jsonify, request
from sqlalchemy import or_, select

from models import Message
from models.phones import try_parse_phone
from texts import segment_count

from ..database import get_session
from ..twilio_sim import post_signed, sms_params
from . import bp, webhook_url


@bp.post("/sms")
def send_sms():  # type: ignore[no-untyped-def]
    data = request.get_json(silent=True) or request.form
    from_ = (data.get("from") or "").strip()
    params = sms_params(
        account_sid=current_app.config["TWILIO_ACCOUNT_SID"],
        from_=from_,
        to=current_app.config["TWILIO_PHONE_NUMBER"],
        body=data.get("body") or "",
    )
    local, public = webhook_url("/twilio/sms")
    status, body = post_signed(local, params, current_app.config["TWILIO_AUTH_TOKEN"], signed_url=public)
    return jsonify(status=status, twiml=body, message_sid=params["MessageSid"])


@bp.get("/messages")
def messages():  # type: ignore[no-untyped-def]
    """The conversation of one phone with the gateway, oldest first."""
    raw = (request.args.get("phone") or "").strip()
    number = try_parse_phone(raw)
    phone = number.e164 if number else raw
    after = request.args.get("after", type=int) or 0
    rows = get_session().scalars(
        select(Message)
        .where(or_(Message.phone == phone, Message.raw_from == raw), Message.id > after)
        .order_by(Message.id)
        .limit(200)
    ).all()
    return jsonify(
        messages=[
            {
                "id": m.id,
                "direction": m.direction,
                "body": m.body,
                "status": m.status,
                "segments": segment_count(m.body) if m.direction == "outbound" else None,
                "purpose": m.purpose,
                "at": m.created_at.isoformat(),
            }
            for m in rows
        ]
    )
