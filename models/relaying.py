"""Texts passed on between the two neighbours of a match, within limits.

While a match is agreed, a free text from one neighbour goes to the other
from the organisation's own number. So that number is never a free channel
for anything else:

- a passed-on text is at most two SMS segments (GSM-7 or UCS-2, counted as
  Twilio bills them, ``texts.segment_count``); a longer one is cut, the
  receiver's copy ends with a short note and the sender is told;
- links and phone numbers are replaced by a plain note that BUUV does not
  pass them on (a neighbour calls or texts through Buurtlijn, never a
  number or a page someone sends);
- a pair gets at most ``BUURTLIJN_RELAY_DAILY_CAP`` texts passed on in 24
  hours, both ways together; past it the text goes to a broker as a queue
  item, and the sender hears so once;
- a text with a word that signals trouble (``trouble_words.toml``: "bang",
  "politie", "scared", ...) is passed on as any other, and is also put on a
  broker's item (``relay_trouble``, one open item per match gathers them), so
  that a neighbour who complains about the other, or is afraid, reaches BUUV.

Every text, passed on or not, is a ``relays`` row that the broker sees on
the match, beside the original kept on its inbound message.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

import texts

from .match import Match
from .message import Message
from .notify import notify_resident
from .queue import queue_callback
from .relay import Relay
from .resident import Resident

RELAY_SEGMENTS = 2
DEFAULT_DAILY_CAP = 10
CAP_WINDOW = dt.timedelta(hours=24)
RELAY_MAX = 1600  # what Twilio takes in one message; only this much of a text is looked at

# A run of digits counts as a phone number from this many digits on (0900-1234 has eight; a
# postcode, a time or a house number fewer).
PHONE_DIGITS = 7
# Digits with anything between them but letters and ':' (so 06-12 34.56 78, +31 (0)6 …, 00 44 909 …
# are one run, and a time such as 12:30 stays apart from what follows).
_DIGIT_RUN = re.compile(r"[+(]?\d(?:[^\w:]*\d)*")
# Common and abused top-level domains; not those that are everyday Dutch or English words after a
# missing space ("Dat.is goed", "Ja.in de tuin").
_TOP_LEVEL_DOMAINS = (
    "com|net|org|info|biz|edu|gov|nl|be|de|eu|uk|fr|es|it|pt|pl|tr|ma|ru|su|cn|us|ca|au|ch|at|dk|se|no|fi|"
    "ly|io|co|me|tk|ml|ga|cf|gq|gl|gd|to|cc|ws|tv|pw|sh|fm|ai|gg|im|vu|xyz|top|app|dev|page|link|"
    "click|online|site|shop|store|live|club|icu|vip|win|bid|cloud|email|website|tech|life|world|today|news|pro|"
    "mobi|name|help|support|bank|money|loan|pay"
)
# A scheme or www. anywhere; a bare domain (bit.ly/x, buuv.nl) by its top-level domain, taken from the
# start of its word (one try per word, so a long run of dots costs no more than its length).
_LINK = re.compile(
    rf"(?:(?:https?|hxxps?|ftp)://|www\d{{0,3}}\.)\S*"
    rf"|(?<![\w.-])[\w.-]*\.(?:{_TOP_LEVEL_DOMAINS})\b(?:[:/?#]\S*)?",
    re.IGNORECASE,
)


TROUBLE_WORDS_FILE = Path(__file__).with_name("trouble_words.toml")
# Folded away besides case and accents: Turkish dotless i, Arabic tatweel, taa marbuta and alef maqsura
# (written either way in everyday Arabic).
_FOLD = str.maketrans({"ı": "i", "\u0640": None, "ة": "ه", "ى": "ي"})


def folded(text: str) -> str:
    """``text`` without case or accents, as trouble words are compared ("BÁNG" -> "bang", "ŞİKAYET" -> "sikayet")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_FOLD)


def _word_pattern(entry: str) -> str:
    """One entry of ``trouble_words.toml`` as a regular expression over folded text (the file says how)."""
    entry = folded(entry.strip())
    any_before, any_after = entry.startswith("*"), entry.endswith("*")
    core = r"\s+".join(re.escape(word) for word in entry.strip("*").split())
    return r"(?<!\w)" + (r"\w*" if any_before else "") + core + (r"\w*" if any_after else r"(?!\w)")


