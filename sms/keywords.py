"""The SMS keywords of the contract: normalised word -> what it does, and in which language."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keyword:
    command: str
    # The language the word belongs to (the reply follows it); None when the
    # word is the same in Dutch and English, so the resident's own stays.
    language: str | None
    # Opt-out words and HELP count only as the whole message, as at Twilio:
    # "Help, ik ben gevallen" must reach a person, not the keyword list.
    whole_message_only: bool = False


KEYWORDS: dict[str, Keyword] = {
    "VRAAG": Keyword("request", "nl"),
    "REQUEST": Keyword("request", "en"),
    "AANBOD": Keyword("offer", "nl"),
    "OFFER": Keyword("offer", "en"),
    "STATUS": Keyword("status", None),
    "BEL": Keyword("callback", "nl"),
    "CALL": Keyword("callback", "en"),
    "HULP": Keyword("help", "nl", whole_message_only=True),
    "INFO": Keyword("help", None, whole_message_only=True),
    "HELP": Keyword("help", "en", whole_message_only=True),
    "STOP": Keyword("stop", None, whole_message_only=True),
    "AFMELDEN": Keyword("stop", "nl", whole_message_only=True),
    "STOPALL": Keyword("stop", "en", whole_message_only=True),
    "UNSUBSCRIBE": Keyword("stop", "en", whole_message_only=True),
    "CANCEL": Keyword("stop", "en", whole_message_only=True),
    "END": Keyword("stop", "en", whole_message_only=True),
    "QUIT": Keyword("stop", "en", whole_message_only=True),
    "START": Keyword("start", None, whole_message_only=True),
    "AANMELDEN": Keyword("start", "nl", whole_message_only=True),
    "UNSTOP": Keyword("start", "en", whole_message_only=True),
    "JA": Keyword("yes", "nl"),
    "YES": Keyword("yes", "en"),
    "NEE": Keyword("no", "nl"),
    "NO": Keyword("no", "en"),
    "KLAAR": Keyword("done", "nl"),
    "DONE": Keyword("done", "en"),
    "NIET GELUKT": Keyword("problem", "nl"),
    "VERGEET MIJ": Keyword("forget", "nl"),
    "FORGET ME": Keyword("forget", "en"),
    "NOT DONE": Keyword("problem", "en"),
}

# Twilio's Advanced Opt-Out names its verdict in OptOutType.
OPT_OUT_TYPES: dict[str, str] = {"STOP": "stop", "START": "start", "HELP": "help"}


def lookup(first: str, first_two: str, only_one_word: bool) -> tuple[str, Keyword] | None:
    """The keyword a message starts with, two-word keywords first."""
    for word in (first_two, first):
        keyword = KEYWORDS.get(word) if word else None
        if keyword is None:
            continue
        if keyword.whole_message_only and not (only_one_word and word == first):
            return None
        return word, keyword
    return None
