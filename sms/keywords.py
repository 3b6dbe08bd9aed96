"""The SMS keywords of the contract: normalised word -> what it does, and in which language."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keyword:
    command: str
    # The language the word belongs to (the reply follows it); None when the
    # word is the same in Dutch and English, so the resident's own stays.
    language: str | None


KEYWORDS: dict[str, Keyword] = {
    "VRAAG": Keyword("request", "nl"),
    "REQUEST": Keyword("request", "en"),
    "AANBOD": Keyword("offer", "nl"),
    "OFFER": Keyword("offer", "en"),
    "STATUS": Keyword("status", None),
    "BEL": Keyword("callback", "nl"),
    "CALL": Keyword("callback", "en"),
    "HULP": Keyword("help", "nl"),
    "INFO": Keyword("help", None),
    "HELP": Keyword("help", "en"),
    "STOP": Keyword("stop", None),
    "AFMELDEN": Keyword("stop", "nl"),
    "STOPALL": Keyword("stop", "en"),
    "UNSUBSCRIBE": Keyword("stop", "en"),
    "CANCEL": Keyword("stop", "en"),
    "END": Keyword("stop", "en"),
    "QUIT": Keyword("stop", "en"),
    "START": Keyword("start", None),
    "AANMELDEN": Keyword("start", "nl"),
    "UNSTOP": Keyword("start", "en"),
    "JA": Keyword("yes", "nl"),
    "YES": Keyword("yes", "en"),
    "NEE": Keyword("no", "nl"),
    "NO": Keyword("no", "en"),
    "KLAAR": Keyword("done", "nl"),
    "DONE": Keyword("done", "en"),
    "INTREKKEN": Keyword("withdraw", "nl"),
    "WITHDRAW": Keyword("withdraw", "en"),
    "NIET GELUKT": Keyword("problem", "nl"),
    "VERGEET MIJ": Keyword("forget", "nl"),
    "FORGET ME": Keyword("forget", "en"),
    "NOT DONE": Keyword("problem", "en"),
}

# Twilio's Advanced Opt-Out names its verdict in OptOutType.
OPT_OUT_TYPES: dict[str, str] = {"STOP": "stop", "START": "start", "HELP": "help"}


def lookup(first: str, first_two: str) -> tuple[str, Keyword] | None:
    """The keyword a message starts with, two-word keywords first (the contract: the first word counts,
    opt-out words too: "stop alsjeblieft" opts out)."""
    for word in (first_two, first):
        keyword = KEYWORDS.get(word) if word else None
        if keyword is not None:
            return word, keyword
    return None
