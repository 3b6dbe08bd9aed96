"""The report's daily roll-up gives exactly the report computed from the ledgers alone: on random data,
for every grouping, and after the things that change what a rolled-up day was computed from (a
resident's district, a listing's district, an erasure, retention)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from models import Call, Callback, Listing, Match, Message, Resident, Satisfaction
from models.marketplace import complete_postcode
from models.privacy import apply_retention, erase_resident
from models.report_rollup import ReportDay, ReportReach, RolledDay
from models.reports import REPORT_GROUPINGS, build_report, parse_period, roll_up, roll_up_day
from models.residents import set_postcode
from models.workdays import local_zone
from tests.conftest import session_of

AMSTERDAM = local_zone({})
UTC = dt.timezone.utc
# Summer time starts on 29 March 2026: the data's days cross it.
NOW = dt.datetime(2026, 4, 8, 10, 0, tzinfo=UTC)
HOURS = 24 * 21  # the data spans the three weeks before NOW
DISTRICTS = (None, "centrum", "noord", "schalkwijk")
CATEGORIES = ("groceries", "company", "digital")
CHANNELS = ("sms", "voice", "broker", "api")

moment = st.integers(min_value=1, max_value=HOURS).map(lambda hours: NOW - dt.timedelta(hours=hours, minutes=7))
maybe = st.none() | st.integers(min_value=0, max_value=20)
city = st.fixed_dictionaries({
    "residents": st.lists(st.sampled_from(DISTRICTS), min_size=1, max_size=5),
    "listings": st.lists(st.tuples(maybe, st.sampled_from(("request", "offer")), st.sampled_from(CATEGORIES),
                                   st.sampled_from(CHANNELS), st.sampled_from(("owner", None, "oost")), moment,
                                   st.sampled_from(("open", "done", "cancelled"))), max_size=7),
    "messages": st.lists(st.tuples(st.sampled_from(("inbound", "outbound")), maybe, maybe,
                                   st.sampled_from(("handled", "delivered", "sent", "blocked", "failed", "pending")),
                                   st.none() | st.integers(min_value=1, max_value=3), moment), max_size=14),
    "calls": st.lists(st.tuples(st.sampled_from(("inbound", "outbound")), st.sampled_from(("menu", "broker_bridge")),
                                maybe, maybe, st.none() | st.integers(min_value=0, max_value=400), moment,
                                st.sampled_from(("finished", "finished", "in_progress"))), max_size=8),
    "matches": st.lists(st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20), moment, st.none() | st.integers(min_value=0, max_value=100),
                                  st.none() | st.integers(min_value=1, max_value=5)), max_size=4),
    "callbacks": st.lists(st.tuples(maybe, maybe, moment), max_size=5),
    "period": st.tuples(st.integers(min_value=0, max_value=25), st.integers(min_value=0, max_value=25)),
    "changes": st.tuples(maybe, maybe, maybe, st.sampled_from(("2011", "2034", "9999"))),
})


def _pick(rows: list[Any], index: int | None) -> Any:
    return rows[index % len(rows)] if rows and index is not None else None


def _empty(session: Any) -> None:
    for model in (ReportDay, ReportReach, RolledDay, Satisfaction, Callback, Message, Call, Match, Listing, Resident):
        session.execute(delete(model))
    session.commit()


def _make(session: Any, data: dict[str, Any]) -> dict[str, list[Any]]:
    made: dict[str, list[Any]] = {"residents": [], "listings": [], "matches": []}
    for number, district in enumerate(data["residents"]):
        resident = Resident(phone=f"+3161000{number:04d}", district=district, postcode="2011" if district else None,
                            created_at=NOW - dt.timedelta(days=30))
        session.add(resident)
        made["residents"].append(resident)
    session.flush()
    # Something on a settled day, so that there is always a day to roll up.
    session.add(Message(direction="inbound", resident_id=made["residents"][0].id, status="handled", body="hallo",
                        created_at=NOW - dt.timedelta(days=10), updated_at=NOW))
    for owner, kind, category, channel, district, at, status in data["listings"]:
        resident = _pick(made["residents"], owner) or made["residents"][0]
        listing = Listing(resident_id=resident.id, kind=kind, category=category, channel=channel, status=status,
                          district=resident.district if district == "owner" else district, created_at=at,
                          updated_at=at, closed_at=None if status == "open" else at)
        session.add(listing)
        made["listings"].append(listing)
    session.flush()
    for number, (direction, who, about, status, segments, at) in enumerate(data["messages"]):
        resident, listing = _pick(made["residents"], who), _pick(made["listings"], about)
        session.add(Message(direction=direction, resident_id=resident and resident.id, listing_id=listing and listing.id,
                            status=status, segments=segments if direction == "outbound" else None,
                            body="hallo", twilio_sid=f"SM{number:032d}", created_at=at, updated_at=at))
    for number, (direction, purpose, who, about, seconds, at, status) in enumerate(data["calls"]):
        resident, listing = _pick(made["residents"], who), _pick(made["listings"], about)
        session.add(Call(call_sid=f"CA{number:032d}", direction=direction, purpose=purpose,
                         resident_id=resident and resident.id, listing_id=listing and listing.id, status=status,
                         duration_seconds=seconds, created_at=at, updated_at=at))
    session.flush()
    if len(made["listings"]) >= 2:
        for asked, offered, at, done_after, mark in data["matches"]:
            request, offer = _pick(made["listings"], asked), _pick(made["listings"], offered)
            if request is offer:
                continue
            done = at + dt.timedelta(hours=done_after) if done_after is not None else None
            match = Match(request_id=request.id, offer_id=offer.id, status="done" if done else "proposed",
                          created_at=at, updated_at=at, done_at=done if done and done < NOW else None)
            session.add(match)
            session.flush()
            made["matches"].append(match)
            if match.done_at is not None:
                session.add(Satisfaction(match_id=match.id, resident_id=request.resident_id, channel="sms",
                                         mark=mark, asked_at=match.done_at,
                                         answered_at=match.done_at + dt.timedelta(hours=1) if mark else None))
    for who, about, at in data["callbacks"]:
        resident, listing = _pick(made["residents"], who), _pick(made["listings"], about)
        session.add(Callback(reason="new_listing", resident_id=resident and resident.id,
                             listing_id=listing and listing.id, status="done", created_at=at, updated_at=at))
    session.commit()
    return made


def _assert_same(session: Any, period_days: tuple[int, int], what: str) -> None:
    first = (NOW - dt.timedelta(days=max(period_days))).date()
    last = (NOW - dt.timedelta(days=min(period_days))).date()
    for by in REPORT_GROUPINGS:
        period, _ = parse_period(first.isoformat(), last.isoformat(), by, AMSTERDAM)
        for min_count in (1, 3):
            fast = build_report(session, period, by, min_count=min_count, prices=(0.08, 0.02))
            straight = build_report(session, period, by, min_count=min_count, prices=(0.08, 0.02), rolled_up=False)
            assert fast == straight, (what, by, min_count)
    session.rollback()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=city)
def test_the_rolled_up_report_is_the_report_from_the_ledgers(app, data):
    with app.app_context(), session_of(app) as session:
        _empty(session)
        made = _make(session, data)
        assert roll_up(session, NOW, AMSTERDAM, limit=100) > 0
        session.commit()
        _assert_same(session, data["period"], "rolled up")

        moved, listing_moved, erased, postcode = data["changes"]
        resident = _pick(made["residents"], moved)
        if resident is not None:
            set_postcode(session.get(Resident, resident.id), postcode)  # a district changes, or goes
            session.commit()
            _assert_same(session, data["period"], "a resident's district changed")
        owner = _pick(made["residents"], listing_moved)
        if owner is not None:
            complete_postcode(session, session.get(Resident, owner.id), "2034")
            session.commit()
            _assert_same(session, data["period"], "open listings' district given")
        resident = _pick(made["residents"], erased)
        if resident is not None:
            erase_resident(session, session.get(Resident, resident.id), actor_type="system", via="test")
            session.commit()
            _assert_same(session, data["period"], "a resident erased")
        apply_retention(session, NOW, dt.timedelta(days=7))
        session.commit()
        _assert_same(session, data["period"], "retention")
        roll_up(session, NOW, AMSTERDAM, limit=100)
        session.commit()
        _assert_same(session, data["period"], "rolled up again")


def test_a_day_is_rolled_up_once_settled_and_only_then(app):
    """Today and yesterday stay live; a day with a message still waiting to go is not rolled up until it went."""
    with app.app_context(), session_of(app) as session:
        _empty(session)
        resident = Resident(phone="+31610000001", created_at=NOW - dt.timedelta(days=30), district="noord")
        session.add(resident)
        session.flush()
        waiting = Message(direction="outbound", resident_id=resident.id, status="pending", body="x",
                          created_at=NOW - dt.timedelta(days=3), updated_at=NOW)
        session.add_all([waiting, Message(direction="inbound", resident_id=resident.id, status="handled", body="x",
                                          created_at=NOW - dt.timedelta(days=1), updated_at=NOW)])
        session.commit()
        waiting_day, settled_day = (NOW - dt.timedelta(days=3)).date(), (NOW - dt.timedelta(days=2)).date()
        assert roll_up(session, NOW, AMSTERDAM) == 1  # the day with the message waiting to go is not
        session.commit()
        assert set(session.scalars(select(RolledDay.day))) == {settled_day}
        waiting.status = "sent"
        session.commit()
        assert roll_up(session, NOW, AMSTERDAM) == 1
        session.commit()
        assert set(session.scalars(select(RolledDay.day))) == {waiting_day, settled_day}
        assert roll_up(session, NOW, AMSTERDAM) == 0  # once
        period, _ = parse_period((NOW - dt.timedelta(days=5)).date().isoformat(), NOW.date().isoformat(), "district",
                                 AMSTERDAM)
        report = build_report(session, period, "district", min_count=1)
        rows = {row["group"]: row for row in report.rows}
        assert rows["noord"]["residents"] == 1 and rows["noord"]["sms_segments"] == 1
        assert report.totals["residents"] == 1


def test_a_district_change_has_the_days_counted_again(app):
    with app.app_context(), session_of(app) as session:
        _empty(session)
        resident = Resident(phone="+31610000002", created_at=NOW - dt.timedelta(days=30), district="noord",
                            postcode="2011")
        session.add(resident)
        session.flush()
        session.add(Message(direction="inbound", resident_id=resident.id, status="handled", body="x",
                            created_at=NOW - dt.timedelta(days=4), updated_at=NOW))
        session.commit()
        day = (NOW - dt.timedelta(days=4)).date()
        roll_up_day(session, day, AMSTERDAM)
        session.commit()
        set_postcode(resident, "2034")  # Schalkwijk
        session.commit()
        assert session.scalar(select(func.count()).select_from(RolledDay)) == 0
        period, _ = parse_period(day.isoformat(), day.isoformat(), "district", AMSTERDAM)
        rows = {row["group"]: row for row in build_report(session, period, "district", min_count=1).rows}
        assert rows["schalkwijk"]["residents"] == 1 and rows["noord"]["residents"] == 0


def test_the_sweep_rolls_up_settled_days_a_few_at_a_time(app):
    from models.reports import ROLL_UP_DAYS_PER_SWEEP
    from workers.jobs import SWEEPS, sweep_reports

    with app.app_context(), session_of(app) as session:
        _empty(session)
        resident = Resident(phone="+31610000003", created_at=NOW - dt.timedelta(days=30), district="oost")
        session.add(resident)
        session.flush()
        session.add(Message(direction="inbound", resident_id=resident.id, status="handled", body="x",
                            created_at=NOW - dt.timedelta(days=12), updated_at=NOW))
        session.commit()
    assert sweep_reports in SWEEPS
    sweep_reports(app, NOW)
    with session_of(app) as session:
        assert session.scalar(select(func.count()).select_from(RolledDay)) == ROLL_UP_DAYS_PER_SWEEP
    sweep_reports(app, NOW)
    with session_of(app) as session:
        days = set(session.scalars(select(RolledDay.day)))
    # Twelve days ago up to the day before yesterday: eleven days, all rolled up after two sweeps.
    assert days == {(NOW - dt.timedelta(days=n)).date() for n in range(2, 13)}


def test_a_day_dropped_while_the_report_reads_it_is_read_from_the_ledgers(app, monkeypatch):
    import models.reports as reports

    with app.app_context(), session_of(app) as session:
        _empty(session)
        resident = Resident(phone="+31610000004", created_at=NOW - dt.timedelta(days=30), district="zuid-west")
        session.add(resident)
        session.flush()
        session.add(Message(direction="inbound", resident_id=resident.id, status="handled", body="x",
                            created_at=NOW - dt.timedelta(days=4), updated_at=NOW))
        session.commit()
        roll_up(session, NOW, AMSTERDAM)
        session.commit()
        day = (NOW - dt.timedelta(days=4)).date()
        reading = reports._reach_sets

        def drop_then_read(*args: Any) -> Any:  # another transaction drops the day meanwhile
            reports.unroll_days(session, [day])
            return reading(*args)

        monkeypatch.setattr(reports, "_reach_sets", drop_then_read)
        period, _ = parse_period(day.isoformat(), NOW.date().isoformat(), "district", AMSTERDAM)
        report = build_report(session, period, "district", min_count=1)
        rows = {row["group"]: row for row in report.rows}
        assert rows["zuid-west"]["residents"] == 1 and report.totals["residents"] == 1
