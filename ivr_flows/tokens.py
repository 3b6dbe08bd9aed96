"""The call's state, sealed into its own step URLs, so that a menu step needs no read.

Twilio posts each answer to the action URL we gave it. On PostgreSQL that
URL also carries a copy of the call's row as it was left (where the caller
is, their tries, what they keyed in, their language): encrypted and
authenticated with AES-GCM under a key derived from ``SECRET_KEY``, with the
CallSid as associated data. Twilio's logs hold nothing readable, a token
cannot be forged or altered, and it opens only for its own call.

The database stays the record. Every step still writes the whole new state,
and that write applies only while the row is exactly what the token says
(its step number, status and time of last change). When it is not (a
repeated delivery, a hang-up that got there first, a key that changed since),
the step reads the row instead. A token saves a read; it is never a second
source of truth, and a step without one works the same.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The first field of every token: a token of another layout is simply not used.
LAYOUT = 1
_NONCE_BYTES = 12
# Far above any real token (about 250 characters); a longer one is not ours.
MAX_TOKEN_CHARS = 1024


class CallTokens:
    """Seals a list of plain values (JSON) for one CallSid, and opens it again."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"buurtlijn call state").derive(
            secret.encode("utf-8"))
        self._aead = AESGCM(key)

    def seal(self, call_sid: str, values: list[Any]) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps([LAYOUT, *values], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plain, call_sid.encode("utf-8"))
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, call_sid: str, token: str | None) -> list[Any] | None:
        """The values sealed for ``call_sid``; None for anything else (absent, altered, another call, old key)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(sealed) <= _NONCE_BYTES:
                return None
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], call_sid.encode("utf-8"))
            values = json.loads(plain)
        except (InvalidTag, ValueError, binascii.Error):
            return None
        if not isinstance(values, list) or not values or values[0] != LAYOUT:
            return None
        return values[1:]
