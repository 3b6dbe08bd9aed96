"""Twilio losing its answers and hanging, against a real `buurtlijn worker`, PostgreSQL, Redis and the fake Twilio.

Twilio may store a message (or place a call) and its answer never reach us:
a 500 after the fact, a dropped connection, a request that outlasts our
timeout. Whatever happened, each person gets exactly one copy: the fake
Twilio's own store is counted per number. A hung request holds up only its
own message; the worker moves on after its timeout (0.5 s here, so Twilio is
asked after 3 s: ``workers/twilio_api.py`` SETTLE_TIMEOUTS).

One worker serves the whole file (starting one costs seconds); each test has
numbers of its own.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from gateway.database import get_database
from models import Call, Message
from models.outbox import queue_sms
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import DeliveryWorker, _empty_postgres, delivery_config, running_queued_app, wait_until
from tests.delivery_support import add_listing, post_match
from tests.fake_twilio import FakeTwilio

BODY = "Uw vraag staat in de lijst. Een makelaar belt u."
LOST = 30  # of 100 answers
# Seconds a hung request holds at most: less than the settle time, or it would land after Twilio was asked.
HANG_LIMIT = 2.5
WHILE_HUNG = 10  # messages that must reach Twilio while one hangs


def _people(block: int, count: int) -> list[str]:
    return [f"+3161{block:02d}{n:05d}" for n in range(count)]


@pytest.fixture(scope="module")
def faults_app(postgres_url: str, fake_twilio_server: FakeTwilio, redis_url: str) -> Iterator[Flask]:
    _empty_postgres(postgres_url)
    with running_queued_app(delivery_config(postgres_url, fake_twilio_server, redis_url)) as app:
        yield app


@pytest.fixture(scope="module")
def worker(faults_app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeliveryWorker]:
    process = DeliveryWorker(dict(faults_app.config), Path(tmp_path_factory.mktemp("faults")) / "worker.log").start()
    yield process
    process.stop()


def _queue(app: Flask, phones: list[str]) -> None:
    """One urgent SMS to each number, each committed on its own (one job each), in this order."""
    for phone in phones:
        with app.app_context(), get_database(app).transaction() as session:
            queue_sms(session, resident_for(session, parse_phone(phone)), BODY, purpose="reply",
                      dedupe_key=f"faults:{phone}", urgent=True)


def _rows(app: Flask, phones: list[str]) -> list[Message]:
    with get_database(app).transaction() as session:
        rows = session.scalars(select(Message).where(Message.direction == "outbound",
                                                     Message.phone.in_(phones))).all()
        session.expunge_all()
        return list(rows)


def _all_sent(app: Flask, phones: list[str]) -> bool:
    rows = _rows(app, phones)
    return len(rows) == len(phones) and all(row.twilio_sid for row in rows)


def _exactly_one_each(app: Flask, fake: FakeTwilio, phones: list[str]) -> None:
    copies = Counter(m["To"] for m in fake.messages())
    assert {phone: copies[phone] for phone in phones} == dict.fromkeys(phones, 1), \
        [(phone, n) for phone, n in copies.items() if n != 1]
    sids = {m["To"]: m["sid"] for m in fake.messages() if m["To"] in phones}
    assert {row.phone: row.twilio_sid for row in _rows(app, phones)} == sids  # each row holds Twilio's own copy


def test_a_hundred_messages_with_lost_answers_each_arrive_once(faults_app, worker, fake_twilio):
    people = _people(10, 100)
    lost = random.Random(4).sample(people, LOST)
    for n, phone in enumerate(lost):
        if n % 2:
            fake_twilio.fail_next("messages", 500, method="POST", to=phone, accept=True)
        else:
            fake_twilio.drop_next("messages", method="POST", to=phone)
    _queue(faults_app, people)

    assert wait_until(lambda: _all_sent(faults_app, people), timeout=40), worker.log()
    _exactly_one_each(faults_app, fake_twilio, people)
    creates = [r for r in fake_twilio.requests if r.method == "POST"]
    assert len(creates) == len(people)  # none sent twice: the lost ones were found at Twilio
    assert sum(r.status is None for r in creates) == LOST // 2 and sum(r.status == 500 for r in creates) == LOST // 2
    lookups = [r for r in fake_twilio.requests if r.method == "GET" and r.resource == "messages"]
    assert {r.query["To"] for r in lookups} == set(lost)  # asked about the lost ones, and only those


def test_hung_requests_hold_up_their_own_messages_only(faults_app, worker, fake_twilio):
    """Two requests hang past the timeout: Twilio then stores the first and drops the second."""
    stored, dropped = hung = _people(20, 2)
    others = _people(21, 30)

    def others_arrived(fake: FakeTwilio) -> bool:
        return sum(m["To"] in others for m in fake.messages()) >= WHILE_HUNG

    for phone in hung:
        fake_twilio.hang_next("messages", HANG_LIMIT, method="POST", to=phone, accept=phone == stored,
                              until=others_arrived)
    _queue(faults_app, hung)
    assert fake_twilio.wait_for(lambda f: len(f.requests) == 2, timeout=20), worker.log()
    _queue(faults_app, others)  # committed while Twilio holds both requests

    assert wait_until(lambda: _all_sent(faults_app, hung + others), timeout=30), worker.log()
    _exactly_one_each(faults_app, fake_twilio, hung + others)
    for request in fake_twilio.requests[:2]:
        sent_meanwhile = [r for r in fake_twilio.requests
                          if r.method == "POST" and r.form["To"] in others and r.status == 201
                          and r.answered_at is not None and r.answered_at <= request.answered_at]
        assert len(sent_meanwhile) >= WHILE_HUNG, "the others waited for a hung request"
    posts = Counter(r.form["To"] for r in fake_twilio.requests if r.method == "POST")
    assert (posts[stored], posts[dropped]) == (1, 2)  # sent again only where Twilio had dropped it


def _dialling(app: Flask, count: int) -> bool:
    with get_database(app).transaction() as session:
        statuses = session.scalars(select(Call.status).where(Call.purpose == "notification")).all()
    return len(statuses) == count and all(status == "dialling" for status in statuses)


def test_calls_whose_answers_are_lost_are_placed_once(faults_app, worker, fake_twilio):
    """A landline helper is called about a proposal: 500 after placing, hang then placed, hang then dropped."""
    faults = {"500": "+31235551240", "hang-then-placed": "+31235551241", "hang-then-dropped": "+31235551242"}
    requesters = _people(30, len(faults))
    fake_twilio.fail_next("calls", 500, method="POST", to=faults["500"], accept=True)
    fake_twilio.hang_next("calls", HANG_LIMIT, method="POST", to=faults["hang-then-placed"])
    fake_twilio.hang_next("calls", HANG_LIMIT, method="POST", to=faults["hang-then-dropped"], accept=False)
    for requester, helper in zip(requesters, faults.values()):
        request_id = add_listing(faults_app, requester, "request")
        offer_id = add_listing(faults_app, helper, "offer")
        assert post_match(faults_app.test_client(), request_id, offer_id).status_code == 201

    assert wait_until(lambda: _dialling(faults_app, len(faults)), timeout=30), worker.log()
    placed = Counter(c["To"] for c in fake_twilio.calls())
    assert placed == Counter(faults.values())  # one call each
    with get_database(faults_app).transaction() as session:
        held = set(session.scalars(select(Call.call_sid).where(Call.purpose == "notification")))
    assert held == {c["sid"] for c in fake_twilio.calls()}
    creates = Counter(r.form["To"] for r in fake_twilio.requests if r.method == "POST" and r.resource == "calls")
    assert creates == Counter({faults["500"]: 1, faults["hang-then-placed"]: 1, faults["hang-then-dropped"]: 2})
    assert fake_twilio.wait_for(len(requesters), timeout=10)  # each requester's SMS went out as well
