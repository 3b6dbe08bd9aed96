"""API clients: `buurtlijn create-api-client NAME --scope read|write` prints a token once and keeps its hash;
a read token may not write; coordinators list and revoke clients; the audit log names the client."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import ApiClient, AuditEvent, Listing
from models.api_clients import create_api_client, token_hash
from tests.conftest import API_TOKEN
from tests.dashboard_support import logged_in, make_brokers, post
from tests.delivery_support import add_listing
from tests.test_cli import base_env, run

OFFER = {"kind": "offer", "category": "company", "description": "Samen wandelen", "postcode": "2021",
         "when": "any_time"}
RESIDENT = "+31612345678"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_client(app, name: str, scope: str) -> str:
    from gateway.database import get_database

    with get_database(app).transaction() as session:
        return create_api_client(session, name, scope)[1]


def test_the_command_prints_a_token_once_and_keeps_only_its_hash(app, db, database_url):
    result = run("create-api-client", "BUUV marktplaats", "--scope", "write", env=base_env(database_url))
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert re.fullmatch(r"bl_[A-Za-z0-9_-]{40,}", token)
    [client] = db.scalars(select(ApiClient)).all()
    assert (client.name, client.scope, client.token_hash) == ("BUUV marktplaats", "write", token_hash(token))
    assert token not in str([getattr(client, c.key) for c in ApiClient.__table__.columns])
    response = app.test_client().post("/api/v1/listings", json=OFFER, headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    again = run("create-api-client", "BUUV marktplaats", "--scope", "read", env=base_env(database_url))
    assert again.returncode != 0 and "exists already" in again.stderr and "Traceback" not in again.stderr
    wrong = run("create-api-client", "x", "--scope", "admin", env=base_env(database_url))
    assert wrong.returncode != 0


def test_a_read_token_reads_but_may_not_write(app, db):
    listing_id = add_listing(app, RESIDENT, "request")
    token = make_client(app, "dashboard-statistiek", "read")
    client = app.test_client()
    assert client.get("/api/v1/listings", headers=bearer(token)).status_code == 200
    for method, path, body in (("POST", "/api/v1/listings", OFFER),
                               ("PATCH", f"/api/v1/listings/{listing_id}", {"status": "done"}),
                               ("POST", "/api/v1/matches", {"request_id": listing_id, "offer_id": listing_id})):
        response = client.open(path, method=method, json=body, headers=bearer(token))
        assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    db.expire_all()
    assert [x.status for x in db.scalars(select(Listing))] == ["open"]
    # The configured token may do everything.
    assert client.post("/api/v1/listings", json=OFFER, headers=bearer(API_TOKEN)).status_code == 201


def test_reads_and_writes_are_audited_with_the_clients_name(app, db):
    add_listing(app, RESIDENT, "request")
    token = make_client(app, "BUUV marktplaats", "write")
    client = app.test_client()
    client.get("/api/v1/listings", headers=bearer(token))
    client.get(f"/api/v1/residents/{RESIDENT}", headers=bearer(token))
    created = client.post("/api/v1/listings", json=OFFER, headers=bearer(token)).get_json()
    client.patch(f"/api/v1/listings/{created['id']}", json={"status": "cancelled"}, headers=bearer(token))
    events = db.scalars(select(AuditEvent).where(AuditEvent.actor_type == "api").order_by(AuditEvent.id)).all()
    assert [(e.action, e.detail["client"]) for e in events] == [
        ("api.list_listings", "BUUV marktplaats"), ("api.view_resident", "BUUV marktplaats"),
        ("listing.create", "BUUV marktplaats"), ("listing.close", "BUUV marktplaats"),
    ]


def test_idempotency_keys_belong_to_their_client(app, db):
    first, second = make_client(app, "een", "write"), make_client(app, "twee", "write")
    client = app.test_client()
    a = client.post("/api/v1/listings", json=OFFER, headers={**bearer(first), "Idempotency-Key": "k"})
    b = client.post("/api/v1/listings", json=OFFER, headers={**bearer(second), "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201 and a.get_json()["id"] != b.get_json()["id"]


def test_coordinators_list_and_revoke_clients(app, db):
    make_brokers(app)
    token = make_client(app, "BUUV marktplaats", "write")
    make_client(app, "oud", "read")
    assert app.test_client().get("/api/v1/listings", headers=bearer(token)).status_code == 200
    mila = logged_in(app, "mila@buuv.example")
    assert mila.get("/dashboard/api-clients").status_code == 403
    cor = logged_in(app, "cor@buuv.example")
    page = cor.get("/dashboard/api-clients").get_data(as_text=True)
    assert "BUUV marktplaats" in page and "oud" in page and token not in page
    client_id = db.scalars(select(ApiClient.id).where(ApiClient.name == "BUUV marktplaats")).one()
    refused = post(mila, f"/dashboard/api-clients/{client_id}/revoke")
    assert refused.status_code == 403
    done = post(cor, f"/dashboard/api-clients/{client_id}/revoke", page="/dashboard/api-clients")
    assert done.status_code == 302
    response = app.test_client().get("/api/v1/listings", headers=bearer(token))
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_client.revoke")).all()
    assert event.object_id == str(client_id)


@pytest.mark.parametrize("token", ["bl_", "bl_nothing", "Bearer", "x" * 5000])
def test_unknown_tokens_are_401(app, token):
    response = app.test_client().get("/api/v1/listings", headers=bearer(token))
    assert response.status_code == 401
