"""The dashboard and the life of a match: labels, the match on an item page, confirm, stop, done, call both.

Helpers answer by signed SMS webhooks, jobs run in-process, and what the
residents are told is what the fake Twilio received. Both databases.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from gateway.database import get_database
from models import AuditEvent, Call, Callback, Listing, Match, Message, Resident
from models.base import utcnow
from models.matching import cancel_match
from models.phones import mask, readable
from models.queue import queue_callback
from models.vocabulary import QUEUE_REASONS
from tests.conftest import GATEWAY_NUMBER, ROOT, TwilioWebhooks, parse_twiml
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, listing_status, post_match
from tests.dashboard_support import MILA_PHONE, post
from texts import DASHBOARD
from workers.match_jobs import sweep_matches

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OTHER_HELPER = "+31612345003"


def _pair(app, *, other_helper: bool = False) -> tuple[int, int, int | None]:  # type: ignore[no-untyped-def]
    request_id = add_listing(app, REQUESTER, "request", category="chores", timing="this_week")
    offer_id = add_listing(app, HELPER, "offer", category="chores", timing=None)
    other = add_listing(app, OTHER_HELPER, "offer", category="chores", timing=None) if other_helper else None
    return request_id, offer_id, other


def _propose(app, request_id: int, offer_id: int) -> int:  # type: ignore[no-untyped-def]
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _item(session, match_id: int, reason: str) -> Callback:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(Callback).where(Callback.match_id == match_id, Callback.reason == reason)).one()


def _accepted(app, webhooks, session, **pair) -> tuple[int, int, Callback]:  # type: ignore[no-untyped-def]
    """A proposal the helper said JA to by SMS: (request id, match id, the match_accepted item)."""
    request_id, offer_id, _other = _pair(app, **pair)
    match_id = _propose(app, request_id, offer_id)
    session.expire_all()
    for sid in session.scalars(select(Message.twilio_sid).where(Message.phone == HELPER, Message.twilio_sid.is_not(None))):
        webhooks.sms_status(sid, "delivered")  # the proposal reached the helper: a JA can answer it
    assert webhooks.sms(HELPER, "JA").status_code == 200
    return request_id, match_id, _item(session, match_id, "match_accepted")


def _local_input(days: int, hour: int, minute: int = 0) -> tuple[str, dt.datetime]:
    """(what a datetime-local input sends, the same moment in UTC) ``days`` from today, local time."""
    day = dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=days)
    local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=AMSTERDAM)
    return local.strftime("%Y-%m-%dT%H:%M"), local.astimezone(dt.timezone.utc)


def _audits(session, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


# --- labels -----------------------------------------------------------------------------------


def _queued_reasons() -> set[str]:
    """Every reason some code queues an item with: the string literals among a queue_callback call's positional
    arguments (``queue_callback(session, "bad_number", ...)``, ``ctx.queue_callback("menu_trouble", ...)``,
    ``queue_callback(session, "a" if ... else "b", ...)``)."""
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", "bench") or ".venv" in relative.parts or "site-packages" in relative.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name != "queue_callback":
                continue
            for argument in node.args:
                found.update(
                    constant.value for constant in ast.walk(argument)
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str)
                    and re.fullmatch(r"[a-z_]+", constant.value)
                )
    return found


def test_every_reason_the_code_queues_has_a_label_in_both_languages(notify_app, mila, session):
    reasons = _queued_reasons()
    assert reasons >= {"new_listing", "callback_requested", "abandoned_call", "menu_trouble", "unrecognised_message",
                       "notification_failed", "bad_number", "not_reached", "letter_or_visit", "match_accepted",
                       "match_declined", "match_expired", "problem_reported"}
    for reason in reasons:
        assert reason in QUEUE_REASONS, f"{reason} is not a queue reason of models.vocabulary"
        assert DASHBOARD.has("nl", f"reason.{reason}") and DASHBOARD.has("en", f"reason.{reason}"), \
            f"{reason} has no label"

    with get_database(notify_app).transaction() as tx:
        ids = {reason: queue_callback(tx, reason).id for reason in sorted(reasons)}
    queue = _text(mila.get("/dashboard"))
    filters = queue.split('id="f-reason"', 1)[1].split("</select>", 1)[0]
    for reason, callback_id in ids.items():
        card = queue.split(f'id="item-{callback_id}"', 1)[1].split("</li>", 1)[0]
        assert DASHBOARD.t("nl", f"reason.{reason}") in card
        assert f'<option value="{reason}" >{DASHBOARD.t("nl", f"reason.{reason}")}</option>' in filters
        assert f"<h1>{DASHBOARD.t('nl', f'reason.{reason}')}" in _text(mila.get(f"/dashboard/items/{callback_id}"))
    filtered = _text(mila.get("/dashboard?reason=match_expired"))
    assert re.findall(r'id="item-(\d+)"', filtered) == [str(ids["match_expired"])]

    post(mila, "/dashboard/language", {"next": "/dashboard"})
    english = _text(mila.get("/dashboard"))
    for reason in reasons:
        assert DASHBOARD.t("en", f"reason.{reason}") in english
    item = _text(mila.get(f"/dashboard/items/{ids['problem_reported']}"))
    assert "<h1>Problem reported" in item


# --- an accepted match: both sides, confirm with a moment ----------------------------------------


def test_helper_said_yes_item_shows_both_sides_and_confirms_with_a_moment(notify_app, webhooks, mila, session,
                                                                           fake_twilio):
    request_id, match_id, item = _accepted(notify_app, webhooks, session)
    queue = _text(mila.get("/dashboard"))
    card = queue.split(f'id="item-{item.id}"', 1)[1].split("</li>", 1)[0]
    assert "Helper zei ja: match bevestigen" in card and "Match: geaccepteerd" in card

    # Before claiming: both numbers masked.
    page = _text(mila.get(f"/dashboard/items/{item.id}"))
    assert 'id="match"' in page and mask(REQUESTER) in page and mask(HELPER) in page
    assert readable(REQUESTER) not in page and readable(HELPER) not in page
    assert 'id="match-actions"' not in page  # only the holder acts

    post(mila, f"/dashboard/items/{item.id}/claim")
    page = _text(mila.get(f"/dashboard/items/{item.id}"))
    match_panel = page.split('id="match"', 1)[1].split("</section>", 1)[0]
    requester_side = match_panel.split('id="match-requester"', 1)[1].split('id="match-helper"', 1)[0]
    helper_side = match_panel.split('id="match-helper"', 1)[1]
    # The holder reads their own resident's number in full, once, in the resident's panel; the other side's
    # stays masked, on the match.
    assert page.count(readable(REQUESTER)) == 2  # the resident's panel and the call button
    assert f'id="resident-phone">{readable(REQUESTER)}<' in page and readable(REQUESTER) not in match_panel
    assert "bewoner van dit item" in requester_side and 'href="#resident"' in requester_side
    assert mask(HELPER) in helper_side and readable(HELPER) not in page and "de andere kant" in helper_side
    assert "Klussen in en om het huis" in requester_side and "deze week" in requester_side
    assert "Schalkwijk" in helper_side
    history = page.split('id="match-history"', 1)[1].split("</ol>", 1)[0]
    assert history.index("Voorgesteld") < history.index("Helper zei ja")
    assert 'name="meeting_at"' in page and "Match bevestigen" in page and "Match stoppen" in page
    assert 'id="match-busy"' in page and 'id="suggestions"' not in page  # no second proposal under way
    assert f"Bel ook de helper {mask(HELPER)} via Buurtlijn" in page

    sent, meeting = _local_input(days=3, hour=14, minute=30)
    response = post(mila, f"/dashboard/items/{item.id}/match",
                    {"action": "confirm", "meeting_at": sent, "note": "Helper neemt een ladder mee"},
                    page=f"/dashboard/items/{item.id}", follow_redirects=True)
    when = meeting.astimezone(AMSTERDAM).strftime("%d-%m-%Y %H:%M")
    assert f"De match is bevestigd voor {when}." in _text(response)
    assert f'id="item-{item.id}"' not in _text(response)

    session.expire_all()
    match = session.get(Match, match_id)
    assert (match.status, match.meeting_at) == ("confirmed", meeting)
    assert "Helper neemt een ladder mee" in match.note
    callback = session.get(Callback, item.id)
    assert (callback.status, callback.outcome) == ("done", "match_confirmed")
    assert listing_status(notify_app, request_id) == "matched"
    for phone in (HELPER, REQUESTER):
        assert bodies(fake_twilio, phone)[-1].startswith("Afgesproken: klussen in en om het huis, ")
        assert "14:30" in bodies(fake_twilio, phone)[-1]
    # The match's step is audited once (by models.matching); the item's outcome by the dashboard.
    assert [e.detail["meeting_at"] for e in _audits(session, "match.confirmed")] == [meeting.isoformat()]
    [outcome] = _audits(session, "callback.outcome")
    assert outcome.detail["outcome"] == "match_confirmed" and outcome.detail["match_id"] == match_id

    # Confirming set the reminders going: the day before, both are reminded.
    sent_before = len(fake_twilio.messages())
    day_before = (meeting.astimezone(AMSTERDAM) - dt.timedelta(days=1)).replace(hour=11, minute=0)
    sweep_matches(notify_app, day_before.astimezone(dt.timezone.utc))
    assert len(fake_twilio.messages()) == sent_before + 2
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("Herinnering van BUUV: morgen om 14:30")


def test_confirm_without_a_moment_and_a_wrong_moment(notify_app, webhooks, mila, session, fake_twilio):
    _request_id, match_id, item = _accepted(notify_app, webhooks, session)
    post(mila, f"/dashboard/items/{item.id}/claim")
    page = f"/dashboard/items/{item.id}"
    past, _ = _local_input(days=-1, hour=10)
    for moment in (past, "morgen om tien", "2026-13-45T99:99"):
        response = post(mila, f"{page}/match", {"action": "confirm", "meeting_at": moment, "note": "kladje"},
                        page=page, follow_redirects=True)
        assert "Dat moment klopt niet. Kies een datum en tijd die nog moeten komen." in _text(response)
        assert ">kladje</textarea>" in _text(response)  # the note is kept for the next try
        assert session.get(Match, match_id).status == "accepted"
    assert [e.detail["why"] for e in _audits(session, "callback.match_action")] == ["bad_moment"] * 3

    response = post(mila, f"{page}/match", {"action": "confirm", "meeting_at": ""}, page=page, follow_redirects=True)
    assert "De match is bevestigd. Beide buren krijgen bericht." in _text(response)
    session.expire_all()
    match = session.get(Match, match_id)
    assert match.status == "confirmed" and match.meeting_at is None
    assert bodies(fake_twilio, HELPER)[-1].startswith("Afgesproken: klussen")


def test_a_problem_on_a_confirmed_match_moves_the_moment(notify_app, webhooks, mila, session, fake_twilio):
    _request_id, match_id, item = _accepted(notify_app, webhooks, session)
    post(mila, f"/dashboard/items/{item.id}/claim")
    first, _ = _local_input(days=2, hour=10)
    post(mila, f"/dashboard/items/{item.id}/match", {"action": "confirm", "meeting_at": first},
         page=f"/dashboard/items/{item.id}")

    webhooks.sms(REQUESTER, "niet gelukt")
    problem = _item(session, match_id, "problem_reported")
    assert problem.resident_id == session.scalars(select(Resident.id).where(Resident.phone == REQUESTER)).one()
    page = f"/dashboard/items/{problem.id}"
    post(mila, f"{page}/claim")
    html = _text(mila.get(page))
    assert "<h1>Probleem gemeld" in html and "Nieuw moment opslaan" in html and "Hulp is gegeven: match klaar" in html
    assert "Probleem gemeld</strong>" in html.split('id="match-history"', 1)[1]
    # Each resident's details once: the reporter's in the resident's panel, the other side's on the match.
    assert html.count("<dt>Taal</dt>") == 2 and html.count("<dt>Soort nummer</dt>") == 2
    assert len(re.findall(r'<span class="phone[ "]', html)) == 2

    response = post(mila, f"{page}/match", {"action": "confirm", "meeting_at": ""}, page=page, follow_redirects=True)
    assert "De match is al bevestigd. Vul het nieuwe moment in." in _text(response)
    later, meeting = _local_input(days=4, hour=16)
    response = post(mila, f"{page}/match", {"action": "confirm", "meeting_at": later}, page=page,
                    follow_redirects=True)
    assert "De match is bevestigd voor" in _text(response)
    session.expire_all()
    assert session.get(Match, match_id).meeting_at == meeting
    assert session.get(Callback, problem.id).outcome == "match_confirmed"
    assert len(_audits(session, "match.reschedule")) == 1
    assert "16:00" in bodies(fake_twilio, HELPER)[-1]


def test_help_given_closes_the_match_and_the_item(notify_app, webhooks, mila, session):
    request_id, match_id, item = _accepted(notify_app, webhooks, session)
    page = f"/dashboard/items/{item.id}"
    post(mila, f"{page}/claim")
    response = post(mila, f"{page}/match", {"action": "done", "note": "Lamp hangt"}, page=page, follow_redirects=True)
    assert "Fijn! De match staat op klaar. Het item is uit de wachtrij." in _text(response)
    session.expire_all()
    match = session.get(Match, match_id)
    assert (match.status, match.closed_by) == ("done", "broker")
    assert listing_status(notify_app, request_id) == "done"
    callback = session.get(Callback, item.id)
    assert (callback.status, callback.outcome) == ("done", "match_done") and "Lamp hangt" in callback.note
    assert len(_audits(session, "match.done")) == 1


# --- stopping a match, another helper -------------------------------------------------------------


def test_stopping_keeps_the_item_and_offers_another_helper(notify_app, webhooks, mila, session, fake_twilio):
    request_id, match_id, item = _accepted(notify_app, webhooks, session, other_helper=True)
    page = f"/dashboard/items/{item.id}"
    post(mila, f"{page}/claim")
    response = post(mila, f"{page}/match", {"action": "cancel", "note": "Helper is ziek"}, page=page,
                    follow_redirects=True)
    html = _text(response)
    assert "De match is gestopt. De buren krijgen bericht. Kies nu een andere helper of een uitkomst." in html
    session.expire_all()
    match = session.get(Match, match_id)
    assert (match.status, match.closed_by) == ("cancelled", "broker")
    callback = session.get(Callback, item.id)
    assert (callback.status, callback.outcome) == ("claimed", None) and "Helper is ziek" in callback.note
    assert bodies(fake_twilio, HELPER)[-1].startswith("BUUV: de afspraak")
    assert bodies(fake_twilio, REQUESTER)[-1].startswith("BUUV: de afspraak")
    assert len(_audits(session, "match.cancelled")) == 1

    # The same item now suggests another helper; proposing closes it, still about the stopped match.
    assert 'id="find-other"' in html and "Match voorstellen met deze" in html
    other_offer = session.scalars(
        select(Listing.id).join(Resident, Resident.id == Listing.resident_id).where(Resident.phone == OTHER_HELPER)
    ).one()
    assert f'id="suggestion-{other_offer}"' in html
    response = post(mila, f"{page}/outcome", {"match_with": other_offer}, page=page, follow_redirects=True)
    assert "Opgeslagen: Match voorgesteld. Het item is uit de wachtrij." in _text(response)
    session.expire_all()
    new = session.scalars(select(Match).where(Match.offer_id == other_offer)).one()
    assert (new.status, new.request_id) == ("proposed", request_id)
    assert bodies(fake_twilio, OTHER_HELPER)[-1].endswith("Antwoord JA of NEE.")
    callback = session.get(Callback, item.id)
    assert (callback.status, callback.outcome, callback.match_id) == ("done", "match_proposed", match_id)


def test_declined_item_proposes_another_helper_and_leaves_out_the_one_who_said_no(notify_app, webhooks, mila,
                                                                                  session, fake_twilio):
    request_id, offer_id, other_offer = _pair(notify_app, other_helper=True)
    match_id = _propose(notify_app, request_id, offer_id)
    webhooks.sms(HELPER, "NEE")
    item = _item(session, match_id, "match_declined")
    page = f"/dashboard/items/{item.id}"
    post(mila, f"{page}/claim")
    html = _text(mila.get(page))
    assert "<h1>Match afgewezen" in html and 'id="match-status">afgewezen<' in html
    assert "Helper zei nee</strong>" in html.split('id="match-history"', 1)[1]
    assert 'id="match-actions"' not in html  # nothing left to confirm or stop
    assert f'id="suggestion-{other_offer}"' in html and f'id="suggestion-{offer_id}"' not in html

    response = post(mila, f"{page}/outcome", {"match_with": other_offer, "note": "Tweede keus"}, page=page,
                    follow_redirects=True)
    assert "Opgeslagen: Match voorgesteld." in _text(response)
    assert f'id="item-{item.id}"' not in _text(response)
    assert bodies(fake_twilio, OTHER_HELPER)[-1].endswith("Antwoord JA of NEE.")
    assert session.scalar(select(func.count(Match.id)).where(Match.request_id == request_id)) == 2


def test_expired_item_shows_the_expiry_and_can_propose_again(notify_app, mila, session, fake_twilio):
    request_id, offer_id, other_offer = _pair(notify_app, other_helper=True)
    match_id = _propose(notify_app, request_id, offer_id)
    with get_database(notify_app).transaction() as tx:
        tx.execute(update(Match).where(Match.id == match_id).values(respond_by=utcnow() - dt.timedelta(minutes=1)))
    assert sweep_matches(notify_app, utcnow()) == 1
    item = _item(session, match_id, "match_expired")
    page = f"/dashboard/items/{item.id}"
    post(mila, f"{page}/claim")
    html = _text(mila.get(page))
    assert "<h1>Match verlopen" in html and "Geen antwoord op tijd</strong>" in html
    assert "Gesloten door</dt><dd>Buurtlijn" in html
    response = post(mila, f"{page}/outcome", {"match_with": other_offer}, page=page, follow_redirects=True)
    assert "Opgeslagen: Match voorgesteld." in _text(response)
    session.expire_all()
    assert session.get(Callback, item.id).status == "done"


def test_refusals_are_plain_and_change_nothing(notify_app, webhooks, mila, session):
    _request_id, match_id, item = _accepted(notify_app, webhooks, session)
    page = f"/dashboard/items/{item.id}"
    # Not held: nothing moves.
    response = post(mila, f"{page}/match", {"action": "confirm"}, page=page, follow_redirects=True)
    assert "U heeft dit item niet meer" in _text(response)
    assert session.get(Match, match_id).status == "accepted"

    # The neighbour reports a problem; while a broker holds that item, the match is stopped elsewhere (the API).
    webhooks.sms(REQUESTER, "NIET GELUKT")
    problem = _item(session, match_id, "problem_reported")
    page = f"/dashboard/items/{problem.id}"
    post(mila, f"{page}/claim")
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        cancel_match(tx, match_id, reason="api")
    response = post(mila, f"{page}/match", {"action": "confirm"}, page=page, follow_redirects=True)
    assert "Dat kan niet meer: de match is nu gestopt." in _text(response)
    response = post(mila, f"{page}/match", {"action": "explode"}, page=page, follow_redirects=True)
    assert response.status_code == 200 and "Die uitkomst kennen we niet." in _text(response)
    session.expire_all()
    assert session.get(Callback, problem.id).status == "claimed"
    assert session.get(Match, match_id).status == "cancelled"
    assert [e.detail["why"] for e in _audits(session, "callback.match_action")] == [
        "not_held", "match_state", "unknown_outcome"]
    assert 'id="match-actions"' not in _text(mila.get(page))  # a stopped match offers no more match actions

    # An item without a match has no match actions and no second call.
    with get_database(notify_app).transaction() as tx:
        plain = queue_callback(tx, "callback_requested", resident_id=item.resident_id).id
    page = f"/dashboard/items/{plain}"
    post(mila, f"{page}/claim")
    response = post(mila, f"{page}/match", {"action": "done"}, page=page, follow_redirects=True)
    assert "Bij dit item hoort geen match." in _text(response)
    response = post(mila, f"{page}/call", {"nonce": "9" * 16, "who": "counterpart"}, page=page,
                    follow_redirects=True)
    assert "Bij dit item hoort geen tweede persoon om te bellen." in _text(response)
    assert session.scalar(select(func.count(Call.id)).where(Call.purpose == "broker_bridge")) == 0


# --- calling both -----------------------------------------------------------------------------------


def test_the_broker_can_call_the_resident_and_the_counterpart(notify_app, webhooks, mila, session, fake_twilio):
    _request_id, _match_id, item = _accepted(notify_app, webhooks, session)
    page = f"/dashboard/items/{item.id}"
    post(mila, f"{page}/claim")
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', _text(mila.get(page)))[1]
    post(mila, f"{page}/call", {"nonce": nonce}, page=page)
    post(mila, f"{page}/call", {"nonce": nonce, "who": "counterpart"}, page=page)
    post(mila, f"{page}/call", {"nonce": nonce, "who": "counterpart"}, page=page)  # a double click: one call

    assert [c["To"] for c in fake_twilio.calls()] == [MILA_PHONE, MILA_PHONE]
    session.expire_all()
    calls = session.scalars(select(Call).where(Call.purpose == "broker_bridge").order_by(Call.id)).all()
    requester = session.scalars(select(Resident).where(Resident.phone == REQUESTER)).one()
    helper = session.scalars(select(Resident).where(Resident.phone == HELPER)).one()
    assert [c.resident_id for c in calls] == [requester.id, helper.id]
    assert all(c.callback_id == item.id for c in calls)
    requests = _audits(session, "call.bridge_request")
    assert [e.detail["resident_id"] for e in requests] == [requester.id, helper.id, helper.id]
    assert requests[1].detail == {"callback_id": item.id, "resident_id": helper.id, "counterpart": True}

    # When the broker answers, Twilio is told to dial the helper, with our number as caller ID.
    twilio = TwilioWebhooks(notify_app.test_client())
    response = twilio.post(f"/twilio/bridge/{calls[1].id}/connect", {
        "CallSid": calls[1].call_sid, "AccountSid": "AC" + "a1" * 16, "From": GATEWAY_NUMBER, "To": MILA_PHONE,
        "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallStatus": "in-progress"})
    dial = parse_twiml(response.data).find("Dial")
    assert dial.get("callerId") == GATEWAY_NUMBER and [n.text for n in dial.findall("Number")] == [HELPER]
    # The page still never shows the helper's number.
    assert readable(HELPER) not in _text(mila.get(page))


def test_the_match_panel_in_english(notify_app, webhooks, mila, session):
    _request_id, _match_id, item = _accepted(notify_app, webhooks, session)
    post(mila, "/dashboard/language", {"next": "/dashboard"})
    post(mila, f"/dashboard/items/{item.id}/claim")
    html = _text(mila.get(f"/dashboard/items/{item.id}"))
    assert "<h1>Helper said yes: confirm the match" in html
    assert "Neighbour asking for help" in html and "Helper said yes</strong>" in html
    assert "Confirm the match" in html and "Also call the helper" in html
