"""Outbound SMS through Redis, a real `buurtlijn worker` process and the fake Twilio."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from gateway.database import get_database
from models import Callback, Message, Resident
from models.base import utcnow
from models.jobs import SEND_MESSAGE
from tests.conftest import GATEWAY_NUMBER, TwilioWebhooks, session_of, wait_until
from tests.fake_twilio import validate_against_openapi

RESIDENT = "+31612345678"


@pytest.fixture
def webhooks(queued_app) -> TwilioWebhooks:
    return TwilioWebhooks(queued_app.test_client())


@pytest.fixture
def session(queued_app):  # type: ignore[no-untyped-def]
    with session_of(queued_app) as session:
        yield session


def outbound(session, **where):  # type: ignore[no-untyped-def]
    session.expire_all()
    query = select(Message).where(Message.direction == "outbound")
    for key, value in where.items():
        query = query.where(getattr(Message, key) == value)
    return session.scalars(query.order_by(Message.id)).all()


def test_reply_goes_through_redis_and_the_worker_once(webhooks, rq_worker, fake_twilio, session):
    response = webhooks.sms(RESIDENT, "VRAAG boodschappen 2034")
    assert response.status_code == 200

    assert fake_twilio.wait_for(1, timeout=20), rq_worker.log()
    [sent] = fake_twilio.messages()
    assert (sent["To"], sent["From"]) == (RESIDENT, GATEWAY_NUMBER)
    assert sent["Body"].startswith("Dank u! Uw vraag (boodschappen)")
    assert wait_until(lambda: outbound(session)[0].twilio_sid == sent["sid"], timeout=10)
    assert outbound(session)[0].status == "queued"
    # Nothing else arrives later.
    assert not fake_twilio.wait_for(2, timeout=1.5)


def test_what_the_worker_sends_conforms_to_twilios_spec(twilio_openapi_spec, webhooks, rq_worker, fake_twilio):
    webhooks.sms(RESIDENT, "VRAAG boodschappen 2034")

    assert fake_twilio.wait_for(1, timeout=20), rq_worker.log()
    [sent] = fake_twilio.messages()
    assert validate_against_openapi("messages", sent) == []


def test_messages_wait_in_postgres_while_the_worker_is_down(queued_app, webhooks, fake_twilio, session, tmp_path):
    from tests.conftest import WorkerProcess

    for n in range(5):
        webhooks.sms(f"+3161234567{n}", "HULP")
    session.expire_all()
    assert session.scalar(select(func.count(Message.id)).where(Message.status == "received")) == 5
    assert fake_twilio.messages() == []
    # The webhook told PostgreSQL (NOTIFY), not Redis: the dispatcher enqueues.
    queue = queued_app.extensions["buurtlijn.jobs"]
    assert all(queue.rq_queue(name).count == 0 for name in ("inbound", "outbound"))

    worker = WorkerProcess(dict(queued_app.config), tmp_path / "late-worker.log").start()
    try:
        assert fake_twilio.wait_for(5, timeout=30), worker.log()
        assert sorted(m["To"] for m in fake_twilio.messages()) == [f"+3161234567{n}" for n in range(5)]
    finally:
        worker.stop()


def test_redis_down_loses_nothing_and_the_sweep_catches_up(pg_database_url, fake_twilio, redis_url, tmp_path):
    from gateway import create_app
    from tests.conftest import WorkerProcess, app_config

    down = create_app(app_config(pg_database_url, fake_twilio, REDIS_URL="redis://127.0.0.1:1/0"))
    response = TwilioWebhooks(down.test_client()).sms(RESIDENT, "VRAAG klussen 2011")
    assert response.status_code == 200  # stored; the nudge to Redis failed quietly
    db = get_database(down)
    with db.transaction() as s:
        # Old enough for the sweep to consider it forgotten.
        s.execute(update(Message).values(created_at=utcnow() - dt.timedelta(minutes=5)))

    up_config = app_config(pg_database_url, fake_twilio, REDIS_URL=redis_url,
                           BUURTLIJN_QUEUE_PREFIX=f"buurtlijn-sweep-{tmp_path.name}", BUURTLIJN_SWEEP_SECONDS=1)
    worker = WorkerProcess(up_config, tmp_path / "worker.log").start()
    try:
        assert fake_twilio.wait_for(1, timeout=30), worker.log()
        assert fake_twilio.messages()[0]["Body"].startswith("Dank u! Uw vraag (klussen")
    finally:
        worker.stop()
        get_database(down).dispose()


def _sweep_messages(app) -> int:  # type: ignore[no-untyped-def]
    """The messages' part of the periodic sweep (the other parts have their own work, a daily one among them)."""
    from workers.jobs import SWEEP_GRACE, sweep_messages

    return sweep_messages(app, utcnow(), SWEEP_GRACE)


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (400, 21611)], ids=["429", "overflow"])
def test_transient_twilio_errors_are_retried_with_backoff(app, twilio, fake_twilio, db, status, code):
    fake_twilio.fail_next("messages", status=status, code=code, times=1)
    twilio.sms(RESIDENT, "HULP")

    [message] = outbound(db)
    assert (message.status, message.attempts, message.error_code) == ("pending", 1, code or status)
    assert message.send_after is not None and message.send_after > utcnow()
    assert fake_twilio.messages() == []

    # When the back-off has passed, the sweep sends it once.
    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message.id).values(
            send_after=utcnow() - dt.timedelta(seconds=1), updated_at=utcnow() - dt.timedelta(minutes=1)))
    with app.app_context():
        assert _sweep_messages(app) == 1
        assert _sweep_messages(app) == 0
    assert len(fake_twilio.messages()) == 1
    [message] = outbound(db)
    assert message.status == "queued" and message.twilio_sid and message.attempts == 2


