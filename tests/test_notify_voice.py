"""Notifications by phone for people who cannot use SMS: the call, its TwiML, keypresses, retries."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.database import get_database
from models import Call, Callback, Match, Message
from models.base import utcnow
from models.notify import next_try_at
from tests.delivery_support import (
    LANDLINE_HELPER,
    LANDLINE_REQUESTER,
    REQUESTER,
    PhoneCall,
    add_listing,
    bodies,
    gather_of,
    placed_call,
    post_match,
    say_text,
)
from workers.jobs import sweep

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _propose(app, request_id, offer_id) -> int:  # type: ignore[no-untyped-def]
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_landline_helper_hears_the_proposal_and_presses_1(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request", category="transport", timing="asap")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer", category="transport")
    match_id = _propose(notify_app, request_id, offer_id)

    assert bodies(fake_twilio, LANDLINE_HELPER) == []  # no SMS to a landline
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    gather = gather_of(call.answer())
    spoken = say_text(gather)
    assert spoken.startswith("Hallo, hier is Buurtlijn van BUUV. Een buur in Schalkwijk zoekt hulp met "
                             "vervoer en begeleiding, zo snel mogelijk.")
    assert "Druk 1 voor ja. Druk 2 voor nee." in spoken and "sterretje" in spoken
    [say] = gather.findall("./Say")
    assert (say.get("language"), say.get("voice")) == ("nl-NL", "Polly.Lotte")
    assert gather.get("action") == f"/twilio/notify/{call.call_id}/key"

    repeated = call.press("*")
    assert say_text(gather_of(repeated)) == spoken
    wrong = call.press("7")
    assert say_text(gather_of(wrong)).startswith("Dat begreep ik niet. Hallo, hier is Buurtlijn")

    yes = call.press("1")
    assert "Dank u wel! Iemand van BUUV belt u" in say_text(yes.find("./Say"))
    assert yes.find("./Hangup") is not None and yes.find("./Gather") is None
    call.press("1")  # Twilio repeats the step: the answer counts once
    assert call.status("completed") == 200

    session.expire_all()
    match = session.get(Match, match_id)
    assert match.status == "accepted"
    row = session.get(Call, call.call_id)
    assert (row.status, row.data["answer"], row.twilio_status) == ("finished", "JA", "completed")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Goed nieuws! Een buur wil u helpen met vervoer")
    assert len(fake_twilio.calls()) == 1


def test_a_late_status_does_not_move_a_call_back(notify_app, webhooks, fake_twilio, session):
    """Twilio's status callbacks may come late: the call's status only moves forward (as on the menu)."""
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer")
    _propose(notify_app, request_id, offer_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    gather_of(call.answer())
    call.press("1")
    assert call.status("completed") == 200
    session.expire_all()
    done = session.get(Call, call.call_id)
    settled = (done.status, done.twilio_status, done.ended_at, done.updated_at)
    assert settled[:2] == ("finished", "completed")

    for late in ("ringing", "in-progress", "queued", "completed", "no-answer"):
        assert call.status(late) == 200
        session.expire_all()
        row = session.get(Call, call.call_id)
        assert (row.status, row.twilio_status, row.ended_at, row.updated_at) == settled, late


def test_a_late_ringing_does_not_hide_an_unanswered_try(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer")
    _propose(notify_app, request_id, offer_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    assert call.status("no-answer") == 200
    assert call.status("ringing") == 200  # delivered after the end
    session.expire_all()
    row = session.get(Call, call.call_id)
    assert (row.status, row.twilio_status, row.data["unanswered"]) == ("pending", "no-answer", 1)


def test_landline_helper_presses_2_and_the_match_goes_back(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer", language="en")
    match_id = _propose(notify_app, request_id, offer_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    gather = gather_of(call.answer())
    assert say_text(gather).startswith("Hello, this is Buurtlijn from BUUV. A neighbour in Schalkwijk needs help")
    assert gather.find("./Say").get("language") == "en-GB"

    no = call.press("2")
    assert say_text(no.find("./Say")).startswith("Thank you for your answer.")
    session.expire_all()
    assert session.get(Match, match_id).status == "declined"
    assert session.scalars(select(Callback.reason).where(Callback.match_id == match_id)).all() == ["match_declined"]


def test_landline_requester_is_told_by_phone_and_answers_feedback(notify_app, webhooks, fake_twilio, session):
    from workers.match_jobs import sweep_matches

    request_id = add_listing(notify_app, LANDLINE_REQUESTER, "request", category="company")
    offer_id = add_listing(notify_app, "+31612345001", "offer", category="company")
    match_id = _propose(notify_app, request_id, offer_id)
    assert fake_twilio.calls() == []  # "we are looking" is worth a text, not a phone call
    webhooks.delivered(fake_twilio, "+31612345001")
    webhooks.sms("+31612345001", "JA")
    told = placed_call(fake_twilio, session, webhooks, LANDLINE_REQUESTER)
    root = told.answer()
    assert say_text(gather_of(root)).startswith("Hallo, hier is Buurtlijn van BUUV. Goed nieuws!")
    bye = told.press("1")  # a plain message: any key ends it politely
    assert bye.find("./Hangup") is not None

    sweep_matches(notify_app, utcnow() + dt.timedelta(days=8))
    feedback_calls = [c for c in fake_twilio.calls() if c["To"] == LANDLINE_REQUESTER]
    assert len(feedback_calls) == 2
    session.expire_all()
    row = session.scalars(select(Call).where(Call.call_sid == feedback_calls[1]["sid"])).one()
    feedback = PhoneCall(webhooks, row.id, row.call_sid, LANDLINE_REQUESTER)
    assert "Druk 1 als het gelukt is. Druk 2 als het niet gelukt is" in say_text(gather_of(feedback.answer()))
    feedback.press("2")
    session.expire_all()
    assert session.get(Match, match_id).problem_reported_at is not None
    [item] = session.scalars(select(Callback).where(Callback.reason == "problem_reported")).all()
    assert item.match_id == match_id


def test_unanswered_calls_are_retried_then_a_broker_takes_over(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer")
    match_id = _propose(notify_app, request_id, offer_id)

    for attempt, twilio_status in enumerate(("no-answer", "busy", "no-answer"), start=1):
        calls = [c for c in fake_twilio.calls() if c["To"] == LANDLINE_HELPER]
        assert len(calls) == attempt
        session.expire_all()
        row = session.scalars(select(Call).where(Call.call_sid == calls[-1]["sid"])).one()
        call = PhoneCall(webhooks, row.id, row.call_sid, LANDLINE_HELPER)
        assert call.status(twilio_status) == 200
        assert call.status(twilio_status) == 200  # a repeated callback changes nothing more
        session.expire_all()
        row = session.get(Call, row.id)
        if attempt < 3:
            assert row.status == "pending" and row.data["unanswered"] == attempt
            due = dt.datetime.fromisoformat(row.data["next_try_at"])
            assert due > utcnow() + dt.timedelta(minutes=100)
            with notify_app.app_context():
                sweep()  # not due yet: nothing is dialled
            assert len([c for c in fake_twilio.calls() if c["To"] == LANDLINE_HELPER]) == attempt
            # Time passes: the retry is due.
            with get_database(notify_app).transaction() as tx:
                tx.get(Call, row.id).data = {**row.data, "next_try_at": utcnow().isoformat()}
                tx.get(Call, row.id).updated_at = utcnow() - dt.timedelta(minutes=5)
            with notify_app.app_context():
                sweep()
    session.expire_all()
    row = session.get(Call, row.id)
    assert row.status == "failed" and row.data["gave_up"] == "not_reached"
    match = session.get(Match, match_id)
    assert match.status == "expired" and match.close_reason == "not_reached"
    [item] = session.scalars(select(Callback).where(Callback.match_id == match_id)).all()
    assert item.reason == "match_expired" and "niet te bereiken" in item.note
    assert len(fake_twilio.calls()) == 3


def test_retry_times_follow_the_brokers_rhythm():
    friday_noon = dt.datetime(2026, 11, 27, 12, 0, tzinfo=AMSTERDAM).astimezone(dt.timezone.utc)
    assert next_try_at(1, friday_noon, AMSTERDAM, None) == friday_noon + dt.timedelta(hours=2)
    monday_ten = dt.datetime(2026, 11, 30, 10, 0, tzinfo=AMSTERDAM)
    assert next_try_at(2, friday_noon, AMSTERDAM, None) == monday_ten
    evening = dt.datetime(2026, 11, 25, 20, 0, tzinfo=AMSTERDAM).astimezone(dt.timezone.utc)
    morning = dt.datetime(2026, 11, 26, 9, 0, tzinfo=AMSTERDAM).astimezone(dt.timezone.utc)
    assert next_try_at(1, evening, AMSTERDAM, morning) == morning  # never at night


def test_bad_landline_number_goes_to_a_broker(notify_app, webhooks, fake_twilio, session):
    fake_twilio.fail_for_to(LANDLINE_HELPER, 400, 21211, resource="calls")
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer")
    match_id = _propose(notify_app, request_id, offer_id)

    session.expire_all()
    assert fake_twilio.calls() == []
    reasons = sorted(session.scalars(select(Callback.reason)).all())
    assert reasons == ["bad_number", "match_expired"]
    assert session.get(Match, match_id).status == "expired"
    helper_call = session.scalars(select(Call)).one()
    assert helper_call.status == "failed" and helper_call.error_code == 21211


def test_unsigned_notify_webhooks_are_refused(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer")
    match_id = _propose(notify_app, request_id, offer_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    params = call._params(Digits="1")
    response = webhooks.post(f"/twilio/notify/{call.call_id}/key", params, signature="bm9wZQ==")
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Match, match_id).status == "proposed"
    # An id that is no notification call hangs up, and records nothing.
    unknown = call.__class__(webhooks, 999999, call.call_sid, LANDLINE_HELPER).answer()
    assert [child.tag for child in unknown] == ["Hangup"]
    assert session.scalars(select(Message).where(Message.direction == "inbound")).all() == []


def test_arabic_speakers_hear_and_read_arabic(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, "+31612345021", "request", language="ar")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer", language="ar")
    _propose(notify_app, request_id, offer_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    gather = gather_of(call.answer())
    assert gather.find("./Say").get("language") == "arb"
    spoken = say_text(gather)
    assert "اضغط 1 للموافقة" in spoken and "التسوق" in spoken  # the category in Arabic too
    # The SMS in Arabic too, in UCS-2 (no "???"), at most two segments.
    from texts import segment_count

    [text] = bodies(fake_twilio, "+31612345021")
    assert text.startswith("تبحث BUUV عن جار يساعدك في التسوق") and "?" not in text
    assert segment_count(text) <= 2


def test_turkish_sms_goes_out_in_gsm7(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request", category="digital")
    offer_id = add_listing(notify_app, "+31612345031", "offer", language="tr")
    _propose(notify_app, request_id, offer_id)
    [proposal] = bodies(fake_twilio, "+31612345031")
    assert proposal.startswith("BUUV: Schalkwijk semtinde bir komsunuz") and proposal.endswith("JA veya NEE yazin.")
    from texts import is_gsm7, segment_count

    assert is_gsm7(proposal) and segment_count(proposal) == 1
