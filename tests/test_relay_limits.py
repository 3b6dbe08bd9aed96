"""Texts passed on between matched neighbours: two segments at most, no links or phone numbers, a daily cap
per pair, and every relay on the match page for the broker (issue 12, "Relay abuse").

A matched resident could push 1,400-character relays (ten segments each) and phishing links or 0900 numbers
to the other from the organisation's own number. Signed SMS webhooks, jobs in-process, and what goes out is
what the fake Twilio received; both databases.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from markupsafe import escape
from sqlalchemy import func, select, update

import texts
from gateway.config import ConfigError, finalise
from gateway.database import get_database
from models import Callback, Message, Relay
from models.relaying import pass_on, relayed_body, without_links_or_numbers
from tests.conftest import PUBLIC_BASE, TwilioWebhooks, app_config, running_app
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match

set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "buurtlijn-hypothesis"))
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
END_TO_END = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What the checks below call a link or a phone number, written apart from models/relaying.py's own rules.
URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|nl|ly|net|org|info|io|be|de|ru|xyz)\b", re.IGNORECASE)
PHONE_RUN = re.compile(r"\d(?:[\s\-./()+,]{0,3}\d){6,}")
LONG_TEXT = ("Hallo buurvrouw, ik kom zaterdag om 10 uur langs met de boodschappen en neem ook de krant mee. "
             * 15)[:1400]


def _accepted_pair(app, *, helper_language: str = "nl", requester_language: str = "nl") -> int:  # type: ignore[no-untyped-def]
    request_id = add_listing(app, REQUESTER, "request", category="chores", language=requester_language)
    offer_id = add_listing(app, HELPER, "offer", category="chores", timing=None, language=helper_language)
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    # A Dutch or English keyword sets the language the resident writes in.
    answer = "YES" if helper_language == "en" else "JA"
    match_id = response.get_json()["id"]
    with get_database(app).transaction() as session:  # the proposal reached the helper: JA counts
        session.execute(update(Message).where(Message.match_id == match_id, Message.direction == "outbound")
                        .values(status="delivered"))
    assert TwilioWebhooks(app.test_client()).sms(HELPER, answer).status_code == 200
    return response.get_json()["id"]


def _relays(session) -> list[Relay]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Relay).order_by(Relay.id)))


@pytest.fixture
def capped_app(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    """The app with a daily cap of three texts passed on per pair."""
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="3")) as app:
        yield app


# --- at most two segments ---------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [
    ("nl", LONG_TEXT),
    ("en", LONG_TEXT),
    ("tr", LONG_TEXT),
    ("ar", ("مرحبا يا جاري، سآتي يوم السبت الساعة العاشرة مع المشتريات. " * 30)[:1400]),
    ("nl", ("Tot zaterdag! 🙂 Ik neem koffie mee. " * 50)[:1400]),  # an emoji: UCS-2, 67 characters a segment
], ids=["nl", "en", "tr", "ar", "emoji"])
def test_a_1400_character_relay_goes_out_in_two_segments_and_both_are_told(notify_app, webhooks, fake_twilio,
                                                                            session, language, text):
    match_id = _accepted_pair(notify_app, helper_language=language)
    before = len(bodies(fake_twilio, HELPER))

    assert webhooks.sms(REQUESTER, text).status_code == 200

    [relayed] = bodies(fake_twilio, HELPER)[before:]
    assert texts.segment_count(relayed) <= 2, (len(relayed), relayed)
    assert relayed.startswith(texts.fit_gsm7(texts.t(language, "match.relay", text=""))), relayed
    # The receiver's copy ends with a short note, in the receiver's language.
    assert relayed.endswith(texts.fit_gsm7(texts.t(language, "match.relay_cut_note"))), relayed
    assert text[:60] in relayed or texts.as_gsm7_as_it_reads(text[:60]) in relayed
    # The sender is told, in the sender's language (Dutch here).
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "sms.relay_cut")
    # What the outbound rows hold is what went out: one message of at most two segments.
    session.expire_all()
    [row] = session.scalars(select(Message).where(Message.purpose == "relay")).all()
    assert row.body == relayed and row.match_id == match_id
    [relay] = _relays(session)
    assert (relay.outcome, relay.cut, relay.cleaned, relay.outbound_message_id) == ("relayed", True, False, row.id)
    assert session.get(Message, relay.inbound_message_id).body == text  # the whole text, for the broker


def test_a_relay_that_fits_is_passed_on_whole_without_notes(notify_app, webhooks, fake_twilio, session):
    _accepted_pair(notify_app)
    text = "Hallo! Kunt u zaterdag om 10 uur? Ik woon op nummer 12, bel maar aan. " * 3
    webhooks.sms(REQUESTER, text)
    assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: " + text.strip()
    assert not bodies(fake_twilio, REQUESTER)[-1].startswith("Uw bericht was te lang")
    [relay] = _relays(session)
    assert (relay.cut, relay.cleaned) == (False, False)


# --- a daily cap per pair -----------------------------------------------------------------------


def test_a_pair_over_the_daily_cap_goes_to_a_broker_and_the_sender_is_told_once(capped_app, fake_twilio):
    webhooks = TwilioWebhooks(capped_app.test_client())
    match_id = _accepted_pair(capped_app)
    helper_before = len(bodies(fake_twilio, HELPER))
    # Three passed on, both ways counted together.
    webhooks.sms(REQUESTER, "Hallo, zaterdag om 10 uur?")
    webhooks.sms(HELPER, "Prima, tot dan!")
    webhooks.sms(REQUESTER, "Fijn, dank u wel.")
    assert len(bodies(fake_twilio, HELPER)) == helper_before + 2
    requester_before = len(bodies(fake_twilio, REQUESTER))

    webhooks.sms(REQUESTER, "Nog iets: de code van de deur is 4321.")
    webhooks.sms(REQUESTER, "En nog een bericht.")
    webhooks.sms(HELPER, "Ik heb nog een vraag.")

    assert len(bodies(fake_twilio, HELPER)) == helper_before + 2 + 1  # only the helper's "over the cap" answer
    assert bodies(fake_twilio, HELPER)[-1] == texts.t("nl", "sms.relay_over_cap")
    # The sender gets one plain answer, however many more texts follow.
    assert bodies(fake_twilio, REQUESTER)[requester_before:] == [texts.t("nl", "sms.relay_over_cap")]
    with get_database(capped_app).transaction() as session:
        refused = session.scalars(select(Relay).where(Relay.outcome == "over_cap").order_by(Relay.id)).all()
        originals = [session.get(Message, r.inbound_message_id).body for r in refused]
        assert originals == ["Nog iets: de code van de deur is 4321.", "En nog een bericht.", "Ik heb nog een vraag."]
        assert all(r.relayed is None and r.outbound_message_id is None for r in refused)
        # Not lost: a broker's item about the match, with the first refused text.
        [item] = session.scalars(select(Callback).where(Callback.reason == "relay_over_cap")).all()
        assert (item.match_id, item.message_id, item.status) == (match_id, refused[0].inbound_message_id, "open")
        # A day later the pair can text again.
        for relay in session.scalars(select(Relay)):
            relay.created_at -= dt.timedelta(hours=25)
    webhooks.sms(REQUESTER, "Goedemorgen!")
    assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: Goedemorgen!"


def test_the_daily_cap_is_checked_at_start_up(tmp_path):
    config = {"BUURTLIJN_RELAY_DAILY_CAP": "ten", "TESTING": True}
    with pytest.raises(ConfigError, match="BUURTLIJN_RELAY_DAILY_CAP"):
        finalise(config, str(tmp_path))
    with pytest.raises(ConfigError, match="BUURTLIJN_RELAY_DAILY_CAP"):
        finalise({"BUURTLIJN_RELAY_DAILY_CAP": "-1", "TESTING": True}, str(tmp_path))
    config = {"BUURTLIJN_RELAY_DAILY_CAP": "25", "TESTING": True}
    finalise(config, str(tmp_path))
    assert config["BUURTLIJN_RELAY_DAILY_CAP"] == 25


# --- links and phone numbers --------------------------------------------------------------------

REPLACED = [
    "Je kunt mij bellen op 06-12345678",
    "graag even 06 12 34 56 78 bellen",
    "mijn nummer: 0612345678",
    "+31 6 1234 5678",
    "+31 (0)6-1234.5678",
    "0031 6 12345678",
    "020-1234567",
    "(023) 531 23 45",
    "Voor de sleutel: 0900-1234567",
    "0900 123 45 67",
    "0906-8899",
    "0909 123 4567",
    "00 44 909 879 0000",
    "+44 909 8790000",
    "06.12.34.56.78",
    "Uw pakket ligt klaar: https://postnl-bezorging.info/track?id=88",
    "Betaal hier http://bit.ly/3xYzAb",
    "bit.ly/abc",
    "Uw bank: www.ing-verificatie.com/inloggen",
    "WWW.Example.ORG/pad",
    "tinyurl.com/y6abc12",
    "ga naar rabobank-veilig.nl nu",
    "kijk op buuv.nl!",
    "hxxp://evil.ru/x",
    "t.co/AbCdEf",
    "kijk op .bit.ly/x",
    "Stuur een mail naar jan@gmail.com",
]
KEPT = [
    "Ik kom om 12:30, tot dan.",
    "Postcode 2034, huisnummer 12a.",
    "Dinsdag 14.30 uur past mij goed.",
    "Het kost € 12,50.",
    "Ok, tot morgen. Ik heb 2 tassen.",
    "Kamer 1234, tweede verdieping.",
    "Tussen 9 en 17 uur ben ik thuis.",
    "Dat.is goed. Ja.in de tuin.",  # a missing space is not a domain
]


@pytest.mark.parametrize("text", REPLACED)
def test_links_and_phone_numbers_are_replaced_by_a_plain_note(text):
    for language in texts.LANGUAGES:
        note = texts.t(language, "match.relay_removed")
        cleaned, changed = without_links_or_numbers(text, note)
        assert changed and note in cleaned, (language, cleaned)
        assert not URL.search(cleaned) and not PHONE_RUN.search(cleaned), cleaned
        assert "@" not in cleaned or "gmail" not in cleaned


@pytest.mark.parametrize("text", KEPT)
def test_times_postcodes_and_house_numbers_are_kept(text):
    assert without_links_or_numbers(text, "(weg)") == (text, False)


def test_the_notes_themselves_read_as_neither():
    for language in texts.LANGUAGES:
        for key in ("match.relay_removed", "match.relay_cut_note"):
            note = texts.t(language, key)
            assert without_links_or_numbers(note, "X") == (note, False), (language, key)


def test_relayed_links_and_numbers_are_replaced_and_the_original_kept(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="100", BUURTLIJN_SMS_DAILY_CAP="100")) as app:
        _accepted_pair(app, helper_language="en")
        before = len(bodies(fake_twilio, HELPER))
        webhooks = TwilioWebhooks(app.test_client())
        for text in REPLACED + KEPT:
            assert webhooks.sms(REQUESTER, text).status_code == 200

        received = bodies(fake_twilio, HELPER)[before:]
        assert len(received) == len(REPLACED) + len(KEPT)
        note = texts.t("en", "match.relay_removed")
        for text, body in zip(REPLACED, received[:len(REPLACED)], strict=True):
            assert note in body, (text, body)  # in the receiver's language
            assert not URL.search(body) and not PHONE_RUN.search(body), (text, body)
        for text, body in zip(KEPT, received[len(REPLACED):], strict=True):
            assert body == texts.t("en", "match.relay", text=texts.fit_gsm7(text)), (text, body)
        # The originals stay, for the broker.
        with get_database(app).transaction() as session:
            relays = session.scalars(select(Relay).order_by(Relay.id)).all()
            assert [r.cleaned for r in relays] == [True] * len(REPLACED) + [False] * len(KEPT)
            assert [session.get(Message, r.inbound_message_id).body for r in relays] == REPLACED + KEPT


# --- the property: whatever is texted ---------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "www.", "http://", "https://", "bit.ly/", ".com", ".nl", "0900", "06", "+31", "00 44 ", "-", " ", ".", "/",
    "1234", "5678", "…", "ẉ", "🙂", "مرحبا", "ş", "\x00", "\n", "€", "example.com", "0612345678", "x" * 150,
])
ANY_TEXT = st.one_of(st.text(), st.lists(st.one_of(FRAGMENTS, st.text(max_size=20)), max_size=60).map("".join))


@PROPERTY
@given(text=ANY_TEXT, language=st.sampled_from(texts.LANGUAGES))
@example(text="a" * 1400, language="nl")
@example(text="x" * 300 + "example.comics", language="nl")
@example(text="ẉẉẉ…nl 🙂 " + "a" * 200, language="en")
def test_whatever_is_texted_the_relayed_body_is_two_segments_without_links_or_numbers(text, language):
    body = relayed_body(language, pass_on(language, text).text)
    assert texts.segment_count(body) <= 2, (len(body), body)
    assert not URL.search(body), body
    assert not PHONE_RUN.search(body), body


@END_TO_END
@given(text=ANY_TEXT.filter(lambda t: t.strip()))
def test_whatever_is_texted_through_the_webhook_what_goes_out_holds(relay_pair, text):
    app, webhooks = relay_pair
    with get_database(app).transaction() as session:
        before = session.scalar(select(func.max(Message.id))) or 0
    webhooks.sms(REQUESTER, text)
    with get_database(app).transaction() as session:
        sent = session.scalars(select(Message.body).where(Message.id > before, Message.purpose == "relay")).all()
    for body in sent:
        assert texts.segment_count(body) <= 2, (len(body), body)
        assert not URL.search(body) and not PHONE_RUN.search(body), body


@pytest.fixture
def relay_pair(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    """An accepted match on an app whose cap never bites: (the app, Twilio's webhooks)."""
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="100000", BUURTLIJN_SMS_DAILY_CAP="100000")) as app:
        _accepted_pair(app)
        yield app, TwilioWebhooks(app.test_client())