def test_every_request_to_twilio_gives_up_after_the_timeout(app, fake_twilio):
    """The client had no timeout: one hung request held the worker, and every message behind it, for minutes."""
    import time

    import requests

    from workers.twilio_api import twilio_client

    app.config["BUURTLIJN_TWILIO_TIMEOUT_SECONDS"] = 0.3
    client = twilio_client(app.config)
    assert client.http_client.logger.name == "twilio.http_client"  # kept at WARNING by gateway/logs.py
    create = lambda: client.messages.create(to=RESIDENT, from_=GATEWAY_NUMBER, body="x")  # noqa: E731
    for resource, request in (("messages", create), ("calls", lambda: client.calls.list(to=RESIDENT, limit=5))):
        fake_twilio.hang_next(resource, 3.0)
        started = time.monotonic()
        with pytest.raises(requests.exceptions.Timeout):
            request()
        assert time.monotonic() - started < 2.0


def _settle(app, message_id: int) -> None:  # type: ignore[no-untyped-def]
    """As if the settle time after a lost answer had passed."""
    from workers.twilio_api import settle_time

    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message_id).values(
            updated_at=utcnow() - settle_time(app.config) - dt.timedelta(seconds=1)))


def _confirm(app, message_id: int):  # type: ignore[no-untyped-def]
    from workers.sending import confirm_sent

    with app.app_context():
        return confirm_sent(get_database(app), app.config, message_id)


@pytest.mark.parametrize("lost", ["500", "503", "dropped", "timeout"])
def test_a_lost_answer_is_asked_about_and_never_sent_twice(app, twilio, fake_twilio, db, lost):
    """Twilio stored the message but its answer was lost: the row waits, Twilio is asked, its copy is adopted."""
    from workers.sending import Confirm

    app.config["BUURTLIJN_TWILIO_TIMEOUT_SECONDS"] = 0.2
    if lost == "dropped":
        fake_twilio.drop_next("messages", method="POST")
    elif lost == "timeout":
        fake_twilio.hang_next("messages", 0.5, method="POST")
    else:
        fake_twilio.fail_next("messages", status=int(lost), method="POST", accept=True)
    twilio.sms(RESIDENT, "HULP")

    [message] = outbound(db)
    assert (message.status, message.attempts, message.twilio_sid) == ("submitting", 1, None)
    assert isinstance(_confirm(app, message.id), Confirm)  # too early: the request may still land
    assert fake_twilio.wait_for(1, timeout=3)
    _settle(app, message.id)
    assert _confirm(app, message.id) is None
    [message] = outbound(db)
    [copy] = fake_twilio.messages()
    assert (message.status, message.twilio_sid, message.attempts) == ("queued", copy["sid"], 1)
    assert message.error_code is None and message.sent_at is not None
    with app.app_context():
        assert _sweep_messages(app) == 0  # nothing left to send
    assert len(fake_twilio.messages()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_twilio_did_not_keep_is_sent_again_after_asking(app, twilio, fake_twilio, db, status):
    from workers.sending import Retry

    fake_twilio.fail_next("messages", status=status, times=1)
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    assert (message.status, message.attempts, message.error_code) == ("submitting", 1, status)

    _settle(app, message.id)
    assert isinstance(_confirm(app, message.id), Retry)
    assert [(r.method, r.status) for r in fake_twilio.requests] == [("POST", status), ("GET", 200)]
    [message] = outbound(db)
    assert message.status == "pending" and message.send_after > utcnow()  # Twilio has none: the back-off

    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message.id).values(
            send_after=utcnow() - dt.timedelta(seconds=1), updated_at=utcnow() - dt.timedelta(minutes=1)))
    with app.app_context():
        assert _sweep_messages(app) == 1
    [message] = outbound(db)
    assert message.status == "queued" and message.attempts == 2 and len(fake_twilio.messages()) == 1


