"""The phone menu's two paths on PostgreSQL answer and write the same.

The fast path (ivr_flows/fast.py: one statement per step, the call's state
sealed into its step URLs) and the ORM path (ivr_flows/calls.py, which SQLite
runs, and PostgreSQL wherever the fast path hands a step over) take the same
corpus of scripted calls: every branch of the menu, all four languages,
hang-ups at every step, repeated and stale deliveries, withheld numbers, a
caller put through to a match. After each script the TwiML answered and every
row of every table (ids by order of insertion, times as set or not) must be
the same on both.

The fast path's run also proves that whatever the machine reads of a call,
its resident or its listing is in the state the step carries: reading any
other column there fails the test (``fast.UnsealedRead``), and every action
of the menu is taken on such a state.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gateway import create_app
from gateway.database import get_database
from ivr_flows import fast, machine
from ivr_flows.notification import NOTIFICATION_ACTIONS
from models import Base, Match
from models.base import utcnow
from models.marketplace import record_listing
from models.phones import parse_phone
from models.privacy import ERASED_PHONE_PREFIX
from models.residents import resident_for
from tests import call_simulator
from tests.call_simulator import SimulatedCall, flask_poster, without_state_token
from tests.conftest import TwilioWebhooks, _empty_postgres, app_config
from texts import LANGUAGES

CALLER = "+31612345678"
DEDUPE_ID = re.compile(r"\b(call|listing|resident|match|message):(\d+)")
REQUEST = ("1", "1", "2034", "1", "1")  # ask for help, groceries, postcode, that is right, as soon as possible


class SealedStateBreach(BaseException):
    """Past every ``except Exception`` of the webhooks, straight to the test."""


@dataclass
class Phone:
    """Places the scripted calls against one app and keeps every answer they got."""

    app: Flask
    calls: list[SimulatedCall] = field(default_factory=list)
    redelivered: list[str] = field(default_factory=list)

    def __call__(self, from_: str = CALLER) -> SimulatedCall:
        call = SimulatedCall(flask_poster(TwilioWebhooks(self.app.test_client())), from_=from_).start()
        self.calls.append(call)
        return call

    def again(self, call: SimulatedCall, back: int = 1) -> None:
        """Twilio delivers the ``back``-th last request of ``call`` once more (a retry, or a stale one)."""
        path, params = call.requests[-back]
        status, _type, body = call.post(path, params)
        assert status == 200, body
        self.redelivered.append(body)

    def answers(self) -> list[str]:
        return [without_state_token(body) for call in self.calls for body in call.documents] + [
            without_state_token(body) for body in self.redelivered]


# --- the corpus --------------------------------------------------------------------------------------


def a_request_retried_at_every_step(phone: Phone) -> None:
    call = phone()
    phone.again(call)  # the incoming call delivered twice
    for keys in REQUEST:
        call.press(keys)
        phone.again(call)
    call.record(6)
    phone.again(call, back=2)  # the recording, after the status callback
    phone.again(call)  # the status callback itself


def an_offer_from_a_caller_we_know(phone: Phone) -> None:
    call = phone().press("2").press("4")  # an offer, a lift
    call.press("1").press("3")  # the postcode we know; weekends
    call.record(4, end="hangup")


def another_postcode_keyed_twice(phone: Phone) -> None:
    phone().press("1").press("9").press("2").press("2011").press("2").press("2011").press("1").press("3") \
        .record_nothing()


def wrong_keys_and_silence(phone: Phone) -> None:
    phone("+31611111111").press("7").silence().press("*").press("#").press("1").press("123").press("0123") \
        .press("12345")  # the third miss: a broker calls back


def silence_until_a_broker_calls_back(phone: Phone) -> None:
    phone("+31611111112").silence().silence().silence()


def a_broker_from_each_menu(phone: Phone) -> None:
    phone("+31611111113").press("0")
    phone("+31611111113").press("1").press("0")
    phone("+31611111114").press("2").press("5").press("0")  # 0 is not a postcode key: a wrong one


def every_language(phone: Phone) -> None:
    for number, language in enumerate(LANGUAGES, 1):
        call = phone(f"+3161222222{number}").press("9").press(str(number))
        call.press("1").press(str(number)).press("1016").press("1").press(str(number))
        if language == "ar":
            call.hang_up()
        else:
            call.record(3)
        phone(f"+3161222222{number}").press("1").press("1").press("1").hang_up()  # welcomed in their language


def every_category_and_timing(phone: Phone) -> None:
    for category in range(1, 10):
        kind, timings = ("1", 3) if category % 2 else ("2", 4)
        call = phone(f"+316133333{category:02d}").press(kind).press(str(category)).press("2034").press("1")
        call.press(str(1 + category % timings)).record(2)


def a_hang_up_at_every_step(phone: Phone) -> None:
    for steps in range(len(REQUEST) + 1):
        call = phone(f"+316144444{steps:02d}")
        for keys in REQUEST[:steps]:
            call.press(keys)
        call.hang_up()
        phone.again(call, back=2)  # the last step again, after the hang-up
    phone("+31614444499").press("1").press("1").press("2034").press("1").press("1").record(5, end="hangup")


def stale_deliveries(phone: Phone) -> None:
    call = phone("+31615555555").press("1").press("2")
    phone.again(call, back=3)  # the incoming call, long after
    phone.again(call, back=2)  # the main menu's answer again
    call.press("2034")
    phone.again(call, back=2)
    call.press("1").hang_up()


def the_status_line(phone: Phone) -> None:
    phone().press("3").press("0")  # the caller's listings from the first script


def withheld_numbers(phone: Phone) -> None:
    call = phone("anonymous").press("12").silence().press("0612345678")
    call.press("2").press("0687654321").press("1")  # again, then confirmed: a resident we did not know
    call.press("1").press("3").press("2034").press("1").press("2").record(5)
    phone("").press("0612345678").press("1").press("0")  # one we know now: their language, a broker
    phone("+266696687").press("0655555555").hang_up()  # Twilio's "unknown", hung up at the confirmation
    phone("restricted").silence().silence().silence()  # no number at all: no callback promised


def a_caller_in_a_match(phone: Phone) -> None:
    call = phone("+31616666661").silence().dial_result("no-answer").press("3").hang_up()  # nobody answered
    phone.again(call, back=3)  # the dial's outcome, again
    phone("+31616666662").silence().dial_result("completed")
    phone("+31616666662").press("0").press("3").hang_up()  # 0 during the announcement: the menu instead
    phone("+31616666663").silence().dial_result("completed")  # done yesterday: still put through
    phone("+31616666665").press("3").hang_up()  # done a week ago: the menu
    phone("+31616666667").press("3").hang_up()  # a broker ended the relay: the menu


def forgetting_oneself(phone: Phone) -> None:
    phone("+31617777771").press("1").press("1").press("2034").press("1").press("1").record(3)
    call = phone("+31617777771").press("3").press("8").press("2")  # read back, then back to the menu
    call.press("3").press("8").press("1")  # confirmed: everything about the caller is erased


def withdrawing_by_phone(phone: Phone) -> None:
    phone("+31618888881").press("1").press("1").press("2034").press("1").press("1").record(3)
    phone("+31618888881").press("2").press("5").press("1").press("4").record(2)
    call = phone("+31618888881").press("3").press("7").press("5").press("*").press("2")  # the second one
    call.press("1").press("3").press("7").press("1")  # withdrawn; then the first
    call.press("3").hang_up()  # nothing open any more
    phone("+31618888881").press("1").press("2").press("1").press("3").record(2)
    phone("+31618888881").press("3").press("7").hang_up()  # hung up at the read-back: nothing withdrawn


def a_withheld_caller_picks_a_language_first(phone: Phone) -> None:
    call = phone("anonymous").press("9").press("3")  # Turkish, then the number asked again in Turkish
    call.press("99").press("0612349876").press("1").press("0")
    phone("anonymous").press("9").hang_up()  # hung up in the language menu
    phone("anonymous").press("9").press("0")  # a broker, with no number to call back


def a_match(app: Flask) -> None:
    with get_database(app).transaction() as session:
        asker = resident_for(session, parse_phone("+31616666661"))
        helper = resident_for(session, parse_phone("+31616666662"))
        request = record_listing(session, asker, kind="request", channel="sms", category="groceries",
                                 postcode="2034", queue_for_broker=False)
        offer = record_listing(session, helper, kind="offer", channel="sms", category="groceries",
                               postcode="2034", queue_for_broker=False)
        now = utcnow()
        session.add(Match(request_id=request.id, offer_id=offer.id, status="confirmed", created_at=now,
                          updated_at=now))
        # After the help: relayed for BUURTLIJN_RELAY_DAYS_AFTER_DONE days, unless a broker ended it.
        for asking, helping, extra in (
            ("+31616666663", "+31616666664", {"status": "done", "done_at": now - dt.timedelta(days=1)}),
            ("+31616666665", "+31616666666", {"status": "done", "done_at": now - dt.timedelta(days=7)}),
            ("+31616666667", "+31616666668", {"status": "confirmed", "relay_ended_at": now}),
        ):
            request = record_listing(session, resident_for(session, parse_phone(asking)), kind="request",
                                     channel="sms", category="groceries", postcode="2034", queue_for_broker=False)
            offer = record_listing(session, resident_for(session, parse_phone(helping)), kind="offer",
                                   channel="sms", category="groceries", postcode="2034", queue_for_broker=False)
            session.add(Match(request_id=request.id, offer_id=offer.id, created_at=now, updated_at=now, **extra))


CORPUS: list[Callable[[Phone], None]] = [
    a_request_retried_at_every_step, an_offer_from_a_caller_we_know, another_postcode_keyed_twice,
    wrong_keys_and_silence, silence_until_a_broker_calls_back, a_broker_from_each_menu, every_language,
    every_category_and_timing, a_hang_up_at_every_step, stale_deliveries, the_status_line, withheld_numbers,
    a_caller_in_a_match, forgetting_oneself, withdrawing_by_phone, a_withheld_caller_picks_a_language_first,
]
SET_UP = {a_caller_in_a_match: a_match}
# What the machine does at a step that is not a menu (a message recorded, a call put through), and on a hang-up.
STEP_KINDS = ("_after_recording", "_after_relay", "abandon")


# --- running it -------------------------------------------------------------------------------------


def _rows(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table: ids as their order of insertion (so do references), times as set or not."""
    with get_database(app).engine.connect() as connection:
        stored = {table.name: [dict(row._mapping) for row in connection.execute(
            select(table).order_by(*table.primary_key.columns))] for table in Base.metadata.sorted_tables}
    order = {name: {row["id"]: index for index, row in enumerate(rows)}
             for name, rows in stored.items() if rows and "id" in rows[0]}

    def plain(column: Any, value: Any) -> Any:
        if value is None:
            return None
        if column.name == "id":
            return order[column.table.name][value]
        for key in column.foreign_keys:
            return order[key.column.table.name][value]
        if column.name == "dedupe_key":  # "call:12:abandoned" names a row by its id
            return DEDUPE_ID.sub(lambda found: f"{found[1]}:{order[found[1] + 's'][int(found[2])]}", value)
        return "<time>" if isinstance(value, dt.datetime) else value

    rows = {table.name: [{column.name: plain(column, row[column.name]) for column in table.columns}
                         for row in stored[table.name]] for table in Base.metadata.sorted_tables}
    # Ids written as values, not keys: an erased resident's phone column, the audit log's actor and object.
    for resident in rows["residents"]:
        if resident["phone"].startswith(ERASED_PHONE_PREFIX):
            resident["phone"] = f"{ERASED_PHONE_PREFIX}{resident['id']}"
    for event in rows["audit_events"]:
        if event["actor_type"] == "resident" and event["actor_id"] is not None:
            event["actor_id"] = order["residents"][event["actor_id"]]
        table = f"{event['object_type']}s"
        if event["object_id"] is not None and event["object_id"].isdigit() and table in order:
            event["object_id"] = str(order[table][int(event["object_id"])])
    return rows


