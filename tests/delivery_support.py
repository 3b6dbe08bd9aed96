"""People, listings and notification calls for the match, notification and delivery tests.

The fixtures these tests use (``notify_app``, ``webhooks``, ``session``, ``delivery_app``,
``delivery_worker``, ``private_redis``) live in tests/conftest.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from gateway.database import get_database
from models import Call, Listing
from models.marketplace import record_listing
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import ACCOUNT_SID, API_TOKEN, GATEWAY_NUMBER, PUBLIC_BASE, TwilioWebhooks, parse_twiml
from tests.fake_twilio import FakeTwilio

HELPER = "+31612345001"  # a mobile: answers by SMS
REQUESTER = "+31612345002"
LANDLINE_HELPER = "+31235551234"  # a fixed line: answers by keypress
LANDLINE_REQUESTER = "+31235551235"


# --- people and listings ------------------------------------------------------------------


def add_listing(
    app: Flask,
    phone: str,
    kind: str,
    *,
    category: str = "groceries",
    postcode: str = "2034",
    timing: str | None = "asap",
    language: str = "nl",
    prefers_voice: bool = False,
) -> int:
    """A resident (created if new) and an open listing of theirs; returns the listing id."""
    with get_database(app).transaction() as session:
        resident = resident_for(session, parse_phone(phone), language=language)
        resident.language = language
        resident.prefers_voice = prefers_voice
        resident.postcode = postcode
        listing = record_listing(session, resident, kind=kind, channel="broker", category=category,
                                 postcode=postcode, timing=timing, queue_for_broker=False)
        return listing.id


def post_match(client: FlaskClient, request_id: Any, offer_id: Any, note: Any = None, **extra: Any) -> Any:
    payload = {"request_id": request_id, "offer_id": offer_id, **({"note": note} if note is not None else {}),
               **extra}
    return client.post("/api/v1/matches", json=payload, headers={"Authorization": f"Bearer {API_TOKEN}"})


def bodies(fake: FakeTwilio, to: str) -> list[str]:
    return [m["Body"] for m in fake.messages() if m["To"] == to]


def listing_status(app: Flask, listing_id: int) -> str:
    with get_database(app).transaction() as session:
        listing = session.get(Listing, listing_id)
        assert listing is not None
        return listing.status


# --- Twilio's side of a notification call -----------------------------------------------------


def say_text(element: ET.Element) -> str:
    """All words of a TwiML element (a <Say> with its <prosody>), as one string."""
    return " ".join("".join(element.itertext()).split())


@dataclass
class PhoneCall:
    """Twilio's side of one outbound call: it picks up, presses keys, hangs up."""

    webhooks: TwilioWebhooks
    call_id: int
    call_sid: str
    to: str

    def _params(self, **extra: str) -> dict[str, str]:
        return {"AccountSid": ACCOUNT_SID, "CallSid": self.call_sid, "From": GATEWAY_NUMBER, "To": self.to,
                "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallStatus": "in-progress", **extra}

    def answer(self) -> ET.Element:
        response = self.webhooks.post(f"/twilio/notify/{self.call_id}", self._params())
        assert response.status_code == 200 and response.mimetype == "text/xml", response.data
        return parse_twiml(response.data)

    def press(self, digits: str, action: str | None = None) -> ET.Element:
        path = action or f"/twilio/notify/{self.call_id}/key"
        response = self.webhooks.post(path, self._params(Digits=digits))
        assert response.status_code == 200 and response.mimetype == "text/xml", response.data
        return parse_twiml(response.data)

    def status(self, call_status: str) -> int:
        params = self._params(CallStatus=call_status, CallDuration="0")
        return self.webhooks.post(f"/twilio/notify/{self.call_id}/status", params).status_code


def gather_of(root: ET.Element) -> ET.Element:
    [gather] = root.findall("./Gather")
    assert gather.get("numDigits") == "1" and int(gather.get("timeout", "5")) >= 8
    assert gather.findall("./Say"), "the message is spoken inside the Gather, so keys work while it speaks"
    return gather


def placed_call(fake: FakeTwilio, session: Any, webhooks: TwilioWebhooks, to: str) -> PhoneCall:
    """The one call the fake Twilio was asked to place to ``to``, as Twilio would then drive it."""
    [created] = [c for c in fake.calls() if c["To"] == to]
    call_id = int(created["Url"].rstrip("/").rsplit("/", 1)[1])
    assert created["Url"] == f"{PUBLIC_BASE}/twilio/notify/{call_id}"
    assert created["StatusCallback"] == f"{PUBLIC_BASE}/twilio/notify/{call_id}/status"
    session.expire_all()
    call = session.get(Call, call_id)
    assert call is not None and call.call_sid == created["sid"]
    return PhoneCall(webhooks, call_id, created["sid"], to)
