"""The phone menu, walked as Twilio walks it: every path, every language, the
readbacks, wrong keys, silence, '*', '0' and withheld numbers.

Runs on SQLite and PostgreSQL (the ``database_url`` fixture behind ``app``).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

import texts
from gateway.database import get_database
from ivr_flows.speech import brokers_call_today
from models.workdays import parse_hours
from ivr_flows.steps import CATEGORIES
from models import Call, Callback, Listing, Match, Resident
from models.base import utcnow
from models.listing import OFFER_TIMINGS, REQUEST_TIMINGS
from models.marketplace import record_listing
from models.residents import resident_for
from models.phones import parse_phone
from tests.call_simulator import GATEWAY_NUMBER, SimulatedCall, flask_poster
from tests.conftest import api_get

CALLER = "+31612345678"
VOICES = {"nl": ("nl-NL", "Polly.Lotte"), "en": ("en-GB", "Polly.Amy"), "tr": ("tr-TR", "Polly.Filiz"),
          "ar": ("arb", "Polly.Zeina")}
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WITHHELD = ["anonymous", "+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"]


def t(language: str, key: str, **params: object) -> str:
    return texts.t(language, key, **params)


def listings(db) -> list[Listing]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(Listing).order_by(Listing.id)))


def callbacks(db) -> list[Callback]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(Callback).order_by(Callback.id)))


def the_call(db, call: SimulatedCall) -> Call:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


# --- the whole way -----------------------------------------------------------------------


def test_groceries_request_with_postcode_2034_lands_in_api_with_recording_and_callback(phone, db, client):
    call = phone()
    assert t("nl", "voice.welcome") in call.said
    assert "Wilt u hulp vragen? Druk 1." in call.said
    call.press("1")
    assert "Voor boodschappen, druk 1." in call.said
    call.press("1")
    assert t("nl", "voice.postcode_entry") in call.said
    call.press("2034")
    assert "U toetste: twee, nul, drie, vier." in call.said
    call.press("1")
    assert "Zo snel mogelijk? Druk 1." in call.said
    call.press("1")
    assert t("nl", "voice.record_request") in call.said
    call.record(9)
    assert call.said == t("nl", "voice.done_request")
    assert call.ended

    [listing] = api_get(client, "/api/v1/listings")["listings"]
    assert listing | {"created_at": None} == {
        "id": listing["id"], "kind": "request", "category": "groceries", "description": None, "postcode": "2034",
        "district": "schalkwijk", "when": "asap", "channel": "voice", "status": "open", "phone": CALLER,
        "has_recording": True, "created_at": None,
    }
    [callback] = api_get(client, "/api/v1/callbacks")["callbacks"]
    assert (callback["reason"], callback["listing_id"], callback["phone"]) == ("new_listing", listing["id"], CALLER)
    stored = listings(db)[0]
    assert stored.recording_sid == call.last_recording_sid and stored.recording_duration == 9
    assert the_call(db, call).status == "finished"
    assert db.scalar(select(Resident.postcode).where(Resident.phone == CALLER)) == "2034"


def test_offer_uses_offer_words_and_timings(phone, db):
    call = phone()
    call.press("2")
    assert t("nl", "voice.category_offer") in call.said
    call.press("5").press("2031").press("1")
    assert t("nl", "voice.when_offer") in call.said
    assert "In het weekend? Druk 3." in call.said
    call.press("3")
    assert t("nl", "voice.record_offer") in call.said
    call.record(4)
    assert call.said == t("nl", "voice.done_offer")
    [listing] = listings(db)
    assert (listing.kind, listing.category, listing.timing, listing.district) == ("offer", "digital", "weekends", "oost")


@pytest.mark.parametrize(("digit", "category"), [(str(n), code) for n, code in enumerate(CATEGORIES, 1)])
def test_each_category_digit_of_the_contract(phone, db, digit, category):
    call = phone().press("1").press(digit)
    assert t("nl", "voice.postcode_entry") in call.said
    call.hang_up()  # what was entered is kept as a listing
    [listing] = listings(db)
    assert (listing.kind, listing.category) == ("request", category)


@pytest.mark.parametrize(
    ("kind_digit", "digit", "timing"),
    [("1", str(n), code) for n, code in enumerate(REQUEST_TIMINGS, 1)]
    + [("2", str(n), code) for n, code in enumerate(OFFER_TIMINGS, 1)],
)
def test_each_when_choice(phone, db, kind_digit, digit, timing):
    phone().press(kind_digit).press("9").press("2011").press("1").press(digit).record_nothing()
    [listing] = listings(db)
    assert listing.timing == timing
    assert listing.category == "other"
    assert not listing.has_recording  # complete without a recording when the caller says nothing
    assert [c.reason for c in callbacks(db)] == ["new_listing"]


# --- postcodes -----------------------------------------------------------------------------


def test_a_known_postcode_is_read_back_and_confirmed_with_1(phone, db):
    phone().press("1").press("1").press("2034").press("1").press("1").record(3)
    call = phone().press("1").press("4")
    assert "Uw postcode is: twee, nul, drie, vier." in call.said
    assert "Klopt dat? Druk 1." in call.said and "Een andere postcode? Druk 2." in call.said
    call.press("1")
    assert t("nl", "voice.when_request") in call.said
    call.press("2").record(3)
    assert [item.postcode for item in listings(db)] == ["2034", "2034"]


def test_a_known_postcode_is_replaced_with_2(phone, db):
    phone().press("1").press("1").press("2034").press("1").press("1").record(3)
    call = phone().press("2").press("4").press("2")
    assert t("nl", "voice.postcode_entry") in call.said
    call.press("2012").press("1").press("4").record(3)
    assert listings(db)[-1].postcode == "2012" and listings(db)[-1].district == "centrum"
    db.expire_all()
    assert db.scalar(select(Resident.postcode).where(Resident.phone == CALLER)) == "2012"


def test_a_postcode_outside_the_data_file_is_kept_without_district(phone, db):
    call = phone().press("1").press("2").press("1234")
    assert "U toetste: één, twee, drie, vier." in call.said
    call.press("1").press("3").record(2)
    [listing] = listings(db)
    assert (listing.postcode, listing.district) == ("1234", None)


@pytest.mark.parametrize(("keys", "told"), [("203#", "voice.postcode_invalid"), ("12", "voice.postcode_invalid"),
                                            ("0123", "voice.postcode_zero")])
def test_a_wrong_postcode_is_asked_again(phone, db, keys, told):
    call = phone().press("1").press("1").press(keys)
    assert t("nl", told) in call.said
    assert t("nl", "voice.postcode_entry") in call.said
    call.press("2034")
    assert "twee, nul, drie, vier" in call.said


def test_postcode_entry_read_back_can_be_keyed_again(phone):
    call = phone().press("1").press("1").press("2043").press("2")
    assert t("nl", "voice.postcode_entry") in call.said
    call.press("2034")
    assert "twee, nul, drie, vier" in call.said


# --- languages -------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "language"), [("1", "nl"), ("2", "en"), ("3", "tr"), ("4", "ar")])
def test_every_language_whole_way_with_its_voice_and_saved(phone, db, digit, language):
    call = phone().press("9")
    menu = call.heard[-4:]  # the language menu: each choice in its own language and voice, nothing else
    assert [(item.language, item.voice) for item in menu] == [VOICES[code] for code in ("nl", "en", "tr", "ar")]
    assert t("nl", "voice.repeat_hint") not in " ".join(item.text for item in menu)
    call.press(digit)
    assert call.said.startswith(t(language, "voice.language_set"))
    assert t(language, "voice.main.ask", digit="1") in call.said
    assert (call.heard[-4].language, call.heard[-4].voice) == VOICES[language]
    call.press("1")
    assert t(language, "voice.option", label=t(language, "voice.category.groceries"), digit="1") in call.said
    call.press("1").press("2034")
    assert t(language, "voice.postcode_read", postcode=", ".join(t(language, f"voice.digit.{d}") for d in "2034")) \
        in call.said
    call.press("1").press("2")
    assert t(language, "voice.record_request") in call.said
    call.record(5)
    assert call.said == t(language, "voice.done_request")
    assert {(item.language, item.voice) for item in call.heard[-6:]} == {VOICES[language]}
    db.expire_all()
    assert db.scalar(select(Resident.language).where(Resident.phone == CALLER)) == language
    assert listings(db)[0].has_recording


def test_a_returning_caller_is_greeted_in_their_saved_language(phone):
    phone().press("9").press("2").hang_up()
    call = phone()
    assert call.said.startswith(t("en", "voice.welcome"))
    assert (call.heard[0].language, call.heard[0].voice) == ("en-GB", "Polly.Amy")
    # The other languages are still offered, each in its own voice.
    assert "Voor Nederlands, druk 9." in call.transcript


def test_a_language_chosen_by_voice_is_used_for_sms_replies(phone, twilio, fake_twilio):
    phone().press("9").press("2").hang_up()
    response = twilio.sms(CALLER, "STATUS")  # a keyword that is the same in Dutch and English
    assert response.status_code == 200
    assert fake_twilio.wait_for(1)
    assert fake_twilio.messages()[-1]["Body"] == texts.t("en", "sms.status_none")


# --- wrong keys, silence, '*' -----------------------------------------------------------------


def test_a_wrong_key_repeats_the_question_and_the_third_ends_with_a_callback(phone, db):
    call = phone().press("7")
    assert call.said.startswith(t("nl", "voice.wrong_key"))
    assert "Wilt u hulp vragen? Druk 1." in call.said
    call.press("8")
    assert call.said.startswith(t("nl", "voice.wrong_key"))
    call.press("5")
    assert call.said == t("nl", "voice.trouble")
    assert call.ended
    [callback] = callbacks(db)
    assert (callback.reason, callback.call_id) == ("menu_trouble", the_call(db, call).id)
    assert callback.resident_id is not None


def test_silence_repeats_the_question_and_the_third_ends_with_a_callback(phone, db):
    call = phone().press("1")
    call.silence()
    assert call.said.startswith(t("nl", "voice.no_key"))
    assert t("nl", "voice.category_request") in call.said
    call.silence().silence()
    assert call.said == t("nl", "voice.trouble")
    assert [c.reason for c in callbacks(db)] == ["menu_trouble"]
    # What was entered before the trouble is kept on the call.
    assert the_call(db, call).data["kind"] == "request"


def test_star_repeats_the_question_without_counting_as_a_try(phone, db):
    call = phone().press("9")
    first = call.said
    for _ in range(4):
        call.press("*")
        assert call.said == first
    call.press("7")  # a wrong key: first try
    call.press("*")
    call.press("7")  # second try: still asked, not ended
    assert not call.ended and call.said.startswith(t("nl", "voice.wrong_key"))
    call.press("2")
    assert call.said.startswith(t("en", "voice.language_set"))
    assert callbacks(db) == []


def test_a_hash_after_a_keyed_in_postcode_is_not_a_wrong_key(phone, db):
    """ "2034#" out of habit: the '#' lands on the read-back question and must not count."""
    call = phone().press("1").press("1").press("2034")
    read_back = call.said
    assert "twee, nul, drie, vier" in read_back
    for _ in range(4):
        call.press("#")
        assert call.said == read_back  # asked again, no "sorry", no try used
    call.press("1")
    assert t("nl", "voice.when_request") in call.said
    assert callbacks(db) == []


def test_a_correct_answer_resets_the_count_of_tries(phone):
    call = phone().press("7").press("7").press("9")  # two misses, then right
    call.press("7").press("7")  # two misses at the next question
    assert not call.ended
    assert call.said.startswith(t("nl", "voice.wrong_key"))
    call.press("1")
    assert call.said.startswith(t("nl", "voice.language_set"))


def test_a_caller_stuck_pressing_star_still_reaches_a_person(phone, db):
    call = phone()
    for _ in range(70):
        if call.ended:
            break
        call.press("*")
    assert call.ended and call.said == t("nl", "voice.trouble")
    assert [c.reason for c in callbacks(db)] == ["menu_trouble"]


# --- '0' at every menu ------------------------------------------------------------------------


ZERO_AT = {
    "main_menu": [],
    "language_menu": ["9"],
    "category": ["1"],
    "postcode_confirm": ["1", "1", "2034"],
    "when_request": ["1", "1", "2034", "1"],
    "when_offer": ["2", "1", "2034", "1"],
}


@pytest.mark.parametrize("step", list(ZERO_AT))
def test_zero_at_each_menu_asks_for_a_broker(phone, db, step):
    call = phone()
    for keys in ZERO_AT[step]:
        call.press(keys)
    assert the_call(db, call).step == step
    call.press("0")
    today = brokers_call_today(utcnow(), (dt.time(9), dt.time(17)), AMSTERDAM)
    expected = "voice.callback_today" if today else "voice.callback_next_day"
    assert call.said == t("nl", expected)
    assert call.ended
    [callback] = callbacks(db)
    assert callback.reason == "callback_requested" and callback.resident_id is not None
    assert the_call(db, call).status == "finished"


def test_zero_at_the_known_postcode_question_asks_for_a_broker(phone, db):
    phone().press("1").press("1").press("2034").press("1").press("1").record(2)
    call = phone().press("1").press("1")
    assert the_call(db, call).step == "postcode_known"
    call.press("0")
    assert call.ended
    assert "callback_requested" in [c.reason for c in callbacks(db)]


def test_zero_while_keying_a_postcode_is_a_digit(phone, db):
    call = phone().press("1").press("1").press("0")
    assert t("nl", "voice.postcode_invalid") in call.said
    assert not call.ended and callbacks(db) == []


def test_zero_by_sms_and_by_phone_make_one_callback_for_the_resident(phone, twilio, db):
    twilio.sms(CALLER, "BEL")
    phone().press("0")
    assert [c.reason for c in callbacks(db)] == ["callback_requested"]


@pytest.mark.parametrize(
    ("local", "today"),
    [
        (dt.datetime(2026, 11, 23, 10, 0), True),  # Monday, office hours
        (dt.datetime(2026, 11, 23, 8, 0), True),  # Monday before opening: still today
        (dt.datetime(2026, 11, 23, 17, 30), False),  # Monday after closing
        (dt.datetime(2026, 11, 27, 16, 59), True),  # Friday just before closing
        (dt.datetime(2026, 11, 28, 11, 0), False),  # Saturday
        (dt.datetime(2026, 11, 29, 11, 0), False),  # Sunday
        (dt.datetime(2026, 12, 25, 10, 0), False),  # Christmas Day, a Friday
        (dt.datetime(2027, 3, 29, 10, 0), False),  # Easter Monday
        (dt.datetime(2026, 4, 27, 10, 0), False),  # King's Day
        (dt.datetime(2027, 3, 26, 10, 0), True),  # Good Friday: BUUV works
    ],
)
def test_when_brokers_call_back_follows_broker_hours_in_amsterdam(local, today):
    now = local.replace(tzinfo=AMSTERDAM).astimezone(dt.timezone.utc)
    assert brokers_call_today(now, parse_hours("09:00-17:00"), AMSTERDAM) is today


def test_broker_hours_are_configurable(database_url, fake_twilio):
    from gateway import create_app
    from gateway.webhooks_voice import voice_settings
    from tests.conftest import TwilioWebhooks, app_config

    app = create_app(app_config(database_url, fake_twilio, BUURTLIJN_BROKER_HOURS="07:30-08:15"))
    assert voice_settings(app).broker_hours == (dt.time(7, 30), dt.time(8, 15))
    call = SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=CALLER).start().press("0")
    today = brokers_call_today(utcnow(), (dt.time(7, 30), dt.time(8, 15)), AMSTERDAM)
    assert call.said == t("nl", "voice.callback_today" if today else "voice.callback_next_day")
    get_database(app).dispose()


# --- the status line ('3') --------------------------------------------------------------------


def test_status_line_with_nothing_open(phone):
    call = phone().press("3")
    assert call.said.startswith(t("nl", "voice.status_none"))
    assert "Wilt u hulp vragen? Druk 1." in call.said  # back to the main menu


def test_status_line_reads_open_items_in_words_with_day_and_appointment(phone, db):
    resident = resident_for(db, parse_phone(CALLER))
    neighbour = resident_for(db, parse_phone("+31687654321"))
    now = utcnow()
    record_listing(db, resident, kind="request", channel="sms", category="groceries", postcode="2034")
    days_ago = (now - dt.timedelta(days=3))
    earlier = record_listing(db, resident, kind="offer", channel="sms", category="company", postcode="2034")
    earlier.created_at = days_ago
    old = record_listing(db, resident, kind="request", channel="sms", category="paperwork", postcode="2034")
    old.created_at = now - dt.timedelta(days=20)
    helper = record_listing(db, neighbour, kind="offer", channel="sms", category="paperwork", postcode="2034")
    old.status = "matched"
    meeting = (now + dt.timedelta(days=2)).replace(hour=13, minute=30, second=0, microsecond=0)
    db.add(Match(request_id=old.id, offer_id=helper.id, status="confirmed", meeting_at=meeting, created_at=now,
                 updated_at=now))
    db.commit()

    # In a confirmed match the call is put through after the announcement; 0 reaches the menu instead.
    call = phone().press("0").press("3")
    zone = AMSTERDAM
    weekday = t("nl", f"voice.weekday.{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[days_ago.astimezone(zone).weekday()]}")
    assert "Uw vraag voor boodschappen van vandaag staat nog open." in call.said
    assert f"Uw aanbod voor gezelschap, zoals wandelen of koffie van {weekday} staat nog open." in call.said
    old_local = old.created_at.astimezone(zone)
    month = t("nl", f"voice.month.{('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec')[old_local.month - 1]}")
    paperwork = t("nl", "voice.category.paperwork")
    assert f"Voor uw vraag voor {paperwork} van {old_local.day} {month} is iemand gevonden." in call.said
    assert "De afspraak is op " in call.said and " om " in call.said
    assert call.said.index("boodschappen") < call.said.index("gezelschap")  # newest first
    assert not call.ended


def test_status_line_says_how_many_more_beyond_five(phone, db):
    resident = resident_for(db, parse_phone(CALLER))
    for _ in range(7):
        record_listing(db, resident, kind="request", channel="sms", category="groceries")
    db.commit()
    call = phone().press("3")
    assert call.said.count("staat nog open") == 5
    assert t("nl", "voice.status_more", count=2) in call.said


# --- withheld and invalid caller IDs ---------------------------------------------------------


@pytest.mark.parametrize("caller_id", [*WITHHELD, "+1234", "12345"])
def test_withheld_or_invalid_caller_id_keys_in_the_number_first(phone, db, caller_id):
    call = phone(caller_id)
    assert t("nl", "voice.phone_entry") in call.said
    assert call.gather.get("finishOnKey") == "#" and call.gather.get("numDigits") is None
    call.press("0612345678#")
    assert "U toetste: nul, zes, één, twee, drie, vier, vijf, zes, zeven, acht." in call.said
    call.press("2")
    assert t("nl", "voice.phone_entry") in call.said
    call.press("0687654321#").press("1")
    assert "Wilt u hulp vragen? Druk 1." in call.said
    stored = the_call(db, call)
    assert db.get(Resident, stored.resident_id).phone == "+31687654321"
    call.press("1").press("1").press("2034").press("1").press("1").record(3)
    [listing] = listings(db)
    assert listing.resident_id == stored.resident_id


@pytest.mark.parametrize("keys", ["12#", "0000000000#", "99999999999999#"])
def test_a_keyed_number_that_is_not_a_phone_number_is_asked_again(phone, db, keys):
    call = phone("anonymous").press(keys)
    assert call.said.startswith(t("nl", "voice.phone_invalid"))
    assert t("nl", "voice.phone_entry") in call.said
    assert db.scalar(select(func.count(Resident.id))) == 0


def test_a_withheld_caller_who_never_keys_in_a_number_is_not_promised_a_call_back(phone, db):
    call = phone("anonymous").press("12#").press("34#").press("56#")
    assert call.ended and t("nl", "voice.trouble_no_number") in call.said
    assert t("nl", "voice.trouble") not in call.said
    [callback] = callbacks(db)  # brokers still see that someone got stuck at the number
    assert (callback.reason, callback.resident_id) == ("menu_trouble", None)


def test_a_caller_we_can_call_back_hears_that_we_will(phone, db):
    call = phone().press("7").press("7").press("7")
    assert t("nl", "voice.trouble") in call.said
    assert db.get(Resident, callbacks(db)[0].resident_id).phone == CALLER


def test_a_withheld_caller_who_keys_in_a_known_number_hears_their_language(phone, db):
    phone().press("9").press("2").hang_up()
    call = phone("anonymous").press("0612345678#").press("1")
    assert t("en", "voice.main.ask", digit="1") in call.said


# --- calls between matched neighbours -----------------------------------------------------------


def _accepted_match(db, status: str = "accepted") -> None:  # type: ignore[no-untyped-def]
    asker = resident_for(db, parse_phone(CALLER))
    helper = resident_for(db, parse_phone("+31687654321"))
    request = record_listing(db, asker, kind="request", channel="sms", category="groceries", postcode="2034")
    offer = record_listing(db, helper, kind="offer", channel="sms", category="groceries", postcode="2034")
    now = utcnow()
    db.add(Match(request_id=request.id, offer_id=offer.id, status=status, created_at=now, updated_at=now))
    db.commit()


def test_a_matched_resident_is_put_through_to_the_other_with_our_number_showing(phone, db):
    _accepted_match(db)
    call = phone()
    # Said first whom the call goes to, and that 0 reaches BUUV; a few seconds of quiet, then through.
    assert call.said == f'{t("nl", "voice.welcome")} {t("nl", "voice.relay_announce")}'
    assert call.dialled == []
    assert call.gather.get("timeout") == "3"
    call.silence()
    assert call.dialled == ["+31687654321"]
    dial = call._expect("Dial")
    assert dial.get("callerId") == GATEWAY_NUMBER
    call.dial_result("completed")
    assert call.ended
    stored = the_call(db, call)
    assert (stored.purpose, stored.status) == ("relay", "finished")
    assert [c.reason for c in callbacks(db) if c.reason != "new_listing"] == []


@pytest.mark.parametrize("status", ["accepted", "confirmed"])
def test_a_matched_resident_who_presses_0_reaches_the_menu_not_the_neighbour(phone, db, status):
    """Every call from a matched resident used to go straight to the other: no way to reach BUUV."""
    _accepted_match(db, status=status)
    call = phone().press("0")
    assert call.dialled == [] and "Wilt u hulp vragen? Druk 1." in call.said
    call.press("0")  # in the menu, 0 asks for a broker as ever
    assert [c.reason for c in callbacks(db) if c.reason != "new_listing"] == ["callback_requested"]


def test_any_other_key_during_the_announcement_puts_the_caller_through(phone, db):
    _accepted_match(db)
    assert phone().press("5").dialled == ["+31687654321"]


def test_hanging_up_during_the_announcement_is_no_item(phone, db):
    _accepted_match(db)
    phone().hang_up()
    assert [c.reason for c in callbacks(db) if c.reason != "new_listing"] == []


def test_when_the_other_does_not_answer_the_caller_gets_the_menu(phone, db):
    _accepted_match(db, status="confirmed")
    call = phone().silence().dial_result("no-answer")
    assert call.said.startswith(t("nl", "voice.relay_not_reached"))
    assert "Wilt u hulp vragen? Druk 1." in call.said
    call.press("3")
    assert "Uw vraag voor boodschappen van vandaag" in call.said


def test_a_proposed_match_does_not_put_calls_through(phone, db):
    _accepted_match(db, status="proposed")
    assert "Wilt u hulp vragen? Druk 1." in phone().said
