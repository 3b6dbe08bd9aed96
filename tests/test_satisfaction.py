"""How it went: when a match is done, both neighbours are asked once for a mark from 1 to 5, by SMS or by
a call, and the first mark counts (contract: Reports, "Satisfaction")."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

import texts
from gateway.database import get_database
from models import AuditEvent, Callback, Match, Satisfaction
from models.base import utcnow
from models.matching import Actor, complete_match
from tests.delivery_support import (
    HELPER,
    LANDLINE_HELPER,
    REQUESTER,
    PhoneCall,
    add_listing,
    bodies,
    gather_of,
    say_text,
)
from texts import is_gsm7, segment_count

ASKED = "BUUV: hoe ging de hulp met boodschappen? Antwoord met een cijfer van 1 tot 5. 1 is slecht, 5 is heel goed."


def _agreed_match(app, helper: str = HELPER, **helper_values) -> int:  # type: ignore[no-untyped-def]
    request_id = add_listing(app, REQUESTER, "request")
    offer_id = add_listing(app, helper, "offer", **helper_values)
    with get_database(app).transaction() as tx:
        match = Match(request_id=request_id, offer_id=offer_id, status="confirmed", created_at=utcnow(),
                      updated_at=utcnow())
        tx.add(match)
        tx.flush()
        return match.id


def _marks(session, match_id: int) -> dict[int, int | None]:  # type: ignore[no-untyped-def]
    session.expire_all()
    rows = session.scalars(select(Satisfaction).where(Satisfaction.match_id == match_id)).all()
    return {row.resident_id: row.mark for row in rows}


def _broker_items(session) -> list[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(Callback.reason).where(Callback.reason == "unrecognised_message")).all()


def test_klaar_asks_both_neighbours_once_and_the_first_mark_counts(notify_app, webhooks, fake_twilio, session):
    match_id = _agreed_match(notify_app)
    webhooks.sms(REQUESTER, "KLAAR")
    for phone in (REQUESTER, HELPER):
        [asked] = [body for body in bodies(fake_twilio, phone) if body == ASKED]
        assert is_gsm7(asked) and segment_count(asked) == 1
    assert len(_marks(session, match_id)) == 2 and set(_marks(session, match_id).values()) == {None}

    webhooks.sms(HELPER, " 4 ")
    assert bodies(fake_twilio, HELPER)[-1].startswith("Dank u wel voor uw cijfer!")
    webhooks.sms(HELPER, "2")  # a second mark changes nothing
    assert bodies(fake_twilio, HELPER)[-1].startswith("Dank u, uw antwoord hadden we al.")
    marks = _marks(session, match_id)
    assert sorted(marks.values(), key=str) == [4, None]
    assert _broker_items(session) == []
    # Done again (a broker's word after the resident's): nobody is asked twice.
    with get_database(notify_app).transaction() as tx:
        tx.get(Match, match_id).status = "confirmed"
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        complete_match(tx, tx.get(Match, match_id), Actor.broker(None, None))
    assert len([body for body in bodies(fake_twilio, HELPER) if body == ASKED]) == 1
    session.expire_all()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "match.satisfaction")).all()
    assert event.detail == {"channel": "sms"} and event.object_id == str(match_id)


@pytest.mark.parametrize("body", ["0", "6", "4,5", "vier", "45", "4 sterren"])
def test_anything_but_a_mark_is_free_text_for_a_broker(notify_app, webhooks, fake_twilio, session, body):
    match_id = _agreed_match(notify_app)
    webhooks.sms(REQUESTER, "KLAAR")
    assert webhooks.sms(HELPER, body).status_code == 200
    assert bodies(fake_twilio, HELPER)[-1] == texts.t("nl", "sms.unrecognised")
    assert set(_marks(session, match_id).values()) == {None}
    assert _broker_items(session) == ["unrecognised_message"]


def test_a_mark_nobody_asked_for_or_too_late_is_free_text(notify_app, webhooks, fake_twilio, session):
    webhooks.sms(HELPER, "5")  # never asked
    assert _broker_items(session) == ["unrecognised_message"]
    match_id = _agreed_match(notify_app)
    webhooks.sms(REQUESTER, "KLAAR")
    with get_database(notify_app).transaction() as tx:
        for row in tx.scalars(select(Satisfaction).where(Satisfaction.match_id == match_id)):
            row.asked_at = utcnow() - dt.timedelta(days=15)
        tx.get(Match, match_id).done_at = utcnow() - dt.timedelta(days=15)  # long past the relay's days too
    webhooks.sms(REQUESTER, "5")
    assert set(_marks(session, match_id).values()) == {None}
    assert _broker_items(session) == ["unrecognised_message", "unrecognised_message"]


def _satisfaction_call(fake_twilio, session, webhooks, to: str) -> PhoneCall:  # type: ignore[no-untyped-def]
    from models import Call

    session.expire_all()
    [row] = session.scalars(select(Call).where(Call.purpose == "notification",
                                               Call.data["expects"].as_string() == "satisfaction")).all()
    [created] = [c for c in fake_twilio.calls() if c["sid"] == row.call_sid]
    assert created["To"] == to
    return PhoneCall(webhooks, row.id, row.call_sid, to)


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_a_landline_neighbour_is_called_and_presses_a_mark(notify_app, webhooks, fake_twilio, session, language):
    match_id = _agreed_match(notify_app, LANDLINE_HELPER, language=language)
    webhooks.sms(REQUESTER, "KLAAR")
    assert bodies(fake_twilio, LANDLINE_HELPER) == []  # no SMS to a landline
    call = _satisfaction_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    spoken = say_text(gather_of(call.answer()))
    assert spoken.startswith(texts.t(language, "match.spoken.satisfaction", category=texts.category_name(
        language, "groceries")))
    assert say_text(gather_of(call.press("7"))).startswith(texts.t(language, "match.call.not_understood"))
    bye = call.press("5")
    assert say_text(bye.find("./Say")) == texts.t(language, "match.call.said_mark")
    assert bye.find("./Hangup") is not None
    assert say_text(call.press("1").find("./Say")) == texts.t(language, "match.call.said_mark")  # repeated step
    marks = _marks(session, match_id)
    assert sorted(marks.values(), key=str) == [5, None]
    # The same resident texting a mark afterwards changes nothing either.
    session.expire_all()
    [row] = session.scalars(select(Satisfaction).where(Satisfaction.mark.is_not(None))).all()
    assert row.channel == "voice" and row.answered_at is not None


def test_a_mark_pressed_after_one_was_texted_changes_nothing(notify_app, webhooks, fake_twilio, session):
    match_id = _agreed_match(notify_app, LANDLINE_HELPER)
    webhooks.sms(REQUESTER, "KLAAR")
    call = _satisfaction_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    with get_database(notify_app).transaction() as tx:  # answered meanwhile (another call, a broker's note)
        row = tx.scalars(select(Satisfaction).where(Satisfaction.channel == "voice")).one()
        row.mark, row.answered_at = 3, utcnow()
    gather_of(call.answer())
    bye = call.press("5")
    assert say_text(bye.find("./Say")) == texts.t("nl", "match.call.already")
    assert sorted(_marks(session, match_id).values(), key=str) == [3, None]