def test_twilio_still_unreachable_is_asked_again_never_sent_blind(app, twilio, fake_twilio, db):
    from workers.sending import Confirm

    fake_twilio.fail_next("messages", status=500, method="POST", accept=True)
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    _settle(app, message.id)
    fake_twilio.stop()
    assert isinstance(_confirm(app, message.id), Confirm)
    assert outbound(db)[0].status == "submitting"
    fake_twilio.start()
    _settle(app, message.id)
    assert _confirm(app, message.id) is None
    assert outbound(db)[0].status == "queued" and len(fake_twilio.messages()) == 1


def test_a_lost_answer_on_the_last_attempt_still_waits_for_twilio(app, twilio, fake_twilio, db):
    """At MAX_ATTEMPTS a lost answer is not a failure: Twilio may have it."""
    from workers.sending import MAX_ATTEMPTS

    fake_twilio.fail_next("messages", status=502, method="POST", accept=True)
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message.id).values(attempts=MAX_ATTEMPTS))
    _settle(app, message.id)
    assert _confirm(app, message.id) is None
    assert outbound(db)[0].status == "queued" and db.scalar(select(func.count(Callback.id))) == 0


def test_twilio_down_is_retried(app, twilio, fake_twilio, db):
    fake_twilio.stop()
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    assert message.status == "pending" and message.error_message == "ConnectionError"


def test_opted_out_at_twilio_marks_the_resident(twilio, fake_twilio, db):
    fake_twilio.fail_for_to(RESIDENT, status=400, code=21610)
    twilio.sms(RESIDENT, "HULP")

    [message] = outbound(db)
    assert (message.status, message.error_code) == ("failed", 21610)
    resident = db.scalars(select(Resident)).one()
    assert resident.opted_out is True
    # Never sent to again, not even tried.
    twilio.sms(RESIDENT, "STATUS")
    assert outbound(db)[-1].status == "blocked"
    assert len([r for r in fake_twilio.requests if r.resource == "messages"]) == 1


@pytest.mark.parametrize(("code", "number_status"), [(21211, "invalid"), (21614, "not_mobile")])
def test_bad_number_is_marked_and_queued_for_a_broker(twilio, fake_twilio, db, code, number_status):
    fake_twilio.fail_for_to(RESIDENT, status=400, code=code)
    twilio.sms(RESIDENT, "HULP")

    [message] = outbound(db)
    assert (message.status, message.error_code) == ("failed", code)
    resident = db.scalars(select(Resident)).one()
    assert resident.number_status == number_status
    reasons = [c.reason for c in db.scalars(select(Callback))]
    assert reasons == ["bad_number"]


def test_other_client_error_fails_visibly(twilio, fake_twilio, db):
    fake_twilio.fail_next("messages", status=400, code=21408, times=1)
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    assert message.status == "failed"
    assert [c.reason for c in db.scalars(select(Callback))] == ["notification_failed"]


