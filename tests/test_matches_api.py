"""POST /api/v1/matches, and every SMS text of a match in one GSM-7 segment."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import texts
from models import AuditEvent, Match
from models.vocabulary import CATEGORIES
from tests.conftest import api_get
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match
from texts import is_gsm7, segment_count


def test_post_match_proposes_and_answers_201(notify_app, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    client = notify_app.test_client()

    response = post_match(client, request_id, offer_id, note="via de website")
    assert response.status_code == 201
    body = response.get_json()
    assert body | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0, "request_id": request_id, "offer_id": offer_id, "status": "proposed",
        "created_at": "", "updated_at": "",
    }
    assert response.headers["Location"].endswith(f"/api/v1/matches/{body['id']}")
    assert api_get(client, f"/api/v1/matches/{body['id']}")["status"] == "proposed"
    assert [m["id"] for m in api_get(client, "/api/v1/matches")["matches"]] == [body["id"]]
    assert len(bodies(fake_twilio, HELPER)) == 1
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "match.propose")).all()
    assert (event.actor_type, event.object_id, event.result) == ("api", str(body["id"]), "ok")
    assert session.get(Match, body["id"]).note == "via de website"


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        ("not json", 400, "bad_request"),
        ({"request_id": "1", "offer_id": 2}, 400, "bad_request"),
        ({"request_id": True, "offer_id": 2}, 400, "bad_request"),
        ({"request_id": 1, "offer_id": -2}, 400, "bad_request"),
        ({"request_id": 1, "offer_id": 2, "note": ["x"]}, 400, "bad_request"),
        ({"request_id": 1, "offer_id": 2, "note": "x" * 2001}, 400, "bad_request"),
        ({"request_id": 999, "offer_id": 2}, 404, "not_found"),
        ({"request_id": 2, "offer_id": 1}, 400, "bad_request"),  # swapped: an offer is no request
        ({"request_id": 1, "offer_id": 3}, 400, "bad_request"),  # the same resident
    ],
    ids=["not-json", "string-id", "bool-id", "negative-id", "note-list", "note-long", "unknown", "swapped", "self"],
)
def test_bad_input_gets_a_clear_json_answer(notify_app, fake_twilio, session, payload, status, error):
    add_listing(notify_app, REQUESTER, "request")  # 1
    add_listing(notify_app, HELPER, "offer")  # 2
    add_listing(notify_app, REQUESTER, "offer")  # 3
    client = notify_app.test_client()
    headers = {"Authorization": "Bearer test-api-token"}
    if isinstance(payload, str):
        response = client.post("/api/v1/matches", data=payload, headers=headers, content_type="text/plain")
    else:
        response = client.post("/api/v1/matches", json=payload, headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"] == error and response.get_json()["message"]
    assert session.scalars(select(Match)).all() == [] and fake_twilio.messages() == []


def test_conflicts_answer_409(notify_app, fake_twilio, session):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, HELPER, "offer")
    other_offer = add_listing(notify_app, "+31612345007", "offer")
    client = notify_app.test_client()
    assert post_match(client, request_id, offer_id).status_code == 201
    busy = post_match(client, request_id, other_offer)
    assert busy.status_code == 409 and "already has match" in busy.get_json()["message"]
    refused = session.scalars(select(AuditEvent).where(AuditEvent.result == "refused")).all()
    assert [(e.action, e.actor_type) for e in refused] == [("match.propose", "api")]
    assert client.post("/api/v1/matches", json={"request_id": request_id, "offer_id": offer_id}).status_code == 401


UCS2_LANGUAGES = {"ar"}
SPOKEN_OR_DATA = ("match.spoken.", "match.call.", "match.when.")
NOT_SMS = {"match.weekdays", "match.months", "match.moment", "match.district_unknown", "match.relay"}


def _longest(language: str, keys: list[str]) -> str:
    return max((texts.t(language, key) for key in keys), key=len)


@pytest.mark.parametrize("resident_language", texts.LANGUAGES)
def test_every_match_sms_fits_one_segment_with_the_longest_values(resident_language):
    language = resident_language
    weekdays = texts.t(language, "match.weekdays").split(",")
    months = texts.t(language, "match.months").split(",")
    params = {
        "category": _longest(language, [f"category.{c}" for c in CATEGORIES]),
        "district": "Schalkwijk",
        "when": _longest(language, [f"match.when.{w}" for w in ("asap", "this_week", "no_hurry", "unknown")]),
        "number": 123456,
        "moment": texts.t(language, "match.moment", weekday=max(weekdays, key=len), day=28,
                          month=max(months, key=len), time="14:00"),
        "time": "14:00",
        "numbers": "123451, 123452, 123453, 123454, 123455",
        "keyword": "NIET GELUKT",
        "example": 123451,
    }
    keys = [k for k in texts.catalogue("nl") if k.startswith("match.") and not k.startswith(SPOKEN_OR_DATA)
            and k not in NOT_SMS]
    assert len(keys) >= 18
    for key in keys:
        if language in UCS2_LANGUAGES:  # Arabic script is outside GSM-7: at most two 70-character segments
            body = texts.fit_gsm7(texts.t(language, key, **params))
            assert segment_count(body) <= 2, (language, key, len(body), body)
        else:
            body = texts.to_gsm7(texts.t(language, key, **params))
            assert is_gsm7(body) and segment_count(body) == 1, (language, key, len(body), body)
