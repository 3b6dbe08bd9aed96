"""The report for the municipality (contract: Reports), for coordinators and viewers: the same figures as
``GET /api/v1/reports`` (models.reports), with a period picker, charts and a CSV of the same rows."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user

from models.districts import district_map
from models.reports import KEYS, PRESETS, Report, ReportError, build_report, parse_period, preset_period
from models.vocabulary import REPORT_GROUPINGS

from ..database import get_session
from . import category_label, label, local_zone_of_app, t
from . import bp as dashboard_bp
from .auth import _unauthorized, me
from .charts import bar_chart, line_chart
from .common import audit_action

bp = Blueprint("reports", __name__)

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PRESET = "last_quarter"
CUSTOM = "custom"
# The counts drawn as bars per group, each with its table.
CHARTED = ("residents", "requests", "offers", "matches_done")


def reports_allowed(view: F) -> F:
    """Coordinators and viewers (the municipality); a broker is refused, and that is audited."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return _unauthorized()
        if not (me().is_coordinator or me().is_viewer):
            audit_action("dashboard.forbidden", "page", request.endpoint, result="refused")
            get_session().commit()
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _choice() -> tuple[dict[str, str], Report | None, str | None]:
    """What the form asks for, the report (None when the input is wrong) and the error to show."""
    args = request.args
    preset = args.get("period") or DEFAULT_PRESET
    chosen = {"period": preset, "by": args.get("by") or REPORT_GROUPINGS[0],
              "from": (args.get("from") or "")[:10], "to": (args.get("to") or "")[:10]}
    zone = local_zone_of_app()
    try:
        if preset != CUSTOM:
            first, last = preset_period(preset, dt.datetime.now(zone).date())
            chosen["from"], chosen["to"] = first.isoformat(), last.isoformat()
        period, by = parse_period(chosen["from"], chosen["to"], chosen["by"], zone)
    except ReportError as exc:
        return chosen, None, t(f"reports.refused.{exc.why}")
    config = current_app.config
    report = build_report(get_session(), period, by, min_count=config["BUURTLIJN_REPORT_MIN_COUNT"],
                          prices=(config.get("BUURTLIJN_PRICE_SMS_SEGMENT"), config.get("BUURTLIJN_PRICE_CALL_MINUTE")))
    return chosen, report, None


def group_name(by: str, group: str | None) -> str:
    if group is None:
        return t("reports.no_group")
    if by == "district":
        return district_map().name(group)
    if by == "category":
        return category_label(group)
    return label("channel", group)


def number(value: Any, digits: int = 1) -> str:
    """A figure as the page and the CSV write it: "—" when hidden, a decimal comma in Dutch."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}".replace(".", t("reports.decimal_point"))
    return str(value)


def _audit(chosen: dict[str, str], report: Report | None, format_: str) -> None:
    audit_action("report.view", "report", None, result="ok" if report else "refused", period=chosen["period"],
                 **{"from": chosen["from"], "to": chosen["to"]}, by=chosen["by"], format=format_)
    get_session().commit()


@bp.get("/dashboard/reports")
@reports_allowed
def page():  # type: ignore[no-untyped-def]
    chosen, report, error = _choice()
    _audit(chosen, report, "html")
    charts: dict[str, Any] = {}
    if report is not None:
        names = [group_name(report.by, row["group"]) for row in report.rows]
        charts = {key: bar_chart(list(zip(names, [row[key] for row in report.rows]))) for key in CHARTED}
        week_labels = [dt.date.fromisoformat(week["week_start"]).strftime("%d-%m") for week in report.weeks]
        charts["weeks"] = line_chart(week_labels, [
            (t("reports.week_matches"), "series-matches", [week["matches"] for week in report.weeks]),
            (t("reports.week_contacts"), "series-contacts", [week["contacts"] for week in report.weeks]),
        ])
    return render_template("dashboard/reports.html", chosen=chosen, report=report, error=error, keys=KEYS,
                           charts=charts, charted=CHARTED, presets=PRESETS, groupings=REPORT_GROUPINGS,
                           group_name=group_name, number=number), 400 if error else 200


@bp.get("/dashboard/reports.csv")
@reports_allowed
def csv_download():  # type: ignore[no-untyped-def]
    """The page's rows for a spreadsheet: UTF-8 with a BOM (Excel), the page's column names, ';' between
    the fields (as Dutch Excel expects)."""
    chosen, report, error = _choice()
    _audit(chosen, report, "csv")
    if report is None:
        return Response(error or "", status=400, mimetype="text/plain")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([t(f"reports.by_{report.by}"), *(t(f"reports.col.{key}") for key in KEYS)])
    for row in report.rows:
        writer.writerow([group_name(report.by, row["group"]), *(_cell(row[key]) for key in KEYS)])
    writer.writerow([t("reports.totals"), *(_cell(report.totals[key]) for key in KEYS)])
    name = f"buurtlijn-{report.by}-{report.first.isoformat()}-{report.last.isoformat()}.csv"
    response = Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _cell(value: Any) -> str:
    """A hidden figure is an empty cell in a spreadsheet."""
    return "" if value is None else number(value)


# What a viewer (the municipality) may open: the reports, logging in and out, the dashboard's language.
VIEWER_ENDPOINTS = frozenset({
    "dashboard.reports.page", "dashboard.reports.csv_download", "dashboard.auth.login", "dashboard.auth.logout",
    "dashboard.language.switch",
})


@dashboard_bp.before_request
def _viewers_see_reports_only():  # type: ignore[no-untyped-def]
    """The one rule for every dashboard page, those to come included: a viewer gets 403 (audited)."""
    if not current_user.is_authenticated or not me().is_viewer or request.endpoint in VIEWER_ENDPOINTS:
        return None
    audit_action("dashboard.forbidden", "page", request.endpoint, result="refused")
    get_session().commit()
    abort(403)
