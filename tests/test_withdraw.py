"""A resident withdraws a request or offer by SMS (contract, second wave: INTREKKEN / WITHDRAW)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import texts
from models import Callback, Listing, Match
from tests.conftest import api_get

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
    item = db.scalars(select(Callback).where(Callback.reason == "callback_requested")).one()
    assert item.listing_id == request.id and "intrekken" in item.note
