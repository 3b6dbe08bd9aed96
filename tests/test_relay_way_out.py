"""A way out of a match (issue 13): trouble words in a relayed text reach a broker, a broker ends a relay from
the match on the item page, and relaying ends by itself some days after the match is done.

Signed SMS and voice webhooks, TwiML parsed back, jobs in-process; what the residents are told is what the
fake Twilio received. Both databases (on PostgreSQL a call's first answer comes from the voice fast path).
"""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from markupsafe import escape
from sqlalchemy import select, update

import texts
from gateway.config import ConfigError, finalise
from gateway.database import get_database
from models import AuditEvent, Call, Callback, Match, Message, Relay, Resident
from models.base import utcnow
from models.destinations import call_counts, refusal
from models.queue_view import item_texts
from models.relaying import TROUBLE_WORDS_FILE, trouble_words
from models.vocabulary import REASON_PRIORITY
from tests.call_simulator import SimulatedCall, flask_poster
from tests.conftest import PUBLIC_BASE, TwilioWebhooks, app_config, running_app, session_of
from models.accounts import create_broker
from tests.dashboard_support import PASSWORD, logged_in, post, token_in
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match

MENU = "Wilt u hulp vragen? Druk 1."
WORDS = tomllib.loads(TROUBLE_WORDS_FILE.read_text(encoding="utf-8"))


def _agreed_pair(app, *, helper_language: str = "nl") -> int:  # type: ignore[no-untyped-def]
    """A match the helper said JA to, after the proposal was delivered; its id."""
    request_id = add_listing(app, REQUESTER, "request", category="chores")
    offer_id = add_listing(app, HELPER, "offer", category="chores", timing=None, language=helper_language)
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    match_id = response.get_json()["id"]
    with get_database(app).transaction() as session:
        session.execute(update(Message).where(Message.match_id == match_id, Message.direction == "outbound")
                        .values(status="delivered"))
    answer = "YES" if helper_language == "en" else "JA"
    assert TwilioWebhooks(app.test_client()).sms(HELPER, answer).status_code == 200
    return match_id


def _set_match(app, match_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        session.execute(update(Match).where(Match.id == match_id).values(**values))


def _items(app, reason: str) -> list[Callback]:  # type: ignore[no-untyped-def]
    with session_of(app) as session:
        found = list(session.scalars(select(Callback).where(Callback.reason == reason).order_by(Callback.id)))
        session.expunge_all()
        return found


def _texts_on(app, callback_id: int) -> str:  # type: ignore[no-untyped-def]
    with session_of(app) as session:
        return item_texts(session, [callback_id]).get(callback_id, "")


def _call(app, from_: str) -> SimulatedCall:  # type: ignore[no-untyped-def]
    return SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=from_).start()


@pytest.fixture
def roomy_app(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    """A pair may pass on many texts a day here: each trouble word is a text of its own."""
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="500")) as app:
        yield app


# --- trouble words ------------------------------------------------------------------------------


def _example(entry: str) -> str:
    """A word of the list as someone writes it: a "*" entry with something before or after."""
    word = entry.strip("*")
    if entry.endswith("*"):
        word += "ler"
    if entry.startswith("*"):
        word = "و" + word
    return word


@pytest.mark.parametrize("language", ["nl", "en", "tr", "ar"])
def test_every_trouble_word_is_found_alone_in_a_sentence_in_capitals_and_beside_an_emoji(language):
    assert len(WORDS[language]) >= 10
    for entry in WORDS[language]:
        word = _example(entry)
        for text in (word, f"Hallo, {word}, tot zo", word.upper() + "!!", f"😢{word}😢 ..."):
            assert trouble_words(text), (entry, text)


@pytest.mark.parametrize("text", [
    "Ik ga naar Bangkok op vakantie", "Is mijn pas nog geldig?", "Ik neem de geldautomaat-pas mee",
    "Tot zaterdag! 🙂 Ik neem koffie mee.", "Kunt u om 10 uur? Dan breng ik de boodschappen.",
    "Engels spreek ik ook", "We moeten de koffie overslaan", "See you on Saturday, I will bring the shopping",
    "I hit the road at ten, thanks!", "Yarın gelirim, parasetamol da alırım", "Cumartesi görüşürüz",
    "سأحضر يوم السبت مع المشتريات", "Hartelijk dank voor de hulp", "Polisiye boek teruggebracht",
])
def test_ordinary_texts_have_no_trouble_word(text):
    assert trouble_words(text) == []


