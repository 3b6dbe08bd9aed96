"""GET /api/v1/openapi.json describes the whole API, and the API honours it: schemathesis calls every
operation with data the document allows and data it forbids, and fails on any 5xx, any status, header or
body the document does not describe, and any forbidden data that is accepted."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import api
from gateway.database import get_database
from models.shapes import EVENT_DATA, SCHEMAS, event_json, listing_json, match_json
from tests.conftest import API_TOKEN, app_config, running_app
from tests.delivery_support import HELPER, REQUESTER, add_listing

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection)


@pytest.fixture
def api_app(pg_database_url: str, fake_twilio: Any) -> Iterator[Any]:
    """The app on PostgreSQL (production's database, the stricter one), with a request and an offer."""
    with running_app(app_config(pg_database_url, fake_twilio)) as app:
        add_listing(app, REQUESTER, "request")
        add_listing(app, HELPER, "offer")
        yield app


@pytest.fixture
def api_schema(api_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)  # positive and negative cases


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.postgres
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_honours_its_openapi_document(case: Any) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(r"[\x20-\x7e]{1,255}", key):
        # A fresh valid key per case, so that a key repeated by the generator with another body (422)
        # does not hide what the operation itself answers; malformed keys are kept, to be refused.
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(headers=AUTH, checks=list(CHECKS))


def test_the_document_is_public_and_covers_every_route(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    described = {(f"/api/v1{path}".replace("{", "<").replace("}", ">"), method.upper())
                 for path, item in document["paths"].items() for method in item if method != "parameters"}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.replace("<int:", "<").replace("<path:", "<")
            routed |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == routed
    assert document["components"]["securitySchemes"]["bearer"] == {**document["components"]["securitySchemes"]
                                                                    ["bearer"], "type": "http", "scheme": "bearer"}
    assert set(document["webhooks"]) == set(EVENT_DATA) == {
        "listing.created", "listing.updated", "match.created", "match.updated", "resident.erased"}
    assert (api.DEFAULT_LIMIT, api.MAX_LIMIT) == (100, 500)


def test_the_shapes_match_their_schemas(app, db):
    """The builders and the schemas are defined side by side; each built shape validates against its schema."""
    import jsonschema

    from models import Listing, Match

    request_id, offer_id = add_listing(app, REQUESTER, "request"), add_listing(app, HELPER, "offer")
    with get_database(app).transaction() as session:
        session.add(Match(request_id=request_id, offer_id=offer_id))
    listing, match = db.get(Listing, request_id), db.get(Match, 1)
    document = app.test_client().get("/api/v1/openapi.json").get_json()

    def check(instance: Any, name: str) -> None:
        jsonschema.validate(instance, {**SCHEMAS[name], "$defs": {}},
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

    check(listing_json(listing, REQUESTER), "Listing")
    check(match_json(match), "Match")
    body = event_json("listing.updated", listing_json(listing, REQUESTER), listing.updated_at)
    webhook = document["webhooks"]["listing.updated"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    resolved = {**webhook, "properties": {**webhook["properties"], "data": SCHEMAS["Listing"]}}
    jsonschema.validate(body, resolved)
    with pytest.raises(ValueError):
        event_json("listing.deleted", {}, listing.updated_at)
