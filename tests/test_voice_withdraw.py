"""Withdrawing a request or offer from the phone menu: 3 reads what is open, 7 reads each one back,
1 withdraws it through the service INTREKKEN uses, 2 goes on (or back).

Walked through signed Twilio webhooks, TwiML parsed back, on SQLite and PostgreSQL (the fast path hands
these steps to the ORM path there).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

import texts
from ivr_flows.speech import brokers_call_today
from models import AuditEvent, Call, Callback, Listing, Match, Resident
from models.base import utcnow
from tests.conftest import api_get
from tests.test_voice_menu import AMSTERDAM, VOICES

CALLER = "+31612345678"
NEIGHBOUR = "+31687654321"


def t(language: str, key: str, **params: object) -> str:
    return texts.t(language, key, **params)


def statuses(db) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return [listing.status for listing in db.scalars(select(Listing).order_by(Listing.id))]


def open_items(db) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return [(item.reason, item.outcome) for item in db.scalars(select(Callback).order_by(Callback.id))
            if item.status == "open"]


def reasons(db) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return [item.reason for item in db.scalars(select(Callback).order_by(Callback.id))]


def sms_replies(fake) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["Body"] for m in fake.messages() if m["To"] == CALLER]


def read(language: str, kind: str, category: str, day_key: str = "voice.day_today") -> str:
    return t(language, "voice.withdraw.read", kind=t(language, f"voice.kind.{kind}"),
             category=t(language, f"voice.category.{category}"), day=t(language, day_key))


GROCERIES = read("nl", "request", "groceries")
WITHDRAW_THIS = t("nl", "voice.withdraw.this", digit="1")
MAIN_MENU = "Wilt u hulp vragen? Druk 1."


# --- the way through ------------------------------------------------------------------------------


def test_the_one_open_request_is_read_back_withdrawn_with_1_and_status_says_so(phone, twilio, fake_twilio, db,
                                                                                client):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    call = phone().press("3")
    assert "Uw vraag voor boodschappen van vandaag staat nog open." in call.said
    assert t("nl", "voice.withdraw.offer", digit="7") in call.said
    call.press("7")
    assert call.said == " ".join([GROCERIES, WITHDRAW_THIS, t("nl", "voice.withdraw.back", digit="2"),
                                  t("nl", "voice.repeat_hint")])
    call.press("1")
    assert call.said.startswith(t("nl", "voice.withdraw.done", kind="vraag", category="boodschappen"))
    assert MAIN_MENU in call.said and not call.ended
    assert statuses(db) == ["cancelled"]
    assert open_items(db) == []  # the broker's new_listing item closed as withdrawn
    assert db.scalars(select(Callback)).one().outcome == "withdrawn"
    assert api_get(client, "/api/v1/listings")["listings"][0]["status"] == "cancelled"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "listing.withdraw")).one()
    resident = db.scalars(select(Resident)).one()
    assert (event.actor_type, event.actor_id, event.result, event.detail) == (
        "resident", resident.id, "ok", {"channel": "voice"})

    call.press("3")  # key 3 tells the truth at once: nothing open, and nothing to withdraw offered
    assert call.said.startswith(t("nl", "voice.status_none"))
    assert t("nl", "voice.withdraw.offer", digit="7") not in call.said
    call.hang_up()
    twilio.sms(CALLER, "STATUS")
    assert sms_replies(fake_twilio)[-1] == t("nl", "sms.status_none")
    assert open_items(db) == []  # hanging up after that is no item either


def test_with_several_open_each_is_read_back_oldest_first_and_2_goes_to_the_next(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "AANBOD ik help met de computer 2034")
    twilio.sms(CALLER, "VRAAG klussen 2034")
    call = phone().press("3").press("7")
    assert call.said.startswith(t("nl", "voice.withdraw.one_by_one") + " " + GROCERIES)
    assert t("nl", "voice.withdraw.next", digit="2") in call.said
    call.press("2")
    assert call.said.startswith(read("nl", "offer", "digital"))
    assert t("nl", "voice.withdraw.next", digit="2") in call.said
    call.press("2")
    assert call.said.startswith(read("nl", "request", "chores"))  # the last: 2 now goes back
    assert t("nl", "voice.withdraw.back", digit="2") in call.said
    assert t("nl", "voice.withdraw.next", digit="2") not in call.said
    call.press("*")
    assert call.said.startswith(read("nl", "request", "chores"))  # * repeats the listing too
    call.press("1")
    assert statuses(db) == ["open", "open", "cancelled"]
    assert call.said.startswith(t("nl", "voice.withdraw.done", kind="vraag",
                                  category=t("nl", "voice.category.chores")))


def test_2_at_the_last_goes_back_to_the_menu_and_withdraws_nothing(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    call = phone().press("3").press("7").press("2")
    assert call.said.startswith(MAIN_MENU)
    assert statuses(db) == ["open"]
    call.press("3").press("7").press("1")  # and can still do it later in the call
    assert statuses(db) == ["cancelled"]


def test_a_second_listing_can_be_withdrawn_after_the_first(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "VRAAG klussen 2034")
    call = phone().press("3").press("7").press("1")
    assert statuses(db) == ["cancelled", "open"]
    call.press("3").press("7")
    assert call.said.startswith(read("nl", "request", "chores"))
    call.press("1")
    assert statuses(db) == ["cancelled", "cancelled"]


# --- the engine's rules at the new steps ---------------------------------------------------------------


def test_wrong_keys_and_silence_repeat_the_listing_and_the_third_miss_goes_to_a_broker(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    call = phone().press("3").press("7").press("5")
    assert call.said.startswith(t("nl", "voice.wrong_key") + " " + GROCERIES)
    call.press("#")  # a lone '#' on a one-key menu asks again and does not count
    assert call.said.startswith(GROCERIES)
    call.silence()
    assert call.said.startswith(t("nl", "voice.no_key") + " " + GROCERIES)
    call.press("8")
    assert call.said == t("nl", "voice.trouble") and call.ended
    assert statuses(db) == ["open"]
    assert [reason for reason, _ in open_items(db)] == ["new_listing", "menu_trouble"]


@pytest.mark.parametrize("withdraw_keys", [["7"], ["7", "2"]])
def test_zero_at_a_listing_read_back_asks_for_a_broker(phone, twilio, db, withdraw_keys):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "VRAAG klussen 2034")
    call = phone().press("3")
    for keys in withdraw_keys:
        call.press(keys)
    call.press("0")
    today = brokers_call_today(utcnow(), (dt.time(9), dt.time(17)), AMSTERDAM)
    assert call.said == t("nl", "voice.callback_today" if today else "voice.callback_next_day")
    assert statuses(db) == ["open", "open"]
    assert "callback_requested" in reasons(db)


@pytest.mark.parametrize("withdraw_keys", [[], ["7"], ["7", "2"], ["7", "5"]])
def test_hanging_up_in_the_middle_withdraws_nothing_and_is_no_item(phone, twilio, db, withdraw_keys):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "AANBOD ik help met de computer 2034")
    call = phone().press("3")
    for keys in withdraw_keys:
        call.press(keys)
    call.hang_up()
    assert statuses(db) == ["open", "open"]
    assert "abandoned_call" not in reasons(db)  # they heard their status: nothing for a broker to follow up
    db.expire_all()
    assert db.scalars(select(Call)).one().status == "finished"


def test_nothing_open_offers_no_withdrawal_and_7_is_a_wrong_key(phone, db):
    call = phone().press("3")
    assert call.said.startswith(t("nl", "voice.status_none"))
    assert t("nl", "voice.withdraw.offer", digit="7") not in call.said
    call.press("7")
    assert call.said.startswith(t("nl", "voice.wrong_key"))


# --- meanwhile, by SMS -------------------------------------------------------------------------------------


def test_a_listing_withdrawn_by_sms_after_it_was_read_back_is_said_to_be_gone(phone, twilio, fake_twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    call = phone().press("3").press("7")
    twilio.sms(CALLER, "INTREKKEN")
    call.press("1")
    assert call.said.startswith(t("nl", "voice.withdraw.gone") + " " + MAIN_MENU)
    assert statuses(db) == ["cancelled"]
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "listing.withdraw")).all()
    assert [event.detail["channel"] for event in events] == ["sms"]  # withdrawn once, by SMS


def test_everything_withdrawn_by_sms_between_the_status_and_7(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    call = phone().press("3")
    twilio.sms(CALLER, "INTREKKEN")
    call.press("7")
    assert call.said.startswith(t("nl", "voice.withdraw.none") + " " + MAIN_MENU)


def test_one_withdrawn_by_sms_meanwhile_is_skipped_by_2(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "VRAAG klussen 2034")
    twilio.sms(CALLER, "VRAAG vervoer naar de dokter 2034")
    call = phone().press("3").press("7")
    twilio.sms(CALLER, "INTREKKEN 2")
    call.press("2")
    assert call.said.startswith(read("nl", "request", "transport"))
    assert t("nl", "voice.withdraw.back", digit="2") in call.said  # the last one left


# --- a match under way ----------------------------------------------------------------------------------


def test_a_listing_in_a_match_is_not_withdrawn_and_goes_to_a_broker_as_by_sms(phone, twilio, db):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(NEIGHBOUR, "AANBOD boodschappen 2034")
    request, offer = db.scalars(select(Listing).order_by(Listing.id)).all()
    db.add(Match(request_id=request.id, offer_id=offer.id, status="proposed"))
    db.commit()
    call = phone().press("3").press("7").press("1")
    assert call.said.startswith(t("nl", "voice.withdraw.match", kind="vraag", category="boodschappen"))
    assert statuses(db) == ["open", "open"]
    item = db.scalars(select(Callback).where(Callback.reason == "withdraw_during_match")).one()
    stored = db.scalars(select(Call)).one()
    assert (item.listing_id, item.call_id, item.note) == (request.id, stored.id, None)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "listing.withdraw")).one()
    assert (event.result, event.detail) == ("refused", {"channel": "voice", "reason": "withdraw_during_match"})
    twilio.sms(CALLER, "INTREKKEN 1")  # the same listing by SMS: still that one item
    assert reasons(db).count("withdraw_during_match") == 1


# --- every language ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["nl", "en", "tr", "ar"])
def test_every_language_hears_the_withdrawal_in_its_own_words_and_voice(phone, twilio, db, language):
    twilio.sms(CALLER, "VRAAG boodschappen 2034")
    twilio.sms(CALLER, "AANBOD ik help met de computer 2034")
    db.scalars(select(Resident)).one().language = language
    db.commit()
    call = phone().press("3")
    assert t(language, "voice.withdraw.offer", digit="7") in call.said
    call.press("7")
    assert call.said.startswith(t(language, "voice.withdraw.one_by_one") + " " + read(language, "request",
                                                                                       "groceries"))
    assert t(language, "voice.withdraw.next", digit="2") in call.said
    assert {(item.language, item.voice) for item in call._heard_now} == {VOICES[language]}
    call.press("2")
    assert call.said.startswith(read(language, "offer", "digital"))
    assert t(language, "voice.withdraw.back", digit="2") in call.said
    call.press("1")
    assert call.said.startswith(t(language, "voice.withdraw.done", kind=t(language, "voice.kind.offer"),
                                  category=t(language, "voice.category.digital")))
    assert statuses(db) == ["open", "cancelled"]
