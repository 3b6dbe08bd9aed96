"""Every word Buurtlijn says or shows, one catalogue per language, loaded by one loader.

Residents' texts are TOML files beside this module (nl.toml, en.toml,
tr.toml, ar.toml): everything a resident reads in an SMS or hears on the
phone. The brokers' dashboard has its own, in ``dashboard/`` (nl.toml,
en.toml). Keys are dotted: ``sms.request_received``, ``voice.main_menu``,
``category.groceries``, ``queue.title``. A key missing in a language falls
back to Dutch, so a half-translated catalogue never leaves anyone without an
answer. The names of categories are the residents' (``category.*``), and the
dashboard shows those same entries, so a broker and a resident use one word.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from models.vocabulary import BROKER_LANGUAGES, FALLBACK_CATEGORY, RESIDENT_LANGUAGES

from .gsm import as_gsm7_as_it_reads, fit_gsm7, is_gsm7, segment_count, to_gsm7

FALLBACK = "nl"
_DIR = Path(__file__).parent


class Catalogues:
    """The TOML catalogues in one folder, ``<language>.toml`` each, read once."""

    def __init__(self, folder: Path, languages: tuple[str, ...]) -> None:
        self.folder = folder
        self.languages = languages
        self._loaded: dict[str, dict[str, str]] = {}

    def catalogue(self, language: str) -> dict[str, str]:
        loaded = self._loaded.get(language)
        if loaded is None:
            path = self.folder / f"{language}.toml"
            data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            loaded = self._loaded[language] = dict(_flatten(data))
        return loaded

    def has(self, language: str, key: str) -> bool:
        return key in self.catalogue(language)

    def t(self, language: str | None, key: str, **params: Any) -> str:
        """The text for ``key`` in ``language``, filled in; Dutch when untranslated."""
        language = language if language in self.languages else FALLBACK
        template = self.catalogue(language).get(key)
        if template is None:
            template = self.catalogue(FALLBACK).get(key)
        if template is None:
            raise KeyError(f"no text {key!r} in any catalogue in {self.folder.name}/")
        return template.format(**params) if params else template


def _flatten(data: dict[str, Any], prefix: str = "") -> Any:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


RESIDENTS = Catalogues(_DIR, RESIDENT_LANGUAGES)
DASHBOARD = Catalogues(_DIR / "dashboard", BROKER_LANGUAGES)

LANGUAGES = RESIDENTS.languages
catalogue = RESIDENTS.catalogue
has = RESIDENTS.has
t = RESIDENTS.t


def category_name(language: str | None, category: str | None) -> str:
    """What residents and brokers alike call a category, in ``language``."""
    return t(language, f"category.{category or FALLBACK_CATEGORY}")


__all__ = [
    "DASHBOARD", "FALLBACK", "LANGUAGES", "RESIDENTS", "Catalogues", "as_gsm7_as_it_reads", "catalogue", "category_name", "fit_gsm7",
    "has", "is_gsm7", "segment_count", "t", "to_gsm7",
]
