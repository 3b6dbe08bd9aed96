"""The match services take their settings as arguments: no app, no request needed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from gateway.database import get_database
from models.base import utcnow
from models.marketplace import record_listing
from models.matching import moment_text, propose_match
from models.phones import parse_phone
from models.residents import resident_for


def _listing(session, phone: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    resident = resident_for(session, parse_phone(phone))
    resident.postcode = "2034"
    listing = record_listing(session, resident, kind=kind, channel="broker", category="groceries",
                             postcode="2034", timing="asap", queue_for_broker=False)
    return listing.id


def test_a_proposal_counts_its_answer_time_from_the_settings_it_is_given(app):
    # Outside any app context: the settings come only from the argument.
    with get_database(app).transaction() as session:
        request_id = _listing(session, "+31612345001", "request")
        offer_id = _listing(session, "+31612345002", "offer")
        before = utcnow()
        match = propose_match(session, request_id, offer_id,
                              config={"BUURTLIJN_MATCH_RESPONSE_HOURS": 2, "BUURTLIJN_QUIET_HOURS": "off"})
        assert before + dt.timedelta(hours=2) <= match.respond_by <= utcnow() + dt.timedelta(hours=2)


def test_a_proposal_made_in_quiet_hours_counts_from_their_end(app):
    with get_database(app).transaction() as session:
        request_id = _listing(session, "+31612345001", "request")
        offer_id = _listing(session, "+31612345002", "offer")
        match = propose_match(session, request_id, offer_id,
                              config={"BUURTLIJN_MATCH_RESPONSE_HOURS": 1, "BUURTLIJN_QUIET_HOURS": "00:00-23:59"})
        assert match.respond_by > utcnow() + dt.timedelta(hours=1, minutes=1)


def test_the_agreed_moment_is_told_in_the_zone_given():
    moment = dt.datetime(2026, 5, 12, 12, 0, tzinfo=dt.timezone.utc)
    assert moment_text("nl", moment, ZoneInfo("Europe/Amsterdam")).endswith("14:00")
    assert moment_text("nl", moment, ZoneInfo("Europe/London")).endswith("13:00")