def test_case_and_accents_do_not_matter_and_a_phrase_may_wrap():
    assert trouble_words("BÁNG") == ["bang"]
    assert trouble_words("ŞİKAYETÇİYİM") == ["sikayetciyim"]  # the whole word, for the broker
    assert trouble_words("Hij komt niet\nmeer") != []
    assert trouble_words("أنا خائفة") != [] and trouble_words("أنا خائفه") != []  # taa marbuta written as haa


@pytest.mark.parametrize("language", ["nl", "en", "tr", "ar"])
def test_each_trouble_word_of_a_language_is_passed_on_and_gathers_on_one_item_the_broker_reads(roomy_app, language):
    match_id = _agreed_pair(roomy_app)
    webhooks = TwilioWebhooks(roomy_app.test_client())
    sent = [f"Bericht {number}: {_example(entry)}" for number, entry in enumerate(WORDS[language])]
    for text in sent:
        assert webhooks.sms(REQUESTER, text).status_code == 200
    # Each is passed on, as the sender meant it...
    with session_of(roomy_app) as session:
        outcomes = session.scalars(select(Relay.outcome).where(Relay.match_id == match_id)).all()
    assert outcomes == ["relayed"] * len(sent)
    # ... and all of them are on one item of the match, readable there, high in the queue.
    [item] = _items(roomy_app, "relay_trouble")
    assert (item.match_id, item.status, item.priority) == (match_id, "open", REASON_PRIORITY["problem_reported"])
    assert _texts_on(roomy_app, item.id).split("\n") == sent


def test_a_long_text_with_emoji_and_a_trouble_word_at_its_end_is_whole_on_the_item(notify_app, mila, fake_twilio):
    match_id = _agreed_pair(notify_app)
    ending = " maar ik ben bang 😢"
    text = ("Dank u voor gisteren 🙂🌷 " * 80)[:1600 - len(ending)] + ending
    assert len(text) == 1600 and text.endswith("bang 😢")
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, text)
    # The neighbour gets what fits in two segments (cut); the broker reads the whole text.
    relayed = bodies(fake_twilio, HELPER)[-1]
    assert relayed.startswith("Bericht van uw BUUV-buur: Dank u voor gisteren") and "bang" not in relayed
    [item] = _items(notify_app, "relay_trouble")
    assert item.match_id == match_id and _texts_on(notify_app, item.id) == text
    post(mila, f"/dashboard/items/{item.id}/claim")
    page = mila.get(f"/dashboard/items/{item.id}").get_data(as_text=True)
    assert str(escape("maar ik ben bang 😢")) in page and "Zorgelijk bericht aan de buur" in page


def test_ordinary_relayed_texts_make_no_item(notify_app, fake_twilio):
    _agreed_pair(notify_app)
    webhooks = TwilioWebhooks(notify_app.test_client())
    for text in ("Tot zaterdag in Bangkok-straat 🙂", "Is de bon nog geldig?", "Ik breng de boodschappen"):
        webhooks.sms(REQUESTER, text)
        assert bodies(fake_twilio, HELPER)[-1] == f"Bericht van uw BUUV-buur: {text}"
    assert _items(notify_app, "relay_trouble") == [] and _items(notify_app, "unrecognised_message") == []


def test_a_second_trouble_item_opens_once_the_broker_closed_the_first(notify_app):
    _agreed_pair(notify_app)
    webhooks = TwilioWebhooks(notify_app.test_client())
    webhooks.sms(REQUESTER, "Ik heb een klacht")
    webhooks.sms(HELPER, "Ze is boos op mij")  # the other of the pair: the same item
    [first] = _items(notify_app, "relay_trouble")
    assert _texts_on(notify_app, first.id) == "Ik heb een klacht\nZe is boos op mij"
    with get_database(notify_app).transaction() as session:
        item = session.get(Callback, first.id)
        item.status, item.dedupe_key = "done", None
    webhooks.sms(REQUESTER, "Politie gebeld")
    items = _items(notify_app, "relay_trouble")
    assert len(items) == 2 and _texts_on(notify_app, items[1].id) == "Politie gebeld"


