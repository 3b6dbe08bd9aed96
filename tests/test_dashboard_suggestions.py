"""Likely matches: category, then district and its neighbours, then who was asked least; decliners left out."""

from __future__ import annotations

import datetime as dt

from models import Listing, Match
from models.base import utcnow
from models.suggestions import FURTHER, NEIGHBOURING, SAME_DISTRICT, suggestions_for
from tests.dashboard_support import seed_listing

REQUESTER = "+31612345678"


def _offer(app, phone: str, category: str, postcode: str | None) -> int:  # type: ignore[no-untyped-def]
    return seed_listing(app, phone, "offer", category, postcode, f"offer {phone[-2:]}")[0]


def _match(db, request_id: int, offer_id: int, status: str, days_ago: float = 1) -> None:  # type: ignore[no-untyped-def]
    when = utcnow() - dt.timedelta(days=days_ago)
    db.add(Match(request_id=request_id, offer_id=offer_id, status=status, created_at=when, updated_at=when))
    db.commit()


def test_same_category_then_same_district_then_neighbours_then_the_rest(app, db):
    request_id, _ = seed_listing(app, REQUESTER, "request", "groceries", "2034")  # schalkwijk
    elsewhere = _offer(app, "+31611111101", "groceries", "2011")  # centrum: not next to schalkwijk
    neighbour = _offer(app, "+31611111102", "groceries", "2031")  # oost: a neighbour
    same = _offer(app, "+31611111103", "groceries", "2035")  # schalkwijk
    unknown = _offer(app, "+31611111104", "groceries", None)
    other_category = _offer(app, "+31611111105", "digital", "2034")

    found = suggestions_for(db, db.get(Listing, request_id))
    assert [s.listing.id for s in found] == [same, neighbour, elsewhere, unknown, other_category]
    assert [s.proximity for s in found] == [SAME_DISTRICT, NEIGHBOURING, FURTHER, FURTHER, SAME_DISTRICT]
    assert [s.same_category for s in found] == [True, True, True, True, False]


def test_helpers_asked_recently_come_after_those_who_were_not(app, db):
    request_id, _ = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    busy = _offer(app, "+31611111101", "groceries", "2034")
    rested = _offer(app, "+31611111102", "groceries", "2034")
    for n in range(2):
        other_request, _ = seed_listing(app, f"+3161222220{n}", "request", "groceries", "2034")
        _match(db, other_request, busy, "done", days_ago=3)
    long_ago, _ = seed_listing(app, "+31612222209", "request", "groceries", "2034")
    _match(db, long_ago, rested, "done", days_ago=90)  # outside the 30-day window

    found = suggestions_for(db, db.get(Listing, request_id))
    assert [(s.listing.id, s.recent_matches) for s in found] == [(rested, 0), (busy, 2)]


def test_helpers_who_declined_this_resident_are_left_out(app, db):
    request_id, _ = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    decliner = _offer(app, "+31611111101", "groceries", "2034")
    willing = _offer(app, "+31611111102", "groceries", "2034")
    earlier_request, _ = seed_listing(app, REQUESTER, "request", "company", "2034")
    _match(db, earlier_request, decliner, "declined", days_ago=200)

    assert [s.listing.id for s in suggestions_for(db, db.get(Listing, request_id))] == [willing]
    # And from the helper's side: the resident they declined is not suggested to them.
    requests = suggestions_for(db, db.get(Listing, decliner))
    assert request_id not in [s.listing.id for s in requests]


def test_for_an_offer_open_requests_are_suggested_and_closed_ones_and_own_are_not(app, db):
    offer_id = _offer(app, "+31611111101", "chores", "2034")
    own_request, _ = seed_listing(app, "+31611111101", "request", "chores", "2034")
    open_request, _ = seed_listing(app, REQUESTER, "request", "chores", "2034")
    closed_request, _ = seed_listing(app, "+31613333333", "request", "chores", "2034")
    db.get(Listing, closed_request).status = "matched"
    db.commit()
    found = suggestions_for(db, db.get(Listing, offer_id))
    assert [s.listing.id for s in found] == [open_request]
    assert own_request not in [s.listing.id for s in found]


def test_a_pair_already_proposed_is_not_suggested_again(app, db):
    request_id, _ = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    proposed = _offer(app, "+31611111101", "groceries", "2034")
    other = _offer(app, "+31611111102", "groceries", "2034")
    _match(db, request_id, proposed, "proposed")
    assert [s.listing.id for s in suggestions_for(db, db.get(Listing, request_id))] == [other]


def test_opted_out_helpers_and_helpers_busy_with_someone_else_are_left_out(app, db):
    """An offer stays open after a match, but helps one neighbour at a time; a STOP'd helper cannot be asked."""
    from models import Resident

    request_id, _ = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    opted_out = _offer(app, "+31611111101", "groceries", "2034")
    busy = _offer(app, "+31611111102", "groceries", "2034")
    helped_before = _offer(app, "+31611111103", "groceries", "2034")
    db.get(Resident, db.get(Listing, opted_out).resident_id).opted_out = True
    db.commit()
    other_request, _ = seed_listing(app, "+31612222201", "request", "groceries", "2034")
    _match(db, other_request, busy, "confirmed")
    earlier_request, _ = seed_listing(app, "+31612222202", "request", "groceries", "2034")
    _match(db, earlier_request, helped_before, "done", days_ago=10)

    found = suggestions_for(db, db.get(Listing, request_id))
    assert [s.listing.id for s in found] == [helped_before]


def test_each_suggestion_shows_the_helpers_language_channel_and_their_spoken_offer(app, db):
    """An Arabic-speaking or landline helper used to be proposed unseen; a recorded offer could not be played."""
    from models import Resident
    from tests.dashboard_support import logged_in, make_brokers, post

    request_id, callback_id = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    arabic = _offer(app, "+31611111101", "groceries", "2034")
    landline = _offer(app, "+31235550101", "groceries", "2034")
    db.get(Resident, db.get(Listing, arabic).resident_id).language = "ar"
    db.get(Resident, db.get(Listing, landline).resident_id).line_type = "fixed_line"
    spoken = db.get(Listing, landline)
    spoken.recording_sid, spoken.recording_duration = "RE" + "ab" * 16, 12
    db.commit()
    make_brokers(app)
    mila = logged_in(app, "mila@buuv.example")
    post(mila, f"/dashboard/items/{callback_id}/claim")
    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)

    def card(listing_id: int) -> str:
        return page.split(f'id="suggestion-{listing_id}"', 1)[1].split("</li>", 1)[0]

    assert "Arabisch" in card(arabic) and "sms" in card(arabic) and "<audio" not in card(arabic)
    assert "wordt gebeld, geen sms" in card(landline)
    assert f'<audio controls preload="none" src="/recordings/{landline}"' in card(landline)
    # Mila, matching, may hear the spoken offer she may propose; Bram, holding nothing, may not.
    assert mila.get(f"/recordings/{landline}").status_code != 403
    assert logged_in(app, "bram@buuv.example").get(f"/recordings/{landline}").status_code == 403