# --- the broker sees every relay ------------------------------------------------------------------------


def test_the_match_page_shows_every_relay_with_its_marks_escaped(capped_app, fake_twilio):
    from tests.dashboard_support import logged_in, make_brokers

    webhooks = TwilioWebhooks(capped_app.test_client())
    match_id = _accepted_pair(capped_app)
    webhooks.sms(REQUESTER, "Hallo <script>alert('x')</script> tot zaterdag")
    webhooks.sms(HELPER, "Mijn nummer is 0900-1234567 of kijk op bit.ly/x")
    webhooks.sms(REQUESTER, LONG_TEXT)
    webhooks.sms(HELPER, "Dit gaat niet meer door <b>vet</b>")  # over the cap of three

    make_brokers(capped_app)
    mila = logged_in(capped_app, "mila@buuv.example")
    with get_database(capped_app).transaction() as session:
        item_id = session.scalar(select(Callback.id).where(Callback.match_id == match_id,
                                                           Callback.reason == "match_accepted"))
        relays = session.scalars(select(Relay).order_by(Relay.id)).all()
        assert [r.outcome for r in relays] == ["relayed", "relayed", "relayed", "over_cap"]
        ids = [r.id for r in relays]
    page = mila.get(f"/dashboard/items/{item_id}").get_data(as_text=True)
    section = page.split('id="match-relays"', 1)[1].split("</ol>", 1)[0]
    shown = {relay_id: section.split(f'id="relay-{relay_id}"', 1)[1].split("</li>", 1)[0] for relay_id in ids}

    requester_to_helper, helper_to_requester = "Buur die hulp vraagt aan Helper", "Helper aan Buur die hulp vraagt"
    assert requester_to_helper in shown[ids[0]] and helper_to_requester in shown[ids[1]]
    assert requester_to_helper in shown[ids[2]] and helper_to_requester in shown[ids[3]]
    # The text as relayed, escaped; nothing of it runs.
    assert "<script>alert" not in page and "<b>vet</b>" not in page
    assert str(escape("Hallo <script>alert('x')</script> tot zaterdag")) in shown[ids[0]]
    # Cleaned: the note as relayed, the original for the broker.
    assert "link of nummer weggehaald" in shown[ids[1]]
    assert texts.t("nl", "match.relay_removed") in shown[ids[1]]
    assert "0900-1234567" in shown[ids[1]].split("relay-original", 1)[1]
    # Cut: the mark and the note.
    assert "ingekort" in shown[ids[2]] and texts.t("nl", "match.relay_cut_note") in shown[ids[2]]
    # Refused: the mark and the original, nothing relayed.
    assert "niet doorgestuurd: daglimiet bereikt" in shown[ids[3]]
    assert "relay-text" not in shown[ids[3]] and str(escape("<b>vet</b>")) in shown[ids[3]]
    # Newest first, each with its time.
    assert section.index(f'id="relay-{ids[3]}"') < section.index(f'id="relay-{ids[0]}"')
    assert all(re.search(r"<strong>[^<]*\d{2}:\d{2}[^<]*</strong>", shown[i]) for i in ids)
    # The refused text's own item shows the same list.
    with get_database(capped_app).transaction() as session:
        over_cap_item = session.scalar(select(Callback.id).where(Callback.reason == "relay_over_cap"))
    assert f'id="relay-{ids[3]}"' in mila.get(f"/dashboard/items/{over_cap_item}").get_data(as_text=True)

    mila.post("/dashboard/language", data={"next": "/dashboard", "csrf_token": _token(mila)})
    english = mila.get(f"/dashboard/items/{item_id}").get_data(as_text=True)
    assert "Neighbour asking for help to Helper" in english and "not passed on: daily limit reached" in english


