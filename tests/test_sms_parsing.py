"""Reading SMS without HTTP: keywords, categories, postcodes, GSM-7 texts."""

from __future__ import annotations

import os

import pytest

import texts
from models.districts import district_map, find_postcode, load_districts
from sms.keywords import KEYWORDS, lookup
from models.vocabulary import CATEGORIES, FALLBACK_CATEGORY
from sms.parsing import CATEGORY_WORDS, detect_category, split_words

CONTRACT_KEYWORDS = {
    "VRAAG": "request", "REQUEST": "request", "AANBOD": "offer", "OFFER": "offer", "STATUS": "status",
    "BEL": "callback", "CALL": "callback", "HULP": "help", "INFO": "help", "HELP": "help",
    "STOP": "stop", "AFMELDEN": "stop", "STOPALL": "stop", "UNSUBSCRIBE": "stop", "CANCEL": "stop",
    "END": "stop", "QUIT": "stop", "START": "start", "AANMELDEN": "start", "UNSTOP": "start",
    "JA": "yes", "NEE": "no", "YES": "yes", "NO": "no", "KLAAR": "done", "DONE": "done",
}


def parse(body: str):  # type: ignore[no-untyped-def]
    words = split_words(body)
    found = lookup(words.first, words.first_two)
    return (found[1].command if found else None), words


@pytest.mark.parametrize(("word", "command"), sorted(CONTRACT_KEYWORDS.items()))
def test_every_contract_keyword_is_registered(word, command):
    assert KEYWORDS[word].command == command
    for variant in (word, word.lower(), word.capitalize(), f"{word.lower()}:", f" {word}!", f"{word}."):
        assert parse(variant)[0] == command, variant


@pytest.mark.parametrize(
    ("body", "command", "rest"),
    [
        ("vraag: boodschappen 2034", "request", "boodschappen 2034"),
        ("Vráág boodschappen", "request", "boodschappen"),
        ("AANBOD,klussen", "offer", "klussen"),
        ("Offer - dog walking", "offer", "dog walking"),
        ("niet gelukt, helaas", "problem", None),
        # The first word counts, opt-out and help words too (contract, second wave).
        ("stop met sturen aub", "stop", None),
        ("stop alsjeblieft", "stop", None),
        ("Stop!!", "stop", None),
        ("STOP met sms", "stop", None),
        ("Help, ik ben gevallen", "help", "ik ben gevallen"),
        ("Hallo, ik zoek hulp", None, None),
    ],
)
def test_keyword_and_rest(body, command, rest):
    found, words = parse(body)
    assert found == command
    if rest is not None:
        assert words.after_first == rest


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("boodschappen doen bij de Jumbo", "groceries"),
        ("can someone do my shopping", "groceries"),
        ("lamp ophangen in de gang", "chores"),
        ("my garden needs work", "chores"),
        ("lift naar het ziekenhuis dinsdag", "transport"),
        ("Wie rijdt mij naar de huisarts", "transport"),
        ("samen koffie drinken en een wandeling", "company"),
        ("hulp met mijn telefoon en whatsapp", "digital"),
        ("I want to practise my Dutch", "language"),
        ("Nederlands oefenen", "language"),
        ("brief van de belasting begrijpen", "paperwork"),
        ("oppassen op de hond", "sitting"),
        ("babysitting on friday", "sitting"),
        ("iets met een appel", "other"),
        ("mijn postcode is 2034", "other"),
    ],
)
def test_category_from_the_words(text, category):
    assert detect_category(text) == category


def test_every_category_has_dutch_and_english_words():
    # Every category but the fallback is read from words; the fallback is what no word points to.
    assert set(CATEGORY_WORDS) == set(CATEGORIES) - {FALLBACK_CATEGORY}
    for category, stems in CATEGORY_WORDS.items():
        assert len(stems) >= 5, category
        assert texts.t("nl", f"category.{category}") and texts.t("en", f"category.{category}")


@pytest.mark.parametrize(
    ("text", "postcode"),
    [("2034", "2034"), ("2034AB", "2034"), ("postcode 2011 ab", "2011"), ("bel 0612345678", None),
     ("om 10 uur", None), ("12345", None), ("0999", None)],
)
def test_postcode_from_free_text(text, postcode):
    assert find_postcode(text) == postcode


def test_default_district_file_covers_every_haarlem_postcode():
    districts = district_map()
    for number in range(2011, 2038):
        assert districts.district_for(str(number)) in {"centrum", "noord", "oost", "schalkwijk", "zuid-west"}
    assert districts.district_for("1011") is None
    assert "oost" in districts.neighbours("schalkwijk")


