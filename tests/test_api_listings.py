"""POST /api/v1/listings and PATCH /api/v1/listings/<id>: an online member's offer or request joins the queue
and the brokers' suggestions; bad input answers 4xx with a JSON error, never 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from models import AuditEvent, Call, Callback, Listing, Match, Message, Resident
from models.suggestions import suggestions_for
from tests.conftest import API_TOKEN, api_get
from tests.delivery_support import add_listing

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OFFER = {"kind": "offer", "category": "groceries", "description": "Ik doe graag boodschappen", "postcode": "2034",
         "when": "evenings"}
SMS_RESIDENT = "+31612345678"
ONLINE_MEMBER = "+31687654321"


def post(client: Any, payload: Any, **headers: str) -> Any:
    return client.post("/api/v1/listings", json=payload, headers={**AUTH, **headers})


def patch(client: Any, listing_id: int, payload: Any) -> Any:
    return client.patch(f"/api/v1/listings/{listing_id}", json=payload, headers=AUTH)


def test_an_offer_with_a_phone_is_stored_as_from_an_sms(app, db):
    client = app.test_client()
    response = post(client, {**OFFER, "phone": "06 8765 4321", "external_ref": "buuv-offer-77"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body | {"id": 0, "created_at": ""} == {
        "id": 0, "kind": "offer", "category": "groceries", "description": "Ik doe graag boodschappen",
        "postcode": "2034", "district": "schalkwijk", "when": "evenings", "channel": "api", "status": "open",
        "phone": ONLINE_MEMBER, "has_recording": False, "created_at": "",
    }
    assert response.headers["Location"].endswith(f"/api/v1/listings/{body['id']}")
    assert api_get(client, f"/api/v1/listings/{body['id']}") == body
    resident = db.scalars(select(Resident).where(Resident.phone == ONLINE_MEMBER)).one()
    assert (resident.postcode, resident.number_status) == ("2034", "ok")
    assert db.get(Listing, body["id"]).external_ref == "buuv-offer-77"
    [callback] = db.scalars(select(Callback)).all()
    assert (callback.reason, callback.listing_id) == ("new_listing", body["id"])
    # The same member again: the same resident.
    second = post(client, {**OFFER, "kind": "request", "when": "asap", "phone": ONLINE_MEMBER}).get_json()
    assert api_get(client, f"/api/v1/residents/{ONLINE_MEMBER}")["listings"] == [body["id"], second["id"]]
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "listing.create",
                                                  AuditEvent.object_id == str(body["id"]))).all()
    assert (event.actor_type, event.detail["client"]) == ("api", "BUURTLIJN_API_TOKEN")


@pytest.mark.parametrize("with_phone", [True, False], ids=["with-phone", "without-phone"])
def test_an_online_offer_is_suggested_for_a_phone_residents_request(app, db, twilio, with_phone):
    twilio.sms(SMS_RESIDENT, "VRAAG wie doet boodschappen voor mij? 2034")
    request = db.scalars(select(Listing).where(Listing.kind == "request")).one()
    payload = {**OFFER, "phone": ONLINE_MEMBER} if with_phone else OFFER
    offer = post(app.test_client(), payload).get_json()
    assert offer["phone"] == (ONLINE_MEMBER if with_phone else None)
    assert [s.listing.id for s in suggestions_for(db, request)] == [offer["id"]]


def test_listings_without_a_phone_show_none_anywhere(app, db):
    client = app.test_client()
    first = post(client, OFFER).get_json()
    second = post(client, OFFER).get_json()
    assert [x["phone"] for x in api_get(client, "/api/v1/listings")["listings"]] == [None, None]
    residents = {db.get(Listing, x["id"]).resident_id for x in (first, second)}
    assert len(residents) == 2  # two members, never one resident mixing their listings
    assert db.scalars(select(Callback)).all() == []  # nobody to call back


def test_patch_closes_a_listing_once(app, db):
    client = app.test_client()
    listing_id = post(client, OFFER).get_json()["id"]
    response = patch(client, listing_id, {"status": "done"})
    assert response.status_code == 200 and response.get_json()["status"] == "done"
    again = patch(client, listing_id, {"status": "done"})
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"
    assert patch(client, listing_id, {"status": "cancelled"}).status_code == 409
    db.expire_all()
    listing = db.get(Listing, listing_id)
    assert listing.status == "done" and listing.closed_at is not None
    cancelled = post(client, OFFER).get_json()["id"]
    assert patch(client, cancelled, {"status": "cancelled"}).get_json()["status"] == "cancelled"
    assert patch(client, 999, {"status": "cancelled"}).status_code == 404


def test_patch_refuses_a_listing_whose_match_is_under_way(app, db):
    client = app.test_client()
    request_id = add_listing(app, SMS_RESIDENT, "request")
    offer_id = post(client, {**OFFER, "phone": ONLINE_MEMBER}).get_json()["id"]
    db.add(Match(request_id=request_id, offer_id=offer_id, status="accepted"))
    db.commit()
    response = patch(client, offer_id, {"status": "cancelled"})
    assert response.status_code == 409 and "under way" in response.get_json()["message"]


BAD_POSTS = {
    "kind-number": {**OFFER, "kind": 1},
    "kind-unknown": {**OFFER, "kind": "gift"},
    "category-unknown": {**OFFER, "category": "gardening"},
    "category-list": {**OFFER, "category": ["groceries"]},
    "description-number": {**OFFER, "description": 12},
    "description-long": {**OFFER, "description": "x" * 2001},
    "description-nul": {**OFFER, "description": "a\u0000b"},
    "postcode-letters": {**OFFER, "postcode": "20AB"},
    "postcode-number": {**OFFER, "postcode": 2034},
    "postcode-long": {**OFFER, "postcode": "20345"},
    "when-of-a-request": {**OFFER, "when": "asap"},
    "when-unknown": {**OFFER, "when": "never"},
    "phone-junk": {**OFFER, "phone": "12"},
    "phone-number": {**OFFER, "phone": 612345678},
    "phone-withheld": {**OFFER, "phone": "anonymous"},
    "external-ref-object": {**OFFER, "external_ref": {"id": 1}},
    "unknown-field": {**OFFER, "colour": "blue"},
    "missing-field": {k: v for k, v in OFFER.items() if k != "postcode"},
    "array": [OFFER],
    "string": "offer",
}


@pytest.mark.parametrize("payload", list(BAD_POSTS.values()), ids=list(BAD_POSTS))
def test_bad_listings_get_400_json_and_store_nothing(app, db, payload):
    response = post(app.test_client(), payload)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "bad_request" and response.get_json()["message"]
    assert db.scalars(select(Listing)).all() == []


@pytest.mark.parametrize(("body", "content_type", "status"), [
    ("{not json", "application/json", 400),
    ('{"kind": "offer"', "application/json", 400),
    ("[" * 100000 + "]" * 100000, "application/json", 413),
    (json.dumps({**OFFER, "description": "x" * (1024 * 1024)}), "application/json", 413),
    (json.dumps(OFFER), "text/plain", 415),
    ("\xff\xfe", "application/json", 400),
    ("null", "application/json", 400),
    ("", "application/json", 400),
], ids=["invalid", "truncated", "deep", "one-megabyte", "not-json-type", "not-utf8", "null", "empty"])
def test_bodies_that_are_no_json_object_get_4xx_json(app, db, body, content_type, status):
    client = app.test_client()
    response = client.post("/api/v1/listings", data=body.encode("latin-1") if body.startswith("\xff") else body,
                           content_type=content_type, headers=AUTH)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.get_json()["error"]
    assert db.scalars(select(Listing)).all() == []


@pytest.mark.parametrize("payload", [{"status": "open"}, {"status": "expired"}, {"status": None}, {"status": 1},
                                     {}, {"status": "done", "note": "x"}, ["done"]])
def test_bad_patches_get_400_json(app, db, payload):
    client = app.test_client()
    listing_id = post(client, OFFER).get_json()["id"]
    response = patch(client, listing_id, payload)
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    db.expire_all()
    assert db.get(Listing, listing_id).status == "open"


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/nothing"), ("DELETE", "/api/v1/listings/1"),
                                              ("GET", f"/api/v1/listings/{2**63}")])
def test_unknown_paths_and_methods_answer_json(app, method, path):
    response = app.test_client().open(path, method=method, headers=AUTH)
    assert response.status_code in (404, 405) and response.is_json and response.get_json()["error"]


@pytest.mark.parametrize("online_kind", ["offer", "request"])
def test_a_match_with_a_member_without_a_phone_texts_only_the_phone_side(notify_app, fake_twilio, session,
                                                                        online_kind):
    """The member without a number is never texted or called (the marketplace hears through events);
    the phone resident is asked as always."""
    phone_kind = "request" if online_kind == "offer" else "offer"
    phone_listing = add_listing(notify_app, SMS_RESIDENT, phone_kind)
    client = notify_app.test_client()
    payload = {**OFFER, "kind": online_kind, "when": None}
    online_listing = post(client, payload).get_json()["id"]
    ids = {f"{phone_kind}_id": phone_listing, f"{online_kind}_id": online_listing}
    response = client.post("/api/v1/matches", json=ids, headers=AUTH)
    assert response.status_code == 201, response.get_data(as_text=True)
    sent_to = {message["To"] for message in fake_twilio.messages()}
    assert not any(number.startswith("online:") for number in sent_to)
    online_resident = session.get(Listing, online_listing).resident_id
    assert session.scalars(select(Message).where(Message.resident_id == online_resident)).all() == []
    assert session.scalars(select(Call).where(Call.resident_id == online_resident)).all() == []
    if phone_kind == "offer":  # the helper is asked first
        assert sent_to == {SMS_RESIDENT}
