"""A match over SMS: proposal, JA/NEE, confirmation, relay, reminder, KLAAR, NIET GELUKT.

Jobs run in-process; what goes out is what the fake Twilio received.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

import texts
from gateway.database import get_database
from models import AuditEvent, Callback, Match, Message
from models.base import utcnow
from models.matching import MatchError, cancel_match, confirm_match
from models.workdays import local_zone
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, listing_status, post_match
from texts import is_gsm7, segment_count


def _pair(app, **offer):  # type: ignore[no-untyped-def]
    request_id = add_listing(app, REQUESTER, "request", category="chores", timing="this_week")
    offer_id = add_listing(app, HELPER, "offer", category="chores", timing=None, **offer)
    return request_id, offer_id


def _propose(app, request_id, offer_id) -> int:  # type: ignore[no-untyped-def]
    response = post_match(app.test_client(), request_id, offer_id, note="kent de buurt")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_proposal_ja_confirm_reminder_klaar(notify_app, webhooks, fake_twilio, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)

    [proposal] = bodies(fake_twilio, HELPER)
    assert proposal == ("BUUV: een buur in Schalkwijk zoekt hulp met klussen in en om het huis, deze week. "
                        "Wilt u helpen? Antwoord JA of NEE.")
    assert "2034" not in proposal and is_gsm7(proposal) and segment_count(proposal) == 1
    [searching] = bodies(fake_twilio, REQUESTER)
    assert searching.startswith("BUUV zoekt een buur die u helpt met klussen")

    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "ja")
    assert bodies(fake_twilio, HELPER)[-1].startswith("Dank u wel! Iemand van BUUV belt u")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Goed nieuws! Een buur wil u helpen met klussen")
    match = session.get(Match, match_id)
    assert match.status == "accepted" and match.accepted_at is not None
    assert session.scalars(select(Callback.reason).where(Callback.match_id == match_id)).all() == ["match_accepted"]

    # They reach each other through our number; neither sees the other's number.
    webhooks.sms(REQUESTER, "Hallo! Kunt u zaterdag om 10 uur?")
    relayed = bodies(fake_twilio, HELPER)[-1]
    assert relayed == "Bericht van uw BUUV-buur: Hallo! Kunt u zaterdag om 10 uur?"
    assert REQUESTER not in relayed and "0612345002" not in relayed
    assert all(m["From"] == "+3197010520000" for m in fake_twilio.messages())

    meeting = utcnow() + dt.timedelta(days=3)
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        confirm_match(tx, match_id, meeting_at=meeting, zone=local_zone(notify_app.config))
    for phone in (HELPER, REQUESTER):
        assert bodies(fake_twilio, phone)[-1].startswith("Afgesproken: klussen in en om het huis, ")
        assert segment_count(bodies(fake_twilio, phone)[-1]) == 1
    # The request is matched; the offer stays open, for the helper may help someone else too.
    assert (listing_status(notify_app, request_id), listing_status(notify_app, offer_id)) == ("matched", "open")
    session.expire_all()
    assert session.scalars(select(Callback.status).where(Callback.match_id == match_id)).all() == ["done"]

    # The day before, at 11:00 local time: a reminder to both, once however often the sweep runs.
    with get_database(notify_app).transaction() as tx:
        tx.get(Match, match_id).meeting_at = _local(days=1, hour=15)
        tx.get(Match, match_id).confirmed_at = utcnow() - dt.timedelta(days=2)
    sent_before = len(fake_twilio.messages())
    _sweep_at(notify_app, _local(days=0, hour=11))
    _sweep_at(notify_app, _local(days=0, hour=11, minute=5))
    assert len(fake_twilio.messages()) == sent_before + 2
    assert bodies(fake_twilio, HELPER)[-1] == ("Herinnering van BUUV: morgen om 15:00 klussen in en om het huis. "
                                               "Uw buur bereiken? Sms of bel naar dit nummer.")

    # Afterwards: "is het gelukt?" to the neighbour who asked; KLAAR closes the match.
    _sweep_at(notify_app, _local(days=1, hour=19))
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: is het gelukt met klussen in en om het huis?")
    with get_database(notify_app).transaction() as tx:  # the texts below come now: the meeting was earlier
        tx.get(Match, match_id).meeting_at = utcnow() - dt.timedelta(hours=4)
    webhooks.sms(REQUESTER, "Klaar!")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Fijn dat het gelukt is!")
    session.expire_all()
    match = session.get(Match, match_id)
    assert (match.status, match.closed_by) == ("done", "resident") and match.done_at is not None
    assert (listing_status(notify_app, request_id), listing_status(notify_app, offer_id)) == ("done", "open")
    # Just done: a thank-you still reaches the neighbour (BUURTLIJN_RELAY_DAYS_AFTER_DONE, 3 by default).
    webhooks.sms(REQUESTER, "Nogmaals dank!")
    assert bodies(fake_twilio, HELPER)[-1] == "Bericht van uw BUUV-buur: Nogmaals dank!"
    # Done longer ago than that: texts go to a broker again, not to the neighbour.
    with get_database(notify_app).transaction() as tx:
        tx.get(Match, match_id).done_at = utcnow() - dt.timedelta(days=3, minutes=1)
    helper_count = len(bodies(fake_twilio, HELPER))
    webhooks.sms(REQUESTER, "Nog een vraag")
    assert len(bodies(fake_twilio, HELPER)) == helper_count
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Dank u. Iemand van BUUV leest uw bericht")

    session.expire_all()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "match", AuditEvent.object_id == str(match_id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["match.propose", "match.accepted", "match.relay_sms", "match.confirmed", "match.reminder",
                       "match.feedback_requested", "match.done", "match.relay_sms"]
    # Every message went out once: no dedupe key twice, nothing left unsent.
    assert len({m["Body"] + m["To"] for m in fake_twilio.messages()}) == len(fake_twilio.messages())
    assert session.scalar(select(func.count(Message.id)).where(Message.status == "pending")) == 0


def _local(days: int, hour: int, minute: int = 0) -> dt.datetime:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    day = dt.datetime.now(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.timezone.utc)


def _sweep_at(app, moment: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    from workers.match_jobs import sweep_matches

    sweep_matches(app, moment)


def test_nee_goes_back_to_the_queue_and_blocks_the_same_pair(notify_app, webhooks, fake_twilio, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)
    webhooks.sms(HELPER, "Nee, sorry")

    assert bodies(fake_twilio, HELPER)[-1] == "Dank u voor uw antwoord. Geen probleem, wij vragen iemand anders."
    match = session.get(Match, match_id)
    assert match.status == "declined" and match.declined_at is not None
    [item] = session.scalars(select(Callback).where(Callback.match_id == match_id)).all()
    assert (item.reason, item.listing_id, item.status) == ("match_declined", request_id, "open")
    assert len(bodies(fake_twilio, REQUESTER)) == 1  # only "we are looking": no bad news by text

    again = post_match(notify_app.test_client(), request_id, offer_id)
    assert again.status_code == 409 and "said no" in again.get_json()["message"]


def test_several_open_proposals_are_numbered_and_plain_ja_asks_which(notify_app, webhooks, fake_twilio, session):
    first = _propose(notify_app, add_listing(notify_app, REQUESTER, "request"),
                     add_listing(notify_app, HELPER, "offer"))
    second = _propose(notify_app, add_listing(notify_app, "+31612345003", "request", category="company"),
                      add_listing(notify_app, HELPER, "offer", category="company"))

    proposals = bodies(fake_twilio, HELPER)
    assert proposals[0].endswith("Antwoord JA of NEE.")
    assert proposals[1].startswith(f"BUUV ({second}): ") and proposals[1].endswith(f"JA {second} of NEE {second}.")

    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    assert bodies(fake_twilio, HELPER)[-1] == (f"U heeft meer vragen open: {first}, {second}. Over welke gaat het? "
                                               f"Stuur bijvoorbeeld JA {first}.")
    assert {m.status for m in session.scalars(select(Match))} == {"proposed"}

    webhooks.sms(HELPER, f"ja {second}")
    session.expire_all()
    assert (session.get(Match, first).status, session.get(Match, second).status) == ("proposed", "accepted")
    webhooks.sms(HELPER, "JA")  # now only one is open: a plain JA is clear
    session.expire_all()
    assert session.get(Match, first).status == "accepted"


def test_late_and_repeated_answers_are_told_so(notify_app, webhooks, fake_twilio, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    webhooks.sms(HELPER, "JA")
    assert bodies(fake_twilio, HELPER)[-1].startswith("Dank u, uw antwoord hadden we al.")

    other = _propose(notify_app, add_listing(notify_app, "+31612345004", "request"),
                     add_listing(notify_app, HELPER, "offer"))
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        cancel_match(tx, other, reason="resident found help elsewhere")
    assert bodies(fake_twilio, HELPER)[-1].startswith("BUUV: de vraag over boodschappen is niet meer nodig.")
    webhooks.sms(HELPER, f"NEE {other}")
    assert bodies(fake_twilio, HELPER)[-1].startswith("Dank u! Deze vraag is al verlopen of gestopt.")
    session.expire_all()
    assert session.get(Match, match_id).status == "accepted"


def test_klaar_before_the_agreed_day_is_asked_about_once(notify_app, webhooks, fake_twilio, session):
    """KLAAR used to close a match whose help was still days away."""
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    match_id = _propose(notify_app, request_id, offer_id)
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        confirm_match(tx, match_id, meeting_at=utcnow() + dt.timedelta(days=3), zone=local_zone(notify_app.config))
    webhooks.sms(REQUESTER, "KLAAR")
    assert bodies(fake_twilio, REQUESTER)[-1] == texts.t("nl", "match.done_early")
    session.expire_all()
    assert session.get(Match, match_id).status == "confirmed"
    webhooks.sms(REQUESTER, "klaar")  # yes, really: it happened earlier than planned
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Fijn dat het gelukt is!")
    session.expire_all()
    assert session.get(Match, match_id).status == "done"


def test_niet_gelukt_goes_to_a_broker(notify_app, webhooks, fake_twilio, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "JA")
    webhooks.sms(HELPER, "niet gelukt")

    assert bodies(fake_twilio, HELPER)[-1].startswith("Jammer dat het niet gelukt is.")
    items = session.scalars(select(Callback).where(Callback.match_id == match_id, Callback.reason == "problem_reported"))
    [item] = items.all()
    assert item.priority == 40 and item.status == "open"  # a resident in trouble comes first
    assert session.get(Match, match_id).problem_reported_at is not None


def test_no_answer_in_time_expires_once_into_the_queue(notify_app, fake_twilio, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)
    respond_by = session.get(Match, match_id).respond_by
    assert dt.timedelta(hours=23, minutes=59) < respond_by - utcnow() <= dt.timedelta(hours=24)

    _sweep_at(notify_app, respond_by - dt.timedelta(minutes=1))
    session.expire_all()
    assert session.get(Match, match_id).status == "proposed"
    _sweep_at(notify_app, respond_by + dt.timedelta(minutes=1))
    _sweep_at(notify_app, respond_by + dt.timedelta(minutes=2))
    session.expire_all()
    assert session.get(Match, match_id).status == "expired"
    assert session.scalars(select(Callback.reason).where(Callback.match_id == match_id)).all() == ["match_expired"]
    # The request is open again for the next proposal.
    assert post_match(notify_app.test_client(), request_id, add_listing(notify_app, "+31612345009", "offer")).status_code == 201


def test_confirm_needs_an_accepted_match(notify_app, session):
    request_id, offer_id = _pair(notify_app)
    match_id = _propose(notify_app, request_id, offer_id)
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        try:
            confirm_match(tx, match_id, zone=local_zone(notify_app.config))
        except MatchError as exc:
            assert "proposed" in str(exc)
        else:
            raise AssertionError("a proposal cannot be confirmed before the helper said yes")
    [refused] = session.scalars(select(AuditEvent).where(AuditEvent.action == "match.confirmed")).all()
    assert (refused.result, refused.detail) == ("refused", {"status": "proposed"})
    assert session.get(Match, match_id).status == "proposed" and listing_status(notify_app, request_id) == "open"