def test_organisation_can_point_at_its_own_district_file(tmp_path, monkeypatch):
    own = tmp_path / "wijken.toml"
    own.write_text('[districts.bloemendaal]\nname = "Bloemendaal"\npostcodes = ["2061"]\n', encoding="utf-8")
    monkeypatch.setenv("BUURTLIJN_DISTRICTS_FILE", str(own))
    assert district_map().district_for("2061") == "bloemendaal"
    assert district_map().district_for("2034") is None


def test_an_edited_district_file_is_picked_up_within_seconds(tmp_path, monkeypatch):
    from models import districts

    own = tmp_path / "wijken.toml"
    own.write_text('[districts.noord]\nname = "Noord"\npostcodes = ["2021"]\n', encoding="utf-8")
    monkeypatch.setenv("BUURTLIJN_DISTRICTS_FILE", str(own))
    clock = [1000.0]
    monkeypatch.setattr(districts.time, "monotonic", lambda: clock[0])
    assert district_map().district_for("2021") == "noord"

    own.write_text('[districts.noord]\nname = "Noord"\npostcodes = ["2021", "2022"]\n', encoding="utf-8")
    os.utime(own, (own.stat().st_atime, own.stat().st_mtime + 10))
    clock[0] += 1.0  # within the interval the file is not looked at
    assert district_map().district_for("2022") is None
    clock[0] += districts.RECHECK_SECONDS
    assert district_map().district_for("2022") == "noord"


def test_a_postcode_in_two_districts_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[districts.a]\npostcodes = ["2011"]\n[districts.b]\npostcodes = ["2011"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="2011"):
        load_districts(bad)


LONGEST = {
    "category": max((texts.t(lang, f"category.{c}") for lang in ("nl", "en") for c in CATEGORIES), key=len),
    "kind_lower": "aanbod", "postcode": "2034", "count": 12, "kind": "Aanbod", "status": "er is iemand gevonden",
    "number": 12,
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_sms_template_is_one_gsm7_segment(language):
    sms_keys = [key for key in texts.catalogue(language) if key.startswith("sms.")]
    assert len(sms_keys) >= 15
    for key in sms_keys:
        rendered = texts.t(language, key, **LONGEST)
        assert texts.is_gsm7(rendered), (key, [c for c in rendered if not texts.is_gsm7(c)])
        assert texts.segment_count(rendered) == 1, (key, len(rendered))


def test_every_catalogue_has_every_sms_key():
    keys = {lang: {k for k in texts.catalogue(lang) if k.startswith(("sms.", "category.", "kind.", "status."))}
            for lang in texts.LANGUAGES}
    assert all(keys[lang] == keys["nl"] for lang in texts.LANGUAGES)


def _longest_values(language: str) -> dict[str, object]:
    return LONGEST | {"category": max((texts.t(language, f"category.{c}") for c in CATEGORIES), key=len)}


def test_every_turkish_sms_is_one_segment_once_written_in_gsm7():
    for key in (k for k in texts.catalogue("tr") if k.startswith("sms.")):
        sent = texts.fit_gsm7(texts.t("tr", key, **_longest_values("tr")))
        assert texts.is_gsm7(sent) and texts.segment_count(sent) == 1, (key, sent)


def test_every_arabic_sms_takes_at_most_two_segments():
    for key in (k for k in texts.catalogue("ar") if k.startswith("sms.")):
        sent = texts.fit_gsm7(texts.t("ar", key, **_longest_values("ar")))
        assert "?" not in sent and texts.segment_count(sent) <= 2, (key, len(sent))


def test_no_care_jargon_in_resident_texts():
    for language in texts.LANGUAGES:
        for key, value in texts.catalogue(language).items():
            lowered = value.lower()
            for word in ("cliënt", "client", "hulpverlening", "zorgvraag"):
                assert word not in lowered, (language, key)


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("€" * 80, 1), ("€" * 81, 2), ("financiële", 1),
     ("ë" * 70, 1), ("ë" * 71, 2), ("", 1)],
)
def test_segment_counting(text, segments):
    assert texts.segment_count(text) == segments


def test_to_gsm7_keeps_meaning_and_one_segment():
    assert texts.to_gsm7("financiële ‘hulp’ – België") == "financiele 'hulp' - Belgie"
    assert texts.to_gsm7("Çok teşekkürler ğ ı") == "Çok tesekkürler g i"
    assert texts.is_gsm7(texts.to_gsm7("emoji 🙂 and 中文"))


def test_fit_gsm7_keeps_scripts_that_have_no_gsm7_form():
    assert texts.fit_gsm7("Uw ‘vraag’ staat in België") == "Uw 'vraag' staat in Belgie"
    arabic = "شكرا، طلبك عند BUUV"
    assert texts.fit_gsm7(arabic) == arabic
    assert texts.fit_gsm7("Wat fijn 🙂") == "Wat fijn 🙂"
    assert texts.fit_gsm7("Teşekkürler") == "Tesekkürler"
