"""VERGEET MIJ / FORGET ME by SMS: confirm with JA/YES within 24 hours, one last message, then silence."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from gateway.database import get_database
from models import AuditEvent, Base, Match, Message, Resident
from models.base import utcnow
from models.privacy import forget_sent_farewells, is_erased
from models.residents import find_resident
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match
from texts import is_gsm7, segment_count

STRANGER = "+31612345077"


def _forms(number: str) -> tuple[str, ...]:
    national = "0" + number[3:]
    return number, national, number[3:], "%2B" + number[1:]


def _holds(app, number: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every (table, column) whose value holds ``number`` in any form."""
    found = []
    with get_database(app).transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for column, value in zip(table.columns, row):
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    if any(form in text for form in _forms(number)):
                        found.append((table.name, column.name))
    return found


def _sweep_farewells(app) -> None:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        forget_sent_farewells(session)


def test_vergeet_mij_confirmed_with_ja_erases_and_says_so_once(notify_app, webhooks, fake_twilio, session):
    add_listing(notify_app, REQUESTER, "request")
    webhooks.sms(REQUESTER, "VERGEET MIJ")
    ask = bodies(fake_twilio, REQUESTER)[-1]
    assert ask.startswith("BUUV: wilt u dat wij alles over u wissen") and "JA binnen 24 uur" in ask
    assert is_gsm7(ask) and segment_count(ask) == 1
    assert find_resident(session, REQUESTER) is not None  # nothing erased before the JA

    webhooks.sms(REQUESTER, "ja")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: alles over u is gewist.")
    sent = len(bodies(fake_twilio, REQUESTER))
    # Nothing after the last message: not a reply to another text from that old conversation, not a notice.
    session.expire_all()
    [resident] = session.scalars(select(Resident)).all()
    assert is_erased(resident)
    _sweep_farewells(notify_app)
    assert _holds(notify_app, REQUESTER) == []
    assert len(bodies(fake_twilio, REQUESTER)) == sent
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "resident.erase")).all()
    assert event.actor_type == "resident" and event.detail["via"] == "sms"


def test_forget_me_in_english_with_yes(notify_app, webhooks, fake_twilio, session):
    add_listing(notify_app, REQUESTER, "request", language="en")
    webhooks.sms(REQUESTER, "Forget me!")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: do you want us to erase everything about you")
    webhooks.sms(REQUESTER, "YES")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: everything about you is erased.")
    assert find_resident(session, REQUESTER) is None


def test_a_number_we_do_not_know_hears_there_is_nothing_to_forget(notify_app, webhooks, fake_twilio, session):
    webhooks.sms(STRANGER, "vergeet mij")
    assert bodies(fake_twilio, STRANGER) == ["BUUV: wij hadden niets over u bewaard. Ook dit bericht is nu gewist."]
    _sweep_farewells(notify_app)
    assert _holds(notify_app, STRANGER) == []


def test_a_ja_after_24_hours_asks_again(notify_app, webhooks, fake_twilio, session):
    add_listing(notify_app, REQUESTER, "request")
    webhooks.sms(REQUESTER, "VERGEET MIJ")
    with get_database(notify_app).transaction() as tx:
        resident = find_resident(tx, REQUESTER)
        resident.conversation = {"awaiting": "forget", "asked_at": (utcnow() - dt.timedelta(hours=25)).isoformat()}
    webhooks.sms(REQUESTER, "JA")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: wilt u dat wij alles over u wissen")
    session.expire_all()
    assert find_resident(session, REQUESTER) is not None
    webhooks.sms(REQUESTER, "JA")  # within the new 24 hours
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: alles over u is gewist.")


def test_nee_keeps_everything(notify_app, webhooks, fake_twilio, session):
    add_listing(notify_app, REQUESTER, "request")
    webhooks.sms(REQUESTER, "VERGEET MIJ")
    webhooks.sms(REQUESTER, "NEE")
    assert bodies(fake_twilio, REQUESTER)[-1] == "BUUV: goed, wij wissen niets. Uw vragen en berichten blijven bewaard."
    webhooks.sms(REQUESTER, "JA")  # nothing waits for it any more: not an erasure
    session.expire_all()
    assert find_resident(session, REQUESTER) is not None


def test_the_forget_request_is_what_ja_answers_before_a_proposal(notify_app, webhooks, fake_twilio, session):
    """One place decides what a JA answers: the resident's own request to be forgotten, then a proposal;
    with an open match, the other person is told it is off."""
    request_id = add_listing(notify_app, REQUESTER, "request", category="chores")
    offer_id = add_listing(notify_app, HELPER, "offer", category="chores", postcode="2011")
    match_id = post_match(notify_app.test_client(), request_id, offer_id).get_json()["id"]
    webhooks.sms(HELPER, "VERGEET MIJ")
    warning = bodies(fake_twilio, HELPER)[-1]
    assert "afspraak met een buur gaat dan niet door" in warning and segment_count(warning) == 1
    webhooks.sms(HELPER, "JA")
    assert bodies(fake_twilio, HELPER)[-1].startswith("BUUV: alles over u is gewist.")
    session.expire_all()
    assert session.get(Match, match_id).status == "cancelled"  # not accepted: the JA was about forgetting
    assert find_resident(session, HELPER) is None
    # The requester keeps everything of theirs, and hears the match is off.
    assert find_resident(session, REQUESTER) is not None
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: de afspraak voor klussen")


def test_a_proposal_is_still_answered_by_ja_without_a_forget_request(notify_app, webhooks, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request", category="chores")
    offer_id = add_listing(notify_app, HELPER, "offer", category="chores", postcode="2011")
    match_id = post_match(notify_app.test_client(), request_id, offer_id).get_json()["id"]
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    session.expire_all()
    assert session.get(Match, match_id).status == "accepted"
    assert session.scalar(select(func.count()).select_from(Message).where(
        Message.purpose == "erasure_confirmation")) == 0


def test_a_forget_request_left_for_a_week_no_longer_takes_the_ja_of_a_later_proposal(notify_app, webhooks,
                                                                                     fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request", category="chores")
    offer_id = add_listing(notify_app, HELPER, "offer", category="chores", postcode="2011")
    webhooks.sms(HELPER, "VERGEET MIJ")
    with get_database(notify_app).transaction() as tx:
        find_resident(tx, HELPER).conversation = {
            "awaiting": "forget", "asked_at": (utcnow() - dt.timedelta(days=8)).isoformat()}
    match_id = post_match(notify_app.test_client(), request_id, offer_id).get_json()["id"]
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    session.expire_all()
    assert session.get(Match, match_id).status == "accepted" and find_resident(session, HELPER) is not None
