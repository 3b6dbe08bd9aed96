"""Forget me by phone: in option 3's status, 8 reads back what goes, 1 confirms. Signed Twilio webhooks."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEvent, Listing, Match, Resident
from models.residents import find_resident
from tests.call_simulator import SimulatedCall, flask_poster
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match
from texts import t

CALLER = "+31612345678"


def _recorded_request(twilio) -> SimulatedCall:  # type: ignore[no-untyped-def]
    call = SimulatedCall(flask_poster(twilio), from_=CALLER).start()
    return call.press("1").press("1").press("2034").press("1").press("1").record(5)


def test_status_offers_8_reads_back_and_1_erases(twilio, db, fake_twilio):
    recorded = _recorded_request(twilio)
    call = SimulatedCall(flask_poster(twilio), from_=CALLER).start()
    assert "Druk 8" not in call.said  # the main menu keeps the flyers' digits
    call.press("3")
    assert "Wilt u dat BUUV alles over u vergeet? Druk 8." in call.said
    assert "Wilt u hulp vragen? Druk 1." in call.said  # the menu's own keys still work here
    call.press("8")
    assert t("nl", "voice.forget.confirm") in call.said and "Alles wissen? Druk 1." in call.said
    assert t("nl", "voice.forget.match_warning") not in call.said
    db.expire_all()
    assert find_resident(db, CALLER) is not None  # nothing happens before the 1
    call.press("1")
    assert t("nl", "voice.forget.done") in call.said and call.waiting_for is None  # hung up
    db.expire_all()
    assert find_resident(db, CALLER) is None
    listing = db.scalars(select(Listing)).one()
    assert listing.status == "cancelled" and listing.postcode is None and not listing.has_recording
    assert fake_twilio.deleted_recordings() == [recorded.last_recording_sid]
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "resident.erase")).all()
    assert event.actor_type == "resident" and event.detail["via"] == "voice"
    assert CALLER not in str(event.detail)


def test_2_goes_back_to_the_menu_and_keeps_everything(twilio, db):
    _recorded_request(twilio)
    call = SimulatedCall(flask_poster(twilio), from_=CALLER).start().press("3").press("8").press("2")
    assert "Wilt u hulp vragen? Druk 1." in call.said
    db.expire_all()
    assert find_resident(db, CALLER) is not None and db.scalars(select(Listing)).one().postcode == "2034"


def test_a_caller_we_do_not_know_hears_the_plain_menu_after_the_status(twilio):
    call = SimulatedCall(flask_poster(twilio), from_="anonymous").start()
    call.press("0612345999").press("1")  # a number keyed in and confirmed: a resident now, with nothing open
    call.press("3")
    assert t("nl", "voice.status_none") in call.said


def test_a_caller_in_a_match_is_warned_and_the_other_is_told(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request", category="chores")
    offer_id = add_listing(notify_app, HELPER, "offer", category="chores", postcode="2011")
    match_id = post_match(notify_app.test_client(), request_id, offer_id).get_json()["id"]
    call = SimulatedCall(flask_poster(webhooks), from_=REQUESTER).start().press("3").press("8")
    assert t("nl", "voice.forget.match_warning") in call.said
    call.press("1")
    session.expire_all()
    assert session.get(Match, match_id).status == "cancelled"
    assert find_resident(session, REQUESTER) is None
    helper = find_resident(session, HELPER)
    assert isinstance(helper, Resident)
    assert bodies(fake_twilio, HELPER)[-1] == "BUUV: de vraag over klussen in en om het huis is niet meer nodig. " \
        "Dank u wel dat u wilde kijken!"
