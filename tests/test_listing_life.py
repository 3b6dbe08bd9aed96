"""Listing life: an open listing left alone gets one check-in in its owner's channel and language; JA keeps
it open and restarts its clock, NEE or silence expires it with a message on how to ask again (contract:
"Listing life")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

import texts
from gateway.config import ConfigError, finalise
from gateway.database import get_database
from models import AuditEvent, Call, Callback, Event, Listing, ListingCheckin, Match, Resident
from models.base import utcnow
from models.vocabulary import CATEGORIES
from tests.conftest import PUBLIC_BASE, TwilioWebhooks, app_config, running_app
from tests.delivery_support import (
    HELPER,
    LANDLINE_REQUESTER,
    REQUESTER,
    add_listing,
    bodies,
    gather_of,
    placed_call,
    post_match,
    say_text,
)
from texts import is_gsm7, segment_count
from models.listing_life import expire_listing
from workers.listing_jobs import sweep_listings

DAY = dt.timedelta(days=1)
CHECKIN = "BUUV: is uw vraag om hulp bij boodschappen nog actueel? Antwoord JA of NEE."
EXPIRED = texts.t("nl", "listing_life.expired_request", category="boodschappen")
CLOSED = texts.t("nl", "listing_life.closed_request", category="boodschappen")
KEPT = texts.t("nl", "listing_life.kept_request", category="boodschappen")


def _left_alone(app: Any, listing_id: int, days: float = 29) -> None:
    """The listing was made (and last touched) ``days`` ago."""
    then = utcnow() - dt.timedelta(days=days)
    with get_database(app).transaction() as tx:
        tx.execute(update(Listing).where(Listing.id == listing_id)
                   .values(created_at=then, updated_at=then, touched_at=then).returning(Listing.id))


def _asked_ago(app: Any, days: float) -> None:
    with get_database(app).transaction() as tx:
        tx.execute(update(ListingCheckin).values(asked_at=utcnow() - dt.timedelta(days=days)))


def _sweep(app: Any, now: dt.datetime | None = None) -> int:
    return sweep_listings(app, now or utcnow())


def _status(session: Any, listing_id: int) -> str:
    session.expire_all()
    return session.get(Listing, listing_id).status


def _checkins(session: Any) -> list[ListingCheckin]:
    session.expire_all()
    return list(session.scalars(select(ListingCheckin).order_by(ListingCheckin.id)))


def test_a_listing_left_alone_is_asked_once_and_ja_keeps_it_and_restarts_the_clock(
        notify_app, webhooks, fake_twilio, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    assert _sweep(notify_app) == 0  # new: not due
    _left_alone(notify_app, listing_id)
    assert _sweep(notify_app) == 1
    assert _sweep(notify_app) == 0  # swept twice: asked once
    assert bodies(fake_twilio, REQUESTER) == [CHECKIN]
    assert is_gsm7(CHECKIN) and segment_count(CHECKIN) == 1

    webhooks.sms(REQUESTER, "ja")
    assert bodies(fake_twilio, REQUESTER)[-1] == KEPT
    assert _status(session, listing_id) == "open"
    [row] = _checkins(session)
    assert row.answer == "yes" and row.channel == "sms"
    # The clock starts again: nothing until CHECK_DAYS (28) later.
    assert _sweep(notify_app, utcnow() + 27 * DAY) == 0
    assert _sweep(notify_app, utcnow() + 28.1 * DAY) == 1
    assert bodies(fake_twilio, REQUESTER).count(CHECKIN) == 2


def test_nee_expires_it_says_how_to_ask_again_and_the_marketplace_hears(database_url, fake_twilio):
    config = app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                        BUURTLIJN_WEBHOOK_URL="http://127.0.0.1:9/e",
                        BUURTLIJN_WEBHOOK_SECRET="whsec_" + "YnV1cnRsaWpuLXRlc3Qtd2ViaG9vay1zZWNyZXQtMzI=")
    with running_app(config) as app:
        webhooks = TwilioWebhooks(app.test_client())
        listing_id = add_listing(app, REQUESTER, "request")
        _left_alone(app, listing_id)
        _sweep(app)
        db = get_database(app)
        with db.transaction() as tx:
            before = tx.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
        webhooks.sms(REQUESTER, "NEE")
        assert bodies(fake_twilio, REQUESTER)[-1] == CLOSED
        with db.transaction() as tx:
            assert tx.get(Listing, listing_id).status == "expired"
            [event] = tx.scalars(select(Event).where(Event.id > before)).all()
            assert event.type == "listing.updated" and event.data["status"] == "expired"
            [audited] = tx.scalars(select(AuditEvent).where(AuditEvent.action == "listing.expired")).all()
            assert audited.actor_type == "system" and audited.detail == {"why": "no"}
        # Answers after the expiry: told it was closed, nothing expires twice, no event.
        webhooks.sms(REQUESTER, "NEE")
        webhooks.sms(REQUESTER, "JA")
        late = texts.t("nl", "listing_life.closed_already_request", category="boodschappen")
        assert bodies(fake_twilio, REQUESTER)[-2:] == [late, late]
        with db.transaction() as tx:
            assert tx.scalar(select(Event.id).where(Event.id > before).order_by(Event.id.desc()).limit(1)) == \
                event.id
            assert len(tx.scalars(select(AuditEvent).where(AuditEvent.action == "listing.expired")).all()) == 1


def test_silence_past_the_answer_days_expires_it_with_a_message(notify_app, webhooks, fake_twilio, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    _asked_ago(notify_app, 6.9)
    _sweep(notify_app)
    assert _status(session, listing_id) == "open"
    _asked_ago(notify_app, 7.1)
    assert _sweep(notify_app) == 1
    assert _sweep(notify_app) == 0
    assert _status(session, listing_id) == "expired"
    assert bodies(fake_twilio, REQUESTER) == [CHECKIN, EXPIRED]
    assert is_gsm7(EXPIRED) and segment_count(EXPIRED) == 1
    [row] = _checkins(session)
    assert row.answer == "silence"
    # Never read out as open: STATUS says there is nothing open.
    webhooks.sms(REQUESTER, "STATUS")
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "sms.status_none")
    # A JA now: told it was closed, and how to ask again.
    webhooks.sms(REQUESTER, "JA")
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "listing_life.closed_already_request",
                                                         category="boodschappen")


def test_a_nee_after_ja_and_a_repeated_ja_are_answered_plainly(notify_app, webhooks, fake_twilio, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    webhooks.sms(REQUESTER, "JA")
    webhooks.sms(REQUESTER, "JA")
    assert bodies(fake_twilio, REQUESTER)[-2:] == [KEPT, KEPT]
    webhooks.sms(REQUESTER, "NEE")
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "listing_life.still_open_request",
                                                         category="boodschappen")
    assert _status(session, listing_id) == "open"
    # A sentence starting with Ja is free text for a broker, as ever.
    webhooks.sms(REQUESTER, "Ja ik wil graag hulp met de tuin 2034")
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "sms.unrecognised")
    session.expire_all()
    assert session.scalars(select(Callback.reason)).all() == ["unrecognised_message"]


def test_one_question_at_a_time_per_resident_named_by_kind(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, REQUESTER, "offer", category="digital")
    _left_alone(notify_app, request_id, days=30)
    _left_alone(notify_app, offer_id, days=29)
    assert _sweep(notify_app) == 1
    assert bodies(fake_twilio, REQUESTER) == [CHECKIN]
    webhooks.sms(REQUESTER, "JA")
    assert _sweep(notify_app) == 1  # now the offer
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "listing_life.checkin_offer",
                                                         category="computer en telefoon")
    webhooks.sms(REQUESTER, "NEE")
    assert (_status(session, request_id), _status(session, offer_id)) == ("open", "expired")


def test_a_sweep_asks_a_bounded_number_and_the_next_sweep_goes_on(notify_app, fake_twilio, session, monkeypatch):
    """After an upgrade every old listing is due at once: each sweep (in the dispatcher's loop) takes a few."""
    import workers.listing_jobs as listing_jobs

    monkeypatch.setattr(listing_jobs, "PER_SWEEP", 2)
    owners = (REQUESTER, HELPER, LANDLINE_REQUESTER)
    for owner in owners:
        _left_alone(notify_app, add_listing(notify_app, owner, "request"))
    assert _sweep(notify_app) == 2
    assert _sweep(notify_app) == 1
    assert _sweep(notify_app) == 0
    assert sorted(row.resident_id for row in _checkins(session)) == sorted(
        session.scalars(select(Resident.id).where(Resident.phone.in_(owners))))


def test_the_later_of_a_proposal_and_a_check_in_takes_the_ja(notify_app, webhooks, fake_twilio, session):
    # The helper's offer is asked about first; then a proposal comes: JA answers the proposal.
    offer_id = add_listing(notify_app, HELPER, "offer")
    request_id = add_listing(notify_app, REQUESTER, "request")
    _left_alone(notify_app, offer_id)
    _sweep(notify_app)
    assert post_match(notify_app.test_client(), request_id, offer_id).status_code == 201
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    session.expire_all()
    assert session.scalars(select(Match.status)).all() == ["accepted"]
    [row] = _checkins(session)
    assert row.answer is None  # the check-in still waits
    # The listing is in a live match now: the question is overtaken, never expired under it.
    _asked_ago(notify_app, 8)
    _sweep(notify_app)
    assert _status(session, offer_id) == "open"
    assert _checkins(session)[0].answer == "overtaken"


def test_a_check_in_asked_after_a_proposal_takes_the_ja(notify_app, webhooks, fake_twilio, session):
    offer_id = add_listing(notify_app, HELPER, "offer")
    other_offer = add_listing(notify_app, HELPER, "offer", category="digital")
    request_id = add_listing(notify_app, REQUESTER, "request")
    assert post_match(notify_app.test_client(), request_id, offer_id).status_code == 201
    webhooks.delivered(fake_twilio, HELPER)
    _left_alone(notify_app, other_offer)
    _sweep(notify_app)
    webhooks.sms(HELPER, "JA")
    assert bodies(fake_twilio, HELPER)[-1] == texts.t("nl", "listing_life.kept_offer", category="computer en telefoon")
    session.expire_all()
    assert session.scalars(select(Match.status)).all() == ["proposed"]
    # "JA <number>" names the proposal: it answers that one.
    [match_id] = session.scalars(select(Match.id)).all()
    webhooks.sms(HELPER, f"JA {match_id}")
    session.expire_all()
    assert session.scalars(select(Match.status)).all() == ["accepted"]


def test_a_listing_in_a_live_match_or_with_a_broker_is_not_asked(notify_app, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    _left_alone(notify_app, request_id)
    _left_alone(notify_app, offer_id)
    with get_database(notify_app).transaction() as tx:
        tx.add(Match(request_id=request_id, offer_id=offer_id, status="confirmed", created_at=utcnow(),
                     updated_at=utcnow()))
    assert _sweep(notify_app) == 0
    # A match that ended lately counts as a touch too.
    with get_database(notify_app).transaction() as tx:
        tx.execute(update(Match).values(status="cancelled").returning(Match.id))
    assert _sweep(notify_app) == 0
    assert _sweep(notify_app, utcnow() + 28.1 * DAY) == 2
    # An item a broker has in hand (claimed): the broker is in touch, no question.
    lone = add_listing(notify_app, "+31612345003", "request")
    _left_alone(notify_app, lone)
    with get_database(notify_app).transaction() as tx:
        tx.add(Callback(reason="new_listing", listing_id=lone, status="claimed", dedupe_key="x"))
    assert _sweep(notify_app) == 0
    assert _checkins(session)[-1].listing_id != lone


def test_a_waiting_new_listing_item_does_not_stop_the_question_and_closes_with_the_expiry(
        notify_app, webhooks, fake_twilio, session):
    webhooks.sms(REQUESTER, "VRAAG boodschappen 2034")
    session.expire_all()
    [listing_id] = session.scalars(select(Listing.id)).all()
    [item] = session.scalars(select(Callback)).all()
    assert (item.reason, item.status) == ("new_listing", "open")
    _left_alone(notify_app, listing_id)
    assert _sweep(notify_app) == 1
    webhooks.sms(REQUESTER, "nee")
    session.expire_all()
    item = session.get(Callback, item.id)
    assert (item.status, item.outcome) == ("done", "expired")
    assert _status(session, listing_id) == "expired"


def test_an_opted_out_resident_gets_no_sms_and_the_listing_expires_silently(notify_app, fake_twilio, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    with get_database(notify_app).transaction() as tx:
        tx.scalars(select(Resident).where(Resident.phone == REQUESTER)).one().opted_out = True
    _left_alone(notify_app, listing_id)
    assert _sweep(notify_app) == 1
    [row] = _checkins(session)
    assert row.channel == "none"
    _asked_ago(notify_app, 7.1)
    _sweep(notify_app)
    assert _status(session, listing_id) == "expired"
    assert bodies(fake_twilio, REQUESTER) == []


def test_a_ja_from_an_opted_out_resident_answers_no_question_they_never_got(
        notify_app, webhooks, fake_twilio, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    with get_database(notify_app).transaction() as tx:
        tx.scalars(select(Resident).where(Resident.phone == REQUESTER)).one().opted_out = True
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    webhooks.sms(REQUESTER, "JA")
    [row] = _checkins(session)
    assert row.answer is None  # still silent: it expires as documented
    session.expire_all()
    assert session.scalars(select(Callback.reason)).all() == ["unrecognised_message"]  # a person reads it


def test_an_expired_offer_is_never_suggested(notify_app, session):
    from models.suggestions import suggestions_for

    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    with get_database(notify_app).transaction() as tx:
        assert [s.listing.id for s in suggestions_for(tx, tx.get(Listing, request_id))] == [offer_id]
        expire_listing(tx, tx.get(Listing, offer_id), utcnow(), why="silence")
    with get_database(notify_app).transaction() as tx:
        assert suggestions_for(tx, tx.get(Listing, request_id)) == []


@pytest.mark.parametrize(("key", "status", "said"), [
    ("1", "open", "listing_life.call.kept"), ("2", "expired", "listing_life.call.closed_request")])
def test_a_landline_is_called_and_answers_with_a_key(notify_app, webhooks, fake_twilio, session, key, status, said):
    listing_id = add_listing(notify_app, LANDLINE_REQUESTER, "request")
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    assert bodies(fake_twilio, LANDLINE_REQUESTER) == []
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_REQUESTER)
    spoken = say_text(gather_of(call.answer()))
    assert spoken.startswith(texts.t("nl", "listing_life.spoken.checkin_request", category="boodschappen"))
    assert say_text(gather_of(call.press("7"))).startswith(texts.t("nl", "match.call.not_understood"))
    bye = call.press(key)
    assert say_text(bye.find("./Say")) == texts.t("nl", said) and bye.find("./Hangup") is not None
    assert say_text(call.press(key).find("./Say")) == texts.t("nl", said)  # a repeated step counts once
    assert _status(session, listing_id) == status
    [row] = _checkins(session)
    assert row.channel == "voice" and row.answer == ("yes" if key == "1" else "no")


def test_an_unanswered_landline_call_gives_no_broker_item_and_expiry_is_a_call(
        notify_app, webhooks, fake_twilio, session):
    listing_id = add_listing(notify_app, LANDLINE_REQUESTER, "request", language="tr")
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_REQUESTER)
    assert call.status("no-answer") == 200
    session.expire_all()
    assert session.scalars(select(Callback)).all() == []
    session.expire_all()
    assert session.get(Call, call.call_id).status == "pending"  # tried again later, as any notification call
    _asked_ago(notify_app, 7.1)
    _sweep(notify_app)
    assert _status(session, listing_id) == "expired"
    session.expire_all()
    assert session.get(Call, call.call_id).status == "abandoned"  # not asked again after the expiry
    told = session.scalars(select(Call).where(Call.data["key"].as_string() == "listing_life.expired_request")).all()
    assert len(told) == 1 and told[0].language == "tr"


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_listing_life_text_fits(language):
    longest = max((texts.category_name(language, c) for c in CATEGORIES), key=len)
    for name in ("checkin", "kept", "closed", "expired", "closed_already", "still_open"):
        for kind in ("request", "offer"):
            body = texts.t(language, f"listing_life.{name}_{kind}", category=longest)
            if language == "ar":
                assert segment_count(body) <= 2, body
            else:
                assert is_gsm7(body) and segment_count(body) == 1, body


@pytest.mark.parametrize(("value", "days"), [("0.0001", 0.0001), ("28", 28.0), (" 1.5 ", 1.5)])
def test_decimal_days_are_read(tmp_path, value, days):
    config = {"BUURTLIJN_LISTING_CHECK_DAYS": value, "BUURTLIJN_LISTING_ANSWER_DAYS": value, "TESTING": True}
    finalise(config, str(tmp_path))
    assert config["BUURTLIJN_LISTING_CHECK_DAYS"] == days == config["BUURTLIJN_LISTING_ANSWER_DAYS"]


@pytest.mark.parametrize("name", ["BUURTLIJN_LISTING_CHECK_DAYS", "BUURTLIJN_LISTING_ANSWER_DAYS"])
@pytest.mark.parametrize("value", ["0", "-1", "vier", "nan", "1e9"])
def test_bad_days_are_refused_by_name(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        finalise({name: value, "TESTING": True}, str(tmp_path))


def test_the_defaults_are_the_contracts(tmp_path):
    config = {"TESTING": True}
    finalise(config, str(tmp_path))
    assert (config["BUURTLIJN_LISTING_CHECK_DAYS"], config["BUURTLIJN_LISTING_ANSWER_DAYS"]) == (28.0, 7.0)


def test_a_tiny_check_time_asks_at_once(database_url, fake_twilio):
    config = app_config(database_url, fake_twilio, BUURTLIJN_LISTING_CHECK_DAYS="0.0001",
                        BUURTLIJN_LISTING_ANSWER_DAYS="0.0001")
    with running_app(config) as app:
        listing_id = add_listing(app, REQUESTER, "request")
        assert _sweep(app, utcnow() + dt.timedelta(seconds=9)) == 1
        assert _sweep(app, utcnow() + dt.timedelta(seconds=30)) == 1  # unanswered: expired
        with get_database(app).transaction() as tx:
            assert tx.get(Listing, listing_id).status == "expired"
        assert bodies(fake_twilio, REQUESTER) == [CHECKIN, EXPIRED]


def test_the_item_page_shows_the_check_in_and_the_expiry(notify_app, webhooks, fake_twilio, session):
    from tests.dashboard_support import logged_in, make_brokers

    make_brokers(notify_app)
    webhooks.sms(REQUESTER, "VRAAG boodschappen 2034")
    session.expire_all()
    [listing_id] = session.scalars(select(Listing.id)).all()
    [item_id] = session.scalars(select(Callback.id)).all()
    _left_alone(notify_app, listing_id)
    _sweep(notify_app)
    browser = logged_in(notify_app, "mila@buuv.example")
    page = browser.get(f"/dashboard/items/{item_id}").get_data(as_text=True)
    assert "Gevraagd of het nog actueel is:" in page and "Nog geen antwoord." in page
    webhooks.sms(REQUESTER, "NEE")
    page = browser.get(f"/dashboard/items/{item_id}").get_data(as_text=True)
    assert "Antwoord nee (" in page and "): verlopen." in page


def test_key_3_never_reads_an_expired_listing_as_open(app, phone):
    caller = "+31612345678"
    listing_id = add_listing(app, caller, "request")
    assert texts.t("nl", "voice.status_none") not in phone(caller).press("3").said
    with get_database(app).transaction() as tx:
        assert expire_listing(tx, tx.get(Listing, listing_id), utcnow(), why="silence")
        assert not expire_listing(tx, tx.get(Listing, listing_id), utcnow(), why="silence")  # never twice
    assert phone(caller).press("3").said.startswith(texts.t("nl", "voice.status_none"))


def test_a_reopened_or_edited_listing_starts_its_clock_again(notify_app, session):
    expired_id = add_listing(notify_app, REQUESTER, "request")
    edited_id = add_listing(notify_app, HELPER, "offer")
    for listing_id in (expired_id, edited_id):
        _left_alone(notify_app, listing_id)
    with get_database(notify_app).transaction() as tx:
        expire_listing(tx, tx.get(Listing, expired_id), utcnow(), why="silence")
    with get_database(notify_app).transaction() as tx:
        tx.get(Listing, expired_id).status = "open"  # a broker reopens it
        tx.get(Listing, edited_id).description = "ook op zaterdag"  # a broker edits it
    assert _sweep(notify_app) == 0
    assert _sweep(notify_app, utcnow() + 28.1 * DAY) == 2
