"""The SMS channel end to end: Twilio's webhook in, the reply out through the fake Twilio."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.database import get_database
from models import Callback, Listing, Message, Resident
from tests.conftest import API_TOKEN, GATEWAY_NUMBER, api_get, new_message_sid, parse_twiml
import texts
from texts import is_gsm7, segment_count

RESIDENT = "+31612345678"


def replies(fake, to: str = RESIDENT) -> list[str]:
    return [m["Body"] for m in fake.messages() if m["To"] == to]


def test_request_with_category_and_postcode_lands_in_queue_and_api(twilio, fake_twilio, client):
    response = twilio.sms("0612345678", "VRAAG boodschappen 2034")

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert list(parse_twiml(response.data)) == []  # the reply goes out as its own SMS
    [reply] = replies(fake_twilio)
    assert reply.startswith("Dank u! Uw vraag (boodschappen)")
    assert is_gsm7(reply) and segment_count(reply) == 1
    [sent] = fake_twilio.messages()
    assert sent["From"] == GATEWAY_NUMBER

    [listing] = api_get(client, "/api/v1/listings")["listings"]
    assert listing | {"id": 0, "created_at": ""} == {
        "id": 0, "kind": "request", "category": "groceries", "description": "boodschappen 2034",
        "postcode": "2034", "district": "schalkwijk", "when": None, "channel": "sms", "status": "open",
        "phone": RESIDENT, "has_recording": False, "created_at": "",
    }
    [callback] = api_get(client, "/api/v1/callbacks")["callbacks"]
    assert callback["reason"] == "new_listing"
    assert callback["listing_id"] == listing["id"]
    assert callback["phone"] == RESIDENT and callback["status"] == "open"
    resident = api_get(client, f"/api/v1/residents/{RESIDENT}")
    # The id too: integrations may ask for a resident by id, without a number in the URL.
    assert resident == {"id": resident["id"], "phone": RESIDENT, "language": "nl", "opted_out": False,
                        "postcode": "2034", "district": "schalkwijk", "listings": [listing["id"]]}


def test_english_offer_replies_in_english_and_remembers(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "offer: I can help with your computer or phone")
    twilio.sms(RESIDENT, "STATUS")

    first, status = replies(fake_twilio)
    assert first.startswith("Thank you! We have noted your offer. What is your postcode?")
    assert status.startswith("Your requests and offers at BUUV:")
    assert "- Offer computer and phone: open" in status
    listing = db.scalars(select(Listing)).one()
    assert (listing.kind, listing.category, listing.postcode) == ("offer", "digital", None)
    assert db.scalars(select(Resident)).one().language == "en"


def test_missing_postcode_is_asked_and_the_next_message_completes_the_listing(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "Vraag: wie kan met mij naar de huisarts")
    listing = db.scalars(select(Listing)).one()
    assert listing.postcode is None  # stored at once, before the answer

    twilio.sms(RESIDENT, "Mijn postcode is 2011 AB")

    ask, saved = replies(fake_twilio)
    assert "Wat is uw postcode?" in ask
    assert saved == "Dank u! Postcode 2011 staat erbij. Iemand van BUUV belt u binnen 2 werkdagen."
    db.expire_all()
    listing = db.get(Listing, listing.id)
    assert (listing.category, listing.postcode, listing.district) == ("transport", "2011", "centrum")
    resident = db.scalars(select(Resident)).one()
    assert resident.conversation is None and resident.postcode == "2011"
    # The answer was no unrecognised message: nothing extra in the queue.
    assert [c.reason for c in db.scalars(select(Callback))] == ["new_listing"]


def test_postcode_outside_the_district_file_is_kept_without_district(twilio, db):
    twilio.sms(RESIDENT, "AANBOD tuinieren 1011")
    listing = db.scalars(select(Listing)).one()
    assert (listing.category, listing.postcode, listing.district) == ("chores", "1011", None)


def test_replayed_message_sid_creates_nothing_twice(twilio, fake_twilio, db):
    sid = new_message_sid()
    for _ in range(6):  # one try plus five retries, as Twilio may do
        assert twilio.sms(RESIDENT, "VRAAG boodschappen 2034", message_sid=sid).status_code == 200

    assert db.scalar(select(func.count(Message.id)).where(Message.direction == "inbound")) == 1
    assert db.scalar(select(func.count(Listing.id))) == 1
    assert db.scalar(select(func.count(Callback.id))) == 1
    assert len(fake_twilio.messages()) == 1


def test_bel_queues_one_callback_request(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "bel")
    twilio.sms(RESIDENT, "BEL!")

    callbacks = db.scalars(select(Callback)).all()
    assert [(c.reason, c.priority) for c in callbacks] == [("callback_requested", 30)]
    assert replies(fake_twilio)[0].startswith("Goed, iemand van BUUV belt u terug.")


def test_help_explains_keywords_in_one_segment(twilio, fake_twilio):
    twilio.sms(RESIDENT, "hulp")
    [reply] = replies(fake_twilio)
    assert "VRAAG" in reply and "STOP" in reply and segment_count(reply) == 1


def test_help_inside_a_sentence_reaches_a_person(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "Help, ik ben gevallen en kan niet opstaan")
    [callback] = db.scalars(select(Callback)).all()
    assert callback.reason == "unrecognised_message"
    assert replies(fake_twilio) == [texts.t("nl", "sms.unrecognised")]
    assert db.scalars(select(Message).where(Message.direction == "inbound")).one().callback_id == callback.id


@pytest.mark.parametrize("body", ["stop alsjeblieft", "Stop!!", "STOP met sms", "afmelden graag"])
def test_an_opt_out_word_first_opts_out_whatever_follows(twilio, fake_twilio, db, body):
    """Contract, second wave: the first word counts. "stop alsjeblieft" used to become a broker item."""
    twilio.sms(RESIDENT, body)
    assert db.scalars(select(Resident)).one().opted_out
    assert replies(fake_twilio) == [texts.t("nl", "sms.stopped")]
    assert db.scalars(select(Callback)).all() == []  # a polite word after STOP is nothing to follow up


def test_stop_with_a_whole_sentence_opts_out_and_a_person_reads_the_sentence(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "Stop, mijn helper blijft mij berichten sturen")
    assert db.scalars(select(Resident)).one().opted_out
    [callback] = db.scalars(select(Callback)).all()
    assert callback.reason == "unrecognised_message"
    assert replies(fake_twilio) == [texts.t("nl", "sms.stopped")]


def test_stop_opts_out_answers_once_and_nothing_is_sent_after(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "AFMELDEN")
    twilio.sms(RESIDENT, "afmelden")
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")

    assert replies(fake_twilio) == ["U krijgt geen sms meer van BUUV. Toch weer sms? Stuur START. Bellen kan altijd."]
    resident = db.scalars(select(Resident)).one()
    assert resident.opted_out and resident.opted_out_at is not None
    # The request is still stored and queued: only the reply is withheld.
    assert db.scalar(select(func.count(Listing.id))) == 1
    blocked = db.scalars(select(Message).where(Message.status == "blocked")).one()
    assert blocked.error_message == "opted_out"

    twilio.sms(RESIDENT, "START")
    assert replies(fake_twilio)[-1].startswith("Welkom terug bij BUUV!")
    db.expire_all()
    assert db.scalars(select(Resident)).one().opted_out is False


def test_twilio_advanced_opt_out_is_honoured_without_a_second_reply(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "STOP", OptOutType="STOP")
    assert fake_twilio.messages() == []
    assert db.scalars(select(Resident)).one().opted_out is True
    twilio.sms(RESIDENT, "START", OptOutType="START")
    assert fake_twilio.messages() == []
    db.expire_all()
    assert db.scalars(select(Resident)).one().opted_out is False


@pytest.mark.parametrize("body", ["JA", "Ja ik wil graag hulp met de tuin 2034", "nee dank u", "KLAAR", "Done!",
                                  "yes please call me"])
def test_an_answer_word_with_nothing_waiting_is_free_text_a_person_reads(twilio, fake_twilio, client, db, body):
    """It used to get "nothing to answer" and no item: the resident's words were lost."""
    twilio.sms(RESIDENT, body)
    inbound = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert inbound.status == "handled" and inbound.keyword is not None
    [callback] = db.scalars(select(Callback)).all()
    assert (callback.reason, callback.status) == ("unrecognised_message", "open")
    assert inbound.callback_id == callback.id
    assert api_get(client, "/api/v1/callbacks")["callbacks"][0]["message"] == body
    [reply] = replies(fake_twilio)
    assert reply in (texts.t("nl", "sms.unrecognised"), texts.t("en", "sms.unrecognised"))


