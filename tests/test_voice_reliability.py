"""Never lose a caller: hang-ups at every step, repeated and simultaneous
deliveries, two calls at once, failures, and calls whose status never came.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select, update

import ivr_flows.machine
import texts
from gateway import create_app
from gateway.database import get_database
from models import Call, Callback, Listing, Resident
from models.base import utcnow
from tests.call_simulator import SimulatedCall, flask_poster, http_poster, without_state_token
from tests.conftest import AUTH_TOKEN, app_config
from tests.live import free_port, serving

CALLER = "+31612345678"


def rows(db, model):  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(model).order_by(model.id)))


def the_call(db, call: SimulatedCall) -> Call:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


# --- hanging up ------------------------------------------------------------------------------

HANG_UP_AT = {
    # step: (caller id, keys before hanging up, the listing kept as (kind, category, postcode, timing) or None)
    "main_menu": (CALLER, [], None),
    "category": (CALLER, ["1"], None),
    "postcode_entry": (CALLER, ["2", "4"], ("offer", "company", None, None)),
    "postcode_confirm": (CALLER, ["1", "1", "2034"], ("request", "groceries", "2034", None)),
    "when_request": (CALLER, ["1", "1", "2034", "1"], ("request", "groceries", "2034", None)),
    "record": (CALLER, ["1", "7", "2034", "1", "3"], ("request", "paperwork", "2034", "no_hurry")),
    "phone_entry": ("anonymous", [], None),
    "phone_confirm": ("anonymous", ["0612345678#"], None),
}


@pytest.mark.parametrize("step", list(HANG_UP_AT))
def test_hanging_up_at_any_step_keeps_what_was_entered_and_queues_abandoned_call(phone, db, step):
    caller, keys, kept = HANG_UP_AT[step]
    call = phone(caller)
    for key in keys:
        call.press(key)
    assert the_call(db, call).step == step
    call.hang_up()

    stored = the_call(db, call)
    assert (stored.status, stored.twilio_status) == ("abandoned", "completed")
    assert stored.ended_at is not None
    [callback] = rows(db, Callback)
    assert (callback.reason, callback.call_id, callback.status) == ("abandoned_call", stored.id, "open")
    assert f"bij stap {step}" in callback.note
    listings = rows(db, Listing)
    if kept is None:
        assert listings == [] and callback.listing_id is None
    else:
        [listing] = listings
        assert (listing.kind, listing.category, listing.postcode, listing.timing) == kept
        assert callback.listing_id == listing.id and listing.channel == "voice"
    if keys and keys[0] in "12":
        assert stored.data["kind"] == ("request" if keys[0] == "1" else "offer")
    if step == "phone_entry":
        assert callback.resident_id is None  # nothing to call back on, but the missed call is seen
    elif step == "phone_confirm":
        assert db.get(Resident, callback.resident_id).phone == CALLER  # the number keyed in
    else:
        assert db.get(Resident, callback.resident_id).phone == CALLER


def test_hanging_up_twice_without_leaving_anything_is_one_item_for_a_broker(phone, db):
    phone().hang_up()
    phone().press("1").hang_up()
    [callback] = rows(db, Callback)
    assert (callback.reason, callback.status, callback.listing_id) == ("abandoned_call", "open", None)
    assert [c.status for c in rows(db, Call)] == ["abandoned", "abandoned"]  # both calls are kept
    callback.status, callback.dedupe_key = "done", None  # a broker called back; later the resident hangs up again
    db.commit()
    phone().hang_up()
    assert [c.status for c in rows(db, Callback)] == ["done", "open"]


@pytest.mark.parametrize("keys", [["9"], ["9", "2"], ["3"], ["9", "2", "3"]],
                         ids=["in the language menu", "after changing language", "after the status",
                              "after language and status"])
def test_a_caller_who_came_for_the_language_or_the_status_and_hung_up_is_no_item(phone, db, keys):
    """Pressing 9, 2 and hanging up (as the README suggests) used to be an "Opgehangen tijdens het menu" item."""
    call = phone()
    for key in keys:
        call.press(key)
    call.hang_up()
    assert rows(db, Callback) == []
    assert (the_call(db, call).status, the_call(db, call).twilio_status) == ("finished", "completed")
    # Hanging up at the welcome, without anything done, still asks a broker to call back.
    phone().hang_up()
    assert [c.reason for c in rows(db, Callback)] == ["abandoned_call"]


def test_a_hang_up_that_left_a_request_behind_is_its_own_item(phone, db):
    phone().hang_up()
    phone().press("1").press("1").press("2034").press("1").hang_up()  # the request is kept
    items = rows(db, Callback)
    assert [(c.reason, c.listing_id is not None) for c in items] == [("abandoned_call", False), ("abandoned_call", True)]


def _to_recording(call: SimulatedCall) -> SimulatedCall:
    return call.press("1").press("1").press("2034").press("1").press("2")


def test_hanging_up_while_speaking_keeps_the_recording(phone, db, client):
    call = _to_recording(phone())
    call.record(12, end="hangup")
    assert call.ended
    [listing] = rows(db, Listing)
    assert listing.has_recording and listing.recording_sid == call.last_recording_sid
    assert listing.recording_duration == 12
    assert [(c.reason, c.listing_id) for c in rows(db, Callback)] == [("abandoned_call", listing.id)]
    assert the_call(db, call).status == "abandoned"


def test_recording_that_arrives_after_the_status_callback_is_kept(phone, twilio, db):
    call = _to_recording(phone())
    record = call._expect("Record")
    call.hang_up()  # Twilio's status callback overtook the recording's action request
    [callback] = rows(db, Callback)
    assert callback.reason == "abandoned_call"
    params = call.params(RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "b" * 32,
                         RecordingSid="RE" + "b" * 32, RecordingDuration="20", Digits="hangup")
    response = twilio.post(record.get("action"), params)
    assert response.status_code == 200
    assert ET.fromstring(response.data).find("Hangup") is not None
    [listing] = rows(db, Listing)
    assert listing.recording_sid == "RE" + "b" * 32 and listing.has_recording
    assert [c.reason for c in rows(db, Callback)] == ["abandoned_call"]


def test_a_finished_call_queues_nothing_when_its_status_comes(phone, db):
    call = _to_recording(phone()).record(4)
    assert call.ended  # the simulator sent the status callback after <Hangup>
    assert [c.reason for c in rows(db, Callback)] == ["new_listing"]
    assert (the_call(db, call).status, the_call(db, call).twilio_status) == ("finished", "completed")


def test_progress_statuses_are_noted_and_change_nothing_else(phone, twilio, db):
    call = phone()
    response = twilio.post("/twilio/voice/status", call.params(CallStatus="in-progress"))
    assert response.status_code == 200
    stored = the_call(db, call)
    assert (stored.twilio_status, stored.status) == ("in-progress", "in_progress")
    call.press("1")  # the menu goes on
    assert texts.t("nl", "voice.category_request") in call.said


def test_status_of_a_call_we_never_answered_queues_abandoned_call(twilio, db):
    stranger = SimulatedCall(flask_poster(twilio), from_=CALLER)
    stranger.hang_up()  # the first webhook never reached us; only the status did
    [callback] = rows(db, Callback)
    assert callback.reason == "abandoned_call"
    assert db.get(Resident, callback.resident_id).phone == CALLER


# --- the same step twice --------------------------------------------------------------------------


def test_a_repeated_incoming_call_webhook_answers_the_same_and_stores_one_call(phone, db):
    call = phone()
    status, body = call.replay_last()
    assert status == 200 and without_state_token(body) == without_state_token(call.documents[-1])
    assert db.scalar(select(func.count(Call.id))) == 1


@pytest.mark.parametrize("keys", [["1"], ["1", "1", "2034", "1", "1"], ["7"], ["0"]])
def test_a_repeated_step_answers_the_same_and_does_nothing_twice(phone, db, keys):
    call = phone()
    for key in keys:
        call.press(key)
    before = (rows(db, Listing), [(c.reason, c.status) for c in rows(db, Callback)], the_call(db, call).step_seq)
    for _ in range(3):  # Twilio may deliver a webhook up to six times
        status, body = call.replay_last() if not call.ended else _replay_action(call)
        assert status == 200 and without_state_token(body) == without_state_token(call.documents[-1])
    after = (rows(db, Listing), [(c.reason, c.status) for c in rows(db, Callback)], the_call(db, call).step_seq)
    assert [item.id for item in after[0]] == [item.id for item in before[0]]
    assert after[1:] == before[1:]


def _replay_action(call: SimulatedCall) -> tuple[int, str]:
    """Replay the last step request (not the status callback that followed it)."""
    path, params = [request for request in call.requests if request[0] != "/twilio/voice/status"][-1]
    status, _type, body = call.post(path, params)
    return status, body


def test_a_repeated_recording_stores_one_recording_and_one_callback(phone, db):
    call = _to_recording(phone()).record(6)
    first = call.documents[-1]
    for _ in range(2):
        status, body = _replay_action(call)
        assert (status, body) == (200, first)
    [listing] = rows(db, Listing)
    assert listing.recording_sid == call.last_recording_sid
    assert [c.reason for c in rows(db, Callback)] == ["new_listing"]


def test_a_repeated_status_callback_queues_one_abandoned_call(phone, db):
    call = phone().press("1")
    call.hang_up()
    status, _body = call.replay_last()
    assert status == 200
    assert [c.reason for c in rows(db, Callback)] == ["abandoned_call"]


def test_an_out_of_date_step_gets_the_current_question_and_changes_nothing(phone, twilio, db):
    call = phone().press("1").press("1")  # now at postcode_entry, answer number 3
    stale = call.params(Digits="2")
    response = twilio.post("/twilio/voice/step?s=main_menu&n=1", stale)  # old, and not the last answer
    assert response.status_code == 200
    body = ET.fromstring(response.data)
    gather = body.find("Gather")
    assert gather is not None and "s=postcode_entry" in gather.get("action")
    assert the_call(db, call).data["kind"] == "request"  # not turned into an offer
    call.press("2034")
    assert "twee, nul, drie, vier" in call.said


def test_the_same_step_delivered_at_the_same_moment_takes_effect_once(pg_database_url, fake_twilio):
    """Real HTTP, a threaded server, PostgreSQL: duplicates race and one wins."""
    port = free_port()
    app = create_app(app_config(pg_database_url, fake_twilio, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}"))
    with serving(app, port) as base:
        call = SimulatedCall(http_poster(base, AUTH_TOKEN), from_=CALLER).start()
        call.press("1").press("1").press("2034").press("1")
        gather = call.gather
        path = gather.get("action")
        params = call.params(Digits="1")
        bodies = call.deliver_at_once(path, params)
    assert len(bodies) == 6
    assert {status for status, _ in bodies} == {200}
    assert len({without_state_token(body) for _, body in bodies}) == 1, "every delivery hears the same"
    assert "<Record" in bodies[0][1]
    session = get_database(app).session()
    assert session.scalar(select(func.count(Listing.id))) == 1
    stored = session.scalars(select(Call)).one()
    assert (stored.step, stored.data["timing"]) == ("record", "asap")
    session.close()
    get_database(app).dispose()


# --- two callers at once -----------------------------------------------------------------------


def test_two_calls_at_once_keep_their_own_state(phone, db):
    first = phone(CALLER)
    second = phone("+31687654321")
    first.press("1")
    second.press("2")
    first.press("1")
    second.press("8")
    second.press("2012")
    first.press("2034")
    first.press("1")
    second.press("1")
    second.press("4")
    first.press("2")
    first.record(5)
    second.record(7)
    by_phone = {db.get(Resident, item.resident_id).phone: item for item in rows(db, Listing)}
    assert (by_phone[CALLER].kind, by_phone[CALLER].category, by_phone[CALLER].postcode, by_phone[CALLER].timing) \
        == ("request", "groceries", "2034", "this_week")
    other = by_phone["+31687654321"]
    assert (other.kind, other.category, other.postcode, other.timing) == ("offer", "sitting", "2012", "any_time")
    assert by_phone[CALLER].recording_sid == first.last_recording_sid
    assert other.recording_sid == second.last_recording_sid


# --- when something breaks ----------------------------------------------------------------------


def test_an_unexpected_error_apologises_in_the_callers_language_and_queues_a_callback(phone, db, monkeypatch,
                                                                                       caplog):
    phone().press("9").press("2").hang_up()  # an English speaker
    call = phone()

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"database hiccup for {CALLER}")

    monkeypatch.setitem(ivr_flows.machine.ACTIONS, "start_listing", broken)
    call.press("1")
    assert call.said == texts.t("en", "voice.error")
    assert call.ended
    assert (call.heard[-1].language, call.heard[-1].voice) == ("en-GB", "Polly.Amy")
    assert the_call(db, call).status == "failed"
    reasons = [c.reason for c in rows(db, Callback)]
    assert reasons == ["menu_trouble"]  # the first call only changed the language: nothing to follow up
    assert "voice webhook /twilio/voice/step failed" in caplog.text
    assert "RuntimeError" in caplog.text and "612345678" not in caplog.text  # the traceback, scrubbed


def test_a_step_for_a_call_we_never_stored_starts_afresh(twilio, db):
    stranger = SimulatedCall(flask_poster(twilio), from_=CALLER)
    response = twilio.post("/twilio/voice/step?s=category&n=4", stranger.params(Digits="1"))
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert "s=main_menu" in root.find("Gather").get("action")
    assert db.scalar(select(func.count(Call.id))) == 1


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/step?s=main_menu&n=1", "/twilio/voice/status"])
def test_unsigned_voice_webhooks_are_refused_and_store_nothing(twilio, db, path):
    params = SimulatedCall(flask_poster(twilio)).params(Digits="1", CallStatus="completed")
    response = twilio.post(path, params, signature="not-a-signature")
    assert response.status_code == 403
    assert db.scalar(select(func.count(Call.id))) == 0
    assert db.scalar(select(func.count(Callback.id))) == 0


def test_garbage_step_parameters_get_the_current_question(phone, twilio, db):
    call = phone()
    for path in ("/twilio/voice/step", "/twilio/voice/step?s=nonsense&n=abc", "/twilio/voice/step?s=main_menu&n=-4"):
        response = twilio.post(path, call.params(Digits="1"))
        assert response.status_code == 200 and response.mimetype == "text/xml"
        assert "s=main_menu" in ET.fromstring(response.data).find("Gather").get("action")
    assert the_call(db, call).data == {}


# --- the sweep: calls whose status never came --------------------------------------------------


def test_the_sweep_closes_a_call_whose_status_never_came(app, phone, db):
    call = phone().press("2").press("3")
    stale = utcnow() - dt.timedelta(hours=1)
    db.execute(update(Call).values(updated_at=stale))
    db.commit()
    fresh = phone("+31687654321")  # a call still going on is left alone

    from workers.jobs import sweep

    with app.app_context():
        assert sweep() >= 1
    stored = the_call(db, call)
    assert (stored.status, stored.twilio_status) == ("abandoned", "no-status-callback")
    [callback] = rows(db, Callback)
    assert (callback.reason, callback.call_id) == ("abandoned_call", stored.id)
    assert rows(db, Listing)[0].category == "transport"
    assert the_call(db, fresh).status == "in_progress"
    with app.app_context():
        sweep()  # running again changes nothing
    assert len(rows(db, Callback)) == 1


def test_a_plain_question_is_not_stored_twice_and_is_repeated_all_the_same(phone, db):
    call = phone().press("1")  # the category question, nothing said before it
    stored = the_call(db, call)
    assert (stored.reply_seq, stored.reply_twiml) == (1, None)  # the row itself says what was asked
    status, body = call.replay_last()
    assert status == 200 and without_state_token(body) == without_state_token(call.documents[-1])
    call = phone("+31687654321").press("7")  # no such key in the main menu: "Sorry, ..." first, so it is kept
    stored = the_call(db, call)
    assert stored.reply_twiml is not None and texts.t("nl", "voice.wrong_key") in stored.reply_twiml
    status, body = call.replay_last()
    assert status == 200 and without_state_token(body) == without_state_token(call.documents[-1])