def _token(client) -> str:  # type: ignore[no-untyped-def]
    from tests.dashboard_support import csrf_token

    return csrf_token(client)


# --- two texts at once cannot both pass the cap ----------------------------------------------------------


def test_two_texts_at_once_at_the_cap_pass_on_only_one(pg_database_url, fake_twilio):
    import threading
    import uuid

    from models.base import utcnow
    from sms.flows import handle_inbound

    with running_app(app_config(pg_database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="1")) as app:
        _accepted_pair(app)
        db = get_database(app)
        with db.transaction() as session:
            ids = []
            for from_, body in ((REQUESTER, "Tot zaterdag!"), (HELPER, "Tot dan!")):
                message = Message(direction="inbound", status="received", twilio_sid="SM" + uuid.uuid4().hex,
                                  raw_from=from_, phone=from_, body=body, created_at=utcnow(), updated_at=utcnow())
                session.add(message)
                session.flush()
                ids.append(message.id)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def handle(message_id: int) -> None:
            try:
                with app.app_context(), db.transaction() as session:
                    start.wait(5)
                    handle_inbound(session, message_id, app.config)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=handle, args=(message_id,)) for message_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        with db.transaction() as session:
            outcomes = sorted(session.scalars(select(Relay.outcome)).all())
        assert outcomes == ["over_cap", "relayed"]
