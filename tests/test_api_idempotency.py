"""Idempotency-Key on every POST and PATCH: the first answer again for the same key and body within 24 hours,
422 for another body; kept in the database, so that several processes (and a burst at once) agree."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.database import get_database
from models import IdempotentAnswer, Listing, Match
from tests.conftest import API_TOKEN
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OFFER = {"kind": "offer", "category": "chores", "description": "Ik hang lampen op", "postcode": "2011",
         "when": "weekends"}


def send(client: Any, method: str, path: str, payload: Any, key: str | None) -> Any:
    headers = {**AUTH, **({"Idempotency-Key": key} if key is not None else {})}
    return client.open(path, method=method, json=payload, headers=headers)


def test_a_repeated_post_gives_the_first_answer_and_changes_nothing(app, db):
    client = app.test_client()
    first = send(client, "POST", "/api/v1/listings", OFFER, "offer-1")
    again = send(client, "POST", "/api/v1/listings", OFFER, "offer-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(db.scalars(select(Listing)).all()) == 1
    # Another key is another listing; no key at all too.
    assert send(client, "POST", "/api/v1/listings", OFFER, "offer-2").get_json()["id"] != first.get_json()["id"]
    send(client, "POST", "/api/v1/listings", OFFER, None)
    assert len(db.scalars(select(Listing)).all()) == 3


def test_the_same_key_with_another_body_is_422(app, db):
    client = app.test_client()
    send(client, "POST", "/api/v1/listings", OFFER, "k")
    other = send(client, "POST", "/api/v1/listings", {**OFFER, "description": "Ik verf muren"}, "k")
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"
    listing_id = db.scalars(select(Listing.id)).one()
    elsewhere = send(client, "PATCH", f"/api/v1/listings/{listing_id}", {"status": "done"}, "k")
    assert elsewhere.status_code == 422  # the same key on another path is another request
    assert len(db.scalars(select(Listing)).all()) == 1


def test_a_repeated_patch_answers_200_again_not_409(app, db):
    client = app.test_client()
    listing_id = send(client, "POST", "/api/v1/listings", OFFER, None).get_json()["id"]
    first = send(client, "PATCH", f"/api/v1/listings/{listing_id}", {"status": "cancelled"}, "close-1")
    again = send(client, "PATCH", f"/api/v1/listings/{listing_id}", {"status": "cancelled"}, "close-1")
    assert first.status_code == again.status_code == 200 and again.get_json() == first.get_json()
    assert send(client, "PATCH", f"/api/v1/listings/{listing_id}", {"status": "cancelled"}, None).status_code == 409


def test_a_repeated_match_proposal_asks_the_helper_once(notify_app, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    client = notify_app.test_client()
    payload = {"request_id": request_id, "offer_id": offer_id, "note": "via de website"}
    first = send(client, "POST", "/api/v1/matches", payload, "match-1")
    again = send(client, "POST", "/api/v1/matches", payload, "match-1")
    assert first.status_code == again.status_code == 201 and again.get_json() == first.get_json()
    assert len(session.scalars(select(Match)).all()) == 1
    assert len(bodies(fake_twilio, HELPER)) == 1


def test_a_key_is_kept_24_hours(app, db):
    client = app.test_client()
    first = send(client, "POST", "/api/v1/listings", OFFER, "daily").get_json()
    with get_database(app).transaction() as session:
        session.execute(update(IdempotentAnswer).values(
            created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=23)))
    assert send(client, "POST", "/api/v1/listings", OFFER, "daily").get_json() == first
    with get_database(app).transaction() as session:
        session.execute(update(IdempotentAnswer).values(
            created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=25)))
    later = send(client, "POST", "/api/v1/listings", OFFER, "daily")
    assert later.status_code == 201 and later.get_json()["id"] != first["id"]


def test_the_sweep_forgets_answers_after_24_hours(app, db):
    from workers.jobs import SWEEPS, sweep_idempotency_keys

    client = app.test_client()
    send(client, "POST", "/api/v1/listings", OFFER, "old")
    send(client, "POST", "/api/v1/listings", OFFER, "new")
    with get_database(app).transaction() as session:
        session.execute(update(IdempotentAnswer).where(IdempotentAnswer.key == "old").values(
            created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=25)))
    assert sweep_idempotency_keys in SWEEPS
    sweep_idempotency_keys(app, dt.datetime.now(dt.timezone.utc))
    assert [row.key for row in db.scalars(select(IdempotentAnswer))] == ["new"]


def test_a_refused_request_leaves_the_key_free(app, db):
    client = app.test_client()
    bad = send(client, "POST", "/api/v1/listings", {**OFFER, "category": "gardening"}, "fix-and-retry")
    assert bad.status_code == 400
    good = send(client, "POST", "/api/v1/listings", OFFER, "fix-and-retry")
    assert good.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(app, db, key):
    response = app.test_client().post("/api/v1/listings", json=OFFER,
                                      headers={**AUTH, "Idempotency-Key": key.encode().decode("latin-1")})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert db.scalars(select(Listing)).all() == []


@pytest.mark.postgres
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_burst_of_identical_requests_changes_once(pg_app, method):
    """Eight identical requests at the same moment, over several connections: one change, one answer."""
    client = pg_app.test_client()
    listing_id = send(client, "POST", "/api/v1/listings", OFFER, None).get_json()["id"]
    path, payload = (("/api/v1/listings", OFFER) if method == "POST"
                     else (f"/api/v1/listings/{listing_id}", {"status": "done"}))
    start = threading.Barrier(8)
    answers: list[Any] = []

    def one() -> None:
        own = pg_app.test_client()
        start.wait()
        response = send(own, method, path, payload, "burst")
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = 201 if method == "POST" else 200
    assert [status for status, _ in answers] == [expected] * 8, answers
    assert len({str(body) for _, body in answers}) == 1
    with get_database(pg_app).transaction() as session:
        assert len(session.scalars(select(Listing)).all()) == (2 if method == "POST" else 1)
        assert len(session.scalars(select(IdempotentAnswer)).all()) == 1
