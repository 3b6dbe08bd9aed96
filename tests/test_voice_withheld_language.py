"""A caller with a withheld number picks a language before keying in their number: a lone 9 at the
number question (Dutch numbers start with 0) opens the language menu, and the question comes again in
the language chosen. Through signed Twilio webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import texts
from models import Callback, Resident
from tests.test_voice_menu import VOICES

CALLER = "+31612345678"


def t(language: str, key: str, **params: object) -> str:
    return texts.t(language, key, **params)


def test_the_number_question_says_9_for_another_language_in_each_language_s_own_voice(phone):
    call = phone("anonymous")
    assert t("nl", "voice.phone_entry") in call.said
    for language in ("en", "tr", "ar"):
        hint = t(language, "voice.language_choice", digit="9")
        [heard] = [item for item in call.heard if item.text == hint]
        assert (heard.language, heard.voice) == VOICES[language]


@pytest.mark.parametrize("keys", ["9#", "9"])  # 9 then '#', or 9 and a pause
@pytest.mark.parametrize(("digit", "language"), [("2", "en"), ("3", "tr"), ("4", "ar"), ("1", "nl")])
def test_a_lone_9_opens_the_language_menu_and_the_number_is_asked_again_in_that_language(
        phone, db, keys, digit, language):
    call = phone("anonymous").press(keys)
    assert [(item.language, item.voice) for item in call.heard[-4:]] == [VOICES[code]
                                                                         for code in ("nl", "en", "tr", "ar")]
    call.press(digit)
    assert call.said.startswith(t(language, "voice.language_set") + " " + t(language, "voice.phone_entry"))
    assert call.gather.get("finishOnKey") == "#" and call.gather.get("numDigits") is None
    call.press("0612345678#")
    assert call.said.startswith(t(language, "voice.phone_read", number=", ".join(
        t(language, f"voice.digit.{d}") for d in "0612345678")))
    call.press("1")
    assert t(language, "voice.main.ask", digit="1") in call.said
    call.press("1").press("1").press("2034").press("1").press("1").record(3)
    assert call.said == t(language, "voice.done_request")
    db.expire_all()
    assert db.scalars(select(Resident)).one().language == language  # and kept for SMS and the next call


def test_a_language_chosen_before_the_number_wins_over_the_saved_one(phone, db):
    phone().hang_up()  # a Dutch resident we know
    call = phone("anonymous").press("9#").press("2").press("0612345678#").press("1")
    assert t("en", "voice.main.ask", digit="1") in call.said
    db.expire_all()
    assert db.scalars(select(Resident)).one().language == "en"


def test_a_known_resident_keying_in_their_number_without_choosing_hears_their_saved_language(phone, db):
    phone().press("9").press("3").hang_up()
    call = phone("anonymous").press("0612345678#").press("1")
    assert t("tr", "voice.main.ask", digit="1") in call.said


@pytest.mark.parametrize(("keys", "told"), [
    ("99#", "voice.phone_invalid"),  # not a lone 9: a number, and not one
    ("9999999999#", "voice.phone_invalid"),
    ("0900123456#", "voice.phone_refused"),  # 09...: a number as ever (a paid one we never call)
    ("0#", "voice.phone_invalid"),
])
def test_anything_but_a_lone_9_is_a_number(phone, db, keys, told):
    call = phone("anonymous").press(keys)
    assert call.said.startswith(t("nl", told))
    assert t("nl", "voice.phone_entry") in call.said
    assert call.gather.get("finishOnKey") == "#"  # still the number question, not the language menu


def test_wrong_keys_in_the_language_menu_and_hanging_up_there_leave_no_item(phone, db):
    call = phone("anonymous").press("9").press("7")
    assert call.said.startswith(t("nl", "voice.wrong_key"))
    call.hang_up()
    db.expire_all()
    assert db.scalars(select(Callback)).all() == []


def test_0_in_the_language_menu_before_a_number_promises_no_call_back(phone, db):
    call = phone("anonymous").press("9").press("0")
    assert call.ended and call.said == t("nl", "voice.trouble_no_number")
    db.expire_all()
    [item] = db.scalars(select(Callback)).all()  # brokers still see it, with no one to call
    assert (item.reason, item.resident_id) == ("callback_requested", None)


def test_star_in_the_language_menu_repeats_it(phone, db):
    call = phone("anonymous").press("9")
    menu = call.said
    call.press("*")
    assert call.said == menu
    call.press("2").press("9")  # 9 again, now in English: back to the menu
    assert t("en", "voice.language_choice", digit="2") in call.said
    call.press("1")
    assert call.said.startswith(t("nl", "voice.language_set") + " " + t("nl", "voice.phone_entry"))


@pytest.mark.parametrize(("keys", "item"), [
    (["9#", "2", "0612345678#", "1"], False),  # a language chosen, the number confirmed: as a caller we know
    (["0612345678#", "1", "3"], False),  # the status heard
    (["0612345678#", "1"], True),  # nothing chosen or heard: as a caller we know who hangs up at the menu
    (["9#", "2", "0612345678#"], True),  # hung up at the number's read-back
])
def test_hanging_up_after_the_number_is_an_item_only_when_nothing_was_served(phone, db, keys, item):
    call = phone("anonymous")
    for pressed in keys:
        call.press(pressed)
    call.hang_up()
    db.expire_all()
    reasons = [callback.reason for callback in db.scalars(select(Callback))]
    assert reasons == (["abandoned_call"] if item else [])