def test_both_neighbours_trouble_texts_are_marked_on_the_match_the_broker_reads(notify_app, mila):
    _agreed_pair(notify_app)
    webhooks = TwilioWebhooks(notify_app.test_client())
    webhooks.sms(REQUESTER, "Ik heb een klacht over de tuin")
    webhooks.sms(HELPER, "Ik ben bang voor de hond")
    webhooks.sms(HELPER, "Tot morgen")
    [item] = _items(notify_app, "relay_trouble")
    assert item.resident_id is not None
    post(mila, f"/dashboard/items/{item.id}/claim")
    page = mila.get(f"/dashboard/items/{item.id}").get_data(as_text=True)
    assert page.count('relay-trouble"') == 2
    assert "zorgwoord: klacht" in page and "zorgwoord: bang" in page
    assert "Ik ben bang voor de hond" in page and "Tot morgen" in page


def test_a_trouble_text_past_the_daily_cap_is_not_passed_on_but_still_a_trouble_item(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAILY_CAP="1")) as app:
        match_id = _agreed_pair(app)
        webhooks = TwilioWebhooks(app.test_client())
        webhooks.sms(REQUESTER, "Tot zaterdag")
        helper_count = len(bodies(fake_twilio, HELPER))
        webhooks.sms(REQUESTER, "Hij is boos, ik ben bang")
        assert len(bodies(fake_twilio, HELPER)) == helper_count
        [over] = _items(app, "relay_over_cap")
        [trouble] = _items(app, "relay_trouble")
        assert over.match_id == trouble.match_id == match_id
        assert _texts_on(app, trouble.id) == "Hij is boos, ik ben bang"


# --- a broker ends the relay ------------------------------------------------------------------------


def _claimed_item(app, client, match_id: int) -> str:  # type: ignore[no-untyped-def]
    with session_of(app) as session:
        item_id = session.scalars(select(Callback.id).where(Callback.match_id == match_id,
                                                            Callback.reason == "match_accepted")).one()
    page = f"/dashboard/items/{item_id}"
    post(client, f"{page}/claim")
    return page


def test_a_broker_ends_the_relay_both_are_told_once_and_texts_and_calls_reach_buuv(notify_app, mila, fake_twilio):
    match_id = _agreed_pair(notify_app, helper_language="en")
    page = _claimed_item(notify_app, mila, match_id)
    shown = mila.get(page).get_data(as_text=True)
    assert 'id="relay-on"' in shown and 'id="relay-end"' in shown

    # Without the confirmation ticked nothing happens.
    response = post(mila, f"{page}/match/relay-end", {}, page=page, follow_redirects=True)
    assert "Vink eerst aan" in response.get_data(as_text=True)
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).relay_ended_at is None
    told_before = (len(bodies(fake_twilio, REQUESTER)), len(bodies(fake_twilio, HELPER)))

    response = post(mila, f"{page}/match/relay-end", {"confirm": "yes"}, page=page, follow_redirects=True)
    shown = response.get_data(as_text=True)
    assert "Het doorsturen is gestopt" in shown and 'id="relay-ended"' in shown and "door Mila" in shown
    assert 'id="relay-end"' not in shown
    with session_of(notify_app) as session:
        match = session.get(Match, match_id)
        assert match.status == "accepted" and match.relay_ended_at is not None  # the match goes on
        broker_id = match.relay_ended_by_id
        [ended] = session.scalars(select(AuditEvent).where(AuditEvent.action == "match.relay_ended")).all()
        assert (ended.actor_id, ended.object_id, ended.result) == (broker_id, str(match_id), "ok")
    # Each is told once, in their own language.
    assert bodies(fake_twilio, REQUESTER)[told_before[0]:] == [texts.t("nl", "relay_end.told")]
    assert bodies(fake_twilio, HELPER)[told_before[1]:] == [texts.t("en", "relay_end.told")]

    # A second click changes nothing and tells nobody again.
    response = post(mila, f"{page}/match/relay-end", {"confirm": "yes"}, page=page, follow_redirects=True)
    assert "niets (meer) door" in response.get_data(as_text=True)
    assert len(bodies(fake_twilio, REQUESTER)) == told_before[0] + 1
    assert len(bodies(fake_twilio, HELPER)) == told_before[1] + 1

    # From now on a text is free text for a broker, not passed on; a call reaches the menu.
    helper_count = len(bodies(fake_twilio, HELPER))
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "Komt u nog?")
    assert len(bodies(fake_twilio, HELPER)) == helper_count
    [item] = _items(notify_app, "unrecognised_message")
    assert _texts_on(notify_app, item.id) == "Komt u nog?"
    for caller in (REQUESTER, HELPER):
        call = _call(notify_app, caller)
        assert call.dialled == [] and call.waiting_for == "Gather"
        assert texts.t("nl", "voice.relay_announce") not in call.said
        call.press("5")  # no key puts them through any more
        assert call.dialled == []


