"""The voice webhooks' PostgreSQL fast path (ivr_flows/fast.py): one self-committing write per step.

The call's state comes sealed in the step URL (ivr_flows/tokens.py); a step
without a usable token reads the row first. Repeated and simultaneous
deliveries must still take effect once and hear the same; steps the fast
path does not cover fall back to the ORM path with the same outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select

from gateway import create_app
from gateway.database import get_database
from gateway.webhooks_voice import voice_settings
from ivr_flows import fast, machine
from models import Call, Callback, Listing, Resident
from tests.call_simulator import SimulatedCall, flask_poster, http_poster, without_state_token
from tests.conftest import AUTH_TOKEN, TwilioWebhooks, app_config, session_of
from tests.live import free_port, serving

CALLER = "+31612345678"


@pytest.fixture
def counted(pg_app, monkeypatch):  # type: ignore[no-untyped-def]
    """(fast-path statements, ORM statements) of the requests made since the last clear()."""
    database = get_database(pg_app)
    fast: list[str] = []
    orm: list[str] = []
    autocommit_row = database.autocommit_row

    def counting(sql, params):  # type: ignore[no-untyped-def]
        fast.append(sql)
        return autocommit_row(sql, params)

    def record(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        orm.append(statement)

    monkeypatch.setattr(database, "autocommit_row", counting)
    event.listen(database.engine, "before_cursor_execute", record)
    yield fast, orm
    event.remove(database.engine, "before_cursor_execute", record)


@pytest.fixture
def db(pg_app) -> Iterator:  # type: ignore[type-arg]
    with session_of(pg_app) as session:
        yield session


def _phone(pg_app, from_: str = CALLER) -> SimulatedCall:  # type: ignore[no-untyped-def]
    return SimulatedCall(flask_poster(TwilioWebhooks(pg_app.test_client())), from_=from_)


def _replay(call: SimulatedCall) -> tuple[int, str]:
    path, params = [r for r in call.requests if r[0] != "/twilio/voice/status"][-1]
    status, _type, body = call.post(path, params)
    return status, body


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    db.expire_all()
    return int(db.scalar(select(func.count(model.id))))


def test_every_step_of_a_request_call_is_one_statement_and_a_replay_changes_nothing(pg_app, counted, db):
    fast, orm = counted
    call = _phone(pg_app)
    fast.clear()
    call.start()
    assert len(fast) == 1 and orm == [], fast  # a new caller: the resident, no match to look up, the call
    for keys in ("1", "1", "2034", "1", "1"):  # request, groceries, postcode, that is right, as soon as possible
        fast.clear()
        orm.clear()
        call.press(keys)
        assert len(fast) == 1 and not fast[0].startswith("SELECT") and orm == [], (keys, fast)  # the write only
        before = db.scalars(select(Call)).one()
        db.expire_all()
        first = call.documents[-1]
        fast.clear()
        status, again = _replay(call)  # Twilio retried: the same answer ...
        assert status == 200 and without_state_token(again) == without_state_token(first)
        # ... from the write that finds the step taken, and one read of the stored answer
        assert len(fast) == 2 and fast[1].startswith("SELECT"), fast
        after = db.scalars(select(Call)).one()
        assert (after.step_seq, after.step, after.data) == (before.step_seq, before.step, before.data)
        db.expire_all()
    fast.clear()
    orm.clear()
    call.record(6)
    assert len(fast) == 2 and orm == [], fast  # the write; then the status callback's one UPDATE
    first = call.documents[-1]
    assert _replay(call) == (200, first)
    [listing] = db.scalars(select(Listing)).all()
    assert (listing.kind, listing.category, listing.postcode, listing.district, listing.timing, listing.channel) \
        == ("request", "groceries", "2034", "schalkwijk", "asap", "voice")
    assert listing.recording_sid == call.last_recording_sid and listing.recording_duration == 6
    [callback] = db.scalars(select(Callback)).all()
    assert (callback.reason, callback.listing_id, callback.priority) == ("new_listing", listing.id, 10)
    stored = db.scalars(select(Call)).one()
    assert (stored.status, stored.twilio_status, stored.listing_id) == ("finished", "completed", listing.id)
    assert stored.ended_at is not None
    resident = db.get(Resident, listing.resident_id)
    assert resident is not None and resident.postcode == "2034" and resident.last_contact_at is not None


def test_an_incoming_call_delivered_twice_stores_one_call_and_answers_the_same(pg_app, db):
    call = _phone(pg_app).start()
    first = call.documents[-1]
    status, body = _replay(call)
    assert status == 200 and without_state_token(body) == without_state_token(first)
    assert _count(db, Call) == 1 and _count(db, Resident) == 1


def test_a_returning_caller_is_greeted_in_their_language_through_one_upsert(pg_app, counted, db):
    fast, orm = counted
    _phone(pg_app).start().press("9").press("2").hang_up()  # English from now on
    assert db.scalars(select(Resident)).one().language == "en"
    fast.clear()
    orm.clear()
    call = _phone(pg_app).start()
    assert len(fast) == 1 and orm == [], fast  # the resident, a match to put through (none), the call
    assert call.heard[0].language == "en-GB"
    assert _count(db, Resident) == 1


def test_a_step_the_fast_path_does_not_cover_takes_the_orm_path_with_the_same_result(pg_app, counted, db):
    fast, orm = counted
    call = _phone(pg_app).start()
    fast.clear()
    call.press("3")  # "my requests": reads the listings, through the session
    assert fast == [] and orm, (fast, orm)  # the state came with the URL; the ORM path reads it again
    assert "s=status_menu" in call.gather.get("action")  # the menu again, with 8 to be forgotten
    assert db.scalars(select(Call)).one().step_seq == 2


def test_a_broker_callback_and_an_abandoned_call_on_the_fast_path(pg_app, db):
    _phone(pg_app).start().press("0")  # a broker calls back: one statement writes the callback and the call
    abandoned = _phone(pg_app, "+31687654321").start().press("1")
    abandoned.hang_up()
    reasons = sorted(c.reason for c in db.scalars(select(Callback)))
    assert reasons == ["abandoned_call", "callback_requested"]
    assert sorted(c.status for c in db.scalars(select(Call))) == ["abandoned", "finished"]


@pytest.mark.parametrize("keys_before, keys", [(["1", "1", "2034"], "1"), (["1", "1", "2034", "1", "1"], None)])
def test_simultaneous_deliveries_of_a_multi_row_step_take_effect_once(pg_database_url, fake_twilio, keys_before,
                                                                       keys):
    """The postcode saved on the resident, or the recording with its callback: six deliveries race."""
    port = free_port()
    app = create_app(app_config(pg_database_url, fake_twilio, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}"))
    with serving(app, port) as base:
        call = SimulatedCall(http_poster(base, AUTH_TOKEN), from_=CALLER).start()
        for pressed in keys_before:
            call.press(pressed)
        if keys is not None:
            path, params = call.gather.get("action"), call.params(Digits=keys)
        else:
            path = call.documents[-1].split('<Record action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            params = call.params(RecordingSid="RE" + "1" * 32, RecordingDuration="5", Digits="#",
                                 RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
        bodies = call.deliver_at_once(path, params)
    assert len(bodies) == 6 and {status for status, _ in bodies} == {200}
    assert len({without_state_token(body) for _, body in bodies}) == 1, "every delivery hears the same"
    session = get_database(app).session()
    stored = session.scalars(select(Call)).one()
    assert stored.step_seq == len(keys_before) + 2
    if keys is None:
        [listing] = session.scalars(select(Listing)).all()
        assert listing.recording_duration == 5 and stored.status == "finished"
        assert [c.reason for c in session.scalars(select(Callback))] == ["new_listing"]
    else:
        assert session.scalars(select(Resident)).one().postcode == "2034" and stored.step == "when_request"
    session.close()
    get_database(app).dispose()


def test_a_repeated_plain_question_after_a_spoken_answer_hears_the_question_again(pg_app, db):
    """The step's reply is written even when the state it came from did not carry the last one."""
    call = _phone(pg_app).start().press("1").press("1").press("0123")  # "a postcode does not start with 0"
    call.press("2034")  # "is 2 0 3 4 right?": a plain question, nothing said before it
    first = call.documents[-1]
    status, again = _replay(call)
    assert status == 200 and without_state_token(again) == without_state_token(first)
    stored = db.scalars(select(Call)).one()
    assert (stored.step, stored.reply_twiml) == ("postcode_confirm", None)


def test_a_column_outside_the_sealed_state_is_read_from_the_row_not_as_null(pg_app, db, monkeypatch):
    """The state in a step URL carries a few of the call's columns; any other is unknown there, not NULL."""
    call = _phone(pg_app).start()
    token = call.gather.get("action").split("&c=", 1)[1]
    loaded = fast._from_token(voice_settings(pg_app), call.call_sid, token)
    assert loaded is not None and loaded.call.step == "main_menu"
    with pytest.raises(fast.NeedsSession):
        loaded.call.raw_from  # noqa: B018

    goto = machine.ACTIONS["goto"]

    def goto_noting_the_number(ctx, call, option):  # type: ignore[no-untyped-def]
        machine.remember(call, raw_from=call.raw_from)
        return goto(ctx, call, option)

    monkeypatch.setitem(machine.ACTIONS, "goto", goto_noting_the_number)
    call.press("9")  # to the language menu: the step reads a column its state does not carry
    stored = db.scalars(select(Call)).one()
    assert (stored.step, stored.data["raw_from"]) == ("language_menu", CALLER)
