"""Accounts and access: login, throttling, CSRF, session timeouts, coordinators, create-broker."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask import url_for
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.cli import main as cli
from gateway.dashboard.auth import ACCOUNT_MAX_FAILURES, ADDRESS_MAX_FAILURES
from gateway.database import get_database
from models import AuditEvent, Broker
from models.accounts import check_password
from tests.conftest import ROOT
from tests.dashboard_support import PASSWORD, csrf_token, login, post, token_in


def audit_actions(db) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_everything_is_behind_the_login(client):
    for path in ("/dashboard", "/dashboard/items/1", "/dashboard/new", "/dashboard/brokers", "/dashboard/audit",
                 "/dashboard/events"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.startswith("/login?next=")
    assert client.get("/dashboard/calls/1.json").status_code == 401


def test_every_dashboard_route_but_login_needs_a_login_and_its_forms_a_csrf_token(app, client):
    with app.test_request_context():
        routes = [
            (url_for(rule.endpoint, **dict.fromkeys(rule.arguments, 1)), method, rule.endpoint)
            for rule in app.url_map.iter_rules()
            if "dashboard" in rule.endpoint.split(".")[:-1]
            and rule.endpoint not in ("dashboard.auth.login", "dashboard.auth.logout")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        ]
    assert {endpoint.split(".")[1] for _path, _method, endpoint in routes} >= {
        "queue", "item", "matches", "calls", "listings", "language", "admin"}
    token = token_in(client.get("/login").get_data(as_text=True))
    for path, method, endpoint in routes:
        if method == "POST":
            assert client.post(path).status_code == 400, endpoint  # no CSRF token, refused before anything else
        response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        if path.endswith(".json"):
            assert response.status_code == 401, endpoint
        else:
            assert response.status_code == 302, endpoint
            assert response.location.startswith("/login?next="), endpoint


def test_login_page_is_dutch_first_and_english_on_request(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="nl">' in page and "Inloggen" in page and "Wachtwoord" in page
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Password" in page


def test_log_in_and_out(client, brokers, db):
    response = login(client, "Mila@BUUV.example")  # e-mail addresses are not case-sensitive
    assert response.status_code == 302 and response.location == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Ingelogd als Mila" in page
    assert client.get("/dashboard").headers["Cache-Control"] == "no-store"

    response = post(client, "/logout", follow_redirects=True)
    assert "U bent uitgelogd." in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302
    assert audit_actions(db)[:1] == ["login.success"] and "logout" in audit_actions(db)
    assert db.get(Broker, brokers.mila).last_login_at is not None


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(client, brokers):
    token = token_in(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=/dashboard/new", data={"email": "mila@buuv.example", "password": PASSWORD,
                                                              "csrf_token": token})
    assert response.location == "/dashboard/new"
    post(client, "/logout")
    token = token_in(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/x", data={"email": "mila@buuv.example",
                                                                 "password": PASSWORD, "csrf_token": token})
    assert response.location == "/dashboard"


def test_wrong_password_is_refused_with_one_message_for_known_and_unknown_accounts(client, brokers, db):
    wrong = login(client, "mila@buuv.example", "not-the-password")
    unknown = login(client, "nobody@buuv.example", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    message = "Het e-mailadres of wachtwoord klopt niet."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "login.failure")).all()
    assert [(e.actor_type, e.result, e.remote_addr) for e in events] == [
        ("broker", "refused", "127.0.0.1"), ("anonymous", "refused", "127.0.0.1")]


def test_account_locks_after_repeated_wrong_passwords(client, brokers, db):
    for _ in range(ACCOUNT_MAX_FAILURES):
        assert login(client, "mila@buuv.example", "wrong-password").status_code == 401
    locked = login(client, "mila@buuv.example")  # even the right password waits now
    assert locked.status_code == 429
    assert "Te veel mislukte pogingen" in locked.get_data(as_text=True)
    db.expire_all()
    mila = db.get(Broker, brokers.mila)
    assert mila.locked_until is not None
    assert "login.locked" in audit_actions(db)

    mila.locked_until = mila.locked_until - dt.timedelta(minutes=16)  # the lock runs out
    db.commit()
    assert login(client, "mila@buuv.example").status_code == 302


def test_unknown_address_locks_like_a_known_one(client, brokers):
    for _ in range(ACCOUNT_MAX_FAILURES):
        login(client, "ghost@buuv.example", "wrong-password")
    assert login(client, "ghost@buuv.example", "wrong-password").status_code == 429


def test_one_client_address_trying_many_accounts_is_locked_out(client, brokers):
    for n in range(ADDRESS_MAX_FAILURES):
        login(client, f"guess{n}@buuv.example", "wrong-password")
    assert login(client, "mila@buuv.example").status_code == 429
    other = client.application.test_client()
    response = login(other, "mila@buuv.example", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 302  # another address is not punished


def test_forms_without_a_csrf_token_are_refused(client, brokers, db):
    response = client.post("/login", data={"email": "mila@buuv.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "Het formulier was verlopen" in response.get_data(as_text=True)
    login(client, "mila@buuv.example")
    assert client.post("/dashboard/claim-next").status_code == 400
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/dashboard").status_code == 200  # still logged in: the forged logout did nothing


def test_session_ends_after_idle_time_and_after_ten_hours(client, brokers):
    login(client, "mila@buuv.example")
    with client.session_transaction() as session:
        session["seen_at"] = time.time() - 31 * 60
    response = client.get("/dashboard", follow_redirects=True)
    assert "30 minuten niets deed" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302

    login(client, "mila@buuv.example")
    with client.session_transaction() as session:
        session["login_at"] = time.time() - 10 * 3600 - 1
    response = client.get("/dashboard", follow_redirects=True)
    assert "10 uur ingelogd" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite(client, brokers):
    response = login(client, "mila@buuv.example")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.application.config["SESSION_COOKIE_SECURE"] is False  # TESTING; production is True


def test_broker_switches_the_dashboard_to_english(client, brokers, db):
    login(client, "mila@buuv.example")
    response = post(client, "/dashboard/language", {"next": "/dashboard"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page and "Take the next item" in page
    db.expire_all()
    assert db.get(Broker, brokers.mila).language == "en"


def test_only_coordinators_see_the_broker_and_audit_pages(client, brokers, db):
    login(client, "mila@buuv.example")
    assert client.get("/dashboard/brokers").status_code == 403
    assert client.get("/dashboard/audit").status_code == 403
    assert "Makelaars" not in client.get("/dashboard").get_data(as_text=True)
    assert "dashboard.forbidden" in audit_actions(db)

    post(client, "/logout")
    login(client, "cor@buuv.example")
    page = client.get("/dashboard/audit").get_data(as_text=True)
    assert "login.success" in page and "dashboard.forbidden" in page
    # Both refused pages (brokers, audit) and nothing else.
    assert client.get("/dashboard/audit?action=forbidden").get_data(as_text=True).count("<code>") == 2


def test_coordinator_adds_and_disables_a_broker(client, brokers, db):
    login(client, "cor@buuv.example")
    response = post(client, "/dashboard/brokers", {"email": "nina@buuv.example", "name": "Nina", "role": "broker",
                                                   "phone": "0612340009", "password": "a-long-password"},
                    page="/dashboard/brokers")
    assert response.status_code == 302
    nina = db.scalars(select(Broker).where(Broker.email == "nina@buuv.example")).one()
    assert (nina.role, nina.phone, nina.active) == ("broker", "+31612340009", True)
    assert check_password(nina, "a-long-password")

    refused = post(client, "/dashboard/brokers", {"email": "x@buuv.example", "name": "X", "role": "broker",
                                                  "password": "short"}, page="/dashboard/brokers")
    assert refused.status_code == 400 and "Het wachtwoord moet minstens 10 tekens hebben." in refused.get_data(as_text=True)

    other = client.application.test_client()
    login(other, "nina@buuv.example", "a-long-password")
    assert other.get("/dashboard").status_code == 200
    # A click on "Uitschakelen" asks first; nothing changes until the question's own form is sent.
    asked = post(client, f"/dashboard/brokers/{nina.id}/active", {"active": "0"}, page="/dashboard/brokers")
    question = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Weet u zeker dat u Nina (nina@buuv.example) wilt uitschakelen?" in question
    assert 'name="confirmed" value="1"' in question and "Ja, uitschakelen" in question and "Nee, terug" in question
    db.expire_all()
    assert db.get(Broker, nina.id).active and other.get("/dashboard").status_code == 200
    assert "broker.disable" not in audit_actions(db)
    confirmed = client.post(f"/dashboard/brokers/{nina.id}/active",
                            data={"active": "0", "confirmed": "1", "csrf_token": token_in(question)})
    assert confirmed.status_code == 302
    assert other.get("/dashboard").status_code == 302  # her open session ends at once
    assert login(other, "nina@buuv.example", "a-long-password").status_code == 401
    assert {"broker.create", "broker.disable"} <= set(audit_actions(db))


def test_a_disable_without_its_confirmation_changes_nothing_and_enabling_needs_none(client, brokers, db):
    login(client, "cor@buuv.example")
    for form in ({"active": "0"}, {"active": "0", "confirmed": "yes"}, {"active": "0", "confirmed": ""}):
        response = post(client, f"/dashboard/brokers/{brokers.mila}/active", form, page="/dashboard/brokers")
        assert response.status_code == 200 and "Weet u zeker" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Broker, brokers.mila).active
    post(client, f"/dashboard/brokers/{brokers.mila}/active", {"active": "0", "confirmed": "1"},
         page="/dashboard/brokers")
    db.expire_all()
    assert not db.get(Broker, brokers.mila).active
    response = post(client, f"/dashboard/brokers/{brokers.mila}/active", {"active": "1"}, page="/dashboard/brokers")
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Broker, brokers.mila).active
    assert client.post(f"/dashboard/brokers/{brokers.mila}/active", data={"active": "0", "confirmed": "1"}).status_code == 400  # no CSRF token


def test_coordinator_cannot_disable_themselves(client, brokers, db):
    login(client, "cor@buuv.example")
    response = post(client, f"/dashboard/brokers/{brokers.cor}/active", {"active": "0"}, page="/dashboard/brokers",
                    follow_redirects=True)
    assert "U kunt uzelf niet uitschakelen." in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Broker, brokers.cor).active


# --- buurtlijn create-broker ------------------------------------------------------------------


def _cli_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "SECRET_KEY": "cli-test", "REDIS_URL": ""}


def test_create_broker_reads_the_password_from_stdin(database_url):
    result = CliRunner().invoke(
        cli, ["create-broker", "Nina@BUUV.example", "--name", "Nina", "--role", "coordinator",
              "--phone", "06 1234 0009"],
        input="a-long-password\n", env=_cli_env(database_url),
    )
    assert result.exit_code == 0, result.output
    assert "created coordinator nina@buuv.example" in result.output
    engine = create_engine(database_url)
    with Session(engine) as session:
        nina = session.scalars(select(Broker).where(Broker.email == "nina@buuv.example")).one()
        assert (nina.role, nina.phone) == ("coordinator", "+31612340009")
        assert check_password(nina, "a-long-password")
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "broker.create")).one()
        assert event.detail == {"role": "coordinator", "via": "cli"}
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "broker"], "short\n", "at least 10 characters"),
        (["--role", "boss"], "a-long-password\n", "Invalid value for '--role'"),
        (["--phone", "12"], "a-long-password\n", "not a valid number"),
    ],
)
def test_create_broker_refuses_bad_input(database_url, args, password, message):
    result = CliRunner().invoke(cli, ["create-broker", "nina@buuv.example", "--name", "Nina", *args],
                                input=password, env=_cli_env(database_url))
    assert result.exit_code != 0
    assert message in result.output


def test_create_broker_as_a_script_in_its_own_process(database_url):
    """As an operator scripts it: `echo password | buurtlijn create-broker …`."""
    completed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "create-broker", "bram@buuv.example", "--name", "Bram",
         "--role", "broker", "--phone", "+31612340003"],
        input="a-long-password\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**_cli_env(database_url), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stderr
    assert "created broker bram@buuv.example" in completed.stdout
    again = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "create-broker", "bram@buuv.example", "--name", "Bram"],
        input="a-long-password\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**_cli_env(database_url), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert again.returncode != 0 and "exists already" in again.stderr


def test_production_cookies_are_secure_and_last_at_most_ten_hours(database_url, fake_twilio):
    from gateway import create_app
    from tests.conftest import app_config

    config = app_config(database_url, fake_twilio)
    del config["TESTING"]
    app = create_app(config)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["PERMANENT_SESSION_LIFETIME"] == dt.timedelta(hours=10)
    get_database(app).dispose()


def test_twilio_webhooks_neither_read_nor_set_the_session_cookie(client, brokers, app):
    from tests.conftest import TwilioWebhooks

    login(client, "mila@buuv.example")  # the browser holds a session cookie; Twilio never does
    response = TwilioWebhooks(client).sms("+31612345678", "HULP")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    # The dashboard session is untouched by the webhook.
    assert client.get("/dashboard").status_code == 200


def test_the_audit_log_reads_as_sentences_with_a_date_filter_and_a_csv_for_excel(client, brokers, db):
    """It used to show codes only ("callback.view broker #3"), without dates to narrow it or an export."""
    from models import AuditEvent
    from models.base import utcnow

    now = utcnow()
    db.add_all([
        AuditEvent(at=now, actor_type="broker", actor_id=brokers.mila, action="callback.view",
                   object_type="callback", object_id=6, result="ok"),
        AuditEvent(at=now - dt.timedelta(days=40), actor_type="broker", actor_id=brokers.mila,
                   action="recording.stream", object_type="listing", object_id=9, result="ok"),
        AuditEvent(at=now, actor_type="api", action="match.propose", object_type="match", object_id=4,
                   result="refused"),
    ])
    db.commit()
    login(client, "cor@buuv.example")
    page = client.get("/dashboard/audit").get_data(as_text=True)
    assert "Mila bekeek item 6" in page
    assert "Mila luisterde het ingesproken bericht bij vraag of aanbod 9 af" in page
    assert "De API stelde match 4 voor (geweigerd)" in page

    today = now.astimezone(ZoneInfo("Europe/Amsterdam")).date().isoformat()
    narrowed = client.get(f"/dashboard/audit?from={today}&to={today}").get_data(as_text=True)
    assert "Mila bekeek item 6" in narrowed and "vraag of aanbod 9" not in narrowed
    assert "Schrijf hem als 2026-12-31" in client.get("/dashboard/audit?from=31-12-2026").get_data(as_text=True)

    export = client.get(f"/dashboard/audit.csv?from={today}&action=callback")
    assert export.mimetype == "text/csv" and "attachment" in export.headers["Content-Disposition"]
    body = export.get_data().decode("utf-8")
    assert body.startswith("\ufeffWanneer;Wat;Actie;Object;Resultaat;Vanaf\r\n")
    assert ";Mila bekeek item 6;callback.view;callback 6;ok;" in body and "match.propose" not in body
    assert client.get("/dashboard/audit?broker=99999999999999999999999").status_code == 200


def test_the_audit_log_says_in_words_what_residents_and_the_system_did_to_listings(client, brokers, db):
    """Check-ins, expiry, withdrawal and marks once read as codes ("Systeem deed: listing.expired")."""
    from models.base import utcnow

    now = utcnow()
    db.add_all([
        AuditEvent(at=now, actor_type="system", action="listing.checkin_asked", object_type="listing", object_id=7),
        AuditEvent(at=now, actor_type="resident", action="listing.checkin_answered", object_type="listing",
                   object_id=7),
        AuditEvent(at=now, actor_type="system", action="listing.expired", object_type="listing", object_id=8),
        AuditEvent(at=now, actor_type="resident", action="listing.withdraw", object_type="listing", object_id=9),
        AuditEvent(at=now, actor_type="resident", action="match.satisfaction", object_type="match", object_id=3),
    ])
    db.commit()
    login(client, "cor@buuv.example")
    page = client.get("/dashboard/audit").get_data(as_text=True)
    assert "Bewoner gevraagd of vraag of aanbod 7 nog actueel is" in page
    assert "Een bewoner antwoordde of vraag of aanbod 7 nog actueel is" in page
    assert "Vraag of aanbod 8 is verlopen" in page
    assert "Een bewoner trok vraag of aanbod 9 in" in page
    assert "Een bewoner gaf een cijfer voor match 3" in page
    assert "deed: listing." not in page and "deed: match." not in page
