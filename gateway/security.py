"""Who may call what: Twilio's signature, the API token, browser protections."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import logging
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from urllib.parse import unquote_plus

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_wtf.csrf import CSRFProtect
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.routing import IntegerConverter

from models.limits import MAX_ID, MalformedRequest

log = logging.getLogger("buurtlijn.security")
csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    demo = bool(app.config.get("BUURTLIJN_DEMO"))
    # Flask predefines these keys (SameSite None, Secure False, 31 days), so
    # setdefault would keep Flask's values: replace Flask's defaults explicitly.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The demo runs on plain http://localhost; production sits behind https.
    if not app.config.get("SESSION_COOKIE_SECURE"):
        app.config["SESSION_COOKIE_SECURE"] = not demo and not app.config.get("TESTING")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    if app.config.get("PERMANENT_SESSION_LIFETIME") == dt.timedelta(days=31):
        app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(hours=10)  # absolute
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # bound to the session instead
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask predefines it as None (no limit)
        app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # Twilio's posts and our forms are small
    csrf.init_app(app)
    # Before any blueprint adds a route: every <int:...> in a URL is a row id.
    app.url_map.converters["int"] = RowIdConverter
    app.register_error_handler(MalformedRequest, _malformed)
    app.session_interface = NoCookiesForTwilio()
    app.request_class = GatewayRequest
    app.after_request(_security_headers)


class RowIdConverter(IntegerConverter):
    """``<int:...>``, bounded to the ids the database holds: a larger number is no row (404), not a 500."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 - Werkzeug's names
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _malformed(error: MalformedRequest) -> Response:
    """A request no Twilio or client of ours sends (a malformed SID, say): 400, nothing stored."""
    log.warning("refused a malformed request to %s: %s", request.path, error)
    return Response(f"Bad request: {error}\n", status=400, mimetype="text/plain")


class NoCookiesForTwilio(SecureCookieSessionInterface):
    """The signed-cookie session everywhere but on Twilio's webhooks.

    Twilio keeps no cookies; for its requests the session (a signer built,
    a cookie read and written back) is pure cost on the hot path. Flask gives
    such requests a null session, which refuses any write.
    """

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/twilio/"):
            return None
        return super().open_session(app, request)


TWILIO_PREFIX = "/twilio/"
URLENCODED = "application/x-www-form-urlencoded"


class GatewayRequest(Request):
    """Flask's request, with a lean reader for the form posts of Twilio's webhooks.

    Twilio posts some 25 short parameters on every webhook, most without a
    single escaped character. Werkzeug's general form parser takes three times
    as long over them as a split that unescapes only where there is something
    to unescape, and this runs on every webhook. Same result: the same pairs,
    in order, as UTF-8 text (a byte that is not UTF-8 becomes U+FFFD, as in
    Werkzeug). Every other request keeps Werkzeug's parser.
    """

    def _load_form_data(self) -> None:
        if "form" in self.__dict__ or not self.path.startswith(TWILIO_PREFIX) or self.mimetype != URLENCODED:
            super()._load_form_data()
            return
        # MAX_CONTENT_LENGTH (64 KiB) bounds the body: get_data refuses anything longer.
        self.__dict__["form"] = ImmutableMultiDict(form_pairs(self.get_data(as_text=True)))
        self.__dict__["files"] = ImmutableMultiDict()


def form_pairs(body: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(body, keep_blank_values=True)``, in a fraction of the time for plain values."""
    pairs = []
    for item in body.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        if "%" in item or "+" in item:
            name, value = unquote_plus(name, errors="replace"), unquote_plus(value, errors="replace")
        pairs.append((name, value))
    return pairs


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self'; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")
_SECURITY_HEADER_KEYS = tuple((name.lower(), name, value) for name, value in SECURITY_HEADERS)


def _security_headers(response: Response) -> Response:
    """Each header unless the view set its own (as ``setdefault``), in one pass: this runs on every webhook."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    headers.extend([(name, value) for key, name, value in _SECURITY_HEADER_KEYS if key not in present])
    if request.is_secure:
        headers.setdefault(*HSTS)
    return response


def public_url() -> str:
    """The URL Twilio signed: behind a proxy, PUBLIC_BASE_URL plus path and query."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    return public_url_of(base, request.path, request.query_string.decode("latin-1"))


def public_url_of(base: str, path: str, query: str) -> str:
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url


def twilio_signature_valid() -> bool:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = public_url()
    form = request.form
    # One HMAC for the usual case; validate() tries the URL with and without
    # an explicit port (three HMACs), which only a proxy's rewrite needs.
    if signature_matches(token, url, form.items(multi=True), signature):
        return True
    return bool(RequestValidator(token).validate(url, form, signature))


def signature_matches(token: str, url: str, pairs: Iterable[tuple[str, str]], signature: str) -> bool:
    """One HMAC: whether ``signature`` is Twilio's for this URL and these form pairs."""
    # Bytes: compare_digest refuses str with non-ASCII characters, which a forged header may carry.
    return hmac.compare_digest(twilio_signature_of(token, url, pairs).encode(), signature.encode("utf-8", "replace"))


def twilio_signature_of(token: str, url: str, pairs: Iterable[tuple[str, str]]) -> str:
    """``RequestValidator.compute_signature`` (HMAC-SHA1) for plain pairs, same bytes.

    The library takes the names in order and, for each, its distinct values in
    order: the distinct (name, value) pairs, sorted. (It also looks each name
    up through ``getall`` first, which a Werkzeug MultiDict lacks: an
    AttributeError per parameter, on every webhook.)
    """
    signed = url + "".join(name + value for name, value in sorted(set(pairs)))
    digest = hmac.new(token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("utf-8").strip()


def twilio_signed(view: F) -> F:
    """Refuse (403, nothing recorded) any request Twilio did not sign.

    There is no switch to turn this off: without a configured token every
    webhook is refused, so an unauthenticated request can never make us send.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not twilio_signature_valid():
            log.warning("refused unsigned or wrongly signed request to %s", request.path)
            return Response("Forbidden: invalid Twilio signature\n", status=403, mimetype="text/plain")
        return view(*args, **kwargs)

    csrf.exempt(wrapper)
    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class ApiCaller:
    """Who called the API: a client from ``buurtlijn create-api-client``, or the BUURTLIJN_API_TOKEN holder."""

    name: str
    scope: str
    client_id: int | None = None

    @property
    def may_write(self) -> bool:
        return self.scope == "write"


# The name BUURTLIJN_API_TOKEN's holder goes by in the audit log; it may do everything.
CONFIGURED_TOKEN_CALLER = ApiCaller("BUURTLIJN_API_TOKEN", "write")


def api_caller() -> ApiCaller | None:
    """The caller the bearer token names, or None without a valid one (a revoked client's included)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    offered = header[len("Bearer "):].strip()
    if not offered:
        return None
    expected = current_app.config.get("BUURTLIJN_API_TOKEN")
    if expected and hmac.compare_digest(offered.encode(), expected.encode()):
        return CONFIGURED_TOKEN_CALLER
    from models.api_clients import client_for_token

    from .database import get_session

    client = client_for_token(get_session(), offered)
    return None if client is None else ApiCaller(client.name, client.scope, client.id)


def api_token_valid() -> bool:
    return api_caller() is not None
