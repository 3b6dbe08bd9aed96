"""The catalogues: every key in every language it is offered in, the same placeholders, one loader.

Residents' texts are offered in nl, en, tr and ar; the dashboard's in nl and
en. A category has one name, which residents read and hear and brokers see.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

import texts
from models.vocabulary import CALLBACK_OUTCOMES, CATEGORIES, KINDS, QUEUE_REASONS, REFERRALS, TIMINGS
from tests.conftest import ROOT
from tests.dashboard_support import login, make_brokers, post
from texts import DASHBOARD, RESIDENTS

# Keys a language leaves to Dutch on purpose: none. A resident hears and reads
# every text in the language they chose.
DUTCH_ON_PURPOSE: dict[str, set[str]] = {}
# The bridge's lines are spoken to a broker, in a dashboard language (nl, en), never to a resident.
BROKERS_ONLY = {"bridge.connecting", "bridge.not_answered", "bridge.unknown", "bridge.refused"}
# The contract's category table (contract.md, "Categories and districts"): what the flyers print.
CONTRACT_DUTCH = {
    "groceries": "boodschappen",
    "chores": "klussen in en om het huis",
    "transport": "vervoer en begeleiding (bijv. naar de dokter)",
    "company": "gezelschap (wandelen, koffie, samen eten)",
    "digital": "computer en telefoon",
    "language": "taal (Nederlands oefenen)",
    "paperwork": "administratie en formulieren",
    "sitting": "oppassen (kinderen, huisdieren)",
    "other": "iets anders",
}
_FORMATTER = string.Formatter()


def placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in _FORMATTER.parse(text) if name is not None}


@pytest.mark.parametrize(("catalogues", "language"),
                         [(RESIDENTS, lang) for lang in RESIDENTS.languages[1:]]
                         + [(DASHBOARD, lang) for lang in DASHBOARD.languages[1:]])
def test_every_key_is_in_every_language_it_is_offered_in(catalogues, language):
    dutch = set(catalogues.catalogue("nl"))
    other = set(catalogues.catalogue(language))
    expected_missing = set()
    if catalogues is RESIDENTS:
        expected_missing = DUTCH_ON_PURPOSE.get(language, set()) | (set() if language in DASHBOARD.languages
                                                                     else BROKERS_ONLY)
    assert dutch - other == expected_missing, f"{catalogues.folder.name}/{language}.toml lacks keys"
    assert other - dutch == set(), f"{catalogues.folder.name}/{language}.toml has keys Dutch does not"


def test_the_dashboard_has_a_catalogue_per_language_and_nothing_else():
    assert sorted(p.stem for p in DASHBOARD.folder.glob("*.toml")) == sorted(DASHBOARD.languages)
    assert len(DASHBOARD.catalogue("nl")) > 300


@pytest.mark.parametrize("catalogues", [RESIDENTS, DASHBOARD], ids=["residents", "dashboard"])
def test_placeholders_match_across_languages(catalogues):
    dutch = catalogues.catalogue("nl")
    for language in catalogues.languages[1:]:
        for key, text in catalogues.catalogue(language).items():
            # A translation may leave a value out where its grammar needs no word for it, never add one
            # (filling it in would fail); the dashboard's two languages say the same things.
            if catalogues is DASHBOARD:
                assert placeholders(text) == placeholders(dutch[key]), (language, key)
            else:
                assert placeholders(text) <= placeholders(dutch[key]), (language, key)


def test_a_missing_text_falls_back_to_dutch_and_an_unknown_key_is_loud(tmp_path):
    assert DASHBOARD.t("tr", "queue.title") == DASHBOARD.t("nl", "queue.title")
    (tmp_path / "nl.toml").write_text('[sms]\nhelp = "Stuur VRAAG"\nstopped = "Gestopt"\n', encoding="utf-8")
    (tmp_path / "ar.toml").write_text('[sms]\nhelp = "أرسل VRAAG"\n', encoding="utf-8")
    half_translated = texts.Catalogues(tmp_path, ("nl", "ar"))
    assert half_translated.t("ar", "sms.help") == "أرسل VRAAG"
    assert half_translated.t("ar", "sms.stopped") == "Gestopt"
    with pytest.raises(KeyError, match="queue.nonsense"):
        DASHBOARD.t("nl", "queue.nonsense")
    # The dashboard's words are not the residents': each catalogue answers only for its own keys.
    assert not RESIDENTS.has("nl", "queue.title") and not DASHBOARD.has("nl", "sms.help")


def test_there_is_one_loader():
    assert not (ROOT / "gateway" / "dashboard" / "i18n.py").exists()
    sources = [p for p in ROOT.rglob("*.py")
               if not {"tests", ".venv", "site-packages", "bench"} & set(p.relative_to(ROOT).parts)]
    readers = [p.relative_to(ROOT) for p in sources if "tomllib.load" in p.read_text(encoding="utf-8")
               and "toml" in p.read_text(encoding="utf-8")]
    assert Path("texts/__init__.py") in readers
    assert not [p for p in readers if p.parts[0] in ("gateway", "sms", "ivr_flows", "workers")], readers


# --- every key the dashboard asks for exists ---------------------------------------------------

# t('queue.title') in the dashboard and its templates.
_LITERAL_KEY = re.compile(r"""\bt\((?:\s*[a-z_]+,)?\s*['"]([a-z_][a-z0-9_.-]*)['"]""")
_LABEL = re.compile(r"""\blabel\(\s*['"]([a-z_.]+)['"]\s*,\s*['"]([a-z_-]+)['"]""")


def _dashboard_sources() -> list[Path]:
    return [*sorted((ROOT / "gateway" / "templates" / "dashboard").glob("*.html")),
            *sorted((ROOT / "gateway" / "dashboard").glob("*.py"))]


def test_every_literal_key_the_dashboard_uses_is_in_its_catalogue():
    used: set[str] = set()
    for path in _dashboard_sources():
        source = path.read_text(encoding="utf-8")
        used |= set(_LITERAL_KEY.findall(source))
        used |= {f"{group}.{code}" for group, code in _LABEL.findall(source)}
    assert len(used) > 150
    keys = DASHBOARD.catalogue("nl")
    # t('match.step.' ~ step.step) and t('item.referred_' ~ referral) build their key: some key must begin with that prefix.
    missing = sorted(key for key in used if key not in keys and not (
        key.endswith((".", "_")) and any(k.startswith(key) for k in keys)))
    assert missing == []


def test_every_code_the_dashboard_names_has_a_label():
    for reason in QUEUE_REASONS:
        assert DASHBOARD.has("nl", f"reason.{reason}"), reason
    for kind in KINDS:
        assert DASHBOARD.has("nl", f"kind.{kind}"), kind
    for timing in {t for timings in TIMINGS.values() for t in timings} | {"unknown"}:
        assert DASHBOARD.has("nl", f"timing.{timing}"), timing
    for outcome in CALLBACK_OUTCOMES:
        assert DASHBOARD.has("nl", f"outcome.{outcome}"), outcome
    for referral in REFERRALS:
        assert DASHBOARD.has("nl", f"item.referred_{referral}"), referral


# --- one name for a category ---------------------------------------------------------------------


def test_the_dutch_category_names_are_the_contracts():
    assert set(CONTRACT_DUTCH) == set(CATEGORIES)
    for category in CATEGORIES:
        name = texts.category_name("nl", category)
        # The name in a sentence is the contract's, or the part of it that says what it is.
        assert name.lower() in CONTRACT_DUTCH[category].lower(), (category, name)
    assert not any(key.startswith("category.") for key in DASHBOARD.catalogue("nl")), \
        "the dashboard names categories with the residents' words"


def _category_options(html: str, select_id: str) -> dict[str, str]:
    chosen = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return dict(re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]+)</option>', chosen))


def test_a_broker_reads_the_category_names_a_resident_reads(app):
    make_brokers(app)
    client = app.test_client()
    login(client, "mila@buuv.example")
    for language in ("nl", "en"):
        queue = client.get("/dashboard").get_data(as_text=True)
        new = client.get("/dashboard/new").get_data(as_text=True)
        for html, select_id in ((queue, "f-category"), (new, "new-category")):
            shown = _category_options(html, select_id)
            assert list(shown) == list(CATEGORIES)
            for category, name in shown.items():
                resident_name = texts.category_name(language, category)
                assert name == resident_name[:1].upper() + resident_name[1:], (language, category)
        if language == "nl":
            post(client, "/dashboard/language", {"next": "/dashboard"})
