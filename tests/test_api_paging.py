"""Paging on the list endpoints: limit, an opaque keyset cursor, updated_since; bad values answer 400 JSON."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import update

from gateway.database import get_database
from models import Listing, Match
from models.queue import queue_callback
from tests.conftest import API_TOKEN, api_get
from tests.delivery_support import add_listing

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def phone(n: int) -> str:
    return f"+316{12000000 + n:08d}"


def walk(client: Any, path: str, key: str, limit: int, between: Any = None) -> list[dict[str, Any]]:
    """Every page of ``path``, following next_cursor; ``between`` runs after each page."""
    seen: list[dict[str, Any]] = []
    url = f"{path}{'&' if '?' in path else '?'}limit={limit}"
    while True:
        page = api_get(client, url)
        assert len(page[key]) <= limit
        seen.extend(page[key])
        if between:
            between()
        if page["next_cursor"] is None:
            return seen
        assert isinstance(page["next_cursor"], str)
        url = f"{path}{'&' if '?' in path else '?'}limit={limit}&cursor={page['next_cursor']}"


def test_listings_page_by_page_newest_first(app):
    ids = [add_listing(app, phone(n), "request") for n in range(7)]
    client = app.test_client()
    whole = api_get(client, "/api/v1/listings")
    assert [x["id"] for x in whole["listings"]] == ids[::-1] and whole["next_cursor"] is None
    assert [x["id"] for x in walk(client, "/api/v1/listings", "listings", 3)] == ids[::-1]
    assert [x["id"] for x in walk(client, "/api/v1/listings?kind=request", "listings", 7)] == ids[::-1]


def test_the_default_page_is_100_and_500_the_most(app):
    with get_database(app).transaction() as session:
        listing_id = add_listing(app, phone(0), "offer")
        first = session.get(Listing, listing_id)
        values = {c: getattr(first, c) for c in ("resident_id", "kind", "category", "channel", "status",
                                                 "created_at", "updated_at")}
        session.add_all(Listing(**values) for _ in range(519))
    client = app.test_client()
    page = api_get(client, "/api/v1/listings")
    assert len(page["listings"]) == 100 and page["next_cursor"]
    page = api_get(client, "/api/v1/listings?limit=500")
    assert len(page["listings"]) == 500 and page["next_cursor"]
    rest = api_get(client, f"/api/v1/listings?limit=500&cursor={page['next_cursor']}")
    assert len(rest["listings"]) == 20 and rest["next_cursor"] is None


def test_updated_since_filters_listings_and_matches(app):
    old, new = add_listing(app, phone(1), "request"), add_listing(app, phone(2), "offer")
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with get_database(app).transaction() as session:
        session.execute(update(Listing).where(Listing.id == old).values(updated_at=long_ago))
        session.add(Match(request_id=old, offer_id=new, status="proposed", created_at=long_ago, updated_at=long_ago))
        session.add(Match(request_id=old, offer_id=new, status="declined"))
    client = app.test_client()
    listings = api_get(client, "/api/v1/listings?updated_since=2026-06-01T00:00:00Z")["listings"]
    assert [x["id"] for x in listings] == [new]
    assert len(api_get(client, "/api/v1/listings?updated_since=2025-12-31T23:00:00%2B00:00")["listings"]) == 2
    matches = api_get(client, "/api/v1/matches?updated_since=2026-06-01")["matches"]
    assert [m["status"] for m in matches] == ["declined"]
    assert len(api_get(client, "/api/v1/matches?limit=1")["matches"]) == 1


def test_callbacks_page_in_the_queues_order(app):
    with get_database(app).transaction() as session:
        reasons = ("callback_requested", "new_listing", "unrecognised_message", "abandoned_call", "new_listing",
                   "callback_requested", "new_listing", "menu_trouble")
        for n, reason in enumerate(reasons):
            queue_callback(session, reason, dedupe_key=f"paging-{n}")
    client = app.test_client()
    whole = api_get(client, "/api/v1/callbacks")["callbacks"]
    assert len(whole) == 8
    assert walk(client, "/api/v1/callbacks", "callbacks", 2) == whole
    assert walk(client, "/api/v1/callbacks?status=open", "callbacks", 1) == whole


@pytest.mark.postgres
def test_paging_is_stable_while_listings_are_inserted(pg_app):
    """Rows inserted while a client pages are neither repeated nor do they push others out of view."""
    before = [add_listing(pg_app, phone(n), "request") for n in range(12)]
    stop = threading.Event()
    inserted: list[int] = []

    def insert_while_paging() -> None:
        n = 100
        while not stop.is_set():
            inserted.append(add_listing(pg_app, phone(n), "offer"))
            n += 1

    inserter = threading.Thread(target=insert_while_paging)
    inserter.start()
    try:
        client = pg_app.test_client()
        pages_seen = walk(client, "/api/v1/listings", "listings", 2, between=lambda: stop.wait(0.02))
    finally:
        stop.set()
        inserter.join()
    ids = [x["id"] for x in pages_seen]
    assert len(ids) == len(set(ids)), "a listing came twice"
    assert set(before) <= set(ids), "a listing was skipped"
    assert inserted, "nothing was inserted while paging"


@pytest.mark.parametrize("query", [
    "limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=%EF%BC%91",
    "cursor=nonsense", "cursor=", "cursor=eyJsIjoibWF0Y2hlcyIsImsiOlsxXX0",  # a cursor of /matches
    "cursor=eyJsIjoibGlzdGluZ3MiLCJrIjpbIjEiXX0",  # a string where the id goes
    "updated_since=yesterday", "updated_since=2026-13-01", "updated_since=", "updated_since=%00",
])
def test_bad_paging_values_answer_400_json(app, query):
    client = app.test_client()
    response = client.get(f"/api/v1/listings?{query}", headers=AUTH)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "bad_request"


@pytest.mark.parametrize("path", ["/api/v1/callbacks?cursor=eyJsIjoiY2FsbGJhY2tzIiwiayI6WzEsIngiLDFdfQ",
                                  "/api/v1/matches?updated_since=soon", "/api/v1/matches?limit=9999"])
def test_bad_paging_values_on_other_lists(app, path):
    response = app.test_client().get(path, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