def test_status_lists_open_items_within_three_segments(twilio, fake_twilio):
    for word in ("boodschappen", "klussen", "computer", "formulieren", "hond", "koffie", "taal"):
        twilio.sms(RESIDENT, f"VRAAG {word} 2034")
    twilio.sms(RESIDENT, "status")
    status = replies(fake_twilio)[-1]
    assert status.count("\n- Vraag ") == 5
    assert "En nog 2 meer." in status
    assert segment_count(status) <= 3 and is_gsm7(status)


def _speaks(db, language: str) -> None:  # type: ignore[no-untyped-def]
    """The resident chose ``language`` (in the phone menu, say) before texting."""
    from models.phones import parse_phone
    from models.residents import resident_for

    resident_for(db, parse_phone(RESIDENT)).language = language
    db.commit()


def test_a_resident_who_chose_turkish_gets_turkish_replies_in_one_segment(twilio, fake_twilio, db):
    _speaks(db, "tr")
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "STATUS")
    received, status = replies(fake_twilio)
    # Written without the marks GSM-7 lacks (s-cedilla, dotless i), so each costs one segment.
    assert received.startswith("Tesekkürler! alisveris isteginiz BUUV'da.")  # ü is in GSM-7
    assert status == "BUUV'daki istek ve teklifleriniz:\n- Istek alisveris: acik\nSorunuz mu var? BEL yazin."
    assert all(is_gsm7(text) and segment_count(text) == 1 for text in (received, status))


