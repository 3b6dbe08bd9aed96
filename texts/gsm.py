"""GSM-7: what fits one SMS segment, and how to keep text inside the alphabet."""

from __future__ import annotations

import unicodedata

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these takes two septets (an escape plus the character).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_REPLACEMENTS = {
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "…": "...", "\u00a0": " ", "\t": " ",
    "ğ": "g", "Ğ": "G", "ş": "s", "Ş": "S", "ı": "i", "İ": "I",
}


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def septets(text: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def segment_count(text: str) -> int:
    """Segments Twilio bills for this body (GSM-7 or UCS-2)."""
    if not text:
        return 1
    if is_gsm7(text):
        length = septets(text)
        return 1 if length <= 160 else -(-length // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def _in_gsm7(ch: str) -> str | None:
    """``ch`` as it reads in GSM-7 (itself, ë -> e, ’ -> ', a control character -> space), or None."""
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    stripped = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    if stripped and all(c in GSM7_BASIC for c in stripped):
        return stripped
    if unicodedata.category(ch).startswith("C"):
        return " "
    return None


def to_gsm7(text: str) -> str:
    """Bring text into GSM-7 where it reads the same (ë -> e, curly quotes -> straight).

    Used for what *we* put into an SMS (a listing description echoed back, a
    name): one stray character would double the price of the message.
    Characters with no plain equivalent (emoji, Arabic) become '?'.
    """
    return "".join(_in_gsm7(ch) or "?" for ch in text)


def as_gsm7_as_it_reads(text: str) -> str:
    """Every character that has a GSM-7 form in it, the rest (emoji, Arabic) as written.

    What ``fit_gsm7`` leaves of this text is then this text itself, whatever
    is put around it: a rule checked on it (models/relaying.py) holds for what
    is sent.
    """
    return "".join(_in_gsm7(ch) or ch for ch in text)


def fit_gsm7(text: str) -> str:
    """GSM-7 when the text reads the same in it, else the text as it is.

    Dutch with a stray 'ë' or a curly quote becomes one cheap segment;
    Arabic (or an emoji a neighbour sent on) stays as written, in UCS-2,
    rather than arriving as question marks.
    """
    if is_gsm7(text):
        return text
    converted = to_gsm7(text)
    lost = sum(1 for ch in converted if ch == "?") - sum(1 for ch in text if ch == "?")
    return text if lost else converted
