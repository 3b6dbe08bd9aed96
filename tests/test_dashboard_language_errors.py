"""Every refusal a broker reads is in the broker's language: flashes, form errors, the dashboard's 4xx pages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.database import get_database
from models import Resident
from tests.conftest import ROOT
from tests.dashboard_support import logged_in, make_brokers, post, seed_listing
from texts import DASHBOARD

REQUESTER = "+31612345678"
HELPER = "+31612345679"


@pytest.fixture
def cor(app):  # type: ignore[no-untyped-def]
    """Cor, a coordinator, logged in; his dashboard speaks Dutch."""
    make_brokers(app)
    return logged_in(app, "cor@buuv.example")


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def test_a_refused_new_broker_is_told_why_in_dutch_and_in_english(cor):
    cases = [
        ({"email": "geen-adres", "name": "Nina", "role": "broker", "password": "a-long-password"},
         "Dat is geen e-mailadres.", "That is not an e-mail address."),
        ({"email": "nina@buuv.example", "name": "Nina", "role": "broker", "password": "kort"},
         "Het wachtwoord moet minstens 10 tekens hebben.", "The password needs at least 10 characters."),
        ({"email": "nina@buuv.example", "name": " ", "role": "broker", "password": "a-long-password"},
         "Vul een naam in.", "Fill in a name."),
        ({"email": "nina@buuv.example", "name": "Nina", "role": "baas", "password": "a-long-password"},
         "Kies een rol uit de lijst.", "Choose a role from the list."),
        ({"email": "mila@buuv.example", "name": "Mila", "role": "broker", "password": "a-long-password"},
         "Er is al een makelaar met dit e-mailadres.", "There is a broker with this e-mail address already."),
        ({"email": "nina@buuv.example", "name": "Nina", "role": "broker", "password": "a-long-password",
          "phone": "12"}, "Dat telefoonnummer klopt niet.", "That phone number is not right."),
    ]
    for form, dutch, _english in cases:
        response = post(cor, "/dashboard/brokers", form, page="/dashboard/brokers")
        assert response.status_code == 400 and dutch in _text(response), form
    post(cor, "/dashboard/language", {"next": "/dashboard"})
    for form, _dutch, english in cases:
        response = post(cor, "/dashboard/brokers", form, page="/dashboard/brokers")
        assert response.status_code == 400 and english in _text(response), form


def test_a_refused_match_says_why_in_dutch(app, cor):
    _request_id, item = seed_listing(app, REQUESTER, "request", "groceries", "2034")
    offer_id, _ = seed_listing(app, HELPER, "offer", "groceries", "2034")
    with get_database(app).transaction() as session:
        session.scalars(select(Resident).where(Resident.phone == HELPER)).one().opted_out = True
    page = f"/dashboard/items/{item}"
    post(cor, f"{page}/claim")
    response = post(cor, f"{page}/outcome", {"match_with": offer_id}, page=page, follow_redirects=True)
    assert "Deze match kan niet: deze helper wil geen sms meer; bel hem of haar." in _text(response)
    assert "opted out" not in _text(response)


def test_the_dashboards_error_pages_are_dutch(app, cor):
    missing = cor.get("/dashboard/items/999999")
    assert missing.status_code == 404 and "Dit item bestaat niet (meer)." in _text(missing)
    assert "Not Found" not in _text(missing) and '<html lang="nl">' in _text(missing)
    typo = cor.get("/dashboard/itmes/1")  # no view takes it
    assert typo.status_code == 404 and "Dit item bestaat niet (meer)." in _text(typo)
    wrong_method = cor.get("/dashboard/brokers/1/active")
    assert wrong_method.status_code == 405 and "Dat kan zo niet. Gebruik de knoppen op de pagina." in _text(wrong_method)
    # Elsewhere the app answers as before: the API in JSON.
    api = cor.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.is_json
    assert cor.patch("/api/v1/listings/1", json={}).status_code in (401, 403)  # routed: asks for the API's key
    revoked = post(cor, "/dashboard/api-clients/999999/revoke", page="/dashboard/api-clients")
    assert revoked.status_code == 404 and "Dit item bestaat niet (meer)." in _text(revoked)

    mila = logged_in(app, "mila@buuv.example")
    forbidden = mila.get("/dashboard/brokers")
    assert forbidden.status_code == 403 and "Dit mag alleen een coördinator." in _text(forbidden)
    assert "Forbidden" not in _text(forbidden)
    # Asked for JSON (the page's own scripts), the answer stays JSON.
    json_missing = mila.get("/dashboard/items/999999", headers={"Accept": "application/json"})
    assert json_missing.status_code == 404 and json_missing.get_json() == {"error": "not_found"}


def test_a_report_period_that_cannot_be_is_refused_in_dutch(cor):
    response = cor.get("/dashboard/reports?period=custom&from=2026-05-01&to=2026-04-01&by=district")
    assert "Deze periode kan niet: de einddatum ligt voor de begindatum." in _text(response)
    assert "must not be before" not in _text(response)
    response = cor.get("/dashboard/reports?period=custom&from=2026-5-1&to=2026-06-01&by=district")
    assert "een datum schrijft u als dag, maand en jaar." in _text(response)


# --- nothing English from an exception reaches a page ---------------------------------------------


def test_no_dashboard_view_shows_an_exceptions_own_message():
    """An exception's message is English, for logs and the API: a page shows a catalogue text by its code."""
    shown = []
    for path in sorted((ROOT / "gateway" / "dashboard").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bstr\(exc\)|\bdescription\b.*\berror\b", line):
                shown.append(f"{path.name}:{number}")
    assert shown == []


_REFUSALS = {"MatchError": "match.refused", "AccountError": "brokers.error", "ReportError": "reports.refused",
             "ListingChangeRefused": "listing_life.refused"}


def _raised_whys(path: Path) -> set[tuple[str, str]]:
    """(catalogue group, why) of every ``raise SomeRefusal(message, ..., why)`` in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name) and node.exc.func.id in _REFUSALS):
            continue
        name = node.exc.func.id
        keywords = {k.arg: k.value for k in node.exc.keywords}
        if "why" in keywords:
            value = keywords["why"]
        elif name == "MatchError":  # why defaults to the kind, "conflict" unless given
            value = node.exc.args[2] if len(node.exc.args) > 2 else (
                node.exc.args[1] if len(node.exc.args) > 1 else ast.Constant("conflict"))
        else:
            value = node.exc.args[1]
        assert isinstance(value, ast.Constant), f"{path.name}:{node.lineno}: the reason must be a plain word"
        found.add((_REFUSALS[name], value.value))
    return found


def test_every_reason_a_refusal_names_has_a_text_in_each_dashboard_language():
    reasons = set().union(*(_raised_whys(path) for path in sorted((ROOT / "models").glob("*.py"))))
    assert len(reasons) > 25 and ("match.refused", "opted_out") in reasons
    for language in DASHBOARD.languages:
        missing = sorted(f"{group}.{why}" for group, why in reasons
                         if not DASHBOARD.catalogue(language).get(f"{group}.{why}"))
        assert missing == [], f"texts/dashboard/{language}.toml"