def test_status_callbacks_only_move_forward(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    sid = message.twilio_sid

    for status in ("sent", "delivered", "sent", "queued"):  # late and shuffled
        assert twilio.sms_status(sid, status).status_code == 200
    assert outbound(db)[0].status == "delivered"
    twilio.sms_status(sid, "failed", "30003")  # delivered is final too
    assert outbound(db)[0].status == "delivered"


def test_undelivered_reply_reaches_a_broker_once(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "HULP")
    sid = outbound(db)[0].twilio_sid
    for _ in range(3):
        twilio.sms_status(sid, "undelivered", "30003")
    message = outbound(db)[0]
    assert (message.status, message.error_code) == ("undelivered", 30003)
    assert [c.reason for c in db.scalars(select(Callback))] == ["notification_failed"]


def test_status_callback_for_an_unknown_sid_changes_nothing(twilio, db):
    assert twilio.sms_status("SM" + "f" * 32, "delivered").status_code == 200
    assert twilio.sms_status("SM" + "e" * 32, "bogus-status").status_code == 200
    assert db.scalar(select(func.count(Message.id))) == 0


def test_daily_cap_stops_sms_pumping(app, twilio, fake_twilio, db):
    app.config["BUURTLIJN_SMS_DAILY_CAP"] = 3
    for _ in range(5):
        twilio.sms(RESIDENT, "HULP")
    assert len(fake_twilio.messages()) == 3
    assert [m.error_message for m in outbound(db, status="blocked")] == ["daily_cap", "daily_cap"]


def test_destination_outside_allowed_countries_is_not_sent(twilio, fake_twilio, db):
    twilio.sms("+447911123456", "HELP")
    assert fake_twilio.messages() == []
    assert outbound(db)[0].error_message == "country_not_allowed"


def test_quiet_hours_hold_non_urgent_messages_until_morning(app, db):
    from models.outbox import queue_sms
    from models.phones import parse_phone
    from models.residents import resident_for
    from models.workdays import quiet_until

    night = dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.timezone.utc)  # 23:30 in Amsterdam
    config = {"BUURTLIJN_QUIET_HOURS": "21:00-09:00", "BUURTLIJN_TIMEZONE": "Europe/Amsterdam"}
    assert quiet_until(night, config) == dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
    assert quiet_until(dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc), config) is None

    app.config["BUURTLIJN_QUIET_HOURS"] = "00:00-23:59"  # always quiet, for this test
    with app.app_context(), get_database(app).transaction() as session:
        resident = resident_for(session, parse_phone(RESIDENT))
        queue_sms(session, resident, "Herinnering", purpose="reminder", dedupe_key="t:1")
        queue_sms(session, resident, "Antwoord", purpose="reply", dedupe_key="t:2", urgent=True)
    by_body = {m.body: m for m in outbound(db)}
    assert by_body["Herinnering"].status == "pending" and by_body["Herinnering"].send_after is not None
    assert by_body["Antwoord"].status == "queued"


def test_a_dead_worker_mid_send_is_reconciled_not_doubled(app, twilio, fake_twilio, db):
    """A row left 'submitting': the sweep asks Twilio before sending again."""
    twilio.sms(RESIDENT, "HULP")
    [message] = outbound(db)
    assert len(fake_twilio.messages()) == 1
    # As if the worker died after Twilio accepted but before we stored the SID.
    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message.id).values(
            status="submitting", twilio_sid=None, updated_at=utcnow() - dt.timedelta(minutes=5)))
    with app.app_context():
        from workers.jobs import sweep

        sweep()
    [message] = outbound(db)
    assert message.status == "queued" and message.twilio_sid == fake_twilio.messages()[0]["sid"]
    assert len(fake_twilio.messages()) == 1

    # And one that never reached Twilio is sent again.
    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id == message.id).values(
            status="submitting", twilio_sid=None, body="Nooit verstuurd",
            updated_at=utcnow() - dt.timedelta(minutes=5)))
    with app.app_context():
        sweep()
    assert [m["Body"] for m in fake_twilio.messages()][-1] == "Nooit verstuurd"
    assert len(fake_twilio.messages()) == 2


def _queue_together(app, phones: list[str]) -> list[int]:  # type: ignore[no-untyped-def]
    """SMS to ``phones`` committed in one transaction, as a sweep of reminders does."""
    from models.outbox import queue_sms
    from models.phones import parse_phone
    from models.residents import resident_for

    with app.app_context(), get_database(app).transaction() as session:
        messages = [
            queue_sms(session, resident_for(session, parse_phone(phone)), f"Herinnering {n}",
                      purpose="reminder", dedupe_key=f"together:{phone}", urgent=True)
            for n, phone in enumerate(phones)
        ]
        session.flush()
        return [message.id for message in messages]