def test_a_neighbour_on_a_landline_is_told_by_a_call(notify_app, mila, fake_twilio):
    match_id = _agreed_pair(notify_app)
    with get_database(notify_app).transaction() as session:
        helper = session.scalars(select(Resident).where(Resident.phone == HELPER)).one()
        helper.prefers_voice = True
    page = _claimed_item(notify_app, mila, match_id)
    requester_count = len(bodies(fake_twilio, REQUESTER))
    post(mila, f"{page}/match/relay-end", {"confirm": "yes"}, page=page)
    assert bodies(fake_twilio, REQUESTER)[requester_count:] == [texts.t("nl", "relay_end.told")]
    assert texts.t("nl", "relay_end.told") not in bodies(fake_twilio, HELPER)  # a call instead
    with session_of(notify_app) as session:
        told = session.scalars(select(Call).where(Call.purpose == "notification", Call.match_id == match_id)).all()
        keys = [call.data["key"] for call in told if call.data["key"] == "relay_end.told"]
        assert keys == ["relay_end.told"]
    assert texts.t("nl", "relay_end.spoken.told").startswith("Hallo, hier is Buurtlijn van BUUV.")


def test_ending_the_relay_needs_the_token_the_item_and_a_broker(notify_app, mila, fake_twilio):
    match_id = _agreed_pair(notify_app)
    page = _claimed_item(notify_app, mila, match_id)
    # No CSRF token: refused.
    assert mila.post(f"{page}/match/relay-end", data={"confirm": "yes"}).status_code == 400
    # Another broker, who does not hold the item: refused.
    bram = logged_in(notify_app, "bram@buuv.example")
    response = post(bram, f"{page}/match/relay-end", {"confirm": "yes"}, page=page)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    # The municipality's viewer: forbidden.
    with get_database(notify_app).transaction() as session:
        create_broker(session, email="gemeente@haarlem.example", name="Gemeente", role="viewer", phone=None,
                      password=PASSWORD)
    viewer = logged_in(notify_app, "gemeente@haarlem.example")
    token_page = viewer.get("/dashboard/reports").get_data(as_text=True)
    assert viewer.post(f"{page}/match/relay-end",
                       data={"confirm": "yes", "csrf_token": token_in(token_page)}).status_code == 403
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).relay_ended_at is None
        refused = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "callback.relay_end")).all()
        assert [detail["why"] for detail in refused] == ["not_held"]
    # Still relayed: nothing was ended.
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "Tot zo")
    assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: Tot zo"


def test_a_cancelled_match_has_no_relay_to_end(notify_app, mila, fake_twilio):
    match_id = _agreed_pair(notify_app)
    page = _claimed_item(notify_app, mila, match_id)
    _set_match(notify_app, match_id, status="cancelled", cancelled_at=utcnow())
    assert 'id="relay-end"' not in mila.get(page).get_data(as_text=True)
    count = len(fake_twilio.messages())
    response = post(mila, f"{page}/match/relay-end", {"confirm": "yes"}, page=page, follow_redirects=True)
    assert "niets (meer) door" in response.get_data(as_text=True)
    assert len(fake_twilio.messages()) == count
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).relay_ended_at is None


