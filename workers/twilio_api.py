"""The real twilio client, pointed at TWILIO_API_BASE_URL (a local fake in tests)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError, NewConnectionError

_clients: dict[tuple[str, str, str, float], Client] = {}

# Twilio error codes we act on.
OPTED_OUT = 21610
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
TOO_MANY_REQUESTS = 20429
QUEUE_OVERFLOW = (21611, 30001)
# HTTP status of a resource Twilio does not have (a call, a recording): asking again cannot help.
NOT_FOUND = 404

# Seconds to connect to Twilio, and to wait for each part of its answer (BUURTLIJN_TWILIO_TIMEOUT_SECONDS).
DEFAULT_TIMEOUT = 5.0
# A request whose answer we did not get is asked after this many timeouts: by then Twilio has
# either carried it out or dropped it, so its list of messages (or calls) is the truth.
SETTLE_TIMEOUTS = 6


def twilio_timeout(config: dict[str, Any]) -> float:
    return float(config.get("BUURTLIJN_TWILIO_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT)


def twilio_client(config: dict[str, Any]) -> Client:
    timeout = twilio_timeout(config)
    key = (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], config["BASE_API_URL"], timeout)
    client = _clients.get(key)
    if client is None:
        # Without a timeout a hung Twilio holds the worker (and every message behind it) until RQ kills the job.
        # The client logs through "twilio.http_client", which gateway/logs.py keeps at WARNING.
        client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                        http_client=TwilioHttpClient(timeout=timeout))
        # Leave TWILIO_EDGE/REGION unset: they rewrite host names.
        client.api.base_url = config["BASE_API_URL"]
        _clients[key] = client
    return client


def is_transient(status: int | None, code: int | None) -> bool:
    """Worth trying again later: Twilio busy or down, not our request being wrong."""
    if status is None:
        return True  # no answer at all: network, timeout
    return status >= 500 or status == 429 or code == TOO_MANY_REQUESTS or code in QUEUE_OVERFLOW


def may_have_reached_twilio(error: BaseException) -> bool:
    """Whether a create that failed with ``error`` may still have been carried out by Twilio.

    Only a refused or unmade connection (the request never left) and a clear
    4xx (Twilio read it and said no) are certain; a timeout, a dropped
    connection or a 5xx may come after Twilio stored the message or placed the call.
    """
    if isinstance(error, TwilioRestException):
        return error.status >= 500
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        # Refused, or no such host: urllib3 reports these before anything was sent.
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
            return False
    return True


def settle_time(config: dict[str, Any]) -> dt.timedelta:
    """How long after an unanswered request Twilio is asked whether it carried it out."""
    return dt.timedelta(seconds=SETTLE_TIMEOUTS * twilio_timeout(config))


def callback_url(config: dict[str, Any], path: str) -> str | None:
    """Where Twilio should post status callbacks; only when we know our public URL."""
    base = config.get("PUBLIC_BASE_URL")
    return f"{base.rstrip('/')}{path}" if base else None
