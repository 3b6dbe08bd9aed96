"""Reading an SMS: its keyword, category and postcode."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.districts import find_postcode
from models.vocabulary import CATEGORIES, FALLBACK_CATEGORY

_FIRST_WORDS = re.compile(r"^\s*([^\s:;,.!?]+)[\s:;,.!?]*([^\s:;,.!?]+)?(.*)$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise_word(word: str) -> str:
    """'vraag:' -> 'VRAAG', 'Één' -> 'EEN'."""
    return strip_accents(word).upper().strip(":;,.!?-'\"()[]")


def clean_body(body: str | None) -> str:
    """Control characters out, whitespace tidied; everything else kept as sent."""
    if not body:
        return ""
    return _CONTROL.sub(" ", body).strip()


@dataclass(frozen=True)
class Words:
    first: str  # normalised first word
    first_two: str  # normalised first two words, "NIET GELUKT"
    after_first: str  # the text after the first word, as sent
    after_two: str  # the text after the first two words


def split_words(body: str) -> Words:
    match = _FIRST_WORDS.match(body)
    if not match:
        return Words("", "", "", "")
    first, second, tail = match.group(1), match.group(2), match.group(3)
    after_first = body[match.end(1):].lstrip(" \t\r\n:;,.!?-").strip()
    after_two = tail.lstrip(" \t\r\n:;,.!?").strip() if second else ""
    return Words(
        first=normalise_word(first),
        first_two=f"{normalise_word(first)} {normalise_word(second)}" if second else "",
        after_first=after_first,
        after_two=after_two,
    )


# Word beginnings per category, Dutch and English side by side. "=word" must
# match the whole word ("=app" is not "appel"). Accents are stripped first.
# The fallback category has no words: it is what no word points to.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "groceries": (
        "boodschap", "supermarkt", "winkel", "albert heijn", "=ah", "jumbo", "lidl", "markt",
        "brood", "apotheek", "medicijn",
        "shopping", "grocer", "supermarket", "=shop", "pharmacy",
    ),
    "chores": (
        "klus", "lamp", "schilder", "verf", "plafond", "tuin", "gras", "heg", "snoei", "verhuis",
        "repar", "kapot", "lekk", "gordijn", "boor", "ophang", "schoonma", "kast", "fiets",
        "chore", "odd job", "repair", "=fix", "garden", "paint", "ceiling", "hedge", "moving",
        "clean", "bike", "drill",
    ),
    "transport": (
        "vervoer", "rijden", "=lift", "dokter", "huisarts", "ziekenhuis", "tandarts", "fysio",
        "begeleid", "brengen", "=auto", "rolstoel", "spreekuur",
        "ride", "drive", "doctor", "hospital", "transport", "dentist", "appointment", "=car",
    ),
    "company": (
        "gezelschap", "wandel", "koffie", "thee", "praten", "praatje", "eenzaam", "samen eten",
        "bezoek", "aanspraak", "=film", "spelletje", "kaarten", "gezellig",
        "company", "walk", "coffee", "=tea", "=talk", "=chat", "lonely", "visit",
    ),
    "digital": (
        "computer", "laptop", "telefoon", "mobiel", "tablet", "ipad", "internet", "whatsapp",
        "e-mail", "=email", "=mail", "digid", "printer", "wifi", "=app", "apps", "smartphone",
        "=phone", "mobile", "=pc",
    ),
    "language": (
        "taal", "nederlands", "=les", "oefenen", "conversatie",
        "dutch", "language", "practi", "lesson",
    ),
    "paperwork": (
        "formulier", "administratie", "=post", "brief", "brieven", "belasting", "toeslag",
        "papier", "gemeente", "rekening", "aanvraag",
        "=form", "=forms", "paperwork", "letter", "=tax", "admin", "bill",
    ),
    "sitting": (
        "oppas", "=kind", "kinderen", "hond", "=kat", "katten", "huisdier", "uitlaten", "baby",
        "babysit", "sitting", "child", "=dog", "=dogs", "=cat", "=cats", "=pet", "=pets",
    ),
}


def _pattern(stem: str) -> str:
    if stem.startswith("="):
        return rf"\b{re.escape(stem[1:])}\b"
    return rf"\b{re.escape(stem)}"


_UNKNOWN = set(CATEGORY_WORDS) - set(CATEGORIES)
if _UNKNOWN:
    raise ValueError(f"CATEGORY_WORDS names categories models.vocabulary does not know: {sorted(_UNKNOWN)}")

_CATEGORY_PATTERNS = {
    category: re.compile("|".join(_pattern(s) for s in stems)) for category, stems in CATEGORY_WORDS.items()
}


def detect_category(text: str) -> str:
    """The category the words point to most; the fallback ('other') when none does.

    Ties go to the category named first in the text.
    """
    plain = strip_accents(text).lower()
    plain = re.sub(r"\bpostcode\b", " ", plain)
    best: tuple[int, int, str] | None = None
    for category, pattern in _CATEGORY_PATTERNS.items():
        hits = list(pattern.finditer(plain))
        if not hits:
            continue
        key = (-len(hits), hits[0].start(), category)
        if best is None or key < best:
            best = key
    return best[2] if best else FALLBACK_CATEGORY


__all__ = ["Words", "clean_body", "detect_category", "find_postcode", "normalise_word", "split_words"]
