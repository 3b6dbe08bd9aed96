"""A local fake of Twilio's REST API (2010-04-01) for tests, benchmarks and contract checks.

The real ``twilio`` client talks to it over HTTP::

    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = fake.base_url   # Messages, Calls, Recordings all live on the "api" domain
        client.messages.create(to="+31612345678", from_="+3197010203040", body="Hoi")
        assert fake.messages()[0]["Body"] == "Hoi"

``fake.make_client()`` does the same and also neutralises TWILIO_EDGE/TWILIO_REGION and proxy
environment variables. Standalone (benchmarks): ``python -m tests.fake_twilio --port 4011``
prints one line per request on stdout.

Only the endpoints Buurtlijn uses are implemented: Messages (create/list/fetch), Calls
(create/list/fetch/update), Recordings (fetch/delete/media). Anything else answers 404 20404.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import io
import json
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
import wave
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

if TYPE_CHECKING:  # twilio is only needed for make_client(); standalone mode runs without it.
    from twilio.rest import Client

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token"
RESOURCES = ("messages", "calls", "recordings")

FormValue = str | list[str]
Form = dict[str, FormValue]

# Twilio's own wording where known (twilio.com/docs/errors/<code>).
_ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21211: "The 'To' number is not a valid phone number.",
    21213: "No 'From' number is specified",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30001: "Queue overflow",
}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _rfc2822(moment: datetime | None) -> str | None:
    # Twilio's format: "Thu, 24 Aug 2023 05:01:45 +0000" (format_datetime gives +0000 for UTC).
    return format_datetime(moment) if moment else None


def _new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _first(form: Mapping[str, FormValue], name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _flatten(parsed: dict[str, list[str]]) -> Form:
    # One value -> str, repeated keys (e.g. StatusCallbackEvent) -> list, as the lib sends them.
    return {name: values[0] if len(values) == 1 else list(values) for name, values in parsed.items()}


def silent_wav(seconds: float = 0.5, sample_rate: int = 8000) -> bytes:
    """A valid mono 16-bit PCM WAV of silence (Twilio recordings are 8 kHz mono)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(b"\x00\x00" * int(seconds * sample_rate))
    return buffer.getvalue()


RECORDING_WAV = silent_wav()

