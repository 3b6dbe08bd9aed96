"""Spoken messages, for people with a right to hear them.

``GET /recordings/<listing_id>`` streams a listing's recording from Twilio
(HTTP basic auth with our account) to a logged-in broker or an API client
with the bearer token. A broker hears it only while holding an item of that
resident; coordinators always. Recordings are personal data: there is no public link,
the Twilio URL never leaves the server, and every attempt is audited. In the
demo nothing is at Twilio: the phone simulator stores its "recordings" in
the instance folder and they are streamed from there.
"""

from __future__ import annotations

import base64
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, session

from sqlalchemy import select

from models import Broker, Callback, Listing
from models.base import utcnow
from models.privacy import is_erased
from models.audit import audit
from models.recordings import local_recording_path

from .database import get_session
from .security import api_token_valid

log = logging.getLogger("buurtlijn.recordings")
bp = Blueprint("recordings", __name__)

CHUNK = 64 * 1024
FORMATS = {"mp3": "audio/mpeg", "wav": "audio/x-wav"}
UPSTREAM_TIMEOUT = 15


def _logged_in_broker() -> Any | None:
    """The dashboard's logged-in user, when Flask-Login is set up in this app."""
    if getattr(current_app, "login_manager", None) is None:
        return None
    from flask_login import current_user

    if not current_user.is_authenticated or _session_timed_out():
        return None
    return current_user


def _session_timed_out() -> bool:
    """The dashboard's idle and absolute session timeouts count here too."""
    try:
        from .dashboard.auth import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT
    except ImportError:  # a dashboard without timeouts
        return False
    now = time.time()
    return (now - float(session.get("login_at", 0)) > ABSOLUTE_TIMEOUT.total_seconds()
            or now - float(session.get("seen_at", 0)) > IDLE_TIMEOUT.total_seconds())


def _actor_id(user: Any) -> int | None:
    raw = user.get_id() if hasattr(user, "get_id") else getattr(user, "id", None)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def may_hear(broker_id: int | None, listing: Listing) -> bool:
    """A coordinator; the broker who holds (a live claim on) an item of this resident; or a broker matching:
    one who holds an item about a listing of the other kind hears an open listing they may propose."""
    db = get_session()
    broker = db.get(Broker, broker_id) if broker_id is not None else None
    if broker is None or not broker.active:
        return False
    if broker.is_coordinator:
        return True
    holding = (Callback.claimed_by_id == broker.id) & (Callback.status == "claimed") & (
        Callback.lease_expires_at > utcnow())
    if db.scalar(select(Callback.id).where(holding, Callback.resident_id == listing.resident_id).limit(1)) is not None:
        return True
    if listing.status != "open":
        return False
    return db.scalar(select(Callback.id).join(Listing, Listing.id == Callback.listing_id).where(
        holding, Listing.kind != listing.kind).limit(1)) is not None


def _refuse(status: int, listing_id: int, actor_type: str, actor_id: int | None, result: str) -> Response:
    session = get_session()
    audit(session, "recording.stream", actor_type=actor_type, actor_id=actor_id, object_type="listing",
          object_id=listing_id, result=result, remote_addr=request.remote_addr)
    session.commit()
    messages = {401: "Log in or send a valid bearer token.", 403: "Not allowed.", 404: "No recording here.",
                502: "The recording cannot be fetched right now."}
    response = jsonify(error=result, message=messages.get(status, ""))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="buurtlijn"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/recordings/<int:listing_id>")
def stream_recording(listing_id: int):  # type: ignore[no-untyped-def]
    if api_token_valid():
        actor_type, actor_id = "api", None
    else:
        user = _logged_in_broker()
        if user is None:
            # Credentials that were offered and refused are forbidden; none at all, unauthorised.
            offered = request.headers.get("Authorization")
            return _refuse(403 if offered else 401, listing_id, "anonymous", None, "denied")
        actor_type, actor_id = "broker", _actor_id(user)
        if getattr(getattr(user, "broker", None), "is_viewer", False):  # the municipality: reports only
            return _refuse(403, listing_id, actor_type, actor_id, "denied")

    listing = get_session().get(Listing, listing_id)
    if listing is None or not listing.has_recording or not listing.recording_sid or is_erased(listing.resident):
        return _refuse(404, listing_id, actor_type, actor_id, "not_found")
    if actor_type == "broker" and not may_hear(actor_id, listing):
        return _refuse(403, listing_id, actor_type, actor_id, "not_holding")
    wanted = request.args.get("format", "mp3")
    extension = wanted if wanted in FORMATS else "mp3"

    if current_app.config.get("SENDS_FOR_REAL"):
        try:
            upstream, content_type = _open_at_twilio(listing.recording_sid, extension)
        except urllib.error.HTTPError as error:
            error.close()
            return _refuse(404 if error.code == 404 else 502, listing_id, actor_type, actor_id,
                           "gone" if error.code == 404 else "upstream_error")
        except (urllib.error.URLError, OSError):
            log.warning("recording for listing %s could not be fetched from Twilio", listing_id)
            return _refuse(502, listing_id, actor_type, actor_id, "upstream_error")
        body: Iterator[bytes] = _chunks(upstream)
    else:
        path = local_recording_path(current_app.instance_path, listing.recording_sid)
        if path is None or not path.is_file():
            return _refuse(404, listing_id, actor_type, actor_id, "gone")
        extension, content_type = "wav", FORMATS["wav"]
        body = _file_chunks(path)

    session = get_session()
    audit(session, "recording.stream", actor_type=actor_type, actor_id=actor_id, object_type="listing",
          object_id=listing_id, result="ok", remote_addr=request.remote_addr, detail={"format": extension})
    session.commit()
    response = Response(body, mimetype=content_type, direct_passthrough=True)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Content-Disposition"] = f'inline; filename="listing-{listing_id}.{extension}"'
    return response


def _open_at_twilio(recording_sid: str, extension: str) -> tuple[Any, str]:
    """The media at Twilio (or the configured TWILIO_API_BASE_URL), with our account's credentials."""
    config = current_app.config
    account, token = config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]
    url = f"{config['BASE_API_URL']}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}.{extension}"
    credentials = base64.b64encode(f"{account}:{token}".encode()).decode()
    upstream = urllib.request.urlopen(  # noqa: S310 - our configured Twilio base URL
        urllib.request.Request(url, headers={"Authorization": f"Basic {credentials}"}), timeout=UPSTREAM_TIMEOUT
    )
    return upstream, upstream.headers.get_content_type() or FORMATS[extension]


def _chunks(upstream: Any) -> Iterator[bytes]:
    try:
        while chunk := upstream.read(CHUNK):
            yield chunk
    finally:
        upstream.close()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
