"""The match an item is about: confirm it with the agreed moment, complete it or cancel it."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import login_required

from models.base import utcnow
from models.leases import ClaimError
from models.match import Match
from models.match_page import act_on_match, end_relay_of_item
from models.matching import MatchError, relay_since_in
from models.outcomes import OutcomeError
from models.vocabulary import MATCH_OUTCOMES

from texts import DASHBOARD

from ..database import get_session
from . import label, local_time, local_zone_of_app, t
from .auth import me, remote_addr
from .common import MAX_NOTE, audit_action, callback_or_404

bp = Blueprint("matches", __name__)

MEETING_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends, local time


@bp.app_template_filter("local_input")
def _local_input_filter(moment: dt.datetime | None) -> str:
    """A moment as the value of a datetime-local input, in local time."""
    return moment.astimezone(local_zone_of_app()).strftime(MEETING_FORMAT) if moment else ""


def refusal_text(why: str | None) -> str:
    """Why a match cannot be made or moved, in the broker's words (models.matching's MatchError.why)."""
    key = f"match.refused.{why}"
    return t(key if why and DASHBOARD.has("nl", key) else "match.refused.conflict")


class MeetingError(ValueError):
    """The agreed moment cannot be read, or lies in the past."""


def parse_meeting(raw: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """The agreed moment from the form: local time (BUURTLIJN_TIMEZONE) to an aware UTC datetime."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        local = dt.datetime.strptime(raw[:16], MEETING_FORMAT)
    except ValueError as exc:
        raise MeetingError(raw) from exc
    moment = local.replace(tzinfo=local_zone_of_app()).astimezone(dt.timezone.utc)
    if moment < (now or utcnow()) - dt.timedelta(minutes=5):
        raise MeetingError(raw)
    return moment


@bp.post("/dashboard/items/<int:callback_id>/match")
@login_required
def match_action(callback_id: int):  # type: ignore[no-untyped-def]
    """Confirm (with the agreed moment), complete or cancel the match this item is about."""
    db = get_session()
    callback = callback_or_404(callback_id)
    action = request.form.get("action") or ""
    note = (request.form.get("note") or "").strip()[:MAX_NOTE] or None
    back = url_for("dashboard.item.show", callback_id=callback_id, _anchor="match-actions")
    match_id = callback.match_id

    def refuse(why: str, message: str):  # type: ignore[no-untyped-def]
        db.rollback()
        audit_action("callback.match_action", "callback", callback_id, result="refused", match_action=action, why=why,
               match_id=match_id)
        db.commit()
        if note:
            session[f"draft_match_note:{callback_id}"] = note
        flash(message, "error")
        return redirect(back)

    try:
        meeting_at = parse_meeting(request.form.get("meeting_at")) if action == "confirm" else None
    except MeetingError:
        return refuse("bad_moment", t("match.error.moment"))
    current = db.get(Match, match_id) if match_id else None
    if action == "confirm" and current is not None and current.status == "confirmed" and meeting_at is None:
        return refuse("no_new_moment", t("match.error.new_moment"))
    try:
        result = act_on_match(db, callback, me(), action, meeting_at=meeting_at, note=note,
                              remote_addr=remote_addr(), zone=local_zone_of_app())
    except ClaimError:
        db.rollback()
        audit_action("callback.match_action", "callback", callback_id, result="refused", match_action=action,
               why="not_held")
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.queue.index"))
    except OutcomeError as exc:
        message = t("match.error.no_match") if exc.code == "no_match" else t("outcome.error.unknown_outcome")
        return refuse(exc.code, message)
    except MatchError:
        db.rollback()
        latest = db.get(Match, match_id) if match_id else None
        status = label("match_status", latest.status if latest else None)
        return refuse("match_state", t("match.error.state", status=status))
    # The match's own step is audited by models.matching; this records what became of the item.
    audit_action("callback.outcome", "callback", callback_id, outcome=MATCH_OUTCOMES[action] if result.closed else None,
           match_action=action, match_id=result.match.id,
           meeting_at=meeting_at.isoformat() if meeting_at else None)
    db.commit()
    if action == "confirm":
        if result.match.meeting_at is not None:
            flash(t("match.confirmed_at", when=local_time(result.match.meeting_at)), "ok")
        else:
            flash(t("match.confirmed"), "ok")
    elif action == "done":
        flash(t("match.done"), "ok")
    elif result.closed:
        flash(t("match.cancelled_closed"), "ok")
    else:
        flash(t("match.cancelled_search"), "ok")
        return redirect(url_for("dashboard.item.show", callback_id=callback_id, _anchor="outcome"))
    return redirect(url_for("dashboard.queue.index"))


@bp.post("/dashboard/items/<int:callback_id>/match/relay-end")
@login_required
def end_relay(callback_id: int):  # type: ignore[no-untyped-def]
    """Stop passing on texts and calls between the two people of this item's match (after a confirmation)."""
    db = get_session()
    callback = callback_or_404(callback_id)
    back = url_for("dashboard.item.show", callback_id=callback_id, _anchor="match-relay")
    if request.form.get("confirm") != "yes":
        audit_action("callback.relay_end", "callback", callback_id, result="refused", why="unconfirmed",
                     match_id=callback.match_id)
        db.commit()
        flash(t("match.relay_end.unconfirmed"), "error")
        return redirect(back)
    since = relay_since_in(current_app.config, utcnow())
    try:
        ended = end_relay_of_item(db, callback, me(), since, remote_addr=remote_addr())
    except ClaimError:
        db.rollback()
        audit_action("callback.relay_end", "callback", callback_id, result="refused", why="not_held",
                     match_id=callback.match_id)
        db.commit()
        flash(t("queue.lease_lost"), "error")
        return redirect(url_for("dashboard.queue.index"))
    except OutcomeError:
        db.rollback()
        audit_action("callback.relay_end", "callback", callback_id, result="refused", why="no_match")
        db.commit()
        flash(t("match.error.no_match"), "error")
        return redirect(back)
    db.commit()
    flash(t("match.relay_end.done") if ended else t("match.relay_end.not_relaying"), "ok" if ended else "error")
    return redirect(back)
