"""The real twilio client, pointed at TWILIO_API_BASE_URL (a local fake in tests)."""

from __future__ import annotations

from typing import Any

from twilio.rest import Client

_clients: dict[tuple[str, str, str], Client] = {}

# Twilio error codes we act on.
OPTED_OUT = 21610
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
TOO_MANY_REQUESTS = 20429
QUEUE_OVERFLOW = (21611, 30001)
# HTTP status of a resource Twilio does not have (a call, a recording): asking again cannot help.
NOT_FOUND = 404


def twilio_client(config: dict[str, Any]) -> Client:
    key = (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], config["BASE_API_URL"])
    client = _clients.get(key)
    if client is None:
        client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])
        # Leave TWILIO_EDGE/REGION unset: they rewrite host names.
        client.api.base_url = config["BASE_API_URL"]
        _clients[key] = client
    return client


def is_transient(status: int | None, code: int | None) -> bool:
    """Worth trying again later: Twilio busy or down, not our request being wrong."""
    if status is None:
        return True  # no answer at all: network, timeout
    return status >= 500 or status == 429 or code == TOO_MANY_REQUESTS or code in QUEUE_OVERFLOW


def callback_url(config: dict[str, Any], path: str) -> str | None:
    """Where Twilio should post status callbacks; only when we know our public URL."""
    base = config.get("PUBLIC_BASE_URL")
    return f"{base.rstrip('/')}{path}" if base else None
