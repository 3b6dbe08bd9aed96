"""Recordings: streamed from Twilio only to a logged-in broker or the API,
audited, never linked; deleted (ours and Twilio's copy) after the retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time

import pytest
from flask_login import LoginManager, UserMixin
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioRestException

from gateway.database import get_database
from models import AuditEvent, Callback, Listing
from models.accounts import create_broker
from models.base import utcnow
from tests.call_simulator import SimulatedCall, flask_poster
from tests.conftest import ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, GATEWAY_NUMBER, ROOT, api_get
from tests.fake_twilio import RECORDING_WAV
from workers.voice_jobs import delete_recording_now

TOKEN = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def recorded(twilio, db) -> Listing:  # type: ignore[no-untyped-def]
    """A request made by phone, with its spoken message."""
    call = SimulatedCall(flask_poster(twilio)).start()
    call.press("1").press("1").press("2034").press("1").press("1").record(7)
    listing = db.scalars(select(Listing)).one()
    assert listing.recording_sid == call.last_recording_sid
    return listing


def audits(db, action: str = "recording.stream") -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _leaks(response, listing: Listing) -> bool:  # type: ignore[no-untyped-def]
    text = response.get_data(as_text=True) if not response.mimetype.startswith("audio") else ""
    exposed = text + str(dict(response.headers))
    return "Recordings/" in exposed or (listing.recording_sid or "") in exposed or "twilio.com" in exposed


def test_without_login_or_token_there_is_no_recording(client, recorded, db):
    anonymous = client.get(f"/recordings/{recorded.id}")
    assert anonymous.status_code == 401
    wrong = client.get(f"/recordings/{recorded.id}", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    for response in (anonymous, wrong):
        assert not _leaks(response, recorded)
        assert response.headers["Cache-Control"] == "no-store"
    assert [(a.result, a.actor_type, a.object_id) for a in audits(db)] == [
        ("denied", "anonymous", str(recorded.id)), ("denied", "anonymous", str(recorded.id))]


def test_the_api_token_streams_the_recording_from_twilio(client, recorded, db, fake_twilio):
    response = client.get(f"/recordings/{recorded.id}", headers=TOKEN)
    assert response.status_code == 200
    assert response.data == RECORDING_WAV
    assert response.mimetype == "audio/mpeg"
    assert response.headers["Cache-Control"] == "no-store, private"
    assert not _leaks(response, recorded)
    fetched = [r for r in fake_twilio.requests if r.resource == "recordings"][-1]
    assert fetched.method == "GET" and fetched.auth_ok
    assert fetched.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recorded.recording_sid}.mp3"

    wav = client.get(f"/recordings/{recorded.id}?format=wav", headers=TOKEN)
    assert (wav.status_code, wav.mimetype, wav.data) == (200, "audio/x-wav", RECORDING_WAV)
    assert [(a.result, a.actor_type, a.detail) for a in audits(db)] == [
        ("ok", "api", {"format": "mp3"}), ("ok", "api", {"format": "wav"})]
    assert audits(db)[0].remote_addr is not None


def _log_in(app, client, db, *, seen_ago: float = 0.0) -> int:  # type: ignore[no-untyped-def]
    broker = create_broker(db, email="mila@buuv.example", name="Mila", role="broker", phone=None,
                           password="een lang wachtwoord")
    db.commit()
    if getattr(app, "login_manager", None) is None:  # the dashboard's LoginManager is not there
        manager = LoginManager(app)

        class User(UserMixin):
            def __init__(self, user_id: str):
                self.id = user_id

        manager.user_loader(User)
    now = time.time()
    with client.session_transaction() as session:
        session["_user_id"] = str(broker.id)
        session["_fresh"] = True
        session["login_at"] = now - seen_ago
        session["seen_at"] = now - seen_ago
    return broker.id


def _hold_item_of(db, listing: Listing, broker_id: int) -> None:  # type: ignore[no-untyped-def]
    db.execute(update(Callback).where(Callback.resident_id == listing.resident_id).values(
        status="claimed", claimed_by_id=broker_id, lease_expires_at=utcnow() + dt.timedelta(minutes=15)))
    db.commit()


def test_a_logged_in_broker_can_listen_and_is_audited(app, client, recorded, db):
    broker_id = _log_in(app, client, db)
    _hold_item_of(db, recorded, broker_id)
    response = client.get(f"/recordings/{recorded.id}")
    assert (response.status_code, response.data) == (200, RECORDING_WAV)
    [event] = audits(db)
    assert (event.actor_type, event.actor_id, event.result, event.object_type) == ("broker", broker_id, "ok", "listing")


def test_an_idle_broker_session_is_refused(app, client, recorded, db):
    _log_in(app, client, db, seen_ago=3 * 3600)
    assert client.get(f"/recordings/{recorded.id}").status_code == 401


def test_the_route_works_without_a_login_manager(app, client, recorded, monkeypatch):
    if getattr(app, "login_manager", None) is not None:
        monkeypatch.delattr(app, "login_manager")
    assert client.get(f"/recordings/{recorded.id}").status_code == 401
    assert client.get(f"/recordings/{recorded.id}", headers=TOKEN).status_code == 200


def test_no_recording_is_a_404(client, twilio, db):
    SimulatedCall(flask_poster(twilio)).start().press("1").press("1").press("2034").press("1").press("1") \
        .record_nothing()
    listing = db.scalars(select(Listing)).one()
    assert client.get(f"/recordings/{listing.id}", headers=TOKEN).status_code == 404
    assert client.get("/recordings/99999", headers=TOKEN).status_code == 404
    assert [a.result for a in audits(db)] == ["not_found", "not_found"]


def test_twilio_unreachable_is_a_502_not_an_error_page(client, recorded, fake_twilio):
    fake_twilio.stop()
    response = client.get(f"/recordings/{recorded.id}", headers=TOKEN)
    assert response.status_code == 502
    assert not _leaks(response, recorded)


def test_twilio_failing_is_a_502(client, recorded, fake_twilio):
    fake_twilio.fail_next("recordings", status=500)
    assert client.get(f"/recordings/{recorded.id}", headers=TOKEN).status_code == 502


def test_no_recording_url_or_phone_number_in_the_logs(client, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    call = SimulatedCall(flask_poster(twilio)).start()
    call.press("1").press("1").press("2034").press("1").press("1").record(7)
    client.get("/recordings/1", headers=TOKEN)
    client.get("/recordings/1")
    assert "Recordings/RE" not in caplog.text
    assert "612345678" not in caplog.text


# --- retention -------------------------------------------------------------------------------


def _age(db, listing: Listing, days: int) -> None:  # type: ignore[no-untyped-def]
    db.execute(update(Listing).where(Listing.id == listing.id).values(created_at=utcnow() - dt.timedelta(days=days)))
    db.commit()


def test_the_sweep_deletes_recordings_past_retention_at_twilio_and_here(app, client, twilio, recorded, db,
                                                                        fake_twilio):
    sid = recorded.recording_sid
    _age(db, recorded, 91)
    call = SimulatedCall(flask_poster(twilio), from_="+31687654321").start()
    call.press("2").press("3").press("2011").press("1").press("1").record(4)  # a recent one, kept
    from workers.jobs import sweep

    with app.app_context():
        sweep()
    assert fake_twilio.deleted_recordings() == [sid]
    db.expire_all()
    old, recent = db.scalars(select(Listing).order_by(Listing.id)).all()
    assert not old.has_recording and old.recording_url is None and old.recording_deleted_at is not None
    assert old.recording_sid == sid  # kept so the audit trail can name what was removed
    assert recent.has_recording
    by_id = {item["id"]: item for item in api_get(client, "/api/v1/listings")["listings"]}
    assert (by_id[old.id]["has_recording"], by_id[recent.id]["has_recording"]) == (False, True)
    assert client.get(f"/recordings/{old.id}", headers=TOKEN).status_code == 404
    [deleted] = audits(db, "recording.delete")
    assert (deleted.actor_type, deleted.object_id) == ("system", str(old.id))
    with app.app_context():
        sweep()  # nothing left to do
    assert fake_twilio.deleted_recordings() == [sid]


def test_a_failed_delete_at_twilio_changes_nothing_and_is_tried_again(app, recorded, db, fake_twilio):
    _age(db, recorded, 100)
    fake_twilio.fail_next("recordings", status=503, method="DELETE")
    with pytest.raises(TwilioRestException):
        delete_recording_now(app, recorded.id)
    db.expire_all()
    assert db.get(Listing, recorded.id).has_recording
    assert delete_recording_now(app, recorded.id) is True
    assert delete_recording_now(app, recorded.id) is False  # a second run has nothing to do
    assert fake_twilio.deleted_recordings() == [recorded.recording_sid]


def test_a_recording_twilio_no_longer_has_counts_as_deleted(app, recorded, db, fake_twilio):
    fake_twilio.make_client().recordings(recorded.recording_sid).delete()
    assert delete_recording_now(app, recorded.id) is True
    db.expire_all()
    assert not db.get(Listing, recorded.id).has_recording


def test_a_retention_of_zero_days_keeps_recordings(database_url, fake_twilio, twilio):
    from gateway import create_app
    from tests.conftest import app_config
    from workers.voice_jobs import expired_recording_ids

    app = create_app(app_config(database_url, fake_twilio, BUURTLIJN_RECORDING_RETENTION_DAYS=0))
    assert expired_recording_ids(app, utcnow() + dt.timedelta(days=3650)) == []
    get_database(app).dispose()


def test_purge_recordings_command(database_url, recorded, db, fake_twilio):
    _age(db, recorded, 120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BUURTLIJN_", "REDIS_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY="cli-test", PYTHONPATH=str(ROOT), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
               TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_PHONE_NUMBER=GATEWAY_NUMBER,
               TWILIO_API_BASE_URL=fake_twilio.base_url, BUURTLIJN_RECORDING_RETENTION_DAYS="90")
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "purge-recordings"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 recording(s)" in result.stdout
    assert fake_twilio.deleted_recordings() == [recorded.recording_sid]


def test_a_broker_not_holding_an_item_of_the_resident_may_not_listen(app, client, recorded, db):
    broker_id = _log_in(app, client, db)
    assert client.get(f"/recordings/{recorded.id}").status_code == 403
    [event] = audits(db)
    assert (event.actor_id, event.result) == (broker_id, "not_holding")
    _hold_item_of(db, recorded, broker_id)
    db.execute(update(Callback).values(lease_expires_at=utcnow() - dt.timedelta(minutes=1)))  # the claim ran out
    db.commit()
    assert client.get(f"/recordings/{recorded.id}").status_code == 403


def test_a_coordinator_may_listen_and_every_play_is_audited(app, client, recorded, db):
    broker_id = _log_in(app, client, db)
    from models import Broker

    db.get(Broker, broker_id).role = "coordinator"
    db.commit()
    for _ in range(2):
        assert client.get(f"/recordings/{recorded.id}").status_code == 200
    assert [(e.actor_id, e.result) for e in audits(db)] == [(broker_id, "ok")] * 2


def test_the_recording_of_an_erased_resident_is_gone(app, client, recorded, db):
    from models.privacy import erase_resident

    with app.app_context(), get_database(app).transaction() as session:
        erase_resident(session, session.get(Listing, recorded.id).resident, actor_type="system", via="test")
    assert client.get(f"/recordings/{recorded.id}", headers=TOKEN).status_code == 404