def test_a_bel_during_a_match_is_an_item_about_that_match_where_the_relay_ends(notify_app, mila, fake_twilio):
    """After the helper's yes is confirmed no item points at the match; the resident's BEL must still reach
    a broker who can end the relay or stop the match."""
    match_id = _agreed_pair(notify_app)
    page = _claimed_item(notify_app, mila, match_id)
    post(mila, f"{page}/match", {"action": "confirm", "meeting_at": ""}, page=page)
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).status == "confirmed"
    # The item it was confirmed on is closed: its page shows the relay, not a button that cannot work.
    assert 'id="relay-on"' in mila.get(page).get_data(as_text=True)
    assert 'id="relay-end"' not in mila.get(page).get_data(as_text=True)

    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "BEL")
    [item] = _items(notify_app, "callback_requested")
    assert item.match_id is None  # made on the hot path, about the resident
    bel_page = f"/dashboard/items/{item.id}"
    bram = logged_in(notify_app, "bram@buuv.example")
    assert 'id="match"' not in bram.get(bel_page).get_data(as_text=True)  # not taken yet: no match shown
    post(mila, f"{bel_page}/claim")
    shown = mila.get(bel_page).get_data(as_text=True)
    assert 'id="match"' in shown and 'id="relay-end"' in shown and 'id="match-actions"' in shown
    [item] = _items(notify_app, "callback_requested")
    assert item.match_id == match_id

    response = post(mila, f"{bel_page}/match/relay-end", {"confirm": "yes"}, page=bel_page, follow_redirects=True)
    assert "Het doorsturen is gestopt" in response.get_data(as_text=True)
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).relay_ended_at is not None


def test_an_item_of_a_resident_in_no_match_stays_about_no_match(notify_app, mila):
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "BEL")
    [item] = _items(notify_app, "callback_requested")
    post(mila, f"/dashboard/items/{item.id}/claim")
    assert 'id="match"' not in mila.get(f"/dashboard/items/{item.id}").get_data(as_text=True)
    [item] = _items(notify_app, "callback_requested")
    assert item.match_id is None


# --- the relay ends by itself after the match is done -----------------------------------------------


@pytest.mark.parametrize(("done_ago", "relays"), [
    (dt.timedelta(hours=1), True),
    (dt.timedelta(days=2, hours=23), True),
    (dt.timedelta(days=3, minutes=1), False),
    (dt.timedelta(days=30), False),
])
def test_texts_and_calls_are_passed_on_for_three_days_after_done(notify_app, fake_twilio, done_ago, relays):
    match_id = _agreed_pair(notify_app)
    _set_match(notify_app, match_id, status="done", done_at=utcnow() - done_ago)
    helper_count = len(bodies(fake_twilio, HELPER))
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "Ik ben mijn sjaal vergeten")
    if relays:
        assert bodies(fake_twilio, HELPER)[helper_count:] == ["Bericht van uw BUUV-buur: Ik ben mijn sjaal vergeten"]
        assert _items(notify_app, "unrecognised_message") == []
    else:
        assert len(bodies(fake_twilio, HELPER)) == helper_count
        assert len(_items(notify_app, "unrecognised_message")) == 1
    call = _call(notify_app, HELPER)
    if relays:
        assert texts.t("nl", "voice.relay_announce") in call.said
        assert call.silence().dialled == [REQUESTER]
    else:
        assert MENU in call.said and call.silence().dialled == []


def test_after_klaar_a_thank_you_is_passed_on_and_a_wordy_mark_goes_to_a_broker(notify_app, fake_twilio):
    match_id = _agreed_pair(notify_app)
    webhooks = TwilioWebhooks(notify_app.test_client())
    webhooks.sms(REQUESTER, "KLAAR")
    with session_of(notify_app) as session:
        assert session.get(Match, match_id).status == "done"
    webhooks.sms(HELPER, "Graag gedaan, tot ziens!")
    assert bodies(fake_twilio, REQUESTER)[-1] == "Bericht van uw BUUV-buur: Graag gedaan, tot ziens!"
    # An answer to BUUV's "how did it go?" that is no mark is for a broker, not for the neighbour.
    requester_count = len(bodies(fake_twilio, REQUESTER))
    webhooks.sms(HELPER, "4 sterren")
    assert len(bodies(fake_twilio, REQUESTER)) == requester_count
    [item] = _items(notify_app, "unrecognised_message")
    assert _texts_on(notify_app, item.id) == "4 sterren"
    # Once the mark is in, a short text with a number is the neighbours' own again.
    webhooks.sms(HELPER, "4")
    webhooks.sms(HELPER, "Om 3 uur?")
    assert bodies(fake_twilio, REQUESTER)[-1] == "Bericht van uw BUUV-buur: Om 3 uur?"


