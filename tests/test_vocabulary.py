"""One vocabulary: each code list is defined once, in models/vocabulary.py, and everything reads it.

The menus, SMS parsing, the tables' check constraints, the API's validation
and the dashboard's forms and filters all take their codes from there; a
second copy somewhere else would drift (a new category in the menu but not in
the dashboard's filter).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import texts
from gateway.dashboard import LANGUAGES as DASHBOARD_LANGUAGES
from ivr_flows.steps import STEPS
from models import Callback, Listing, Match, Message, vocabulary
from models.vocabulary import (
    CALL_OVER_STATUSES,
    CALL_STATUSES,
    CATEGORIES,
    KINDS,
    LISTING_STATUSES,
    MATCH_STATUSES,
    OFFER_TIMINGS,
    QUEUE_REASONS,
    REQUEST_TIMINGS,
    TWILIO_CALL_ENDED_STATUSES,
    check_in,
)
from tests.conftest import API_TOKEN, ROOT
from tests.dashboard_support import login, make_brokers

# Code lists whose every member together means one thing: a literal with exactly
# these members anywhere else is a second definition. (Two-word lists such as
# the kinds or the dashboard's languages also occur by coincidence in code, so
# only templates are searched for the kinds.)
DEFINITIONS = (
    "RESIDENT_LANGUAGES", "CATEGORIES", "CHANNELS", "LISTING_STATUSES", "REQUEST_TIMINGS", "OFFER_TIMINGS",
    "MATCH_STATUSES", "CALLBACK_STATUSES", "QUEUE_REASONS", "OUTCOMES", "REFERRALS", "CALLBACK_OUTCOMES",
    "INBOUND_MESSAGE_STATUSES", "CALL_STATUSES", "CALL_OVER_STATUSES", "TWILIO_CALL_ENDED_STATUSES",
    # the named groups of statuses
    "CURRENT_LISTING_STATUSES", "LIVE_MATCH_STATUSES", "AGREED_MATCH_STATUSES", "QUEUED_CALLBACK_STATUSES",
    "TWILIO_CALL_UNANSWERED_STATUSES",
)
_SKIPPED_PARTS = {"tests", "bench", "migrations", ".venv", "site-packages"}
_TEMPLATE_LIST = re.compile(r"""[(\[]\s*'[a-z_-]+'(?:\s*,\s*'[a-z_-]+')+\s*,?\s*[)\]]""")


def _sources() -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if not _SKIPPED_PARTS & set(p.relative_to(ROOT).parts) and p != ROOT / "models" / "vocabulary.py"]


def _literal_string_lists(path: Path) -> list[tuple[int, frozenset[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.append((node.lineno, frozenset(e.value for e in node.elts)))
    return found


def test_no_code_list_is_defined_twice():
    definitions = {name: frozenset(getattr(vocabulary, name)) for name in DEFINITIONS}
    copies = []
    for path in _sources():
        for line, members in _literal_string_lists(path):
            copies += [f"{path.relative_to(ROOT)}:{line} repeats {name}"
                       for name, defined in definitions.items() if members == defined]
    for path in sorted((ROOT / "gateway" / "templates").rglob("*.html")):
        for found in _TEMPLATE_LIST.finditer(path.read_text(encoding="utf-8")):
            members = frozenset(re.findall(r"'([a-z_-]+)'", found.group()))
            copies += [f"{path.relative_to(ROOT)} repeats {name}"
                       for name, defined in definitions.items() if members == defined or members == set(KINDS)]
    assert copies == []


def test_every_call_ends_on_the_last_rank():
    ranks = vocabulary.TWILIO_CALL_STATUS_RANK
    assert {status for status, rank in ranks.items() if rank == max(ranks.values())} \
        == vocabulary.TWILIO_CALL_ENDED_STATUSES


def test_the_menus_offer_the_vocabularys_codes_in_its_order():
    assert [o.value for o in STEPS["category"].options] == list(CATEGORIES)
    assert [o.digit for o in STEPS["category"].options] == [str(n) for n in range(1, 10)]
    assert [o.value for o in STEPS["when_request"].options] == list(REQUEST_TIMINGS)
    assert [o.value for o in STEPS["when_offer"].options] == list(OFFER_TIMINGS)
    assert [o.value for o in STEPS["language_menu"].options] == list(texts.LANGUAGES)


def test_the_tables_allow_exactly_the_vocabulary():
    def allowed(table, column: str) -> str:
        (constraint,) = [c for c in table.__table__.constraints
                         if getattr(c, "sqltext", None) is not None and str(c.sqltext).startswith(f"{column} IN")]
        return str(constraint.sqltext)

    assert allowed(Listing, "kind") == "kind IN ('request', 'offer')"
    assert allowed(Listing, "status") == check_in("status", LISTING_STATUSES)
    assert allowed(Match, "status") == check_in("status", MATCH_STATUSES)
    assert allowed(Callback, "status") == "status IN ('open', 'claimed', 'done', 'cancelled')"
    assert allowed(Message, "direction") == "direction IN ('inbound', 'outbound')"


def test_every_reason_has_a_priority():
    assert set(QUEUE_REASONS) >= {"match_accepted", "letter_or_visit", "new_listing", "callback_requested"}
    assert all(isinstance(vocabulary.REASON_PRIORITY[reason], int) for reason in QUEUE_REASONS)


def test_the_two_kinds_of_ended_call_have_names_that_say_which():
    # Our own Call.status of a call that is over, and Twilio's CallStatus after which no other follows:
    # once both were called ENDED_STATUSES, with different members.
    assert set(CALL_OVER_STATUSES) <= set(CALL_STATUSES)
    assert "completed" in TWILIO_CALL_ENDED_STATUSES and "completed" not in CALL_STATUSES
    assert not [f"{path.relative_to(ROOT)}" for path in _sources()
                if re.search(r"^\s*ENDED_STATUSES\s*=", path.read_text(encoding="utf-8"), re.MULTILINE)]


def test_the_dashboard_speaks_the_vocabularys_languages():
    assert DASHBOARD_LANGUAGES == vocabulary.BROKER_LANGUAGES == texts.DASHBOARD.languages
    assert texts.LANGUAGES == vocabulary.RESIDENT_LANGUAGES


@pytest.mark.parametrize("kind", KINDS)
def test_the_listing_form_offers_each_kind_its_timings(app, kind):
    make_brokers(app)
    client = app.test_client()
    login(client, "mila@buuv.example")
    page = client.get("/dashboard/new").get_data(as_text=True)
    timing = page.split('id="new-timing"', 1)[1].split("</select>", 1)[0]
    group = timing.split(f'label="{texts.DASHBOARD.t("nl", f"kind.{kind}")}"', 1)[1].split("</optgroup>", 1)[0]
    assert re.findall(r'<option value="([a-z_]+)"', group) == list(vocabulary.TIMINGS[kind])
    assert re.findall(r'name="kind" value="([a-z]+)"', page) == list(KINDS)


def test_the_api_filters_only_on_codes_it_knows(client):
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    for path in ("/api/v1/listings?kind=request", "/api/v1/listings?status=expired",
                 "/api/v1/callbacks?status=claimed", "/api/v1/listings?district=schalkwijk"):
        assert client.get(path, headers=headers).status_code == 200, path
    for path, allowed in (("/api/v1/listings?kind=requests", KINDS),
                          ("/api/v1/listings?status=gesloten", LISTING_STATUSES),
                          ("/api/v1/callbacks?status=closed", vocabulary.CALLBACK_STATUSES)):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 400, path
        assert answer.get_json()["error"] == "bad_request"
        assert all(code in answer.get_json()["message"] for code in allowed)