@cache
def trouble_pattern() -> re.Pattern[str]:
    """Every language's trouble words (``trouble_words.toml``) as one expression over folded text."""
    lists = tomllib.loads(TROUBLE_WORDS_FILE.read_text(encoding="utf-8"))
    entries = sorted({entry for words in lists.values() for entry in words if entry.strip("* ")})
    return re.compile("|".join(_word_pattern(entry) for entry in entries))


def trouble_words(text: str) -> list[str]:
    """The trouble words in ``text`` (folded, in the order they stand), none when it reads as ordinary."""
    return [found.group() for found in trouble_pattern().finditer(folded(text))]


def daily_cap(config: Mapping[str, Any]) -> int:
    """Texts passed on per pair of neighbours in 24 hours (BUURTLIJN_RELAY_DAILY_CAP)."""
    value = config.get("BUURTLIJN_RELAY_DAILY_CAP")
    return DEFAULT_DAILY_CAP if value is None or value == "" else int(value)


def without_links_or_numbers(text: str, note: str) -> tuple[str, bool]:
    """``text`` with every link and phone number replaced by ``note``; True when something was."""
    cleaned = _LINK.sub(note, text)
    cleaned = _DIGIT_RUN.sub(
        lambda run: note if sum(ch.isdecimal() for ch in run.group()) >= PHONE_DIGITS else run.group(), cleaned
    )
    return cleaned, cleaned != text


def relayed_body(language: str | None, text: str) -> str:
    """The SMS the other neighbour gets for ``text``, as it is stored and sent (``outbox.queue_sms``)."""
    return texts.fit_gsm7(texts.t(language, "match.relay", text=text))


def _fits(language: str | None, text: str) -> bool:
    return texts.segment_count(relayed_body(language, text)) <= RELAY_SEGMENTS


def _cut(language: str | None, text: str, cut_note: str) -> str:
    """The longest beginning of ``text`` (at a word's end where one is near) that fits with ``cut_note``."""
    low, high = 0, len(text) + 1  # the longest fitting prefix length lies in [low, high)
    while low < high - 1:
        middle = (low + high) // 2
        if _fits(language, f"{text[:middle].rstrip()}... {cut_note}"):
            low = middle
        else:
            high = middle
    kept = text[:low]
    space = max(kept.rfind(" "), kept.rfind("\n"))
    if space >= low - 20 and space > 0:
        kept = kept[:space]
    kept = kept.rstrip()
    return f"{kept}... {cut_note}" if kept else cut_note


@dataclass(frozen=True)
class Passed:
    """What the other neighbour gets of a text: ``text`` (the {text} of ``match.relay``)."""

    text: str
    cut: bool
    cleaned: bool


def pass_on(language: str | None, text: str) -> Passed:
    """``text`` as it may be passed on to a neighbour who reads ``language``.

    Links and numbers first, in the text as it will be sent
    (``texts.as_gsm7_as_it_reads``: ``ẉẉẉ`` goes out as ``www``); then, when the
    SMS would take more than two segments, cut. A cut can leave the start of
    something that reads as a link again (``example.comics`` -> ``example.com``):
    what is kept is checked again, so nothing slips through.
    """
    removed = texts.t(language, "match.relay_removed")
    cut_note = texts.t(language, "match.relay_cut_note")
    candidate, cleaned = without_links_or_numbers(texts.as_gsm7_as_it_reads(text.strip()[:RELAY_MAX]), removed)
    if _fits(language, candidate):
        return Passed(candidate, cut=False, cleaned=cleaned)
    for _ in range(5):
        kept = _cut(language, candidate, cut_note)
        again, more = without_links_or_numbers(kept, removed)
        if not more:
            return Passed(kept, cut=True, cleaned=cleaned)
        cleaned, candidate = True, again.removesuffix(f"... {cut_note}")
    return Passed(cut_note, cut=True, cleaned=cleaned)  # still not clean after five cuts: pass on only the note


