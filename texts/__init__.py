"""Every text a resident reads or hears, one catalogue per language.

Catalogues are TOML files beside this module (nl.toml, en.toml, tr.toml,
ar.toml). Keys are dotted: ``sms.request_received``, ``voice.main_menu``,
``category.groceries``. A key missing in a language falls back to Dutch, so a
half-translated catalogue never leaves a resident without an answer.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from .gsm import fit_gsm7, is_gsm7, segment_count, to_gsm7

LANGUAGES = ("nl", "en", "tr", "ar")
FALLBACK = "nl"
_DIR = Path(__file__).parent


@cache
def catalogue(language: str) -> dict[str, str]:
    path = _DIR / f"{language}.toml"
    if not path.exists():
        return {}
    return dict(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))


def _flatten(data: dict[str, Any], prefix: str = "") -> Any:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def has(language: str, key: str) -> bool:
    return key in catalogue(language)


def t(language: str | None, key: str, **params: Any) -> str:
    """The text for ``key`` in ``language``, filled in; Dutch when untranslated."""
    language = language if language in LANGUAGES else FALLBACK
    template = catalogue(language).get(key)
    if template is None:
        template = catalogue(FALLBACK).get(key)
    if template is None:
        raise KeyError(f"no text {key!r} in any catalogue")
    return template.format(**params) if params else template


def category_name(language: str | None, category: str | None) -> str:
    return t(language, f"category.{category or 'other'}")


__all__ = ["LANGUAGES", "catalogue", "category_name", "fit_gsm7", "has", "is_gsm7", "segment_count", "t", "to_gsm7"]
