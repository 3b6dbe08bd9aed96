"""The broker's own setting: the dashboard's language."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_login import login_required

from ..database import get_session
from .auth import me
from .common import audit_action

bp = Blueprint("language", __name__)


@bp.post("/dashboard/language")
@login_required
def switch():  # type: ignore[no-untyped-def]
    broker = me()
    broker.language = "en" if broker.language == "nl" else "nl"
    audit_action("broker.language", "broker", broker.id, language=broker.language)
    get_session().commit()
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("dashboard.queue.index")
    return redirect(target)
