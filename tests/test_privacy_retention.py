"""Retention: each kind of personal data goes when its time is up, by the erasure's own rules; a day's sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from gateway import create_app
from gateway.config import ConfigError
from gateway.database import get_database
from models import AuditEvent, Call, Callback, Listing, LoginThrottle, Match, Message, Resident
from models.base import utcnow
from models.privacy import is_erased
from models.residents import find_resident
from tests.conftest import app_config
from tests.delivery_support import HELPER, REQUESTER, add_listing, post_match
from workers.privacy_jobs import sweep_privacy

OLD = dt.timedelta(days=400)
QUIET = "+31612345077"
FRESH = "+31612345088"


def test_the_retention_is_a_setting_checked_at_start_up(tmp_path, fake_twilio):
    assert create_app(app_config(f"sqlite:///{tmp_path / 'a.sqlite3'}", fake_twilio)).config[
        "BUURTLIJN_RETENTION_DAYS"] == 365
    for value in ("een jaar", "0", "-5"):
        with pytest.raises(ConfigError) as refused:
            create_app(app_config(f"sqlite:///{tmp_path / 'b.sqlite3'}", fake_twilio, BUURTLIJN_RETENTION_DAYS=value))
        assert "BUURTLIJN_RETENTION_DAYS" in str(refused.value)


def _age(session, model, row_id: int, **columns) -> None:  # type: ignore[no-untyped-def]
    session.execute(update(model).where(model.id == row_id).values(**columns))


def test_each_kind_goes_when_its_time_is_up(notify_app, webhooks, fake_twilio, session):
    now = utcnow()
    long_ago = now - OLD
    # A request that was helped, long ago, with a match and a broker's note; and one closed last week.
    old_request = add_listing(notify_app, REQUESTER, "request")
    offer = add_listing(notify_app, HELPER, "offer", postcode="2011")
    match_id = post_match(notify_app.test_client(), old_request, offer, note="kent mevrouw").get_json()["id"]
    recent_request = add_listing(notify_app, REQUESTER, "request")
    webhooks.sms(QUIET, "VRAAG hulp met de tuin 2034")  # someone who never came back
    webhooks.sms(FRESH, "VRAAG hulp met de computer 2034")  # and someone who texted today
    with get_database(notify_app).transaction() as tx:
        requester = find_resident(tx, REQUESTER)
        quiet = find_resident(tx, QUIET)
        quiet_listing = tx.scalars(select(Listing.id).where(Listing.resident_id == quiet.id)).one()
        for listing_id in (old_request, quiet_listing):
            _age(tx, Listing, listing_id, status="done", closed_at=long_ago, updated_at=long_ago,
                 description="tuin en boodschappen")
        _age(tx, Listing, recent_request, status="done", closed_at=now - dt.timedelta(days=7),
             description="nog vers")
        _age(tx, Match, match_id, status="done", updated_at=long_ago)
        item = tx.scalars(select(Callback).where(Callback.listing_id == old_request)).first()
        if item is None:
            from models.queue import queue_callback

            item = queue_callback(tx, "new_listing", resident_id=requester.id, listing_id=old_request)
        item.status, item.closed_at, item.note = "done", long_ago, "belde, dochter helpt"
        tx.execute(update(Message).where(Message.resident_id.in_((requester.id, quiet.id)))
                   .values(created_at=long_ago))
        _age(tx, Resident, quiet.id, last_contact_at=long_ago, created_at=long_ago)
        tx.execute(update(Callback).where(Callback.resident_id == quiet.id)
                   .values(status="done", closed_at=long_ago, dedupe_key=None))
        tx.add(Call(call_sid="CA" + "1" * 32, direction="inbound", resident_id=requester.id, raw_from=REQUESTER,
                    data={"postcode": "2034"}, reply_twiml="<Response/>", status="finished", created_at=long_ago))
        tx.add(LoginThrottle(key="addr:203.0.113.5", failures=3, window_started_at=now - dt.timedelta(days=2)))
        tx.add(LoginThrottle(key="addr:203.0.113.6", failures=3, window_started_at=now - dt.timedelta(hours=1)))

    with notify_app.app_context():
        assert sweep_privacy(notify_app, now) == 1
    session.expire_all()

    old = session.get(Listing, old_request)
    assert old.description is None and old.postcode is None and old.status == "done"  # still counted
    recent = session.get(Listing, recent_request)
    assert recent.description == "nog vers" and recent.postcode == "2034"
    assert session.get(Match, match_id).note is None
    assert session.get(Callback, item.id).note is None
    old_bodies = session.scalars(select(Message.body).where(
        Message.resident_id == requester.id, Message.created_at < now - dt.timedelta(days=365))).all()
    assert old_bodies and all(body == "" for body in old_bodies)
    call = session.scalars(select(Call).where(Call.call_sid == "CA" + "1" * 32)).one()
    assert call.raw_from is None and call.reply_twiml is None and call.data == {}
    # Someone with nothing going on and no contact for the whole time is forgotten entirely ...
    assert find_resident(session, QUIET) is None and is_erased(session.get(Resident, quiet.id))
    # ... while the requester (in touch this year) and the one who texted today keep their number.
    assert find_resident(session, REQUESTER) is not None and find_resident(session, FRESH) is not None
    assert session.scalars(select(LoginThrottle.key)).all() == ["addr:203.0.113.6"]
    [run] = session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.apply")).all()
    assert run.detail["days"] == 365 and run.detail["residents"] == 1 and run.detail["login_throttles"] == 1

    # Once a day: the next sweeps find the run in the audit log and leave it; a day later it runs again.
    with notify_app.app_context():
        assert sweep_privacy(notify_app, utcnow() + dt.timedelta(hours=23)) == 0
        assert sweep_privacy(notify_app, utcnow() + dt.timedelta(hours=25)) == 1


def test_a_shorter_retention_takes_effect(database_url, fake_twilio):
    from tests.conftest import running_app

    with running_app(app_config(database_url, fake_twilio, BUURTLIJN_RETENTION_DAYS="30")) as app:
        listing_id = add_listing(app, REQUESTER, "request")
        with get_database(app).transaction() as tx:
            _age(tx, Listing, listing_id, status="cancelled", closed_at=utcnow() - dt.timedelta(days=31),
                 description="te oud")
        with app.app_context():
            sweep_privacy(app, utcnow())
        with get_database(app).transaction() as tx:
            assert tx.get(Listing, listing_id).description is None
            assert tx.scalar(select(func.count()).select_from(Listing)) == 1
