"""Speaking Twilio's side of a webhook: signed, form-encoded requests.

Used by the demo's phone simulator, the benchmarks and the tests, so all
three drive the real webhooks exactly as Twilio would.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: 'SM' / 'CA' / 'RE' + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def sign(url: str, params: Mapping[str, str], token: str) -> str:
    return RequestValidator(token).compute_signature(url, dict(params))


def post_signed(
    url: str, params: Mapping[str, str], token: str, *, signed_url: str | None = None, timeout: float = 15
) -> tuple[int, str]:
    """POST ``params`` to ``url`` with a valid X-Twilio-Signature; returns (status, body).

    ``signed_url`` is the URL Twilio would have signed (the public one) when
    it differs from where the request is actually sent.
    """
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(
        url,
        data=data,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(signed_url or url, params, token),
            "User-Agent": "TwilioProxy/1.1",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def sms_params(*, account_sid: str, from_: str, to: str, body: str, message_sid: str | None = None) -> dict[str, str]:
    """The parameters Twilio posts for an incoming SMS."""
    sid = message_sid or new_sid("SM")
    return {
        "ToCountry": "NL",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "NL",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": "2010-04-01",
    }