@dataclass
class Run:
    answers: list[list[str]] = field(default_factory=list)  # per script
    rows: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)  # after each script


def _run_corpus(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Run:
    run = Run()
    sids = itertools.count(1)  # the same CallSids and RecordingSids on both paths
    monkeypatch.setattr(call_simulator, "new_sid", lambda prefix: f"{prefix}{next(sids):032x}")
    for script in CORPUS:
        if script in SET_UP:
            SET_UP[script](app)
        phone = Phone(app)
        script(phone)
        run.answers.append(phone.answers())
        run.rows.append(_rows(app))
    get_database(app).dispose()
    return run


def _difference(orm: Run, on_fast_path: Run, index: int, table: str) -> str:
    for number, (expected, found) in enumerate(itertools.zip_longest(orm.rows[index][table],
                                                                       on_fast_path.rows[index][table])):
        if expected != found:
            if expected is None or found is None:
                return f"row {number}: ORM {expected}, fast {found}"
            return f"row {number}: " + ", ".join(f"{name}: ORM {expected[name]!r}, fast {found[name]!r}"
                                               for name in expected if expected[name] != found[name])
    return ""


def _taking_note(taken: set[str], name: str, action: Callable[..., Any]) -> Callable[..., Any]:
    def noted(*args: Any) -> Any:
        if any(isinstance(argument, fast._LoadedCall) for argument in args):
            taken.add(name)
        return action(*args)

    return noted


def test_the_fast_path_answers_and_writes_what_the_orm_path_does_from_the_sealed_state(
    pg_database_url: str, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: set[str] = set()  # the machine's actions taken on a state a step carried
    for registry in (machine.ACTIONS, machine.DIGIT_HANDLERS):
        for name, action in list(registry.items()):
            monkeypatch.setitem(registry, name, _taking_note(taken, name, action))
    for name in STEP_KINDS:
        monkeypatch.setattr(machine, name, _taking_note(taken, name, getattr(machine, name)))

    orm = _run_corpus(create_app(app_config(pg_database_url, fake_twilio, VOICE_FAST_PATH=False)), monkeypatch)
    assert not taken, "the ORM path's run took the fast path"
    _empty_postgres(pg_database_url)
    monkeypatch.setattr(fast, "UnsealedRead", SealedStateBreach)
    on_fast_path = _run_corpus(create_app(app_config(pg_database_url, fake_twilio)), monkeypatch)

    for index, script in enumerate(CORPUS):
        name = script.__name__
        assert on_fast_path.answers[index] == orm.answers[index], name
        for table, rows in orm.rows[index].items():
            difference = _difference(orm, on_fast_path, index, table)
            assert on_fast_path.rows[index][table] == rows, f"{name}: {table}: {difference}"
    assert sum(len(rows) for rows in orm.rows[-1].values()) > 100  # the corpus did write
    # Every action of the menu a caller walks; the calls we place (ivr_flows/notification.py) have no fast path.
    every = {*machine.ACTIONS, *machine.DIGIT_HANDLERS, *STEP_KINDS} - NOTIFICATION_ACTIONS.keys()
    assert taken == every, f"not taken on a sealed state: {every - taken}"