def test_the_days_after_done_are_a_setting(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_RELAY_DAYS_AFTER_DONE="0.5")) as app:
        match_id = _agreed_pair(app)
        _set_match(app, match_id, status="done", done_at=utcnow() - dt.timedelta(hours=13))
        helper_count = len(bodies(fake_twilio, HELPER))
        TwilioWebhooks(app.test_client()).sms(REQUESTER, "Nog bedankt")
        assert len(bodies(fake_twilio, HELPER)) == helper_count
        assert MENU in _call(app, HELPER).said
        _set_match(app, match_id, done_at=utcnow() - dt.timedelta(hours=11))
        TwilioWebhooks(app.test_client()).sms(REQUESTER, "Nog bedankt")
        assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: Nog bedankt"
        assert texts.t("nl", "voice.relay_announce") in _call(app, HELPER).said


def test_a_done_match_whose_relay_a_broker_ended_passes_nothing_on(notify_app, fake_twilio):
    match_id = _agreed_pair(notify_app)
    _set_match(notify_app, match_id, status="done", done_at=utcnow(), relay_ended_at=utcnow())
    helper_count = len(bodies(fake_twilio, HELPER))
    TwilioWebhooks(notify_app.test_client()).sms(REQUESTER, "Dank u")
    assert len(bodies(fake_twilio, HELPER)) == helper_count
    assert MENU in _call(notify_app, REQUESTER).said


def test_the_days_after_done_are_checked_at_start_up(tmp_path):
    for wrong in ("three", "-1", "400", "nan"):
        with pytest.raises(ConfigError, match="BUURTLIJN_RELAY_DAYS_AFTER_DONE"):
            finalise({"BUURTLIJN_RELAY_DAYS_AFTER_DONE": wrong, "TESTING": True}, str(tmp_path))
    config = {"BUURTLIJN_RELAY_DAYS_AFTER_DONE": "1.5", "TESTING": True}
    finalise(config, str(tmp_path))
    assert config["BUURTLIJN_RELAY_DAYS_AFTER_DONE"] == 1.5
    config = {"TESTING": True}
    finalise(config, str(tmp_path))
    assert config["BUURTLIJN_RELAY_DAYS_AFTER_DONE"] == 3.0


def test_the_told_texts_fit_one_segment_and_arabic_two():
    for language in ("nl", "en", "tr"):
        body = texts.fit_gsm7(texts.t(language, "relay_end.told"))
        assert texts.is_gsm7(body) and texts.segment_count(body) == 1, language
    assert texts.segment_count(texts.t("ar", "relay_end.told")) <= 2


# --- relay calls count against the call caps ----------------------------------------------------------


def test_relay_calls_count_against_the_daily_call_cap_of_the_one_they_ring(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_CALL_DAILY_CAP="2")) as app:
        match_id = _agreed_pair(app)
        for _ in range(2):
            call = _call(app, REQUESTER).silence()
            assert call.dialled == [HELPER]
            call.dial_result("completed")
        with session_of(app) as session:
            relayed = session.scalars(select(Call).where(Call.purpose == "relay")).all()
            assert [c.match_id for c in relayed] == [match_id, match_id]
            helper_id = session.scalars(select(Resident.id).where(Resident.phone == HELPER)).one()
            requester_id = session.scalars(select(Resident.id).where(Resident.phone == REQUESTER)).one()
            assert call_counts(session, helper_id, utcnow(), app.config) == (2, 2)
            assert call_counts(session, requester_id, utcnow(), app.config) == (0, 2)  # they rang, nobody rang them
        # The helper's share of the day is used up: the third is not put through, and hears the menu.
        call = _call(app, REQUESTER).silence()
        assert call.dialled == [] and texts.t("nl", "voice.relay_refused") in call.said and MENU in call.said
        # The other way round is still open: the requester was not rung today.
        assert _call(app, HELPER).silence().dialled == [REQUESTER]


def test_relay_calls_count_against_the_days_total(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_CALL_DAILY_TOTAL_CAP="1")) as app:
        _agreed_pair(app)
        _call(app, REQUESTER).silence().dial_result("completed")
        call = _call(app, HELPER).silence()
        assert call.dialled == [] and texts.t("nl", "voice.relay_refused") in call.said
        with session_of(app) as session:
            helper_id = session.scalars(select(Resident.id).where(Resident.phone == HELPER)).one()
            # A notification call to the helper is held back by the same count.
            assert refusal(HELPER, app.config, "call",
                           **dict(zip(("to_number_today", "in_total_today"),
                                      call_counts(session, helper_id, utcnow(), app.config), strict=True))
                           ) == "daily_total_cap"