# GSM 03.38 default alphabet and extension table; used for num_segments like Twilio does.
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """Number of SMS segments Twilio bills for ``body`` (160/153 GSM-7, 70/67 UCS-2)."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        units = sum(2 if char in _GSM7_EXTENSION else 1 for char in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # UCS-2 code units; emoji count double
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


@dataclass
class RecordedRequest:
    """One request as the fake received it. ``status`` is filled in once answered
    (None while delayed or hanging, or when the connection was dropped: by ``stop()`` or a
    ``drop_next``/``hang_next`` fault). ``answered_at``: when the fake answered or dropped it."""

    method: str
    path: str
    form: Form
    query: Form
    auth_ok: bool
    at: float
    resource: str | None = None
    status: int | None = None
    answered_at: float | None = None


@dataclass
class _Fault:
    status: int | None  # None: the request's own answer (after a hang)
    code: int | None
    message: str | None
    resource: str | None  # None = messages and calls (for fail_for_to)
    method: str | None = None
    remaining: int | None = None  # None = permanent
    to: str | None = None
    accept: bool = False  # carried out (message stored, call placed) before the answer goes wrong
    drop: bool = False  # no answer at all: the connection is closed
    hang: float = 0.0  # seconds before anything happens
    until: Callable[[FakeTwilio], bool] | None = None  # ends the hang early


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Stored:
    """An accepted create request: the form as sent and the resource as answered."""

    form: Form
    resource: dict[str, Any]


_ACCOUNT_PATH = re.compile(rf"/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/(?P<rest>.+)")
_SID = "[0-9a-fA-F]{32}"
# (pattern for the part after /Accounts/{AccountSid}/, resource, method -> action)
_ROUTES: list[tuple[re.Pattern[str], str, dict[str, str]]] = [
    (re.compile(r"Messages\.json"), "messages", {"GET": "list_messages", "POST": "create_message"}),
    (re.compile(rf"Messages/(?P<sid>(?:SM|MM){_SID})\.json"), "messages", {"GET": "fetch_message"}),
    (re.compile(r"Calls\.json"), "calls", {"GET": "list_calls", "POST": "create_call"}),
    (re.compile(rf"Calls/(?P<sid>CA{_SID})\.json"), "calls", {"GET": "fetch_call", "POST": "update_call"}),
    (
        re.compile(rf"Recordings/(?P<sid>RE{_SID})\.json"),
        "recordings",
        {"GET": "fetch_recording", "DELETE": "delete_recording"},
    ),
    # No extension = WAV, like Twilio's media_url.
    (re.compile(rf"Recordings/(?P<sid>RE{_SID})(?P<ext>\.wav|\.mp3)?"), "recordings", {"GET": "recording_media"}),
]


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # so start() can rebind the same port right after stop()
    daemon_threads = True  # a delayed handler must not block stop()
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes the connection after every response, so no pooled keep-alive connection
    # survives stop(): while stopped, clients really see "connection refused".
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.server.fake._handle(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def do_PUT(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request log is fake.requests / on_request


class _KeepAliveHandler(_Handler):
    # As api.twilio.com: one connection serves many requests. For benchmarks; the
    # tests keep HTTP/1.0, so an outage (stop()) is refused at once, never half-open.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second waits for
    # the client's delayed ACK (40 ms) on a reused connection.
    disable_nagle_algorithm = True


class FakeTwilio:
    """A threaded HTTP server speaking enough of Twilio's REST API for the twilio client.

    Every request is recorded in ``requests``; accepted creates in ``messages()``/``calls()``.
    Faults (``fail_next``, ``fail_for_to``), lost answers (``fail_next(accept=True)``,
    ``drop_next``), hangs (``hang_next``), latency (``delay``) and outages (``stop``/``start``)
    are scriptable. Thread-safe.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.delay: float = 0.0  # seconds every response waits ("slow Twilio")
        self.on_request = on_request  # called after each answer, outside the lock
        self.keep_alive = keep_alive
        self._port = port
        self._lock = threading.RLock()  # re-entrant: wait_for predicates call messages() etc.
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()  # wakes delayed handlers on stop()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._messages: list[_Stored] = []
        self._calls: list[_Stored] = []
        self._call_updates: list[_Stored] = []
        self._recordings: dict[str, dict[str, Any]] = {}
        self._deleted_recordings: list[str] = []
        self._next_faults: list[_Fault] = []
        self._to_faults: list[_Fault] = []
        self._generation = 0  # bumped by reset(): a request still hanging from before is dropped

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTwilio:
        """Listen (again). After the first start the port is fixed, so a restart reuses it."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._port), _KeepAliveHandler if self.keep_alive else _Handler)
        server.fake = self
        self._port = server.server_address[1]
        self._server = server
        # Short poll interval: stop() waits at most this long for serve_forever to notice.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"FakeTwilio:{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening entirely: new connections are refused, delayed requests are dropped."""
        server, thread = self._server, self._thread
        if server is None:
            return
        with self._changed:  # wakes hanging handlers
            self._stopping.set()
            self._changed.notify_all()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """Use as ``client.api.base_url`` (replaces ``https://api.twilio.com``)."""
        return f"http://{self.host}:{self._port}"

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def make_client(self, *, timeout: float | None = 10.0) -> Client:
        """A real ``twilio.rest.Client`` pointed at this fake."""
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        http_client = TwilioHttpClient(timeout=timeout)
        if http_client.session is not None:
            http_client.session.trust_env = False  # an HTTP(S)_PROXY must not capture 127.0.0.1
        client = Client(self.account_sid, self.auth_token, http_client=http_client)
        client.edge = None  # TWILIO_EDGE/TWILIO_REGION would rewrite the host name
        client.region = None
        client.api.base_url = self.base_url
        return client

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: the form as sent (To, From, Body, StatusCallback...) + ``sid``."""
        with self._lock:
            return [{**stored.form, "sid": stored.resource["sid"]} for stored in self._messages]

    def calls(self) -> list[dict[str, Any]]:
        """Accepted call creates: the form as sent (To, From, Twiml/Url, ...) + ``sid``."""
        with self._lock:
            return [{**stored.form, "sid": stored.resource["sid"]} for stored in self._calls]

    def call_updates(self) -> list[dict[str, Any]]:
        """Accepted ``POST Calls/{Sid}.json`` forms (Twiml/Url/Status) + ``sid``."""
        with self._lock:
            return [{**stored.form, "sid": stored.resource["sid"]} for stored in self._call_updates]

    def deleted_recordings(self) -> list[str]:
        with self._lock:
            return list(self._deleted_recordings)

    def add_recording(self, sid: str | None = None, *, call_sid: str | None = None, duration: int = 1) -> str:
        """Register a recording. Unknown but well-formed ``RE…`` SIDs are served anyway (they come
        from webhooks the fake never sees); use this to fix call_sid/duration."""
        sid = sid or _new_sid("RE")
        with self._lock:
            self._recordings[sid] = self._recording_resource(sid, call_sid=call_sid, duration=duration)
        return sid

    def reset(self) -> None:
        """Forget requests, resources, faults and delay (the server keeps running). A request still
        hanging is dropped without being carried out, so it cannot land in the next test."""
        with self._changed:
            self._generation += 1
            self._requests.clear()
            self._messages.clear()
            self._calls.clear()
            self._call_updates.clear()
            self._recordings.clear()
            self._deleted_recordings.clear()
            self._next_faults.clear()
            self._to_faults.clear()
            self.delay = 0.0
            self._changed.notify_all()

    def wait_for(self, condition: int | Callable[[FakeTwilio], bool], timeout: float = 5.0) -> bool:
        """Block until ``condition`` holds: an int means "at least that many accepted messages",
        a callable gets this fake. Returns False on timeout."""
        if isinstance(condition, int):
            count = condition
            predicate: Callable[[], bool] = lambda: len(self._messages) >= count  # noqa: E731
        else:
            check = condition
            predicate = lambda: bool(check(self))  # noqa: E731
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        resource: str,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        times: int = 1,
        *,
        method: str | None = None,
        to: str | None = None,
        accept: bool = False,
    ) -> None:
        """Answer the next ``times`` requests to ``resource`` ("messages", "calls", "recordings"),
        optionally only for ``method`` and only creates to ``to``, with a Twilio-style error.
        ``code=None`` leaves the code out (as for 500/503); the twilio lib then reports ``.code == status``.

        ``accept=True``: Twilio carried the request out (the message is stored, the call placed)
        and only then answered with the error, as when its answer is lost on the way.
        """
        self._add_fault(resource, times, method, to, status=status, code=code, message=message, accept=accept)

    def drop_next(
        self, resource: str, times: int = 1, *, method: str | None = None, to: str | None = None, accept: bool = True
    ) -> None:
        """Close the connection of the next ``times`` requests to ``resource`` without an answer.
        ``accept=True`` (the default): the request was carried out first, so the client cannot
        know that it was; ``accept=False``: dropped before anything happened."""
        self._add_fault(resource, times, method, to, status=None, drop=True, accept=accept)

    def hang_next(
        self,
        resource: str,
        seconds: float,
        times: int = 1,
        *,
        method: str | None = None,
        to: str | None = None,
        accept: bool = True,
        until: Callable[[FakeTwilio], bool] | None = None,
    ) -> None:
        """Let the next ``times`` requests to ``resource`` hang for ``seconds`` (or until ``until(fake)``
        holds, whichever comes first; ``stop()`` drops them), then carry them out and answer as usual
        (``accept=True``), or close the connection without doing anything (``accept=False``).
        A client whose timeout is shorter has given up by then: it cannot know which happened."""
        self._add_fault(resource, times, method, to, status=None, hang=seconds, until=until, accept=accept,
                        drop=not accept)

    def _add_fault(self, resource: str, times: int, method: str | None, to: str | None, **how: Any) -> None:
        self._check_resource(resource)
        how.setdefault("code", None)
        how.setdefault("message", None)
        with self._lock:
            self._next_faults.append(
                _Fault(resource=resource, method=method.upper() if method else None, remaining=times, to=to, **how)
            )

    def fail_for_to(
        self,
        to: str,
        status: int = 400,
        code: int | None = 21211,
        message: str | None = None,
        *,
        resource: str | None = None,
    ) -> None:
        """Fail every create (message and call, or only ``resource``) to ``to`` until ``reset()``."""
        if resource is not None:
            self._check_resource(resource)
        with self._lock:
            self._to_faults.append(_Fault(status, code, message, resource, to=to))

    @staticmethod
    def _check_resource(resource: str) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; use one of {RESOURCES}")

    def _take_fault(self, resource: str, method: str, action: str, form: Form) -> _Fault | None:
        with self._lock:
            to = _first(form, "To")
            if action.startswith("create") and to is not None:
                for fault in self._to_faults:
                    if fault.to == to and fault.resource in (None, resource):
                        return fault
            for fault in self._next_faults:
                if fault.resource == resource and fault.method in (None, method) and fault.to in (None, to):
                    assert fault.remaining is not None
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._next_faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ HTTP plumbing

    def _handle(self, handler: _Handler) -> None:
        record: RecordedRequest | None = None
        try:
            url = urlsplit(handler.path)
            query = _flatten(parse_qs(url.query, keep_blank_values=True))
            length = int(handler.headers.get("Content-Length") or 0)
            raw_body = handler.rfile.read(length) if length else b""
            form = _flatten(parse_qs(raw_body.decode("utf-8"), keep_blank_values=True)) if raw_body else {}
            route = self._route(url.path, handler.command)
            record = RecordedRequest(
                method=handler.command,
                path=url.path,
                form=form,
                query=query,
                auth_ok=self._auth_ok(handler.headers.get("Authorization")),
                at=time.time(),
                resource=route[0] if isinstance(route, tuple) else None,
            )
            with self._changed:
                self._requests.append(record)
                self._changed.notify_all()

            if self.delay > 0 and self._stopping.wait(self.delay):
                return  # stopped while "slow": drop the connection without an answer

            reply = self._dispatch(record, route)
        except Exception as error:  # a bug in the fake must show up as a failing request, not a hang
            reply = _json_reply(500, {"message": f"FakeTwilio internal error: {error!r}", "status": 500})
        if record is not None:  # before answering, so a client that got its reply sees the status
            with self._changed:
                record.status = reply.status if reply is not None else None
                record.answered_at = time.time()
                self._changed.notify_all()
        if reply is None:  # a lost answer: the connection closes with nothing said
            handler.close_connection = True
            if record is not None and self.on_request is not None:
                self.on_request(record)
            return
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.send_header("Twilio-Request-Id", _new_sid("RQ"))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout was shorter than fake.delay)
        if record is not None and self.on_request is not None:
            self.on_request(record)

    def _auth_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def _route(self, path: str, method: str) -> tuple[str, str, dict[str, str]] | _Reply:
        """(resource, action, path params) or the 404/405 reply."""
        account = _ACCOUNT_PATH.fullmatch(path)
        if account is None:
            return _not_found(path)
        rest = account["rest"]
        for pattern, resource, actions in _ROUTES:
            match = pattern.fullmatch(rest)
            if match is None:
                continue
            if method not in actions:
                return _error_reply(405, 20004, "Method not allowed")
            params = {name: value for name, value in match.groupdict().items() if value is not None}
            params["account_sid"] = account["account_sid"]
            return resource, actions[method], params
        return _not_found(path)

    def _dispatch(self, record: RecordedRequest, route: tuple[str, str, dict[str, str]] | _Reply) -> _Reply | None:
        """The answer, or None for none at all (the connection is dropped)."""
        if not record.auth_ok:
            reply = _error_reply(401, 20003, "Authenticate")
            reply.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return reply
        if isinstance(route, _Reply):
            return route
        resource, action, params = route
        if params["account_sid"] != self.account_sid:
            return _not_found(record.path)  # another account's resources are invisible
        fault = self._take_fault(resource, record.method, action, record.form)
        if fault is not None and fault.hang > 0 and not self._hang(fault):
            return None  # stopped while hanging
        if fault is not None and not fault.accept:
            return None if fault.drop else self._fault_reply(fault, record)
        handler: Callable[[RecordedRequest, dict[str, str]], _Reply] = getattr(self, "_" + action)
        reply = handler(record, params)
        if fault is None or reply.status >= 400:
            return reply
        # Carried out; now the answer is lost.
        if fault.drop:
            return None
        return reply if fault.status is None else self._fault_reply(fault, record)

    @staticmethod
    def _fault_reply(fault: _Fault, record: RecordedRequest) -> _Reply:
        assert fault.status is not None
        to = _first(record.form, "To")
        message = fault.message
        if message is None and fault.code == 21211 and to:
            message = f"The 'To' number {to} is not a valid phone number."
        return _error_reply(fault.status, fault.code, message)

    def _hang(self, fault: _Fault) -> bool:
        """Wait out a hang; False when the fake was stopped or reset meanwhile."""
        deadline = time.monotonic() + fault.hang
        with self._changed:
            generation = self._generation
            while not self._stopping.is_set():
                if self._generation != generation:
                    return False
                if fault.until is not None and fault.until(self):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 0.05))
        return not self._stopping.is_set()

    # ------------------------------------------------------------------ resources

    def _account_uri(self, tail: str) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/{tail}"

    def _create_message(self, record: RecordedRequest, _: dict[str, str]) -> _Reply:
        form = record.form
        to, from_, service = _first(form, "To"), _first(form, "From"), _first(form, "MessagingServiceSid")
        body = _first(form, "Body") or ""
        if not to:
            return _error_reply(400, 21604)
        if not from_ and not service:
            return _error_reply(400, 21603)
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return _error_reply(400, 21602)
        if len(body) > 1600:
            return _error_reply(400, 21617)
        media = form.get("MediaUrl") or []
        sid = _new_sid("MM" if media else "SM")
        now = _now()
        uri = self._account_uri(f"Messages/{sid}.json")
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": _rfc2822(now),  # real Twilio fills this when sent; here it is at once
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(len(media) if isinstance(media, list) else 1),
            "num_segments": str(sms_segments(body)),
            "price": None,
            "price_unit": None,
            "sid": sid,
            # Sends through a Messaging Service start as "accepted" (sender not chosen yet).
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": self._account_uri(f"Messages/{sid}/Media.json")},
            "to": to,
            "uri": uri,
        }
        with self._changed:
            self._messages.append(_Stored(dict(form), resource))
            self._changed.notify_all()
        return _json_reply(201, resource)

    def _fetch_message(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        with self._lock:
            for stored in self._messages:
                if stored.resource["sid"] == params["sid"]:
                    return _json_reply(200, stored.resource)
        return _not_found(record.path)

    def _list_messages(self, record: RecordedRequest, _: dict[str, str]) -> _Reply:
        query = record.query
        filters: list[tuple[str, str]] = []
        for name in ("DateSent", "DateSent<", "DateSent>"):
            value = _first(query, name)
            if value:
                filters.append((name, value))
        try:
            bounds = [(name, _parse_filter_date(value)) for name, value in filters]
        except ValueError as error:
            return _error_reply(400, None, str(error))
        to, from_ = _first(query, "To"), _first(query, "From")
        with self._lock:
            resources = [stored.resource for stored in reversed(self._messages)]  # newest first, like Twilio
        selected = [
            resource
            for resource in resources
            if (not to or resource["to"] == to)
            and (not from_ or resource["from"] == from_)
            and all(_date_matches(resource["date_sent"], name, bound) for name, bound in bounds)
        ]
        return self._page(record, "Messages.json", "messages", selected)

    def _create_call(self, record: RecordedRequest, _: dict[str, str]) -> _Reply:
        form = record.form
        to, from_ = _first(form, "To"), _first(form, "From")
        if not to:
            return _error_reply(400, 21201)
        if not from_:
            return _error_reply(400, 21213)
        if not any(_first(form, name) for name in ("Url", "Twiml", "ApplicationSid")):
            return _error_reply(400, 21205)
        sid = _new_sid("CA")
        now = _now()
        subresources = ("Notifications", "Recordings", "Payments", "Events", "Siprec", "Streams", "Transcriptions")
        resource = {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name.lower(): self._account_uri(f"Calls/{sid}/{name}.json") for name in subresources
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": self._account_uri(f"Calls/{sid}.json"),
        }
        with self._changed:
            self._calls.append(_Stored(dict(form), resource))
            self._changed.notify_all()
        return _json_reply(201, resource)

    def _find_call(self, sid: str) -> _Stored | None:
        with self._lock:
            return next((stored for stored in self._calls if stored.resource["sid"] == sid), None)

    def _fetch_call(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        stored = self._find_call(params["sid"])
        return _json_reply(200, stored.resource) if stored else _not_found(record.path)

    def _update_call(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        stored = self._find_call(params["sid"])
        if stored is None:
            return _not_found(record.path)
        status = _first(record.form, "Status")
        if status is not None and status not in ("canceled", "completed"):
            return _error_reply(400, None, f"Invalid Status {status!r}: use canceled or completed")
        with self._changed:
            if status is not None:
                stored.resource["status"] = status
                stored.resource["end_time"] = _rfc2822(_now())
            stored.resource["date_updated"] = _rfc2822(_now())
            self._call_updates.append(_Stored(dict(record.form), stored.resource))
            self._changed.notify_all()
            return _json_reply(200, stored.resource)

    def _list_calls(self, record: RecordedRequest, _: dict[str, str]) -> _Reply:
        to, from_, status = (_first(record.query, name) for name in ("To", "From", "Status"))
        with self._lock:
            resources = [stored.resource for stored in reversed(self._calls)]
        selected = [
            resource
            for resource in resources
            if (not to or resource["to"] == to)
            and (not from_ or resource["from"] == from_)
            and (not status or resource["status"] == status)
        ]
        return self._page(record, "Calls.json", "calls", selected)

    def _recording_resource(self, sid: str, *, call_sid: str | None = None, duration: int = 1) -> dict[str, Any]:
        now = _rfc2822(_now())
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": call_sid or _new_sid("CA"),
            "conference_sid": None,
            "channels": 1,
            "date_created": now,
            "date_updated": now,
            "start_time": now,
            "price": None,
            "price_unit": "USD",
            "duration": str(duration),
            "sid": sid,
            "source": "RecordVerb",
            "status": "completed",
            "error_code": None,
            "uri": self._account_uri(f"Recordings/{sid}.json"),
            "subresource_uris": {
                "add_on_results": self._account_uri(f"Recordings/{sid}/AddOnResults.json"),
                "transcriptions": self._account_uri(f"Recordings/{sid}/Transcriptions.json"),
            },
            "encryption_details": None,
            "media_url": self.base_url + self._account_uri(f"Recordings/{sid}"),
        }

    def _live_recording(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            if sid in self._deleted_recordings:
                return None
            if sid not in self._recordings:
                self._recordings[sid] = self._recording_resource(sid)
            return self._recordings[sid]

    def _fetch_recording(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        resource = self._live_recording(params["sid"])
        return _json_reply(200, resource) if resource else _not_found(record.path)

    def _delete_recording(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        if self._live_recording(params["sid"]) is None:
            return _not_found(record.path)
        with self._changed:
            self._deleted_recordings.append(params["sid"])
            self._changed.notify_all()
        return _Reply(204, content_type="text/plain")

    def _recording_media(self, record: RecordedRequest, params: dict[str, str]) -> _Reply:
        # Real Twilio serves media without auth unless "enforce HTTP auth" is on; the fake always
        # requires it, so code that forgets the credentials fails here rather than in production.
        if self._live_recording(params["sid"]) is None:
            return _not_found(record.path)
        content_type = "audio/mpeg" if params.get("ext") == ".mp3" else "audio/x-wav"
        return _Reply(200, RECORDING_WAV, content_type)

    def _page(self, record: RecordedRequest, list_name: str, key: str, items: list[dict[str, Any]]) -> _Reply:
        try:
            page_size = max(1, min(1000, int(_first(record.query, "PageSize") or 50)))
            page = max(0, int(_first(record.query, "Page") or 0))
        except ValueError:
            return _error_reply(400, None, "PageSize and Page must be integers")
        start = page * page_size
        chunk = items[start : start + page_size]
        filters = {name: value for name, value in record.query.items() if name not in ("Page", "PageSize", "PageToken")}
        path = self._account_uri(list_name)

        def page_uri(number: int, token: str | None = None) -> str:
            query = {**filters, "PageSize": str(page_size), "Page": str(number)}
            if token:
                query["PageToken"] = token
            return f"{path}?{urlencode(query, doseq=True)}"

        has_next = start + page_size < len(items)
        payload = {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + chunk[-1]["sid"]) if has_next and chunk else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            key: chunk,
            "start": start,
            "uri": page_uri(page),
        }
        return _json_reply(200, payload)


def _json_reply(status: int, payload: Mapping[str, Any]) -> _Reply:
    return _Reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def _error_reply(status: int, code: int | None, message: str | None = None) -> _Reply:
    """Twilio's legacy error body, which the twilio lib turns into TwilioRestException."""
    if message is None:
        message = _ERROR_MESSAGES.get(code, "") if code is not None else ""
        message = message or HTTPStatus(status).phrase
    if code is None:
        return _json_reply(status, {"message": message, "status": status})
    return _json_reply(
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


def _not_found(path: str) -> _Reply:
    return _error_reply(404, 20404, f"The requested resource {path} was not found")


def _parse_filter_date(value: str) -> date | datetime:
    """The lib sends "YYYY-MM-DDTHH:MM:SSZ" for datetimes; plain "YYYY-MM-DD" is also valid."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid date filter value {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _date_matches(rfc2822_value: str | None, name: str, bound: date | datetime) -> bool:
    if rfc2822_value is None:
        return False
    sent = parsedate_to_datetime(rfc2822_value)
    sent_value: date | datetime = sent if isinstance(bound, datetime) else sent.date()
    if name == "DateSent<":
        return sent_value <= bound  # type: ignore[operator]
    if name == "DateSent>":
        return sent_value >= bound  # type: ignore[operator]
    if isinstance(bound, datetime):
        return sent.date() == bound.date()
    return sent_value == bound


# ---------------------------------------------------------------------- OpenAPI contract check


class OpenAPISpecNotFound(FileNotFoundError):
    """Twilio's OpenAPI spec is not where we look for it."""


SPEC_ENV_VAR = "TWILIO_OAI_SPEC"
DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared/twilio-oai/twilio_api_v2010.json"

_SPEC_OPERATIONS: dict[str, tuple[str, str]] = {
    "messages": (f"/{API_VERSION}/Accounts/{{AccountSid}}/Messages.json", "post"),
    "calls": (f"/{API_VERSION}/Accounts/{{AccountSid}}/Calls.json", "post"),
    "call_update": (f"/{API_VERSION}/Accounts/{{AccountSid}}/Calls/{{Sid}}.json", "post"),
}
# Twilio rules the schema only states in prose: at least one of each group must be present.
_ONE_OF_GROUPS: dict[str, list[tuple[str, ...]]] = {
    "messages": [("From", "MessagingServiceSid"), ("Body", "MediaUrl", "ContentSid")],
    "calls": [("Url", "Twiml", "ApplicationSid")],
    "call_update": [],
}


def spec_path() -> Path:
    """$TWILIO_OAI_SPEC when set, else the spec beside the project (../shared/twilio-oai).

    A clone elsewhere has no ../shared: the tests that need the spec then skip."""
    configured = os.environ.get(SPEC_ENV_VAR)
    candidate = Path(configured) if configured else DEFAULT_SPEC_PATH
    if candidate.is_file():
        return candidate
    raise OpenAPISpecNotFound(
        f"Twilio OpenAPI spec not found at {candidate}; "
        f"set {SPEC_ENV_VAR} to twilio_api_v2010.json from github.com/twilio/twilio-oai"
    )


@lru_cache(maxsize=4)
def _load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec


def load_openapi_spec() -> dict[str, Any]:
    return _load_spec(spec_path())


def _resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _value_problems(spec: Mapping[str, Any], name: str, schema: Mapping[str, Any], value: str) -> list[str]:
    schema = _resolve(spec, schema)
    problems: list[str] = []
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{name}={value!r} is not one of {schema['enum']}")
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        problems.append(f"{name}={value!r} is not an integer")
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            problems.append(f"{name}={value!r} is not a number")
    elif kind == "boolean" and value.lower() not in ("true", "false"):
        problems.append(f"{name}={value!r} is not a boolean (true/false)")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{name}={value!r} does not match {schema['pattern']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(f"{name}={value!r} is shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{name}={value!r} is longer than {schema['maxLength']}")
    ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
    if schema.get("format") == "uri" and not ignore_format:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{name}={value!r} is not an absolute http(s) URL")
    return problems


def validate_against_openapi(resource: str, form: Mapping[str, str | Sequence[str]]) -> list[str]:
    """Check a create-message ("messages"), create-call ("calls") or update-call ("call_update")
    form against the requestBody schema in Twilio's OpenAPI spec. Returns the problems found
    (empty = conforms). Raises OpenAPISpecNotFound when the spec file is missing."""
    if resource not in _SPEC_OPERATIONS:
        raise ValueError(f"unknown resource {resource!r}; use one of {sorted(_SPEC_OPERATIONS)}")
    spec = load_openapi_spec()
    path, method = _SPEC_OPERATIONS[resource]
    body = spec["paths"][path][method]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    schema = _resolve(spec, body["schema"])
    properties: Mapping[str, Any] = schema.get("properties", {})
    problems: list[str] = []

    def present(name: str) -> bool:
        value = form.get(name)
        return bool(value) if isinstance(value, str) else bool(value and any(value))

    for name in schema.get("required", []):
        if not present(name):
            problems.append(f"required parameter {name} is missing")
    for group in _ONE_OF_GROUPS[resource]:
        if not any(present(name) for name in group):
            problems.append(f"one of {', '.join(group)} is required")
    for name, value in form.items():
        if name == "sid" and name not in properties:
            continue  # added by fake.messages()/calls(), not part of the request
        if name not in properties:
            problems.append(f"unknown parameter {name} (not in {schema.get('title', path)})")
            continue
        property_schema = _resolve(spec, properties[name])
        values = [value] if isinstance(value, str) else list(value)
        if property_schema.get("type") == "array":
            item_schema = property_schema.get("items", {})
        else:
            item_schema = property_schema
            if len(values) > 1:
                problems.append(f"{name} was sent {len(values)} times but is not an array")
        for single in values:
            problems.extend(_value_problems(spec, name, item_schema, single))
    return problems


# ---------------------------------------------------------------------- standalone


def _print_request(record: RecordedRequest) -> None:
    query = f"?{urlencode(record.query, doseq=True)}" if record.query else ""
    status = record.status if record.status is not None else "-"
    auth = "" if record.auth_ok else " auth=FAILED"
    form = f" {json.dumps(record.form, ensure_ascii=False, sort_keys=True)}" if record.form else ""
    stamp = time.strftime("%H:%M:%S", time.localtime(record.at)) + f".{int(record.at * 1000) % 1000:03d}"
    print(f"{stamp} {record.method} {record.path}{query} {status}{auth}{form}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local fake of Twilio's REST API; prints one line per request.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4011, help="0 = pick a free port")
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN))
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every response waits")
    args = parser.parse_args(argv)

    fake = FakeTwilio(args.account_sid, args.auth_token, host=args.host, port=args.port, on_request=_print_request)
    fake.delay = args.delay
    fake.start()
    # Banner on stderr so stdout carries only request lines.
    print(f"FakeTwilio listening on {fake.base_url} (account {fake.account_sid})", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
