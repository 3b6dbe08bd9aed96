"""The report page for coordinators and the municipality's viewer account: the same figures as the API,
a period picker, charts with their numbers, a CSV for Excel, and every view audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.cli import main as cli
from gateway.database import get_database
from models import AuditEvent, Broker
from models.accounts import create_broker
from models.reports import KEYS, ReportError, preset_period
from tests.conftest import app_config, running_app, session_of
from tests.dashboard_support import PASSWORD, logged_in, make_brokers
from tests.test_reports import _seed

MARCH = {"period": "custom", "from": "2026-03-01", "to": "2026-03-31", "by": "district"}


def _viewer(app) -> None:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        create_broker(session, email="gemeente@haarlem.example", name="Gemeente", role="viewer", phone=None,
                      password=PASSWORD)


@pytest.fixture
def report_app(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    with running_app(app_config(database_url, fake_twilio, BUURTLIJN_REPORT_MIN_COUNT="1",
                                BUURTLIJN_PRICE_SMS_SEGMENT="0.10", BUURTLIJN_PRICE_CALL_MINUTE="0.05")) as app:
        make_brokers(app)
        _viewer(app)
        with session_of(app) as session:
            _seed(session)
        yield app


def test_a_coordinator_sees_the_report_with_charts_and_their_numbers(report_app):
    client = logged_in(report_app, "cor@buuv.example")
    response = client.get("/dashboard/reports", query_string=MARCH)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Cijfers van 01-03-2026 tot en met 31-03-2026" in html
    assert "Schalkwijk" in html and "Matches geslaagd" in html and "Tevredenheid: gemiddeld cijfer" in html
    assert "4,5" in html  # the mean mark, with a Dutch decimal comma
    assert html.count("<svg") == 5 and 'aria-hidden="true"' in html  # four bar charts and the weeks' line
    assert html.count('class="chart-table"') == 5  # each chart's numbers in a table
    assert "25,0%" in html  # one of four residents both asked and offered
    assert "€ 0,60" in html  # (4 segments x 0.10 + 4 minutes x 0.05) for 1 match done
    assert "+316" not in html  # nothing personal
    with session_of(report_app) as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.view")).all()
    assert event.actor_type == "broker" and event.detail["format"] == "html" and event.detail["by"] == "district"


def test_the_csv_is_the_pages_rows_for_dutch_excel(report_app):
    client = logged_in(report_app, "cor@buuv.example")
    response = client.get("/dashboard/reports.csv", query_string={**MARCH, "by": "category"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())  # UTF-8 with a BOM, so Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Soort hulp", "Bewoners bereikt", "Vragen", "Aanbod", "Matches voorgesteld", "Matches geslaagd",
                       "Items in de wachtrij", "Uren tot eerste contact (mediaan)", "Tevredenheid: antwoorden",
                       "Tevredenheid: gemiddeld cijfer", "Sms-delen verstuurd", "Belminuten"]
    assert len(rows[0]) == len(KEYS) + 1
    groceries = next(row for row in rows if row[0] == "Boodschappen")
    assert groceries[2:4] == ["1", "1"] and groceries[9] == "4,5"
    assert rows[-1][0] == "Totaal"
    with session_of(report_app) as session:
        formats = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "report.view")).all()
    assert [detail["format"] for detail in formats] == ["csv"]


def test_with_the_default_threshold_small_cells_are_empty(database_url, fake_twilio):
    with running_app(app_config(database_url, fake_twilio)) as app:
        make_brokers(app)
        with session_of(app) as session:
            _seed(session)
        client = logged_in(app, "cor@buuv.example")
        rows = list(csv.reader(io.StringIO(
            client.get("/dashboard/reports.csv", query_string=MARCH).get_data().decode("utf-8-sig")), delimiter=";"))
    schalkwijk = next(row for row in rows if row[0] == "Schalkwijk")
    assert schalkwijk[1:] == [""] * len(KEYS)  # every figure there is below 5
    assert next(row for row in rows if row[0] == "Centrum")[1:3] == ["0", "0"]


def test_bad_periods_are_explained_on_the_page(report_app):
    client = logged_in(report_app, "cor@buuv.example")
    response = client.get("/dashboard/reports", query_string={**MARCH, "to": "2026-02-01"})
    assert response.status_code == 400
    assert "Deze periode kan niet: de einddatum ligt voor de begindatum." in response.get_data(as_text=True)
    assert "to must not be before from" not in response.get_data(as_text=True)  # the model's English stays out
    assert client.get("/dashboard/reports.csv", query_string={**MARCH, "by": "postcode"}).status_code == 400
    assert client.get("/dashboard/reports", query_string={"period": "forever"}).status_code == 400


def test_a_viewer_sees_the_reports_and_nothing_else(report_app):
    client = logged_in(report_app, "gemeente@haarlem.example")
    assert client.get("/dashboard/reports", query_string=MARCH).status_code == 200
    assert client.get("/dashboard/reports.csv", query_string=MARCH).status_code == 200
    for path in ("/dashboard", "/dashboard/new", "/dashboard/brokers", "/dashboard/audit", "/dashboard/items/1",
                 "/recordings/1"):
        assert client.get(path).status_code == 403, path
    # Logging in again lands on the reports, not on the queue it may not open.
    landing = client.get("/login")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/dashboard/reports")
    with session_of(report_app) as session:
        refused = session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "dashboard.forbidden")).all()
    assert "dashboard.queue.index" in refused and "dashboard.admin.audit_log" in refused


def test_a_broker_may_not_open_the_reports(report_app):
    client = logged_in(report_app, "mila@buuv.example")
    assert client.get("/dashboard/reports").status_code == 403
    assert client.get("/dashboard/reports.csv").status_code == 403


def test_the_cli_creates_a_viewer(database_url):
    result = CliRunner().invoke(
        cli, ["create-broker", "raad@haarlem.example", "--name", "Gemeente", "--role", "viewer"],
        input="a-long-password\n", env={"DATABASE_URL": database_url, "SECRET_KEY": "cli-test", "REDIS_URL": ""},
    )
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    with Session(engine) as session:
        assert session.scalars(select(Broker.role).where(Broker.email == "raad@haarlem.example")).one() == "viewer"
    engine.dispose()


@pytest.mark.parametrize(("name", "today", "first", "last"), [
    ("this_month", "2026-05-17", "2026-05-01", "2026-05-17"),
    ("last_quarter", "2026-05-17", "2026-01-01", "2026-03-31"),
    ("last_quarter", "2026-01-05", "2025-10-01", "2025-12-31"),
    ("last_12_months", "2026-05-17", "2025-05-18", "2026-05-17"),
    ("last_12_months", "2028-02-29", "2027-03-01", "2028-02-29"),
    ("last_year", "2026-05-17", "2025-01-01", "2025-12-31"),
])
def test_the_periods_to_pick(name, today, first, last):
    assert preset_period(name, dt.date.fromisoformat(today)) == (dt.date.fromisoformat(first),
                                                                 dt.date.fromisoformat(last))
    with pytest.raises(ReportError):
        preset_period("forever", dt.date(2026, 1, 1))