def test_messages_committed_together_travel_as_one_job_and_each_is_sent_once(queued_app, fake_twilio, session, tmp_path):
    from tests.conftest import WorkerProcess

    phones = [f"+316123400{n:02d}" for n in range(7)]
    fake_twilio.fail_for_to(phones[3], status=429, code=20429)  # busy for this one: retried, the rest go on
    ids = _queue_together(queued_app, phones)

    queue = queued_app.extensions["buurtlijn.jobs"].rq_queue("outbound")
    [job] = queue.get_jobs()
    assert (job.func_name, list(job.args)) == ("workers.jobs.send_messages", [ids])

    worker = WorkerProcess(dict(queued_app.config), tmp_path / "worker.log").start()
    try:
        assert fake_twilio.wait_for(len(phones) - 1, timeout=30), worker.log()  # six sent, one refused
        assert wait_until(lambda: outbound(session, id=ids[3])[0].status == "pending", timeout=10)
        [busy] = outbound(session, id=ids[3])
        assert busy.send_after is not None and busy.error_message  # waits for its retry, visibly
        assert sorted(m["To"] for m in fake_twilio.messages()) == sorted(phones[:3] + phones[4:])
        # A single job for a message of the batch (the sweep's, say) sends nothing again.
        jobs = queued_app.extensions["buurtlijn.jobs"]
        assert jobs.enqueue(SEND_MESSAGE, ids[0], job_id="again")
        # Done when RQ drops the finished job (result_ttl=0).
        assert wait_until(lambda: not jobs.redis.exists(f"rq:job:{jobs.prefix}--again"), timeout=10), worker.log()
        assert len(fake_twilio.messages()) == len(phones) - 1
    finally:
        worker.stop()


def test_one_message_failing_in_a_batch_holds_up_none_of_the_others(app, fake_twilio, db, monkeypatch):
    import workers.jobs
    from workers.jobs import send_messages

    phones = ["+31612340101", "+31612340102", "+31612340103"]
    ids = _queue_together(app, phones)  # in-process: sent at once, as one batch
    assert sorted(m["To"] for m in fake_twilio.messages()) == phones

    with get_database(app).transaction() as s:
        s.execute(update(Message).where(Message.id.in_(ids)).values(status="pending"))
    real_deliver = workers.jobs.deliver

    def deliver_failing_on_the_second(database, config, message_id):  # type: ignore[no-untyped-def]
        if message_id == ids[1]:
            raise RuntimeError("database hiccup")
        return real_deliver(database, config, message_id)

    monkeypatch.setattr(workers.jobs, "deliver", deliver_failing_on_the_second)
    with app.app_context(), pytest.raises(RuntimeError, match="database hiccup"):
        send_messages(ids)  # raised at the end, so RQ retries the job
    assert [m["To"] for m in fake_twilio.messages()[3:]] == [phones[0], phones[2]]

    monkeypatch.setattr(workers.jobs, "deliver", real_deliver)
    with app.app_context():
        send_messages(ids)  # the retry: only the one left is sent
    assert [m["To"] for m in fake_twilio.messages()[3:]] == [phones[0], phones[2], phones[1]]


def test_a_number_known_bad_is_not_tried_again(app, fake_twilio, db):
    from models.residents import resident_for
    from models.phones import parse_phone

    with get_database(app).transaction() as s:
        resident_for(s, parse_phone(RESIDENT)).number_status = "invalid"
    [message_id] = _queue_together(app, [RESIDENT])
    assert fake_twilio.messages() == []
    [message] = outbound(db, id=message_id)
    assert (message.status, message.error_message, message.attempts) == ("blocked", "number_invalid", 0)


def _queue_one_by_one(app, phones: list[str], **options) -> list[int]:  # type: ignore[no-untyped-def]
    """SMS to ``phones``, each committed on its own (one RQ job each), as a broker's clicks make them."""
    from models.outbox import queue_sms
    from models.phones import parse_phone
    from models.residents import resident_for

    ids = []
    for n, phone in enumerate(phones):
        with app.app_context(), get_database(app).transaction() as session:
            message = queue_sms(session, resident_for(session, parse_phone(phone)), f"Bericht {n}",
                                purpose="reply", **options)
            session.flush()
            ids.append(message.id)
    return ids


