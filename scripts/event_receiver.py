"""A small receiver of Buurtlijn's events: verifies each one's signature and prints it.

    python scripts/event_receiver.py --port 8099 --secret whsec_...

(or the secret in BUURTLIJN_WEBHOOK_SECRET), then start Buurtlijn with
BUURTLIJN_WEBHOOK_URL=http://127.0.0.1:8099/events and the same secret. Each
event is printed as one line: its webhook-id, its type, whether the signature
holds (checked by the Standard Webhooks reference library) and its data. An
event whose signature does not hold is answered 401, so Buurtlijn tries again;
a webhook-id seen before is printed as "again" and answered 204 like the first.
``--status 503`` answers every event with that status instead (to watch
retries); stop the receiver with Ctrl-C and start it again to watch Buurtlijn
deliver what it missed.

The tests and bench/events.py use ``EventReceiver`` from here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any
    at: float  # time.time() on arrival
    answered: int = 0  # the status it was answered


@dataclass
class EventReceiver:
    """An HTTP server on 127.0.0.1 that verifies and keeps every event it is sent."""

    secret: str
    port: int = 0
    status: int = 204  # what a verified event is answered
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)
    quiet: bool = True
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verifier = Webhook(self.secret)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> "EventReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as a real receiver behind a proxy

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.take(dict(self.headers.items()), body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "EventReceiver":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    def take(self, headers: dict[str, str], body: bytes) -> int:
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            payload = self.verifier.verify(body, lower)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        webhook_id = lower.get("webhook-id", "")
        answer = self.status if verified else 401
        with self._lock:
            again = any(r.webhook_id == webhook_id and r.answered < 300 for r in self.received)
            self.received.append(Received(webhook_id, lower, body, verified, payload, time.time(), answer))
        if not self.quiet:
            shown = json.dumps(payload["data"], ensure_ascii=False) if payload else body[:200].decode(errors="replace")
            mark = "verified" if verified else "SIGNATURE DOES NOT HOLD"
            print(f"{webhook_id} {payload['type'] if payload else '?'} {mark}{' (again)' if again else ''}: {shown}",
                  flush=True)
        return answer

    def verified(self) -> list[Received]:
        """What was verified and taken (answered 2xx), in order of arrival."""
        with self._lock:
            return [r for r in self.received if r.verified and r.answered < 300]

    def events(self) -> list[dict[str, Any]]:
        """The payloads that were verified and taken, in order of arrival."""
        return [r.payload for r in self.verified()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", default=os.environ.get("BUURTLIJN_WEBHOOK_SECRET"),
                        help="whsec_… (default: $BUURTLIJN_WEBHOOK_SECRET)")
    parser.add_argument("--status", type=int, default=204, help="the answer to a verified event (default 204)")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give --secret or set BUURTLIJN_WEBHOOK_SECRET")
    receiver = EventReceiver(args.secret, port=args.port, status=args.status, quiet=False).start()
    print(f"listening on {receiver.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
