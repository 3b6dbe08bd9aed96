"""The report for the municipality (contract: Reports): counts per group, small counts suppressed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import AuditEvent, Call, Callback, Listing, Match, Message, Resident, Satisfaction
from models.reports import KEYS, ReportError, build_report, parse_period, suppress
from models.workdays import local_zone
from tests.conftest import API_TOKEN, api_get, app_config, running_app, session_of

AMSTERDAM = local_zone({})
UTC = dt.timezone.utc


# --- suppression, as a property -------------------------------------------------------------


def _recoverable(cells: list[int | None], total: int | None) -> bool:
    """Whether the total minus the shown cells gives one hidden cell away."""
    hidden = [index for index, cell in enumerate(cells) if cell is None]
    return total is not None and len(hidden) == 1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12), st.integers(min_value=1, max_value=8))
def test_no_suppressed_cell_can_be_recovered_from_the_total(cells, min_count):
    shown, total = suppress(cells, sum(cells), min_count)
    assert not _recoverable(shown, total)
    # Every small count is hidden, nothing else is changed, and the total is hidden when small.
    for raw, cell in zip(cells, shown):
        assert cell is None or cell == raw
        if 0 < raw < min_count:
            assert cell is None
    assert total is None or (total == sum(cells) and not 0 < total < min_count)
    # Hiding costs as little as it can: one cell more at most, and never a zero.
    assert sum(1 for raw, cell in zip(cells, shown) if cell is None and not 0 < raw < min_count) <= 1
    assert all(cell is not None for raw, cell in zip(cells, shown) if raw == 0)


def test_secondary_suppression_hides_the_smallest_other_cell():
    assert suppress([3, 12, 7, 0], 22, 5) == ([None, 12, None, 0], 22)
    assert suppress([3, 2, 12], 17, 5) == ([None, None, 12], 17)
    assert suppress([3, 0, 0], 3, 5) == ([None, 0, 0], None)
    assert suppress([0, 9], 9, 5) == ([0, 9], 9)


# --- the period and grouping --------------------------------------------------------------


def test_a_period_is_whole_local_days():
    period, by = parse_period("2026-03-29", "2026-03-29", "district", AMSTERDAM)  # summer time starts that night
    assert by == "district"
    assert period.start == dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert period.end == dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


def test_bad_periods_and_groupings_are_refused_with_a_reason():
    for first, last, by, says in [
        ("2026-13-01", "2026-12-31", "district", "from must be a date"),
        ("2026-1-1", "2026-12-31", "district", "from must be a date"),
        ("2026-01-01", None, "district", "to is required"),
        ("2026-02-01", "2026-01-31", "district", "to must not be before from"),
        ("2016-01-01", "2026-01-01", "district", "at most 10 years"),
        ("2026-01-01", "2026-01-31", "postcode", "by must be one of: district, category, channel"),
        ("2026-01-01", "2026-01-31", None, "by must be one of"),
    ]:
        try:
            parse_period(first, last, by, AMSTERDAM)
        except ReportError as exc:
            assert says in str(exc)
        else:
            raise AssertionError(f"{first}..{last} by {by} was taken")
    parse_period("2016-01-02", "2026-01-01", "channel", AMSTERDAM)  # ten years exactly


# --- the figures, counted in the database ----------------------------------------------------

# In the period (local dates 2026-03-01 .. 2026-03-31); the last minute of the 31st, local, still counts.
IN = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LAST_MINUTE = dt.datetime(2026, 3, 31, 21, 59, tzinfo=UTC)  # 23:59 in Amsterdam (summer time)
AFTER = dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 00:00 on 1 April in Amsterdam
BEFORE = dt.datetime(2026, 2, 28, 22, 59, tzinfo=UTC)  # 23:59 on 28 February in Amsterdam


def _seed(session: Any) -> dict[str, Any]:
    counter = iter(range(1, 10_000))

    def resident(district: str | None, **values: Any) -> Resident:
        row = Resident(phone=f"+316{next(counter):08d}", district=district, **values)
        session.add(row)
        session.flush()
        return row

    def listing(owner: Resident, kind: str, category: str, channel: str, at: dt.datetime,
                district: str | None = "missing") -> Listing:
        row = Listing(resident_id=owner.id, kind=kind, category=category, channel=channel, created_at=at,
                      updated_at=at, district=owner.district if district == "missing" else district)
        session.add(row)
        session.flush()
        return row

    ann, ben, cem, dora = (resident("schalkwijk"), resident("schalkwijk"), resident("noord"), resident(None))
    ask = listing(ann, "request", "groceries", "sms", IN)
    offer = listing(ben, "offer", "groceries", "voice", LAST_MINUTE)
    listing(ann, "offer", "company", "sms", IN)  # Ann both asks and offers
    listing(cem, "request", "digital", "voice", IN)
    listing(cem, "request", "digital", "voice", AFTER)  # not in the period
    listing(dora, "request", "other", "broker", BEFORE)  # not in the period
    listing(dora, "request", "chores", "api", IN, district=None)
    match = Match(request_id=ask.id, offer_id=offer.id, status="done", created_at=IN, done_at=LAST_MINUTE)
    session.add(match)
    session.flush()
    for who, mark, at in [(ann, 4, IN), (ben, 5, IN)]:
        session.add(Satisfaction(match_id=match.id, resident_id=who.id, channel="sms", mark=mark, asked_at=at,
                                 answered_at=at))
    session.add(Satisfaction(match_id=match.id, resident_id=dora.id, channel="sms", asked_at=IN))  # no answer
    # SMS: three segments to Ann about her request, one (no count) to Dora, one never sent, one inbound from Cem.
    session.add_all([
        Message(direction="outbound", resident_id=ann.id, listing_id=ask.id, status="delivered", segments=3,
                created_at=IN),
        Message(direction="outbound", resident_id=dora.id, status="sent", created_at=IN),
        Message(direction="outbound", resident_id=dora.id, status="blocked", created_at=IN),
        Message(direction="inbound", resident_id=cem.id, status="handled", created_at=IN),
    ])
    # Calls: Ben rang in (61 s = 2 minutes); a broker called Ann back 6 hours after her request.
    session.add_all([
        Call(call_sid="CA" + "1" * 32, direction="inbound", resident_id=ben.id, listing_id=offer.id,
             duration_seconds=61, created_at=IN),
        Call(call_sid="CA" + "2" * 32, direction="outbound", purpose="broker_bridge", resident_id=ann.id,
             listing_id=ask.id, duration_seconds=120, created_at=IN + dt.timedelta(hours=6)),
    ])
    session.add_all([
        Callback(reason="new_listing", resident_id=ann.id, listing_id=ask.id, created_at=IN),
        Callback(reason="unrecognised_message", resident_id=cem.id, message_id=None, created_at=IN),
        Callback(reason="new_listing", resident_id=dora.id, created_at=BEFORE),
    ])
    session.commit()
    return {"match": match}


def _rows(report: Any) -> dict[Any, dict[str, Any]]:
    return {row["group"]: row for row in report.rows}


def test_the_report_counts_each_group_in_sql(app):
    with session_of(app) as session:
        _seed(session)
        period, _ = parse_period("2026-03-01", "2026-03-31", "district", AMSTERDAM)
        report = build_report(session, period, "district", min_count=1)
    rows = _rows(report)
    assert list(rows) == ["centrum", "noord", "oost", "schalkwijk", "zuid-west", None]
    assert rows["schalkwijk"] == {
        "group": "schalkwijk", "residents": 2, "requests": 1, "offers": 2, "matches_proposed": 1,
        "matches_done": 1, "callbacks": 1, "median_hours_to_contact": 6.0, "satisfaction_answers": 2,
        "satisfaction_mean": 4.5, "sms_segments": 3, "call_minutes": 4,
    }
    assert rows["noord"]["residents"] == 1 and rows["noord"]["requests"] == 1 and rows["noord"]["callbacks"] == 1
    assert rows[None]["requests"] == 1 and rows[None]["sms_segments"] == 1 and rows[None]["residents"] == 1
    assert rows["centrum"] == {"group": "centrum", **{key: 0 for key in KEYS},
                               "median_hours_to_contact": None, "satisfaction_mean": None}
    assert report.totals["residents"] == 4 and report.totals["requests"] == 3 and report.totals["offers"] == 2
    assert report.totals["sms_segments"] == 4 and report.totals["satisfaction_mean"] == 4.5
    assert list(report.totals) == list(KEYS)
    assert report.reciprocity == 0.25  # Ann, of four


def test_the_report_by_category_and_by_channel(app):
    with session_of(app) as session:
        _seed(session)
        period, _ = parse_period("2026-03-01", "2026-03-31", "category", AMSTERDAM)
        by_category = _rows(build_report(session, period, "category", min_count=1))
        by_channel = _rows(build_report(session, period, "channel", min_count=1))
    assert by_category["groceries"]["requests"] == 1 and by_category["groceries"]["offers"] == 1
    assert by_category["groceries"]["matches_done"] == 1 and by_category["groceries"]["satisfaction_answers"] == 2
    assert by_category["company"]["offers"] == 1 and by_category["digital"]["requests"] == 1
    assert by_category[None]["sms_segments"] == 1  # the message about no listing
    assert list(by_channel)[:4] == ["sms", "voice", "broker", "api"]
    assert by_channel["sms"]["requests"] == 1 and by_channel["sms"]["matches_done"] == 1
    assert by_channel["voice"]["offers"] == 1 and by_channel["voice"]["requests"] == 1
    assert by_channel["api"]["requests"] == 1
    assert by_channel["sms"]["sms_segments"] == 4  # Ann's three, and Dora's message about nothing, by SMS


def test_small_counts_are_hidden_with_the_default_threshold(app):
    with session_of(app) as session:
        _seed(session)
        period, _ = parse_period("2026-03-01", "2026-03-31", "district", AMSTERDAM)
        report = build_report(session, period, "district", min_count=5)
    for row in report.rows:
        for key in KEYS:
            assert row[key] is None or row[key] == 0 or row[key] >= 5, (row["group"], key, row[key])
    assert report.totals["residents"] is None and report.totals["satisfaction_mean"] is None
    assert report.totals["median_hours_to_contact"] is None and report.reciprocity is None


def test_api_report_as_in_the_contract_and_audited(fake_twilio, database_url):
    with running_app(app_config(database_url, fake_twilio, BUURTLIJN_REPORT_MIN_COUNT="1")) as app:
        with session_of(app) as session:
            _seed(session)
        client = app.test_client()
        body = api_get(client, "/api/v1/reports?from=2026-03-01&to=2026-03-31&by=district")
        assert set(body) == {"from", "to", "by", "min_count", "rows", "totals"}
        assert body["from"] == "2026-03-01" and body["to"] == "2026-03-31" and body["min_count"] == 1
        assert all(set(row) == {"group", *KEYS} for row in body["rows"])
        assert set(body["totals"]) == set(KEYS)
        assert {row["group"]: row["matches_done"] for row in body["rows"]}["schalkwijk"] == 1
        with session_of(app) as session:
            event = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.view")).one()
        assert event.actor_type == "api" and event.detail == {"from": "2026-03-01", "to": "2026-03-31",
                                                               "by": "district"}
        # Nothing personal: no phone number anywhere in the answer.
        assert "+316" not in client.get("/api/v1/reports?from=2026-03-01&to=2026-03-31&by=channel",
                                        headers={"Authorization": f"Bearer {API_TOKEN}"}).get_data(as_text=True)


def test_api_report_refuses_bad_input_with_a_clear_message(client):
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for query, says in [
        ("from=2026-02-30&to=2026-03-31&by=district", "from must be a date"),
        ("from=2026-03-01&to=2026-02-01&by=district", "to must not be before from"),
        ("from=2010-01-01&to=2026-01-01&by=district", "at most 10 years"),
        ("from=2026-03-01&to=2026-03-31&by=postcode", "by must be one of"),
        ("from=2026-03-01&to=2026-03-31", "by must be one of"),
        ("to=2026-03-31&by=channel", "from is required"),
        ("from=2026-03-01&to=9999-12-31&by=channel", "at most 10 years"),
    ]:
        response = client.get(f"/api/v1/reports?{query}", headers=auth)
        assert response.status_code == 400, query
        assert response.get_json()["error"] == "bad_request" and says in response.get_json()["message"], query
    assert client.get("/api/v1/reports?from=2026-03-01&to=2026-03-31&by=district").status_code == 401


def test_the_threshold_is_read_and_checked_at_start_up():
    import pytest

    from gateway.config import ConfigError, finalise

    for bad in ("0", "five"):
        config = {"TESTING": True, "BUURTLIJN_REPORT_MIN_COUNT": bad}
        with pytest.raises(ConfigError, match="BUURTLIJN_REPORT_MIN_COUNT"):
            finalise(config, "/tmp")
    config = {"TESTING": True, "BUURTLIJN_REPORT_MIN_COUNT": "3", "BUURTLIJN_PRICE_SMS_SEGMENT": "0.08"}
    finalise(config, "/tmp/buurtlijn-report-config")
    assert config["BUURTLIJN_REPORT_MIN_COUNT"] == 3 and config["BUURTLIJN_PRICE_SMS_SEGMENT"] == 0.08
    with pytest.raises(ConfigError, match="BUURTLIJN_PRICE_CALL_MINUTE"):
        finalise({"TESTING": True, "BUURTLIJN_PRICE_CALL_MINUTE": "€1"}, "/tmp")


# --- what the telecom figures are counted from ------------------------------------------------


def test_twilio_tells_the_segments_of_each_sms_sent(twilio, db, fake_twilio):
    from tests.fake_twilio import sms_segments

    assert twilio.sms("+31612345678", "VRAAG boodschappen doen voor mij, ik woon in 2034").status_code == 200
    [sent] = fake_twilio.messages()
    db.expire_all()
    [message] = db.scalars(select(Message).where(Message.direction == "outbound")).all()
    assert message.twilio_sid == sent["sid"]
    assert message.segments == sms_segments(sent["Body"]) >= 1


def test_the_call_status_callback_gives_the_calls_duration(phone, twilio, db):
    call = phone()
    call.hang_up()  # in the menu: the ORM path, an abandoned call
    db.expire_all()
    row = db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()
    assert row.duration_seconds == 1 and row.status == "abandoned"
    # A call already over (on PostgreSQL: one UPDATE below the ORM) takes Twilio's duration too.
    response = twilio.post("/twilio/voice/status", call.params(CallStatus="completed", CallDuration="125"))
    assert response.status_code == 200
    db.expire_all()
    assert db.get(Call, row.id).duration_seconds == 125
