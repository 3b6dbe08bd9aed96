"""The queue: listing, filters, ordering, counts, claims as leases, masking, audit, outcomes."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from gateway.database import get_database
from models import AuditEvent, Callback, Listing, Match, Message, Resident
from models.base import utcnow
from models.leases import LEASE, claim_item, claim_next, return_expired_leases
from models.phones import parse_phone, readable
from models.queue import QueueFilters, queue_callback
from models.queue_view import is_overdue, queue_view
from models.residents import resident_for
from models.workdays import next_working_day_at, retry_time, working_days_ago
from tests.dashboard_support import logged_in, post, seed_listing

REQUESTER = "+31612345678"
HELPER = "+31687654321"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def mila(app, brokers):  # type: ignore[no-untyped-def]
    return logged_in(app, "mila@buuv.example")


@pytest.fixture
def bram(app, brokers):  # type: ignore[no-untyped-def]
    return logged_in(app, "bram@buuv.example")


def waiting_ids(html: str) -> list[int]:
    section = html.split('id="waiting-list"', 1)[1].split("</ul>", 1)[0] if 'id="waiting-list"' in html else ""
    return [int(x) for x in re.findall(r'id="item-(\d+)"', section)]


def audit_events(db, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- reading the queue ----------------------------------------------------------------------


def test_queue_lists_everything_waiting_with_counts_and_masked_numbers(app, mila, db):
    seed_listing(app, REQUESTER, "request", "groceries", "2034", "boodschappen halen")
    page = mila.get("/dashboard").get_data(as_text=True)
    assert "1 wachtend, 0 over tijd" in page
    assert "Nieuwe vraag of aanbod" in page and "Vraag: Boodschappen" in page and "Schalkwijk" in page
    assert "06 •••• 5678" in page and REQUESTER not in page and readable(REQUESTER) not in page
    [event] = audit_events(db, "queue.view")
    assert (event.actor_type, event.detail, event.remote_addr) == ("broker", {"shown": 1}, "127.0.0.1")


def test_order_is_priority_first_then_longest_waiting(app, db, brokers):
    now = utcnow()
    old_listing = seed_listing(app, REQUESTER, "request")[1]
    new_listing = seed_listing(app, HELPER, "offer")[1]
    person = queue_callback(db, "callback_requested", note="bel mij")
    db.execute(update(Callback).where(Callback.id == old_listing).values(due_at=now - dt.timedelta(hours=5)))
    db.execute(update(Callback).where(Callback.id == new_listing).values(due_at=now - dt.timedelta(hours=1)))
    db.commit()
    view = queue_view(db, brokers.mila)
    db.commit()
    assert [row.callback.id for row in view.waiting] == [person.id, old_listing, new_listing]
    client = logged_in(app, "mila@buuv.example")
    assert waiting_ids(client.get("/dashboard").get_data(as_text=True)) == [person.id, old_listing, new_listing]


def test_a_helper_who_said_yes_and_a_resident_in_trouble_come_before_everything_else(app, db, brokers):
    """"Helper zei ja: match bevestigen" used to wait behind an SMS nobody understood."""
    not_understood = queue_callback(db, "unrecognised_message")
    asked_for_a_person = queue_callback(db, "callback_requested")
    said_yes = queue_callback(db, "match_accepted")
    trouble = queue_callback(db, "problem_reported")
    db.execute(update(Callback).where(Callback.id.in_([not_understood.id, asked_for_a_person.id]))
               .values(due_at=utcnow() - dt.timedelta(days=1)))
    db.commit()
    view = queue_view(db, brokers.mila)
    db.commit()
    assert [row.callback.id for row in view.waiting] == [said_yes.id, trouble.id, asked_for_a_person.id,
                                                        not_understood.id]


def test_within_a_priority_as_soon_as_possible_comes_first(app, db, brokers):
    now = utcnow()
    waiting_longest = seed_listing(app, REQUESTER, "request")
    asap = seed_listing(app, HELPER, "request", "transport")
    db.execute(update(Listing).where(Listing.id == waiting_longest[0]).values(timing="no_hurry"))
    db.execute(update(Listing).where(Listing.id == asap[0]).values(timing="asap"))
    db.execute(update(Callback).where(Callback.id == waiting_longest[1]).values(due_at=now - dt.timedelta(hours=5)))
    db.commit()
    view = queue_view(db, brokers.mila)
    db.commit()
    assert [row.callback.id for row in view.waiting] == [asap[1], waiting_longest[1]]
    assert claim_next(db, brokers.mila).id == asap[1]  # "Volgende oppakken" takes it too
    db.commit()
    client = logged_in(app, "mila@buuv.example")
    page = client.get("/dashboard").get_data(as_text=True)
    asap_card = page.split(f'id="item-{asap[1]}"', 1)[1].split("</li>", 1)[0]
    other_card = page.split(f'id="item-{waiting_longest[1]}"', 1)[1].split("</li>", 1)[0]
    assert "zo snel mogelijk" in asap_card and "zo snel mogelijk" not in other_card


def test_filters_by_district_category_and_reason(app, mila, db):
    _, schalkwijk = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    _, centrum = seed_listing(app, HELPER, "offer", "digital", "2011")
    person = queue_callback(db, "callback_requested")
    db.commit()
    assert waiting_ids(mila.get("/dashboard?district=schalkwijk").get_data(as_text=True)) == [schalkwijk]
    assert waiting_ids(mila.get("/dashboard?category=digital").get_data(as_text=True)) == [centrum]
    assert waiting_ids(mila.get("/dashboard?reason=callback_requested").get_data(as_text=True)) == [person.id]
    # Unknown filter values are ignored, not an error.
    assert len(waiting_ids(mila.get("/dashboard?district=atlantis&reason=%3Cx%3E").get_data(as_text=True))) == 3

    response = post(mila, "/dashboard/claim-next", {"category": "digital"})
    assert response.location == f"/dashboard/items/{centrum}"


def test_overdue_counts_working_days(app, db, brokers):
    monday_noon = dt.datetime(2026, 11, 23, 12, 0, tzinfo=AMSTERDAM)
    friday_morning = dt.datetime(2026, 11, 20, 9, 0, tzinfo=AMSTERDAM).astimezone(dt.timezone.utc)
    listing = Callback(reason="new_listing", due_at=friday_morning)
    request = Callback(reason="callback_requested", due_at=friday_morning)
    # A listing waits 2 working days (Fri -> Tue), a call-back request 1 (Fri -> Mon).
    assert not is_overdue(listing, monday_noon)
    assert is_overdue(request, monday_noon)

    _, callback_id = seed_listing(app, REQUESTER)
    db.execute(update(Callback).where(Callback.id == callback_id).values(due_at=utcnow() - dt.timedelta(days=9)))
    db.commit()
    client = logged_in(app, "mila@buuv.example")
    page = client.get("/dashboard").get_data(as_text=True)
    assert "1 wachtend, 1 over tijd" in page and "over tijd</span>" in page


def _item_card(html: str, callback_id: int) -> str:
    return html.split(f'id="item-{callback_id}"', 1)[1].split("</li>", 1)[0]


def test_a_resident_with_more_open_items_is_shown_on_each_card_and_item(app, mila, bram, db):
    """One call back can settle them all: the cards say so, and each item lists the others."""
    _, request_item = seed_listing(app, REQUESTER)
    resident_id = db.get(Callback, request_item).resident_id
    with get_database(app).transaction() as session:
        asked = queue_callback(session, "callback_requested", resident_id=resident_id).id
        later = queue_callback(session, "abandoned_call", resident_id=resident_id,
                               due_at=utcnow() + dt.timedelta(days=2)).id
    _, other_resident = seed_listing(app, HELPER, "offer")

    queue = mila.get("/dashboard").get_data(as_text=True)
    for item in (request_item, asked, later):
        assert "+2 open bij deze bewoner" in _item_card(queue, item)
    assert "open bij deze bewoner" not in _item_card(queue, other_resident)
    # A filter that hides an item still counts it: the broker should know before calling.
    filtered = mila.get("/dashboard?reason=callback_requested").get_data(as_text=True)
    assert "+2 open bij deze bewoner" in _item_card(filtered, asked)

    post(bram, f"/dashboard/items/{asked}/claim")
    page = mila.get(f"/dashboard/items/{request_item}").get_data(as_text=True)
    section = page.split('id="also-open"', 1)[1].split("</section>", 1)[0]
    assert "Ook open voor deze bewoner" in page
    assert f'href="/dashboard/items/{asked}"' in section and "bij Bram" in section
    assert f'href="/dashboard/items/{later}"' in section and "vanaf " in section
    assert f'/dashboard/items/{request_item}"' not in section  # not itself
    assert readable(REQUESTER) not in page  # still masked for a broker who does not hold the item

    # Closed items no longer count.
    db.execute(update(Callback).where(Callback.id.in_((asked, later))).values(status="done", closed_at=utcnow()))
    db.commit()
    page = mila.get(f"/dashboard/items/{request_item}").get_data(as_text=True)
    assert 'id="also-open"' not in page
    assert "open bij deze bewoner" not in _item_card(mila.get("/dashboard").get_data(as_text=True), request_item)


def test_other_open_items_read_in_english_for_an_english_broker(app, mila, db):
    _, request_item = seed_listing(app, REQUESTER)
    resident_id = db.get(Callback, request_item).resident_id
    with get_database(app).transaction() as session:
        asked = queue_callback(session, "callback_requested", resident_id=resident_id).id
    post(mila, f"/dashboard/items/{asked}/claim")
    post(mila, "/dashboard/language", {"next": "/dashboard"})
    queue = mila.get("/dashboard").get_data(as_text=True)
    assert "+1 more open for this resident" in _item_card(queue, request_item)
    page = mila.get(f"/dashboard/items/{request_item}").get_data(as_text=True)
    section = page.split('id="also-open"', 1)[1].split("</section>", 1)[0]
    assert "Also open for this resident" in page and "you hold this item" in section


# --- claims and leases -----------------------------------------------------------------------------


def test_claim_next_takes_the_first_item_and_shows_the_full_number(app, mila, db, brokers):
    _, callback_id = seed_listing(app, REQUESTER)
    response = post(mila, "/dashboard/claim-next")
    assert response.location == f"/dashboard/items/{callback_id}"
    page = mila.get(response.location).get_data(as_text=True)
    assert f'id="resident-phone">{readable(REQUESTER)}<' in page
    assert "U heeft dit item tot" in page
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.claimed_by_id) == ("claimed", brokers.mila)
    assert callback.lease_expires_at > utcnow() + LEASE - dt.timedelta(minutes=1)
    views = audit_events(db, "callback.view")
    assert views[-1].detail["full_number"] is True and views[-1].object_id == str(callback_id)


def test_second_broker_is_told_the_item_is_taken_and_sees_the_number_masked(app, mila, bram, db):
    _, callback_id = seed_listing(app, REQUESTER)
    post(mila, f"/dashboard/items/{callback_id}/claim")

    response = post(bram, f"/dashboard/items/{callback_id}/claim", follow_redirects=True)
    assert "Dit item is al opgepakt door Mila." in response.get_data(as_text=True)
    page = bram.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert "Mila heeft dit item. U ziet het nummer niet." in page
    assert "06 •••• 5678" in page and REQUESTER not in page and readable(REQUESTER) not in page
    assert 'id="call-button"' not in page and 'name="outcome"' not in page
    refused = audit_events(db, "callback.claim")[-1]
    assert refused.result == "refused" and refused.detail["refused"] == "taken"
    # Bram cannot act on Mila's item either.
    response = post(bram, f"/dashboard/items/{callback_id}/outcome", {"outcome": "resolved"}, follow_redirects=True)
    assert "U heeft dit item niet meer" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Callback, callback_id).status == "claimed"


def test_claim_next_skips_items_held_by_others(app, mila, bram, db):
    _, first = seed_listing(app, REQUESTER)
    _, second = seed_listing(app, HELPER, "offer")
    assert post(mila, "/dashboard/claim-next").location == f"/dashboard/items/{first}"
    assert post(bram, "/dashboard/claim-next").location == f"/dashboard/items/{second}"
    response = post(bram, "/dashboard/claim-next", follow_redirects=True)
    assert "Er wacht nu niets om op te pakken." in response.get_data(as_text=True)


def test_expired_lease_returns_the_item(app, mila, bram, db, brokers):
    _, callback_id = seed_listing(app, REQUESTER)
    post(mila, f"/dashboard/items/{callback_id}/claim")
    db.execute(update(Callback).where(Callback.id == callback_id)
               .values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    assert waiting_ids(bram.get("/dashboard").get_data(as_text=True)) == [callback_id]
    assert post(bram, "/dashboard/claim-next").location == f"/dashboard/items/{callback_id}"
    db.expire_all()
    assert db.get(Callback, callback_id).claimed_by_id == brokers.bram
    # Mila's page no longer lets her act, and her outcome is refused.
    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "resolved"}, follow_redirects=True)
    assert "U heeft dit item niet meer" in response.get_data(as_text=True)


def test_lease_is_renewed_by_work_and_by_the_heartbeat(app, mila, db):
    _, callback_id = seed_listing(app, REQUESTER)
    post(mila, f"/dashboard/items/{callback_id}/claim")
    short = utcnow() + dt.timedelta(minutes=1)
    db.execute(update(Callback).where(Callback.id == callback_id).values(lease_expires_at=short))
    db.commit()
    token = re.search(r'name="csrf-token" content="([^"]+)"', mila.get("/dashboard").get_data(as_text=True))[1]
    response = mila.post(f"/dashboard/items/{callback_id}/heartbeat", headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["held"] is True
    db.expire_all()
    assert db.get(Callback, callback_id).lease_expires_at > utcnow() + LEASE - dt.timedelta(minutes=1)
    # A heartbeat without the CSRF header is refused.
    assert mila.post(f"/dashboard/items/{callback_id}/heartbeat").status_code == 400


def test_heartbeat_for_an_item_someone_else_holds_says_so(app, mila, bram):
    _, callback_id = seed_listing(app, REQUESTER)
    post(mila, f"/dashboard/items/{callback_id}/claim")
    token = re.search(r'name="csrf-token" content="([^"]+)"', bram.get("/dashboard").get_data(as_text=True))[1]
    response = bram.post(f"/dashboard/items/{callback_id}/heartbeat", headers={"X-CSRFToken": token})
    assert response.status_code == 409 and response.get_json()["held"] is False


def test_release_gives_the_item_back(app, mila, db):
    _, callback_id = seed_listing(app, REQUESTER)
    post(mila, f"/dashboard/items/{callback_id}/claim")
    response = post(mila, f"/dashboard/items/{callback_id}/release", follow_redirects=True)
    assert "Het item staat weer in de wachtrij." in response.get_data(as_text=True)
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.claimed_by_id, callback.lease_expires_at) == ("open", None, None)


def test_claim_services_race_safely_on_one_connection_each(app, brokers):
    database = get_database(app)
    _, callback_id = seed_listing(app, REQUESTER)
    with database.transaction() as first:
        assert claim_item(first, callback_id, brokers.mila).ok
    with database.transaction() as second:
        refused = claim_item(second, callback_id, brokers.bram)
        assert (refused.ok, refused.reason, refused.holder.name) == (False, "taken", "Mila")
        assert claim_next(second, brokers.bram) is None
        assert claim_next(second, brokers.bram, QueueFilters(reason="new_listing")) is None
    with database.transaction() as third:
        later = utcnow() + LEASE + dt.timedelta(seconds=1)
        assert return_expired_leases(third, later) == 1
        assert claim_next(third, brokers.bram, now=later).id == callback_id


# --- outcomes ---------------------------------------------------------------------------------------


def claimed_request(app, client, db):  # type: ignore[no-untyped-def]
    request_id, callback_id = seed_listing(app, REQUESTER, "request", "groceries", "2034", "boodschappen")
    offer_id, _ = seed_listing(app, HELPER, "offer", "groceries", "2035", "ik doe boodschappen")
    post(client, f"/dashboard/items/{callback_id}/claim")
    return request_id, offer_id, callback_id


def test_outcome_match_proposed_closes_the_item(app, mila, db, brokers):
    request_id, offer_id, callback_id = claimed_request(app, mila, db)
    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert f'name="match_with" value="{offer_id}"' in page and "ik doe boodschappen" in page

    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"match_with": offer_id, "note": "Past goed"},
                    follow_redirects=True)
    assert "Opgeslagen: Match voorgesteld. Het item is uit de wachtrij." in response.get_data(as_text=True)
    assert callback_id not in waiting_ids(response.get_data(as_text=True))
    db.expire_all()
    match = db.scalars(select(Match)).one()
    assert (match.request_id, match.offer_id, match.proposed_by_id, match.note) == (
        request_id, offer_id, brokers.mila, "Past goed")
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.outcome, callback.match_id) == ("done", "match_proposed", match.id)
    assert audit_events(db, "callback.outcome")[-1].detail == {"outcome": "match_proposed", "match_id": match.id}


def test_outcome_match_needs_an_open_counterpart(app, mila, db):
    _, offer_id, callback_id = claimed_request(app, mila, db)
    db.execute(update(Listing).where(Listing.id == offer_id).values(status="cancelled"))
    db.commit()
    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"match_with": offer_id, "note": "probeer"},
                    follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Deze match kan niet" in page
    assert ">probeer</textarea>" in page  # the note typed is kept
    db.expire_all()
    assert db.get(Callback, callback_id).status == "claimed"
    assert audit_events(db, "callback.outcome")[-1].result == "refused"


def test_outcome_resolved(app, mila, db):
    _, _, callback_id = claimed_request(app, mila, db)
    post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "resolved", "note": "Zelf opgelost"})
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.outcome, callback.note, callback.claimed_by_id) == (
        "done", "resolved", "Zelf opgelost", None)
    # Helped without a match ends the request: the API and the resident's STATUS no longer say open.
    listing = db.get(Listing, callback.listing_id)
    assert listing.status == "done" and listing.closed_at is not None


def test_outcome_not_reached_retries_then_flags_for_a_letter_or_visit(app, mila, db, fake_twilio):
    _, _, callback_id = claimed_request(app, mila, db)
    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "not_reached"},
                    follow_redirects=True)
    assert "Opgeslagen: niet bereikt. De bewoner krijgt bericht dat we belden." in response.get_data(as_text=True)
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.attempts, callback.outcome) == ("open", 1, "not_reached")
    assert callback.due_at > utcnow() + dt.timedelta(minutes=100)
    told = db.scalars(select(Message).where(Message.purpose == "broker_tried")).all()
    assert [m.dedupe_key for m in told] == [f"callback:{callback_id}:tried:1"]
    assert "We belden u net" in told[0].body
    assert any("We belden u net" in m["Body"] and m["To"] == REQUESTER for m in fake_twilio.messages())

    for attempt in (2, 3):
        db.execute(update(Callback).where(Callback.id == callback_id).values(due_at=utcnow()))
        db.commit()
        post(mila, f"/dashboard/items/{callback_id}/claim")
        post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "not_reached"})
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.attempts) == ("done", 3)
    follow_up = db.scalars(select(Callback).where(Callback.reason == "letter_or_visit")).one()
    assert (follow_up.status, follow_up.resident_id, follow_up.priority) == ("open", callback.resident_id, 25)
    bodies = [m.body for m in db.scalars(select(Message).where(Message.purpose == "broker_tried"))]
    assert len(bodies) == 3 and "We zoeken een andere manier" in bodies[-1]


def test_retry_schedule_is_two_hours_then_next_working_day_at_ten():
    tuesday_11 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, tuesday_11) == tuesday_11 + dt.timedelta(hours=2)
    friday_16 = dt.datetime(2026, 11, 27, 16, 0, tzinfo=AMSTERDAM)
    monday_10 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, friday_16) == monday_10  # two hours later is after office hours
    assert retry_time(2, tuesday_11) == dt.datetime(2026, 11, 25, 10, 0, tzinfo=AMSTERDAM)
    assert next_working_day_at(friday_16) == monday_10
    assert retry_time(3, tuesday_11) is None


def test_a_retry_recorded_in_the_night_lands_the_same_morning():
    """00:50 on a Wednesday used to retry on Thursday at 10:00: a whole working day lost."""
    wednesday_0050 = dt.datetime(2026, 11, 25, 0, 50, tzinfo=AMSTERDAM)
    wednesday_10 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, wednesday_0050) == wednesday_10
    assert retry_time(2, wednesday_0050) == wednesday_10
    saturday_night = dt.datetime(2026, 11, 28, 23, 30, tzinfo=AMSTERDAM)
    assert retry_time(1, saturday_night) == dt.datetime(2026, 11, 30, 10, 0, tzinfo=AMSTERDAM)  # Monday


def test_retries_follow_the_configured_broker_hours():
    late_shift = (dt.time(12), dt.time(20))
    tuesday_17 = dt.datetime(2026, 11, 24, 17, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, tuesday_17, late_shift) == tuesday_17 + dt.timedelta(hours=2)  # 19:00, still open
    tuesday_19 = dt.datetime(2026, 11, 24, 19, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, tuesday_19, late_shift) == dt.datetime(2026, 11, 25, 13, 0, tzinfo=AMSTERDAM)
    assert retry_time(1, tuesday_17) == next_working_day_at(tuesday_17)  # 19:00 is past the default 17:00


def test_the_dashboard_schedules_a_retry_within_the_configured_broker_hours(app, mila, db):
    _, _, callback_id = claimed_request(app, mila, db)
    app.config["BUURTLIJN_BROKER_HOURS"] = "06:00-06:01"  # two hours from now is always outside
    post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "not_reached"})
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert callback.due_at == next_working_day_at(utcnow(), (dt.time(6), dt.time(6, 1)))  # 07:00 local


def test_public_holidays_are_not_working_days():
    christmas_eve_16 = dt.datetime(2026, 12, 24, 16, 0, tzinfo=AMSTERDAM)  # Thursday
    # Christmas Day (Friday), the weekend, then Monday the 28th.
    assert next_working_day_at(christmas_eve_16) == dt.datetime(2026, 12, 28, 10, 0, tzinfo=AMSTERDAM)
    # Two working days before the Tuesday after Easter: Good Friday is one, Easter Monday is not.
    tuesday_after_easter = dt.datetime(2027, 3, 30, 12, 0, tzinfo=AMSTERDAM)
    assert working_days_ago(tuesday_after_easter, 2) == dt.datetime(2027, 3, 25, 12, 0, tzinfo=AMSTERDAM)


def test_outcome_wrong_number(app, mila, db):
    request_id, _, callback_id = claimed_request(app, mila, db)
    post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "wrong_number"})
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.outcome) == ("done", "wrong_number")
    assert db.get(Resident, callback.resident_id).number_status == "invalid"
    assert db.get(Listing, request_id).status == "cancelled"


@pytest.mark.parametrize("referral", ["sociaal_wijkteam", "huisarts", "other"])
def test_outcome_referred_needs_a_note(app, mila, db, referral):
    _, _, callback_id = claimed_request(app, mila, db)
    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": f"referred:{referral}"},
                    follow_redirects=True)
    assert "Schrijf bij doorverwijzen een korte notitie." in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Callback, callback_id).status == "claimed"

    post(mila, f"/dashboard/items/{callback_id}/outcome",
         {"outcome": f"referred:{referral}", "note": "Veel zorgen, wijkteam belt haar"})
    db.expire_all()
    callback = db.get(Callback, callback_id)
    assert (callback.status, callback.outcome) == ("done", f"referred_{referral}")
    assert callback.note == "Veel zorgen, wijkteam belt haar"
    assert db.get(Listing, callback.listing_id).status == "cancelled"  # referred elsewhere ends the request


def test_unknown_outcome_is_refused_clearly(app, mila, db):
    _, _, callback_id = claimed_request(app, mila, db)
    response = post(mila, f"/dashboard/items/{callback_id}/outcome", {"outcome": "teleported"},
                    follow_redirects=True)
    assert response.status_code == 200 and "Die uitkomst kennen we niet." in response.get_data(as_text=True)
    assert mila.get("/dashboard/items/99999").status_code == 404


# --- the item page ---------------------------------------------------------------------------------


def test_item_page_shows_resident_history_and_editable_notes(app, mila, db):
    earlier_id, earlier_callback = seed_listing(app, REQUESTER, "offer", "company", "2034", "koffie drinken")
    post(mila, f"/dashboard/items/{earlier_callback}/claim")
    post(mila, f"/dashboard/items/{earlier_callback}/outcome", {"outcome": "resolved", "note": "Gezellig gesprek"})
    _, callback_id = seed_listing(app, REQUESTER, "request", "groceries", "2034", "boodschappen")
    post(mila, f"/dashboard/items/{callback_id}/claim")

    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert "Aanbod: Gezelschap" in page and "koffie drinken" in page
    assert "Geholpen, geen match nodig" in page and "Gezellig gesprek" in page
    assert "Nederlands" in page and "Schalkwijk (2034)" in page

    post(mila, f"/dashboard/items/{callback_id}/notes", {"notes": "Slechthorend: hard praten"},
         page=f"/dashboard/items/{callback_id}")
    db.expire_all()
    assert db.get(Resident, db.get(Callback, callback_id).resident_id).notes == "Slechthorend: hard praten"
    assert audit_events(db, "resident.notes")[-1].result == "ok"


def test_recording_plays_through_our_authenticated_route(app, mila, db):
    listing_id, callback_id = seed_listing(app, REQUESTER)
    db.execute(update(Listing).where(Listing.id == listing_id).values(recording_sid="RE" + "1" * 32))
    db.commit()
    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert f'<audio controls preload="none" src="/recordings/{listing_id}"' in page
    assert "api.twilio.com" not in page


def test_broker_adds_a_listing_for_the_resident_on_the_phone(app, mila, db):
    seed_listing(app, HELPER, "offer", "chores", "2034", "kan klussen")
    with get_database(app).transaction() as session:
        resident = resident_for(session, parse_phone(REQUESTER))
        callback_id = queue_callback(session, "callback_requested", resident_id=resident.id).id
    post(mila, f"/dashboard/items/{callback_id}/claim")
    response = post(mila, f"/dashboard/items/{callback_id}/listing",
                    {"kind": "request", "category": "chores", "postcode": "2034", "timing": "this_week",
                     "description": "lamp ophangen"}, page=f"/dashboard/items/{callback_id}", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "De vraag is opgeslagen bij deze bewoner." in page
    assert "kan klussen" in page  # the new request already has its suggestion
    db.expire_all()
    listing = db.scalars(select(Listing).where(Listing.channel == "broker")).one()
    assert (listing.kind, listing.category, listing.timing, listing.district) == (
        "request", "chores", "this_week", "schalkwijk")
    assert db.get(Callback, callback_id).listing_id == listing.id


def test_walk_in_listing_is_held_by_the_broker_who_entered_it(app, mila, db, brokers):
    response = post(mila, "/dashboard/new", {"phone": "06 1111 2222", "language": "tr", "kind": "offer",
                                             "category": "language", "postcode": "2011",
                                             "description": "Turks en Nederlands oefenen"}, page="/dashboard/new")
    assert response.status_code == 302
    listing = db.scalars(select(Listing)).one()
    callback = db.scalars(select(Callback).where(Callback.listing_id == listing.id)).one()
    assert response.location == f"/dashboard/items/{callback.id}"
    assert (listing.channel, listing.kind, listing.district) == ("broker", "offer", "centrum")
    assert (callback.status, callback.claimed_by_id) == ("claimed", brokers.mila)
    assert db.get(Resident, listing.resident_id).language == "tr"

    refused = post(mila, "/dashboard/new", {"phone": "12", "kind": "request", "category": "nonsense",
                                            "postcode": "20"}, page="/dashboard/new")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Dat telefoonnummer klopt niet" in page and "Kies een soort hulp." in page and "4 cijfers" in page