@dataclass(frozen=True)
class RelayResult:
    relay: Relay
    reply_key: str | None  # the sms.* text the sender gets back, if any
    trouble: bool = False  # it had a trouble word: also on a broker's item


def _pair(a: int, b: int) -> Any:
    return or_(
        and_(Relay.from_resident_id == a, Relay.to_resident_id == b),
        and_(Relay.from_resident_id == b, Relay.to_resident_id == a),
    )


def relay_text(
    session: Session,
    match: Match,
    sender: Resident,
    receiver: Resident,
    message: Message,
    text: str,
    *,
    daily_cap: int,
    now: dt.datetime,
) -> RelayResult:
    """Pass on ``text`` (of ``message``, an inbound SMS of ``sender``) to ``receiver``, within the limits above."""
    # One relay of this match at a time, so that two texts at once cannot both pass the cap (PostgreSQL;
    # FOR NO KEY UPDATE: rows that merely refer to the match are not held up).
    session.execute(select(Match.id).where(Match.id == match.id).with_for_update(key_share=True))
    since = now - CAP_WINDOW
    passed_today = session.scalar(
        select(func.count(Relay.id)).where(_pair(sender.id, receiver.id), Relay.outcome == "relayed",
                                           Relay.created_at > since)
    ) or 0
    relay = Relay(match_id=match.id, from_resident_id=sender.id, to_resident_id=receiver.id,
                  inbound_message_id=message.id, created_at=now)
    trouble = bool(trouble_words(text))
    if trouble:
        # Also on a broker's item, the pair's trouble texts together; the text is passed on as ever.
        item = queue_callback(session, "relay_trouble", resident_id=sender.id, message_id=message.id,
                              match_id=match.id, dedupe_key=f"match:{match.id}:relay_trouble", now=now)
        message.callback_id = item.id
    if passed_today >= daily_cap:
        told = session.scalar(
            select(func.count(Relay.id)).where(
                Relay.from_resident_id == sender.id, Relay.to_resident_id == receiver.id,
                Relay.outcome == "over_cap", Relay.created_at > since,
            )
        )
        relay.outcome = "over_cap"
        session.add(relay)
        # One item per match while it is open: every refused text is on the match, not an item each.
        queue_callback(session, "relay_over_cap", resident_id=sender.id, message_id=message.id, match_id=match.id,
                       dedupe_key=f"match:{match.id}:relay_over_cap", now=now)
        session.flush()
        return RelayResult(relay, None if told else "sms.relay_over_cap", trouble)
    passed = pass_on(receiver.language, text)
    sent = notify_resident(session, receiver, "match.relay", {"text": passed.text}, purpose="relay",
                           dedupe_key=f"relay:{message.id}", match_id=match.id)
    relay.outcome = "relayed"
    relay.relayed = passed.text
    relay.cut = passed.cut
    relay.cleaned = passed.cleaned
    relay.outbound_message_id = sent.id if sent is not None else None
    session.add(relay)
    session.flush()
    return RelayResult(relay, "sms.relay_cut" if passed.cut else None, trouble)


@dataclass(frozen=True)
class RelayLine:
    """A relay as the broker sees it on the match."""

    id: int
    at: dt.datetime
    from_resident_id: int
    to_resident_id: int
    relayed: str | None
    original: str
    cut: bool
    cleaned: bool
    refused: bool
    trouble: tuple[str, ...] = ()  # the trouble words in the original: it is on a broker's item too


def relays_of(session: Session, match_id: int) -> list[RelayLine]:
    """Every text passed on (or refused) within this match, newest first, with the original."""
    rows = session.execute(
        select(Relay, Message.body)
        .join(Message, Message.id == Relay.inbound_message_id)
        .where(Relay.match_id == match_id)
        .order_by(Relay.created_at.desc(), Relay.id.desc())
    )
    return [
        RelayLine(relay.id, relay.created_at, relay.from_resident_id, relay.to_resident_id, relay.relayed,
                  original or "", relay.cut, relay.cleaned, relay.outcome == "over_cap",
                  tuple(trouble_words(original or "")))
        for relay, original in rows
    ]