def _run_jobs(app, max_jobs: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """A real RQ SimpleWorker in this process (so a test can watch its jobs), until the queue is empty."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    jobs = app.extensions["buurtlijn.jobs"]
    with app.app_context():
        SimpleWorker([jobs.rq_queue("outbound")], connection=jobs.redis, serializer=JSONSerializer).work(
            burst=True, max_jobs=max_jobs, logging_level="WARNING")


def test_one_job_sends_the_backlog_and_takes_the_other_jobs_off_the_queue(queued_app, fake_twilio, session):
    phones = [f"+316123450{n:02d}" for n in range(6)]
    ids = _queue_one_by_one(queued_app, phones)
    [later] = _queue_one_by_one(queued_app, ["+31612345099"], send_after=utcnow() + dt.timedelta(hours=1))
    jobs = queued_app.extensions["buurtlijn.jobs"]
    queue = jobs.rq_queue("outbound")
    assert queue.count == 7

    _run_jobs(queued_app, max_jobs=1)  # the first message's job

    assert sorted(m["To"] for m in fake_twilio.messages()) == phones  # each once
    assert {m.status for m in outbound(session) if m.id in ids} == {"queued"}
    # Only the job of the message that is not due yet is left, and the dropped jobs are gone from Redis.
    assert queue.job_ids == [f"{jobs.prefix}--send-message-{later}-0"]
    assert not any(jobs.redis.exists(f"rq:job:{jobs.prefix}--send-message-{i}-0") for i in ids)

    _run_jobs(queued_app)
    assert len(fake_twilio.messages()) == len(phones)  # the later one waits for its time
    assert outbound(session, id=later)[0].status == "pending"


def test_a_message_the_backlog_could_not_send_keeps_its_own_job(queued_app, fake_twilio, session, monkeypatch):
    import workers.jobs

    phones = [f"+316123460{n:02d}" for n in range(4)]
    ids = _queue_one_by_one(queued_app, phones)
    real_deliver = workers.jobs.deliver
    failing = {ids[2]}

    def deliver_with_a_hiccup(database, config, message_id):  # type: ignore[no-untyped-def]
        if message_id in failing:
            raise RuntimeError("database hiccup")
        return real_deliver(database, config, message_id)

    monkeypatch.setattr(workers.jobs, "deliver", deliver_with_a_hiccup)
    _run_jobs(queued_app, max_jobs=1)
    jobs = queued_app.extensions["buurtlijn.jobs"]
    assert sorted(m["To"] for m in fake_twilio.messages()) == sorted(phones[:2] + phones[3:])
    assert jobs.rq_queue("outbound").job_ids == [f"{jobs.prefix}--send-message-{ids[2]}-0"]

    failing.clear()  # the hiccup is over: its own job sends it, once
    _run_jobs(queued_app)
    assert sorted(m["To"] for m in fake_twilio.messages()) == sorted(phones)


def test_only_jobs_still_waiting_are_dropped(queued_app):
    jobs = queued_app.extensions["buurtlijn.jobs"]
    for n in (1, 2, 3):
        assert jobs.enqueue(SEND_MESSAGE, 10_000 + n, job_id=f"drop-test-{n}")
    queue = jobs.rq_queue("outbound")
    taken = jobs.redis.lpop(queue.key).decode()  # a worker has taken the first one
    assert taken == f"{jobs.prefix}--drop-test-1"

    assert jobs.drop_waiting(["drop-test-1", "drop-test-2", "no-such-job"]) == 1
    assert queue.job_ids == [f"{jobs.prefix}--drop-test-3"]
    assert jobs.redis.exists(f"rq:job:{taken}")  # the taken job is its worker's to finish
    assert not jobs.redis.exists(f"rq:job:{jobs.prefix}--drop-test-2")
    # Redis gone: nothing dropped, nothing raised (the jobs just run and find nothing to do).
    from workers.queue import JobQueue

    assert JobQueue("redis://127.0.0.1:1/0", prefix=jobs.prefix).drop_waiting(["drop-test-3"]) == 0
    jobs.redis.delete(f"rq:job:{taken}", f"rq:job:{jobs.prefix}--drop-test-3")