def test_an_arabic_status_keeps_to_three_segments_and_says_how_many_more(twilio, fake_twilio, db):
    _speaks(db, "ar")
    for word in ("boodschappen", "klussen", "dokter", "computer", "formulieren", "hond"):
        twilio.sms(RESIDENT, f"VRAAG {word} 2034")
    twilio.sms(RESIDENT, "STATUS")
    *received, status = replies(fake_twilio)
    assert received[0].startswith("شكرًا! طلبك (التسوق) مسجل لدى BUUV.")
    assert all(segment_count(text) <= 2 for text in received)
    assert status.startswith("طلباتك وعروضك لدى BUUV:") and status.endswith("أسئلة؟ أرسل BEL.")
    shown = status.count("\n- طلب ")
    assert 1 <= shown < 6 and f"و{6 - shown} أخرى." in status
    assert segment_count(status) <= 3


@pytest.mark.parametrize(
    "body",
    [
        "",
        "x" * 1600,
        "VRAAG 🙂🙏 boodschappen 2034",
        "<Say>hallo</Say></Message><Redirect>http://evil.example</Redirect>",
        "VRAAG \x00\x07\x1b boodschappen\r\n2034",
        "ÀÉÎÕÜ ëï ‘quoted’ “double”",
    ],
    ids=["empty", "1600-chars", "emoji", "markup", "control-chars", "accents"],
)
def test_bad_input_gets_a_clear_answer_and_loses_nothing(twilio, fake_twilio, db, body):
    response = twilio.sms(RESIDENT, body)

    assert response.status_code == 200
    root = parse_twiml(response.data)  # well-formed, and nothing of the input in it
    assert list(root) == [] and b"evil" not in response.data
    inbound = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert inbound.body == body.replace("\x00", "")
    assert inbound.status == "handled"
    [reply] = replies(fake_twilio)
    assert reply and is_gsm7(reply) and segment_count(reply) <= 2
    if not body.upper().startswith("VRAAG"):
        assert db.scalars(select(Callback)).one().reason == "unrecognised_message"


def test_missing_from_is_stored_and_queued_for_a_person(twilio, fake_twilio, db):
    response = twilio.sms(None, "Ik wil graag hulp")
    assert response.status_code == 200
    message = db.scalars(select(Message)).one()
    assert (message.raw_from, message.body, message.status) == (None, "Ik wil graag hulp", "handled")
    callback = db.scalars(select(Callback)).one()
    assert (callback.reason, callback.message_id, callback.resident_id) == ("unrecognised_message", message.id, None)
    assert fake_twilio.messages() == []


def test_junk_sender_is_stored_not_answered(twilio, fake_twilio, db):
    twilio.sms("hello", "VRAAG boodschappen")
    assert db.scalars(select(Message)).one().raw_from == "hello"
    assert db.scalars(select(Callback)).one().reason == "unrecognised_message"
    assert fake_twilio.messages() == []


def test_foreign_number_is_kept_in_e164(twilio, db):
    twilio.sms("+447911123456", "REQUEST shopping 2034")
    assert db.scalars(select(Resident)).one().phone == "+447911123456"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"], ids=["missing", "wrong"])
def test_unsigned_webhook_is_refused_and_records_nothing(twilio, db, signature):
    from gateway.twilio_sim import sms_params

    params = sms_params(account_sid="AC1", from_=RESIDENT, to=GATEWAY_NUMBER, body="VRAAG boodschappen")
    response = twilio.post("/twilio/sms", params, signature=signature)
    assert response.status_code == 403
    assert db.scalar(select(func.count(Message.id))) == 0


def test_signature_is_checked_against_public_base_url(database_url, fake_twilio):
    from gateway import create_app
    from tests.conftest import TwilioWebhooks, app_config

    app = create_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL="https://buurtlijn.example.org"))
    webhooks = TwilioWebhooks(app.test_client())
    assert webhooks.sms(RESIDENT, "HULP").status_code == 403  # signed for http://localhost
    webhooks.base = "https://buurtlijn.example.org"
    assert webhooks.sms(RESIDENT, "HULP").status_code == 200
    sent = fake_twilio.messages()[0]
    assert sent["StatusCallback"] == "https://buurtlijn.example.org/twilio/sms/status"
    get_database(app).dispose()


def test_api_requires_the_bearer_token(client):
    assert client.get("/api/v1/listings").status_code == 401
    assert client.get("/api/v1/listings", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/v1/listings", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert ok.status_code == 200 and ok.get_json() == {"listings": [], "next_cursor": None}


def test_api_resident_lookup_answers_bad_input_clearly(twilio, client):
    twilio.sms(RESIDENT, "HULP")
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.get("/api/v1/residents/0612345678", headers=headers).get_json()["phone"] == RESIDENT
    junk = client.get("/api/v1/residents/hello", headers=headers)
    assert junk.status_code == 400 and "E.164" in junk.get_json()["message"]
    assert client.get("/api/v1/residents/+31687654321", headers=headers).status_code == 404
    assert client.get("/api/v1/listings/999", headers=headers).status_code == 404
