"""Matches and notifications through PostgreSQL, Redis, a real `buurtlijn worker` process and the fake Twilio.

In every test the fake Twilio ends up with exactly the messages (and calls)
intended, none twice.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from gateway import create_app
from gateway.database import get_database
from models import Call, Callback, Match, Message, Resident
from models.base import utcnow
from tests.conftest import DeliveryWorker, TwilioWebhooks, delivery_config, running_queued_app, wait_until
from tests.delivery_support import (
    HELPER,
    LANDLINE_HELPER,
    REQUESTER,
    PhoneCall,
    add_listing,
    bodies,
    gather_of,
    post_match,
    say_text,
)


def _no_doubles(fake) -> None:  # type: ignore[no-untyped-def]
    sent = Counter((m["To"], m["Body"]) for m in fake.messages())
    assert all(n == 1 for n in sent.values()), [k for k, n in sent.items() if n > 1]


def _propose(app) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    request_id = add_listing(app, REQUESTER, "request")
    offer_id = add_listing(app, HELPER, "offer")
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    return request_id, offer_id, response.get_json()["id"]


def test_sms_cycle_through_the_worker(delivery_app, delivery_worker, fake_twilio):
    webhooks = TwilioWebhooks(delivery_app.test_client())
    _request_id, _offer_id, match_id = _propose(delivery_app)
    assert fake_twilio.wait_for(2, timeout=20), delivery_worker.log()  # proposal + "we are looking"

    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    assert fake_twilio.wait_for(4, timeout=20), delivery_worker.log()  # the JA's reply + good news
    webhooks.sms(REQUESTER, "Dank u! Tot zaterdag.")
    assert fake_twilio.wait_for(5, timeout=20), delivery_worker.log()
    assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: Dank u! Tot zaterdag."
    webhooks.sms(HELPER, "KLAAR")
    assert fake_twilio.wait_for(6, timeout=20), delivery_worker.log()

    with get_database(delivery_app).transaction() as session:
        assert session.get(Match, match_id).status == "done"
    assert len(fake_twilio.messages()) == 6
    _no_doubles(fake_twilio)


def test_voice_cycle_through_the_worker(delivery_app, delivery_worker, fake_twilio):
    webhooks = TwilioWebhooks(delivery_app.test_client())
    request_id = add_listing(delivery_app, REQUESTER, "request")
    offer_id = add_listing(delivery_app, LANDLINE_HELPER, "offer")
    match_id = post_match(delivery_app.test_client(), request_id, offer_id).get_json()["id"]
    assert fake_twilio.wait_for(lambda f: len(f.calls()) == 1, timeout=20), delivery_worker.log()
    [created] = fake_twilio.calls()
    call_id = int(created["Url"].rsplit("/", 1)[1])
    assert wait_until(lambda: _call_status(delivery_app, call_id) == "dialling", timeout=10)

    call = PhoneCall(webhooks, call_id, created["sid"], LANDLINE_HELPER)
    assert "Druk 1 voor ja" in say_text(gather_of(call.answer()))
    assert call.press("1").find("./Hangup") is not None
    assert call.status("completed") == 200
    assert fake_twilio.wait_for(2, timeout=20), delivery_worker.log()  # "we are looking" + good news
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Goed nieuws!")
    with get_database(delivery_app).transaction() as session:
        assert session.get(Match, match_id).status == "accepted"
        assert session.get(Call, call_id).status == "finished"
    assert len(fake_twilio.calls()) == 1 and len(fake_twilio.messages()) == 2
    _no_doubles(fake_twilio)


def _call_status(app, call_id: int) -> str:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        return session.get(Call, call_id).status


def _message(app, to: str) -> Message:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        return session.scalars(select(Message).where(Message.phone == to, Message.direction == "outbound")
                               .order_by(Message.id)).first()


@pytest.mark.parametrize(
    ("status", "code"), [(500, None), (503, None), (429, 20429), (400, 20429)], ids=["500", "503", "429", "20429"]
)
def test_busy_twilio_is_retried_with_growing_back_off(delivery_app, delivery_worker, fake_twilio, status, code):
    fake_twilio.fail_next("messages", status, code, times=2, method="POST")
    request_id = add_listing(delivery_app, REQUESTER, "request")
    offer_id = add_listing(delivery_app, HELPER, "offer")
    with get_database(delivery_app).transaction() as session:  # the requester has opted out: one message intended
        session.execute(update(Resident).where(Resident.phone == REQUESTER).values(opted_out=True))
    assert post_match(delivery_app.test_client(), request_id, offer_id).status_code == 201

    assert fake_twilio.wait_for(1, timeout=30), delivery_worker.log()
    failures = [r for r in fake_twilio.requests if r.resource == "messages" and r.method == "POST"]
    assert [r.status for r in failures] == [status, status, 201]
    waits_from = failures[:2]
    if status >= 500:  # Twilio may have stored it: it is asked first (after the settle time), then the back-off runs
        lookups = [r for r in fake_twilio.requests if r.resource == "messages" and r.method == "GET"]
        assert [r.at for r in sorted(failures + lookups, key=lambda r: r.at)] == [
            failures[0].at, lookups[0].at, failures[1].at, lookups[1].at, failures[2].at]
        waits_from = lookups
    gaps = [b.at - a.at for a, b in zip(waits_from, failures[1:])]
    # 1 s, then 2 s (BUURTLIJN_SEND_BACKOFF_SECONDS); RQ's scheduler runs a delayed job in the whole
    # second after its time, so each gap may be up to a second or two longer, and not in step.
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9
    assert wait_until(lambda: _message(delivery_app, HELPER).status == "queued", timeout=10)
    assert _message(delivery_app, HELPER).attempts == 3
    assert len(fake_twilio.messages()) == 1


@pytest.mark.parametrize(
    ("code", "number_status", "reason"),
    [(21610, "ok", None), (21211, "invalid", "bad_number"), (21614, "not_mobile", "bad_number")],
)
def test_permanent_errors_stop_and_show(delivery_app, delivery_worker, fake_twilio, code, number_status, reason):
    fake_twilio.fail_for_to(HELPER, 400, code)
    _request_id, _offer_id, match_id = _propose(delivery_app)
    assert fake_twilio.wait_for(1, timeout=20)  # the requester's "we are looking" goes out
    assert wait_until(lambda: _message(delivery_app, HELPER).status == "failed", timeout=20), delivery_worker.log()

    with get_database(delivery_app).transaction() as session:
        helper = session.scalars(select(Resident).where(Resident.phone == HELPER)).one()
        assert helper.opted_out is (code == 21610)
        assert helper.number_status == number_status
        reasons = session.scalars(select(Callback.reason).where(Callback.resident_id == helper.id)).all()
        assert reasons == ([reason] if reason else [])
        message = _message(delivery_app, HELPER)
        assert message.error_code == code and message.attempts == 1
    attempts = [r for r in fake_twilio.requests if r.method == "POST" and r.form.get("To") == HELPER]
    assert len(attempts) == 1  # not retried
    assert len(fake_twilio.messages()) == 1 and bodies(fake_twilio, HELPER) == []
    if code == 21610:  # nothing is sent to them again, and a JA to the proposal they never got accepts nothing
        webhooks = TwilioWebhooks(delivery_app.test_client())
        webhooks.sms(HELPER, "JA")
        assert wait_until(lambda: _reasons(delivery_app, HELPER) == ["unrecognised_message"], timeout=20)
        assert _match_status(delivery_app, match_id) == "proposed"
        assert len(fake_twilio.messages()) == 1 and bodies(fake_twilio, HELPER) == []


def _reasons(app, phone: str) -> list[str]:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        helper = session.scalars(select(Resident).where(Resident.phone == phone)).one()
        return list(session.scalars(select(Callback.reason).where(Callback.resident_id == helper.id)))


def _match_status(app, match_id: int) -> str:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        return session.get(Match, match_id).status


def test_redis_down_the_action_succeeds_and_the_sweep_sends_once_back(
    pg_database_url, fake_twilio, private_redis, tmp_path
):
    app = create_app(delivery_config(pg_database_url, fake_twilio, private_redis.url))
    worker = DeliveryWorker(dict(app.config), tmp_path / "worker.log").start()
    try:
        _propose(app)  # Redis up: goes out at once
        assert fake_twilio.wait_for(2, timeout=20), worker.log()

        private_redis.stop()
        request_id = add_listing(app, "+31612345011", "request")
        offer_id = add_listing(app, "+31612345012", "offer")
        response = post_match(app.test_client(), request_id, offer_id)
        assert response.status_code == 201  # the broker's action does not wait for Redis
        with get_database(app).transaction() as session:
            assert session.scalar(select(func.count(Message.id)).where(Message.status == "pending")) == 2

        private_redis.start()  # the same port, empty: every job is gone
        # RQ's worker reconnects with a growing back-off; on a busy machine that takes a while.
        assert fake_twilio.wait_for(4, timeout=120), worker.log()
        assert wait_until(lambda: _pending(app) == 0, timeout=20)
        assert len(fake_twilio.messages()) == 4
        _no_doubles(fake_twilio)
    finally:
        worker.stop()
        get_database(app).dispose()


def _pending(app) -> int:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        return session.scalar(select(func.count(Message.id)).where(Message.status.in_(("pending", "submitting"))))


def _propose_and_kill_the_worker_on(request_seen, app, fake, request_id, offer_id, log):  # type: ignore[no-untyped-def]
    """Propose the match, then SIGKILL the worker as soon as Twilio has a request it is still answering."""
    worker = DeliveryWorker(dict(app.config), log).start()
    try:
        assert post_match(app.test_client(), request_id, offer_id).status_code == 201
        assert wait_until(lambda: any(request_seen(r) for r in fake.requests), timeout=20), worker.log()
        worker.kill()
    finally:
        worker.stop()


def test_worker_killed_while_twilio_answers_sends_once(delivery_app, fake_twilio, tmp_path):
    fake_twilio.delay = 3.0  # the kill lands while Twilio is still answering
    with get_database(delivery_app).transaction() as session:  # one message intended: the helper's proposal
        add_listing(delivery_app, REQUESTER, "request")
        session.execute(update(Resident).where(Resident.phone == REQUESTER).values(opted_out=True))
    request_id = add_listing(delivery_app, REQUESTER, "request", category="company")
    offer_id = add_listing(delivery_app, HELPER, "offer")
    _propose_and_kill_the_worker_on(lambda r: r.method == "POST", delivery_app, fake_twilio, request_id, offer_id,
                                    tmp_path / "w1.log")
    assert fake_twilio.wait_for(1, timeout=10)  # Twilio did take it, but the worker never heard
    message = _message(delivery_app, HELPER)
    assert message.status == "submitting" and message.twilio_sid is None
    fake_twilio.delay = 0.0
    with get_database(delivery_app).transaction() as session:  # time passes: the row is stale now
        session.execute(update(Message).where(Message.id == message.id)
                        .values(updated_at=utcnow() - dt.timedelta(minutes=3)))

    second = DeliveryWorker(dict(delivery_app.config), tmp_path / "w2.log").start()
    try:
        assert wait_until(lambda: _message(delivery_app, HELPER).status == "queued", timeout=30), second.log()
    finally:
        second.stop()
    assert _message(delivery_app, HELPER).twilio_sid == fake_twilio.messages()[0]["sid"]
    assert len(fake_twilio.messages()) == 1


def test_worker_killed_before_twilio_heard_sends_it_then(delivery_app, fake_twilio, tmp_path):
    request_id = add_listing(delivery_app, REQUESTER, "request")
    offer_id = add_listing(delivery_app, HELPER, "offer")
    fake_twilio.stop()  # nothing can reach Twilio while the "dead worker" holds the row
    assert post_match(delivery_app.test_client(), request_id, offer_id).status_code == 201
    with get_database(delivery_app).transaction() as session:  # as a worker killed right after its claim leaves it
        session.execute(update(Message).values(status="submitting", attempts=1,
                                               updated_at=utcnow() - dt.timedelta(minutes=3)))
    fake_twilio.start()
    worker = DeliveryWorker(dict(delivery_app.config), tmp_path / "w.log").start()
    try:
        assert fake_twilio.wait_for(2, timeout=30), worker.log()
        assert wait_until(lambda: _pending(delivery_app) == 0, timeout=20)
    finally:
        worker.stop()
    assert len(fake_twilio.messages()) == 2
    _no_doubles(fake_twilio)


def test_worker_killed_while_placing_a_call_dials_once(delivery_app, fake_twilio, tmp_path):
    fake_twilio.delay = 3.0
    with get_database(delivery_app).transaction():
        add_listing(delivery_app, "+31235551299", "request")
    request_id = add_listing(delivery_app, "+31235551299", "request", category="company")
    offer_id = add_listing(delivery_app, LANDLINE_HELPER, "offer")
    _propose_and_kill_the_worker_on(lambda r: r.resource == "calls", delivery_app, fake_twilio, request_id, offer_id,
                                    tmp_path / "w1.log")
    assert fake_twilio.wait_for(lambda f: len(f.calls()) == 1, timeout=10)
    fake_twilio.delay = 0.0
    with get_database(delivery_app).transaction() as session:
        call = session.scalars(select(Call)).one()
        assert call.status == "submitting"
        call.updated_at = utcnow() - dt.timedelta(minutes=3)
        call_id = call.id
    second = DeliveryWorker(dict(delivery_app.config), tmp_path / "w2.log").start()
    try:
        assert wait_until(lambda: _call_status(delivery_app, call_id) == "dialling", timeout=30), second.log()
    finally:
        second.stop()
    with get_database(delivery_app).transaction() as session:
        assert session.get(Call, call_id).call_sid == fake_twilio.calls()[0]["sid"]
    assert len(fake_twilio.calls()) == 1


def test_a_burst_is_paced_per_gateway_number(pg_database_url, fake_twilio, redis_url, tmp_path):
    config = delivery_config(pg_database_url, fake_twilio, redis_url, BUURTLIJN_SMS_PER_SECOND=10)
    with running_queued_app(config) as app:
        worker = DeliveryWorker(dict(app.config), tmp_path / "w.log").start()
        try:
            for n in range(12):
                request_id = add_listing(app, f"+316123451{n:02d}", "request")
                offer_id = add_listing(app, f"+316123452{n:02d}", "offer")
                assert post_match(app.test_client(), request_id, offer_id).status_code == 201
            assert fake_twilio.wait_for(24, timeout=60), worker.log()
        finally:
            worker.stop()
    times = sorted(r.at for r in fake_twilio.requests if r.resource == "messages" and r.method == "POST")
    assert len(times) == 24 and len(fake_twilio.messages()) == 24
    # 10 per second: 24 sends take at least 2.3 s, and no second holds more than 11.
    assert times[-1] - times[0] >= 2.2
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 11
    _no_doubles(fake_twilio)
