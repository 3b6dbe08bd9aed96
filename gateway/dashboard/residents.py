"""Coordinators only: a resident's privacy rights — see everything held (JSON download, printable page),
and erase it behind a confirmation that names what will go. Every view and the erasure are audited."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from models import Resident
from models.phones import mask
from models.privacy import erase_resident, export_resident, holdings, is_erased

from ..database import get_session
from . import t
from .auth import coordinator_required, me, remote_addr
from .common import audit_action

bp = Blueprint("residents", __name__)


def _resident_or_404(resident_id: int) -> Resident:
    resident = get_session().get(Resident, resident_id)
    if resident is None:
        abort(404)
    return resident


def _what_goes(resident: Resident) -> dict[str, int]:
    held = holdings(get_session(), resident)
    return {"listings": len(held.listings), "messages": len(held.messages), "calls": len(held.calls),
            "callbacks": len(held.callbacks), "matches": len(held.matches)}


@bp.get("/dashboard/residents/<int:resident_id>")
@coordinator_required
def resident_page(resident_id: int):  # type: ignore[no-untyped-def]
    resident = _resident_or_404(resident_id)
    audit_action("resident.view", "resident", resident.id)
    get_session().commit()
    return render_template("dashboard/resident.html", resident=resident, erased=is_erased(resident),
                           phone=mask(None if is_erased(resident) else resident.phone), goes=_what_goes(resident))


@bp.get("/dashboard/residents/<int:resident_id>/export.json")
@coordinator_required
def export_json(resident_id: int):  # type: ignore[no-untyped-def]
    resident = _resident_or_404(resident_id)
    exported = export_resident(get_session(), resident)
    audit_action("resident.export", "resident", resident.id, format="json")
    get_session().commit()
    response = Response(json.dumps(exported, ensure_ascii=False, indent=2, sort_keys=True),
                        mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="buurtlijn-bewoner-{resident.id}.json"'
    response.headers["Cache-Control"] = "no-store, private"
    return response


@bp.get("/dashboard/residents/<int:resident_id>/export")
@coordinator_required
def export_page(resident_id: int):  # type: ignore[no-untyped-def]
    """The same export as a page in Dutch to print and hand over."""
    resident = _resident_or_404(resident_id)
    exported = export_resident(get_session(), resident)
    audit_action("resident.export", "resident", resident.id, format="print")
    get_session().commit()
    response = Response(render_template("dashboard/resident_export.html", data=exported, sections=_SECTIONS))
    response.headers["Cache-Control"] = "no-store, private"
    return response


# The export's sections on the printable page, in this order, with their Dutch headings.
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("listings", "Vragen en aanbiedingen"), ("recordings", "Ingesproken boodschappen"), ("messages", "Sms-berichten"),
    ("calls", "Telefoongesprekken"), ("callbacks", "Terugbelverzoeken en notities"), ("matches", "Matches"),
    ("audit_events", "Wie uw gegevens bekeek of wijzigde"),
)


@bp.post("/dashboard/residents/<int:resident_id>/erase")
@coordinator_required
def erase(resident_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    resident = _resident_or_404(resident_id)
    if request.form.get("confirm") != "yes":
        flash(t("resident.erase_unconfirmed"), "error")
        return redirect(url_for("dashboard.residents.resident_page", resident_id=resident_id))
    erasure = erase_resident(db, resident, actor_type="broker", actor_id=me().id, via="dashboard",
                             remote_addr=remote_addr())
    db.commit()
    flash(t("resident.erased_done" if erasure is not None else "resident.erased_before"), "ok")
    return redirect(url_for("dashboard.residents.resident_page", resident_id=resident_id))
