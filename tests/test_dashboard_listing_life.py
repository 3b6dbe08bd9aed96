"""A listing's life from its item's page: a broker closes it (after "are you sure?"), opens it again, corrects it.

Forms as the browser posts them (with CSRF), on SQLite and PostgreSQL; what changed is audited and,
with the marketplace's webhook on, told as an event.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from gateway.database import get_database
from models import AuditEvent, Event, Listing
from models.marketplace import ListingChangeRefused, edit_listing, reopen_listing
from tests.conftest import app_config, running_app
from tests.dashboard_support import logged_in, make_brokers, post, seed_listing, token_in

REQUESTER = "+31612345678"
HELPER = "+31612345679"


@pytest.fixture
def broker(app):  # type: ignore[no-untyped-def]
    """Mila, a broker, logged in to the dashboard of ``app``."""
    make_brokers(app)
    return logged_in(app, "mila@buuv.example")


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _listing(app, listing_id: int) -> Listing:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        listing = session.get(Listing, listing_id)
        session.expunge(listing)
        return listing


def _audits(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def test_closing_asks_first_then_closes_and_the_page_offers_to_open_it_again(app, broker):
    listing_id, item = seed_listing(app, REQUESTER, "request", "groceries", "2034", "Wie doet mijn boodschappen?")
    page = f"/dashboard/items/{item}"
    post(broker, f"{page}/claim")
    html = _text(broker.get(page))
    assert "Sluiten: geholpen" in html and "Sluiten: ingetrokken" in html and 'id="listing-reopen"' not in html

    asked = post(broker, f"{page}/listing/close", {"status": "cancelled"}, page=page)
    question = _text(asked)
    assert asked.status_code == 200
    assert "Weet u zeker dat u dit wilt sluiten als ingetrokken?" in question and "Wie doet mijn boodschappen?" in question
    assert _listing(app, listing_id).status == "open" and _audits(app, "listing.close") == []

    closed = broker.post(f"{page}/listing/close", data={"status": "cancelled", "confirmed": "1",
                                                      "csrf_token": token_in(question)}, follow_redirects=True)
    assert "Gesloten (gestopt): Vraag, boodschappen." in _text(closed)
    listing = _listing(app, listing_id)
    assert listing.status == "cancelled" and listing.closed_at is not None
    [audit] = _audits(app, "listing.close")
    assert (audit.actor_type, audit.object_id, audit.detail["status"]) == ("broker", str(listing_id), "cancelled")
    assert 'id="listing-reopen"' in _text(closed) and "Sluiten: geholpen" not in _text(closed)

    reopened = post(broker, f"{page}/listing/reopen", page=page, follow_redirects=True)
    assert "Weer open: Vraag, boodschappen." in _text(reopened)
    listing = _listing(app, listing_id)
    assert listing.status == "open" and listing.closed_at is None
    assert _audits(app, "listing.reopen")[0].detail == {"was": "cancelled", "callback_id": item}


def test_what_is_done_stays_done_and_a_closed_listing_is_not_closed_twice(app, broker):
    listing_id, item = seed_listing(app, REQUESTER)
    page = f"/dashboard/items/{item}"
    post(broker, f"{page}/listing/close", {"status": "done", "confirmed": "1"}, page=page)
    assert _listing(app, listing_id).status == "done"
    html = _text(broker.get(page))
    assert 'id="listing-reopen"' not in html and 'id="listing-close-done"' not in html

    refused = post(broker, f"{page}/listing/reopen", page=page, follow_redirects=True)
    assert "Alleen wat ingetrokken of verlopen is kan weer open." in _text(refused)
    again = post(broker, f"{page}/listing/close", {"status": "cancelled", "confirmed": "1"}, page=page,
                 follow_redirects=True)
    assert "de vraag of het aanbod is al gesloten" in _text(again)
    assert _listing(app, listing_id).status == "done"
    assert [a.detail["why"] for a in _audits(app, "listing.reopen")] == ["not_reopenable"]
    bad = post(broker, f"{page}/listing/close", {"status": "expired", "confirmed": "1"}, page=page,
               follow_redirects=True)
    assert "Kies geholpen of ingetrokken." in _text(bad)


def test_an_expired_listing_opens_again(app, broker):
    listing_id, item = seed_listing(app, REQUESTER)
    with get_database(app).transaction() as session:
        session.get(Listing, listing_id).status = "expired"
    post(broker, f"/dashboard/items/{item}/listing/reopen", page=f"/dashboard/items/{item}")
    assert _listing(app, listing_id).status == "open"


def test_a_broker_corrects_category_timing_postcode_and_description(app, broker):
    listing_id, item = seed_listing(app, REQUESTER, "request", "groceries", "2034", "boodschapen")
    page = f"/dashboard/items/{item}"
    post(broker, f"{page}/claim")
    html = _text(broker.get(page))
    assert 'id="edit-category"' in html and '<option value="evenings"' not in html.split('id="edit-timing"')[1][:600]

    response = post(broker, f"{page}/listing/edit", {"category": "transport", "timing": "this_week",
                                                    "postcode": "2011 AB", "description": " Rit naar het ziekenhuis "},
                    page=page, follow_redirects=True)
    assert "Aangepast: Vraag, vervoer en begeleiding." in _text(response)
    listing = _listing(app, listing_id)
    assert (listing.category, listing.timing, listing.postcode, listing.district, listing.description) == (
        "transport", "this_week", "2011", "centrum", "Rit naar het ziekenhuis")
    [audit] = _audits(app, "listing.edit")
    assert audit.detail["fields"] == ["category", "description", "timing", "postcode"]

    same = post(broker, f"{page}/listing/edit", {"category": "transport", "timing": "this_week", "postcode": "2011",
                                                "description": "Rit naar het ziekenhuis"}, page=page,
                follow_redirects=True)
    assert "Er was niets veranderd." in _text(same) and len(_audits(app, "listing.edit")) == 1

    for form, message in [
        ({"category": "transport", "postcode": "20"}, "Een postcode is 4 cijfers"),
        ({"category": "rijles", "postcode": "2011"}, "Kies een soort hulp uit de lijst."),
        ({"category": "transport", "timing": "evenings", "postcode": "2011"}, "Kies wanneer uit de lijst."),
    ]:
        refused = post(broker, f"{page}/listing/edit", form, page=page, follow_redirects=True)
        assert message in _text(refused), form
    assert _listing(app, listing_id).category == "transport"

    cleared = post(broker, f"{page}/listing/edit", {"category": "transport", "timing": "", "postcode": ""}, page=page)
    assert cleared.status_code == 302
    listing = _listing(app, listing_id)
    assert (listing.timing, listing.postcode, listing.district, listing.description) == (None, None, None, None)


def test_a_pasted_nul_in_a_description_is_dropped_not_a_server_error(app, broker):
    """PostgreSQL's text refuses NUL; a broker's correction (or new listing) keeps the rest of the words."""
    listing_id, item = seed_listing(app, REQUESTER)
    page = f"/dashboard/items/{item}"
    post(broker, f"{page}/claim")
    response = post(broker, f"{page}/listing/edit", {"category": "groceries", "postcode": "2034",
                                                    "description": "Boodschappen\x00 op dinsdag"}, page=page)
    assert response.status_code == 302
    assert _listing(app, listing_id).description == "Boodschappen op dinsdag"


def test_another_brokers_item_is_left_alone(app, broker):
    listing_id, item = seed_listing(app, REQUESTER)
    bram = logged_in(app, "bram@buuv.example")
    page = f"/dashboard/items/{item}"
    post(bram, f"{page}/claim")
    assert 'id="listing-life"' not in _text(broker.get(page))
    for action, form in (("close", {"status": "cancelled", "confirmed": "1"}), ("reopen", {}),
                         ("edit", {"category": "chores"})):
        response = post(broker, f"{page}/listing/{action}", form, page=page, follow_redirects=True)
        assert "Een andere makelaar heeft dit item." in _text(response), action
    listing = _listing(app, listing_id)
    assert (listing.status, listing.category) == ("open", "groceries")


def test_bad_requests_get_no_change(app, broker):
    listing_id, item = seed_listing(app, REQUESTER)
    assert broker.post(f"/dashboard/items/{item}/listing/reopen").status_code == 400  # no CSRF token
    missing = post(broker, "/dashboard/items/999999/listing/close", {"status": "done", "confirmed": "1"})
    assert missing.status_code == 404 and "Dit item bestaat niet (meer)." in _text(missing)
    assert _listing(app, listing_id).status == "open"


def test_the_services_refuse_what_makes_no_sense(app):
    listing_id, _item = seed_listing(app, REQUESTER, "offer", "chores", "2034")
    with get_database(app).transaction() as session:
        listing = session.get(Listing, listing_id)
        with pytest.raises(ListingChangeRefused) as refused:
            reopen_listing(listing)
        assert refused.value.why == "not_reopenable"
        with pytest.raises(ListingChangeRefused) as refused:
            edit_listing(listing, category="chores", description=None, timing="this_week", postcode=None)
        assert refused.value.why == "timing"  # a request's timing on an offer
        assert edit_listing(listing, category="chores", description="offer chores", timing="evenings",
                            postcode="2034") == ["timing"]


SECRET = "whsec_" + base64.b64encode(b"buurtlijn-test-webhook-secret-32").decode()


def test_each_change_is_told_to_the_marketplace(database_url, fake_twilio):
    config = app_config(database_url, fake_twilio, BUURTLIJN_WEBHOOK_URL=f"{fake_twilio.base_url}/events",
                        BUURTLIJN_WEBHOOK_SECRET=SECRET, BUURTLIJN_WEBHOOK_BACKOFF_SECONDS="3600")
    with running_app(config) as app:
        make_brokers(app)
        mila = logged_in(app, "mila@buuv.example")
        listing_id, item = seed_listing(app, REQUESTER)
        page = f"/dashboard/items/{item}"
        post(mila, f"{page}/listing/edit", {"category": "chores", "postcode": "2034"}, page=page)
        post(mila, f"{page}/listing/close", {"status": "cancelled", "confirmed": "1"}, page=page)
        post(mila, f"{page}/listing/reopen", page=page)
        with get_database(app).transaction() as session:
            events = session.scalars(select(Event).where(Event.order_key == f"listing:{listing_id}")
                                     .order_by(Event.id)).all()
            told = [(e.type, e.data["category"], e.data["status"]) for e in events]
    assert told == [("listing.created", "groceries", "open"), ("listing.updated", "chores", "open"),
                    ("listing.updated", "chores", "cancelled"), ("listing.updated", "chores", "open")]


def test_a_listing_with_a_match_under_way_is_closed_by_the_match_not_by_hand(app, broker):
    from models.matching import propose_match

    request_id, item = seed_listing(app, REQUESTER, "request", "chores", "2034")
    offer_id, _ = seed_listing(app, HELPER, "offer", "chores", "2034")
    with get_database(app).transaction() as session:
        propose_match(session, request_id, offer_id, config=app.config)
    page = f"/dashboard/items/{item}"
    post(broker, f"{page}/claim")
    assert 'id="listing-close-done"' not in _text(broker.get(page))
    refused = post(broker, f"{page}/listing/close", {"status": "done", "confirmed": "1"}, page=page,
                   follow_redirects=True)
    assert "er loopt een match" in _text(refused)
    assert _listing(app, request_id).status == "open"
