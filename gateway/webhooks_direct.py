"""Twilio's voice webhooks on PostgreSQL, answered straight from the WSGI call.

A menu step is one statement (``ivr_flows.fast``); around it, Flask's request
machinery (contexts, URL map, request and response objects, the app's hooks)
cost as much CPU again. For the three voice webhooks this layer does what
the Flask views do for them, with nothing else: check Twilio's signature
over the same pairs, run the same ``fast`` function, answer the same TwiML
with the same headers.

It never decides anything on its own. Whenever it cannot answer plainly (no
PostgreSQL, a signature that does not match as computed here, a body it does
not read, a step that needs the ORM path, any error) the request goes to the
Flask view with its body intact, which answers as it always does. Running a
step there again is safe: a step applies only to the row as it found it.
"""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.wsgi import get_current_url

from ivr_flows import fast
from ivr_flows.params import CallParams, int_or_none
from models.base import utcnow
from models.limits import MalformedRequest

from .database import get_database
from .logs import scrub
from .security import HSTS, SECURITY_HEADERS, URLENCODED, form_pairs, public_url_of, signature_matches
from .twiml import EMPTY
from .webhooks_voice import uses_fast_path, voice_settings

log = logging.getLogger("buurtlijn.voice")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Handler = Callable[[CallParams, dict[str, str]], "str | None"]
_HEADERS = (("Content-Type", "text/xml; charset=utf-8"), *SECURITY_HEADERS)


class DirectVoiceWebhooks:
    """WSGI middleware: the voice webhooks without Flask's per-request machinery, else the app."""

    def __init__(self, app: Flask, wrapped: WSGIApp) -> None:
        self.app = app
        self.wrapped = wrapped
        self.handlers: dict[str, Handler] = {
            "/twilio/voice": self._incoming_call,
            "/twilio/voice/step": self._step,
            "/twilio/voice/status": self._status,
        }
        self.max_length = int(app.config.get("MAX_CONTENT_LENGTH") or 64 * 1024)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = self.handlers.get(environ.get("PATH_INFO", ""))
        if handler is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wrapped(environ, start_response)
        body = self._body(environ)
        if body is None:
            return self.wrapped(environ, start_response)
        try:
            answer = self._answer(handler, environ, body)
        except MalformedRequest:
            answer = None  # the view refuses it (400) and logs it in one line
        except Exception:
            # The Flask view runs it again and answers whatever happens (an apology at worst).
            log.warning("direct voice webhook %s failed; the Flask view answers\n%s",
                        environ.get("PATH_INFO"), scrub(traceback.format_exc()))
            answer = None
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wrapped(environ, start_response)
        payload = answer.encode("utf-8")
        headers = [*_HEADERS, ("Content-Length", str(len(payload)))]
        if environ.get("wsgi.url_scheme") == "https":  # as security._security_headers
            headers.append(HSTS)
        start_response("200 OK", headers)
        return [payload]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The form post's body, if it is one this layer reads: urlencoded, of a sane length."""
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != URLENCODED:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= self.max_length:
            return None
        body = environ["wsgi.input"].read(length)
        # Read or not, the Flask view may need it: it gets the same bytes again.
        environ["wsgi.input"] = io.BytesIO(body)
        return body if len(body) == length else None

    def _answer(self, handler: Handler, environ: dict[str, Any], body: bytes) -> str | None:
        # No app context: everything below takes the app or its database explicitly (anything
        # reaching for one fails, and the view answers instead).
        pairs = form_pairs(body.decode("utf-8", "replace"))
        if not self._signed(environ, pairs):
            return None  # the view refuses it, logs it, answers 403
        params = CallParams.read(_first_values(pairs))
        return handler(params, _first_values(form_pairs(environ.get("QUERY_STRING", ""))))

    def _signed(self, environ: dict[str, Any], pairs: list[tuple[str, str]]) -> bool:
        token = self.app.config.get("TWILIO_AUTH_TOKEN")
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if not token or not signature:
            return False
        base = self.app.config.get("PUBLIC_BASE_URL")
        if base:
            url = public_url_of(base, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        else:
            url = get_current_url(environ)
        return signature_matches(token, url, pairs, signature)

    # --- the three webhooks, as the views in webhooks_voice.py on PostgreSQL ---

    def _incoming_call(self, params: CallParams, query: dict[str, str]) -> str | None:
        return fast.incoming_call(get_database(self.app), voice_settings(self.app),
                                  call_sid=params.call_sid, raw_from=params.from_, now=utcnow())

    def _step(self, params: CallParams, query: dict[str, str]) -> str | None:
        return fast.answer_step(
            get_database(self.app), voice_settings(self.app), now=utcnow(), token=query.get("c"),
            call_sid=params.call_sid, step=query.get("s", ""), seq=int_or_none(query.get("n")) or 0,
            answer=params.answer, raw_from=params.from_,
        )

    def _status(self, params: CallParams, query: dict[str, str]) -> str | None:
        ended = fast.end_call(get_database(self.app), call_sid=params.call_sid, status=params.call_status,
                              now=utcnow(), duration=params.duration)
        return EMPTY if ended else None


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Each name's first value, as Werkzeug's ``MultiDict.get`` reads it."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


def init_app(app: Flask) -> None:
    """With the fast path only: on SQLite (the demo) the steps take the ORM path, which needs Flask's session."""
    if uses_fast_path(app):
        app.wsgi_app = DirectVoiceWebhooks(app, app.wsgi_app)  # type: ignore[method-assign]
