"""A caller on Twilio's side: follows our TwiML the way Twilio does.

``SimulatedCall`` posts Twilio's own parameters (signed) to our webhooks and
walks the verbs it gets back: <Say> is heard, <Gather> waits for keys
(``press``) or times out (``silence``), <Record> takes a message
(``record``), <Redirect> is followed, <Dial> is noted and waits for the
other side (``dial_result``), <Hangup> or the end of the document ends the
call. Ending the call, or ``hang_up`` at any moment, sends the final status
callback, as Twilio does.

It talks through a ``Poster`` — the Flask test client via the ``twilio``
fixture, or real HTTP with ``gateway.twilio_sim.post_signed`` — so the same
scripted calls run in-process and against gunicorn.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.twilio_sim import new_sid, post_signed

ACCOUNT_SID = "AC" + "a1" * 16
GATEWAY_NUMBER = "+3197010520000"

# (path with query, form) -> (HTTP status, Content-Type or None, body)
Poster = Callable[[str, dict[str, str]], tuple[int, str | None, str]]


def flask_poster(twilio) -> Poster:  # type: ignore[no-untyped-def]
    """Through the ``twilio`` fixture (Flask test client, signed against http://localhost)."""

    def post(path: str, params: dict[str, str]) -> tuple[int, str | None, str]:
        response = twilio.post(path, params)
        return response.status_code, response.mimetype, response.get_data(as_text=True)

    return post


def http_poster(base_url: str, token: str, *, public_base: str | None = None) -> Poster:
    """Over real HTTP, signed for the URL Twilio would have used."""

    def post(path: str, params: dict[str, str]) -> tuple[int, str | None, str]:
        status, body = post_signed(
            base_url.rstrip("/") + path, params, token,
            signed_url=(public_base or base_url).rstrip("/") + path,
        )
        return status, None, body

    return post


@dataclass
class Heard:
    text: str
    language: str | None
    voice: str | None


@dataclass
class SimulatedCall:
    post: Poster
    from_: str = "+31612345678"
    to: str = GATEWAY_NUMBER
    account_sid: str = ACCOUNT_SID
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    heard: list[Heard] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # every TwiML answer, in order
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dialled: list[str] = field(default_factory=list)
    last_recording_sid: str | None = None
    ended: bool = False
    started_at: float = field(default_factory=time.monotonic)
    _pending: list[ET.Element] = field(default_factory=list)
    _waiting: ET.Element | None = None
    _heard_now: list[Heard] = field(default_factory=list)
    _sequence: int = 0

    # --- what the caller does -------------------------------------------------------

    def start(self) -> "SimulatedCall":
        self._request("/twilio/voice", {"CallStatus": "ringing"})
        return self

    def press(self, keys: str) -> "SimulatedCall":
        """Keys on the keypad during the current <Gather>, then silence (Twilio's timeout)."""
        gather = self._expect("Gather")
        num_digits = int(gather.get("numDigits") or 0)
        finish = gather.get("finishOnKey", "#")
        collected = ""
        for key in keys:
            if finish and key in finish:
                if collected:  # finishOnKey only ends a gather that has digits
                    return self._gathered(gather, collected, finished_on=key)
                continue
            collected += key
            if num_digits and len(collected) >= num_digits:
                return self._gathered(gather, collected)
        if collected:  # no more keys: the timeout submits what there is
            return self._gathered(gather, collected)
        return self.silence()

    def silence(self) -> "SimulatedCall":
        """Nothing pressed before the timeout."""
        gather = self._expect("Gather")
        if gather.get("actionOnEmptyResult") == "true":
            return self._gathered(gather, "")
        self._waiting = None  # falls through to the next verb
        self._continue()
        return self

    def record(self, seconds: int = 6, *, end: str = "#") -> "SimulatedCall":
        """Speak a message; ``end`` is the key that ends it, or "hangup"."""
        record = self._expect("Record")
        sid = new_sid("RE")
        params = {
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}",
            "RecordingSid": sid,
            "RecordingDuration": str(seconds),
            "Digits": end,
        }
        self.last_recording_sid = sid
        self._waiting = None
        if end == "hangup":
            self._post_action(record, params, follow=False)
            self._status_callback()
            return self
        self._post_action(record, params)
        return self

    def record_nothing(self) -> "SimulatedCall":
        """An empty recording: Twilio makes no action request and goes on with the next verb."""
        self._expect("Record")
        self._waiting = None
        self._continue()
        return self

    def dial_result(self, status: str = "no-answer") -> "SimulatedCall":
        dial = self._expect("Dial")
        self._waiting = None
        if dial.get("action"):
            self._post_action(dial, {"DialCallStatus": status, "DialCallDuration": "0"})
        else:
            self._continue()
        return self

    def hang_up(self) -> "SimulatedCall":
        self._waiting = None
        self._pending = []
        self._status_callback()
        return self

    # --- what the caller heard -------------------------------------------------------

    @property
    def said(self) -> str:
        """Everything heard since the caller last did something."""
        return " ".join(item.text for item in self._heard_now)

    @property
    def transcript(self) -> str:
        return " ".join(item.text for item in self.heard)

    @property
    def waiting_for(self) -> str | None:
        return None if self._waiting is None else self._waiting.tag

    @property
    def gather(self) -> ET.Element:
        return self._expect("Gather")

    # --- Twilio's side ------------------------------------------------------------------

    def params(self, **extra: str) -> dict[str, str]:
        from_country = "NL" if self.from_.startswith("+31") else ""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "in-progress",
            "Called": self.to,
            "CalledCity": "",
            "CalledCountry": "NL",
            "CalledState": "",
            "CalledZip": "",
            "Caller": self.from_,
            "CallerCity": "",
            "CallerCountry": from_country,
            "CallerState": "",
            "CallerZip": "",
            "Direction": "inbound",
            "From": self.from_,
            "FromCity": "",
            "FromCountry": from_country,
            "FromState": "",
            "FromZip": "",
            "To": self.to,
            "ToCity": "",
            "ToCountry": "NL",
            "ToState": "",
            "ToZip": "",
        }
        params.update(extra)
        return params

    def _request(self, url: str, extra: dict[str, str]) -> None:
        path = _path(url)
        params = self.params(**extra)
        self.requests.append((path, params))
        status, content_type, body = self.post(path, params)
        assert status == 200, f"{path} answered {status}: {body[:300]}"
        if content_type is not None:
            assert content_type == "text/xml", f"{path} answered {content_type}"
        self.documents.append(body)
        root = ET.fromstring(body)
        assert root.tag == "Response", body
        self._heard_now = []
        self._pending = list(root)
        self._waiting = None
        self._continue()

    def replay_last(self) -> tuple[int, str]:
        """Deliver the last request again, as Twilio's retry would; returns (status, body)."""
        path, params = self.requests[-1]
        status, _content_type, body = self.post(path, params)
        return status, body

    def deliver_at_once(self, path: str, params: dict[str, str], times: int = 6) -> list[tuple[int, str]]:
        """Deliver one request ``times`` times at the same moment, as racing retries would;
        returns each delivery's (status, body)."""
        answers: list[tuple[int, str]] = []
        barrier = threading.Barrier(times)

        def deliver() -> None:
            barrier.wait()
            status, _content_type, body = self.post(path, params)
            answers.append((status, body))

        threads = [threading.Thread(target=deliver) for _ in range(times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        return answers

    def _post_action(self, verb: ET.Element, extra: dict[str, str], *, follow: bool = True) -> None:
        url = verb.get("action")
        assert url, f"<{verb.tag}> without action"
        assert verb.get("method", "POST") == "POST"
        if follow:
            self._request(url, extra)
            return
        path = _path(url)
        params = self.params(**extra)
        self.requests.append((path, params))
        status, _content_type, body = self.post(path, params)
        assert status == 200, body
        self.documents.append(body)

    def _gathered(self, gather: ET.Element, digits: str, finished_on: str | None = None) -> "SimulatedCall":
        extra = {"Digits": digits}
        if finished_on:
            extra["FinishedOnKey"] = finished_on
        self._post_action(gather, extra)
        return self

    def _continue(self) -> None:
        while self._pending:
            verb = self._pending.pop(0)
            if verb.tag == "Say":
                self._hear(verb)
            elif verb.tag == "Pause":
                continue
            elif verb.tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        self._hear(child)
                self._waiting = verb
                return
            elif verb.tag in ("Record", "Dial"):
                if verb.tag == "Dial":
                    self.dialled.extend((n.text or "").strip() for n in verb.iter("Number"))
                self._waiting = verb
                return
            elif verb.tag == "Redirect":
                assert verb.get("method", "POST") == "POST"
                self._request((verb.text or "").strip(), {})
                return
            elif verb.tag == "Hangup":
                self._pending = []
                break
            else:
                raise AssertionError(f"unexpected verb <{verb.tag}>")
        self._status_callback()  # the document ended: Twilio hangs up

    def _hear(self, say: ET.Element) -> None:
        text = " ".join("".join(say.itertext()).split())
        item = Heard(text, say.get("language"), say.get("voice"))
        self.heard.append(item)
        self._heard_now.append(item)

    def _expect(self, tag: str) -> ET.Element:
        assert not self.ended, "the call has ended"
        assert self._waiting is not None and self._waiting.tag == tag, (
            f"expected <{tag}>, the call waits for {self.waiting_for}; heard: {self.said!r}"
        )
        return self._waiting

    def _status_callback(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._sequence += 1
        path = "/twilio/voice/status"
        params = self.params(
            CallStatus="completed",
            CallDuration=str(max(1, int(time.monotonic() - self.started_at))),
            CallbackSource="call-progress-events",
            SequenceNumber=str(self._sequence),
            Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        )
        self.requests.append((path, params))
        status, _content_type, body = self.post(path, params)
        assert status == 200, body


_STATE_TOKEN = re.compile(r"&(?:amp;)?c=[A-Za-z0-9_-]+")


def without_state_token(document: str) -> str:
    """The TwiML with the call's sealed state (``&c=…``, ivr_flows/tokens.py) taken out of its URLs.

    Each answer seals the state afresh (a new nonce), and a repeated delivery
    answers from the stored reply, which has none: what the caller hears and
    where each key leads are the same.
    """
    return _STATE_TOKEN.sub("", document)


def _path(url: str) -> str:
    """Twilio resolves a relative action against the document's URL; we keep path and query."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
