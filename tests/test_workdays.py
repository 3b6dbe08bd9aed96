"""Hours and days are counted once, in the time zone of BUURTLIJN_TIMEZONE."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr_flows import settings_from_config
from models.workdays import DEFAULT_TIMEZONE, broker_hours, local_zone, parse_hours, quiet_until

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "workers", "sms", "ivr_flows", "models")
UTC = dt.timezone.utc


def sources():  # type: ignore[no-untyped-def]
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_the_time_zone_is_named_in_one_place():
    naming = [str(path.relative_to(ROOT)) for path in sources() if DEFAULT_TIMEZONE in path.read_text()]
    assert naming == ["models/workdays.py"]


def test_hours_are_parsed_by_one_function():
    defined = [
        str(path.relative_to(ROOT))
        for path in sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "parse_hours"
    ]
    assert defined == ["models/workdays.py"]
    assert parse_hours("21:00-09:00") == (dt.time(21), dt.time(9))


def test_quiet_hours_follow_the_configured_time_zone():
    night = dt.datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 23:00 in Amsterdam, 22:00 in London
    quiet = {"BUURTLIJN_QUIET_HOURS": "21:00-09:00"}
    assert quiet_until(night, quiet) == dt.datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    london = {**quiet, "BUURTLIJN_TIMEZONE": "Europe/London"}
    assert quiet_until(night, london) == dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert quiet_until(night, {**quiet, "BUURTLIJN_QUIET_HOURS": "off"}) is None


def test_the_phone_menu_counts_in_the_same_zone():
    assert local_zone({}) == ZoneInfo(DEFAULT_TIMEZONE)
    assert settings_from_config({"BUURTLIJN_TIMEZONE": "Europe/London"}).zone == ZoneInfo("Europe/London")
    assert settings_from_config({}).zone == local_zone({})


def test_broker_hours_must_end_after_they_start():
    assert broker_hours({"BUURTLIJN_BROKER_HOURS": "08:30-16:00"}) == (dt.time(8, 30), dt.time(16))
    with pytest.raises(ValueError):
        broker_hours({"BUURTLIJN_BROKER_HOURS": "17:00-09:00"})


def test_the_dashboard_shows_times_in_the_configured_zone(tmp_path):
    from gateway import create_app
    from gateway.dashboard import local_time

    moment = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for zone, shown in (("Europe/Amsterdam", "13:00"), ("Europe/London", "12:00")):
        app = create_app({"TESTING": True, "SECRET_KEY": "test", "BUURTLIJN_TIMEZONE": zone,
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'zone.sqlite3'}"})
        with app.app_context():
            assert local_time(moment, with_date=False) == shown
