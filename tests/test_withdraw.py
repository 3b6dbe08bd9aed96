"""A resident withdraws a request or offer by SMS (contract, second wave: INTREKKEN / WITHDRAW)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import texts
from gateway.database import get_database
from models import AuditEvent, Broker, Callback, Listing, Match
from tests.conftest import api_get
from tests.dashboard_support import logged_in, make_brokers

RESIDENT = "+31612345678"


def replies(fake, to: str = RESIDENT) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["Body"] for m in fake.messages() if m["To"] == to]


def statuses(db) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return [listing.status for listing in db.scalars(select(Listing).order_by(Listing.id))]


def test_the_one_open_request_is_withdrawn_and_status_says_so(twilio, fake_twilio, client, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "intrekken")
    assert statuses(db) == ["cancelled"]
    assert replies(fake_twilio)[-1] == texts.t("nl", "sms.withdrawn", kind="Vraag", category="boodschappen")
    item = db.scalars(select(Callback)).one()
    assert (item.status, item.outcome) == ("done", "withdrawn")  # no broker calls about it any more
    assert api_get(client, "/api/v1/listings")["listings"][0]["status"] == "cancelled"
    twilio.sms(RESIDENT, "STATUS")
    assert replies(fake_twilio)[-1] == texts.t("nl", "sms.status_none")


def test_with_several_open_the_reply_numbers_them_and_the_number_picks_one(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "AANBOD klussen 2034")
    twilio.sms(RESIDENT, "INTREKKEN")
    listed = replies(fake_twilio)[-1]
    assert "1 Vraag boodschappen" in listed and "2 Aanbod klussen in en om het huis" in listed
    assert statuses(db) == ["open", "open"]
    twilio.sms(RESIDENT, "INTREKKEN 2")
    assert statuses(db) == ["open", "cancelled"]
    assert replies(fake_twilio)[-1].startswith("Aanbod klussen in en om het huis is ingetrokken.")


@pytest.mark.parametrize("body", ["INTREKKEN 0", "INTREKKEN 99", "intrekken 3 graag"])
def test_a_number_not_on_the_list_changes_nothing_and_lists_them_again(twilio, fake_twilio, db, body):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "AANBOD klussen 2034")
    twilio.sms(RESIDENT, body)
    assert statuses(db) == ["open", "open"]
    answer = replies(fake_twilio)[-1]
    assert answer.startswith(texts.t("nl", "sms.withdraw_unknown")) and "2 Aanbod" in answer


def test_nothing_open_to_withdraw_says_so_in_english(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "WITHDRAW")
    assert replies(fake_twilio) == [texts.t("en", "sms.withdraw_none")]


def test_a_listing_with_a_match_under_way_goes_to_a_broker_instead(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms("+31687654321", "AANBOD boodschappen 2034")
    request, offer = db.scalars(select(Listing).order_by(Listing.id)).all()
    db.add(Match(request_id=request.id, offer_id=offer.id, status="confirmed"))
    db.commit()
    twilio.sms(RESIDENT, "INTREKKEN 1")
    assert statuses(db) == ["open", "open"]  # a neighbour counts on it: a person settles it
    assert replies(fake_twilio)[-1].startswith("Voor Vraag boodschappen is een afspraak met een buur.")
    item = db.scalars(select(Callback).where(Callback.reason == "withdraw_during_match")).one()
    assert (item.listing_id, item.note, item.priority) == (request.id, None, 30)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "listing.withdraw")).one()
    assert (event.result, event.object_id, event.detail) == (
        "refused", str(request.id), {"channel": "sms", "reason": "withdraw_during_match"})


def test_asking_twice_about_a_listing_in_a_match_is_one_item_besides_a_call_back_request(twilio, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms("+31687654321", "AANBOD boodschappen 2034")
    request, offer = db.scalars(select(Listing).order_by(Listing.id)).all()
    db.add(Match(request_id=request.id, offer_id=offer.id, status="proposed"))
    db.commit()
    twilio.sms(RESIDENT, "BEL")  # asked for a person before: the withdrawal is not folded into that item
    twilio.sms(RESIDENT, "INTREKKEN 1")
    twilio.sms(RESIDENT, "INTREKKEN 1")
    db.expire_all()
    reasons = sorted(item.reason for item in db.scalars(select(Callback).where(Callback.status == "open")))
    assert reasons == ["callback_requested", "new_listing", "new_listing", "withdraw_during_match"]


@pytest.mark.parametrize(("language", "shown"), [("nl", "Wil intrekken, maar er loopt een match"),
                                                 ("en", "Wants to withdraw, but a match is under way")])
def test_the_broker_reads_why_in_their_own_language(app, twilio, db, language, shown):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms("+31687654321", "AANBOD boodschappen 2034")
    request, offer = db.scalars(select(Listing).order_by(Listing.id)).all()
    db.add(Match(request_id=request.id, offer_id=offer.id, status="confirmed"))
    db.commit()
    twilio.sms(RESIDENT, "INTREKKEN")
    item = db.scalars(select(Callback).where(Callback.reason == "withdraw_during_match")).one()
    brokers = make_brokers(app)
    with get_database(app).transaction() as session:
        session.get(Broker, brokers.mila).language = language
    browser = logged_in(app, "mila@buuv.example")
    page = browser.get(f"/dashboard/items/{item.id}").get_data(as_text=True)
    assert f"<h1>{shown}:" in page
    other = "Wants to withdraw" if language == "nl" else "Wil intrekken"
    assert other not in page
    queue = browser.get("/dashboard").get_data(as_text=True)
    assert shown in queue
