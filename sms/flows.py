"""What happens with an inbound SMS: one handler per command, one path for the rest.

``handle_inbound`` runs in a job, after the webhook stored the message. It
is safe to run twice: a message is handled once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import texts
from models import Listing, Message, Resident
from models.base import utcnow
from models.districts import find_postcode
from models.marketplace import (
    complete_postcode,
    open_items,
    record_listing,
    same_listing_lately,
    withdraw_listing,
    withdrawable,
)
from models.outbox import queue_sms
from models.phones import try_parse_phone
from models.queue import queue_callback
from models.residents import opt_in, opt_out, resident_for, set_postcode
from models.workdays import local_zone

from . import answers
from .keywords import OPT_OUT_TYPES, Keyword, lookup
from .parsing import clean_body, detect_category, split_words

STATUS_MAX_ITEMS = 5
STATUS_MAX_SEGMENTS = 3
KEYWORD_LANGUAGES = ("nl", "en")  # the contract's keywords come in these
# After HELP, STOP or START, this many words more are a sentence a person should read.
SENTENCE_WORDS = 3
SENTENCE_COMMANDS = ("help", "stop", "start")


@dataclass
class Reply:
    """A catalogue text (``key`` with ``params``) or, for lists built line by line, ``text``."""

    key: str | None
    params: dict[str, Any] = field(default_factory=dict)
    purpose: str = "reply"
    text: str | None = None

    def render(self, language: str) -> str:
        if self.text is not None:
            return self.text
        assert self.key is not None
        return texts.t(language, self.key, **self.params)


@dataclass
class Inbound:
    """One message being handled, with everything a handler may need."""

    session: Session
    message: Message
    resident: Resident
    body: str
    rest: str  # the text after the keyword
    keyword: Keyword | None
    now: dt.datetime
    settings: Mapping[str, Any] = field(default_factory=dict)  # the app's configuration

    @property
    def zone(self) -> ZoneInfo:
        """The app's time zone: "the agreed day" is a local day."""
        return local_zone(self.settings)

    @property
    def twilio_answered(self) -> bool:
        """Twilio's Advanced Opt-Out already replied to this message."""
        return bool(self.message.opt_out_type)


Handler = Callable[[Inbound], Reply | None]


def _listing(kind: str) -> Handler:
    def handle(inbound: Inbound) -> Reply:
        resident = inbound.resident
        postcode = find_postcode(inbound.rest)
        if postcode:
            set_postcode(resident, postcode)
            complete_postcode(inbound.session, resident, postcode)
        description = inbound.rest or None
        repeated = same_listing_lately(inbound.session, resident.id, kind, description, inbound.now)
        if repeated is not None:  # the same text again: answered as before, stored once
            inbound.message.listing_id = repeated.id
            return _received(resident, repeated)
        listing = record_listing(
            inbound.session,
            resident,
            kind=kind,
            channel="sms",
            category=detect_category(inbound.rest),
            description=description,
            postcode=postcode,
        )
        inbound.message.listing_id = listing.id
        return _received(resident, listing)

    return handle


def _received(resident: Resident, listing: Listing) -> Reply:
    """The answer to a new request or offer: thanks, or the postcode it still lacks."""
    if listing.postcode is None:
        resident.conversation = {"awaiting": "postcode", "listing_id": listing.id}
        kind_word = texts.t(resident.language, f"kind.{listing.kind}").lower()
        return Reply("sms.ask_postcode", {"kind_lower": kind_word})
    category = texts.category_name(resident.language, listing.category)
    return Reply(f"sms.{listing.kind}_received", {"category": category})


def handle_status(inbound: Inbound) -> Reply:
    resident = inbound.resident
    items = open_items(inbound.session, resident.id)
    if not items:
        return Reply("sms.status_none")
    language = resident.language
    item_lines = [
        texts.t(
            language,
            "sms.status_line",
            kind=texts.t(language, f"kind.{listing.kind}"),
            category=texts.category_name(language, listing.category),
            status=texts.t(language, f"status.{listing.status}"),
        )
        for listing in items[:STATUS_MAX_ITEMS]
    ]
    # As many items as fit in three segments (Arabic ones are 70 characters).
    for shown in range(len(item_lines), 0, -1):
        lines = [texts.t(language, "sms.status_header"), *item_lines[:shown]]
        if len(items) > shown:
            lines.append(texts.t(language, "sms.status_more", count=len(items) - shown))
        lines.append(texts.t(language, "sms.status_footer"))
        text = "\n".join(lines)
        if texts.segment_count(texts.fit_gsm7(text)) <= STATUS_MAX_SEGMENTS:
            break
    return Reply(None, text=text)


def _listing_words(language: str, listing: Listing) -> dict[str, str]:
    return {"kind": texts.t(language, f"kind.{listing.kind}"),
            "category": texts.category_name(language, listing.category)}


def handle_withdraw(inbound: Inbound) -> Reply:
    """INTREKKEN: the one open request or offer, or the one numbered in the list the reply gives."""
    resident = inbound.resident
    language = resident.language
    items = withdrawable(inbound.session, resident.id)
    if not items:
        return Reply("sms.withdraw_none")
    number = answers.number_in(inbound.rest)
    if number is None and len(items) == 1:
        chosen = items[0]
    elif number is not None and 1 <= number <= len(items):
        chosen = items[number - 1]
    else:
        lines = [texts.t(language, "sms.withdraw_unknown")] if number is not None else []
        lines.append(texts.t(language, "sms.withdraw_which"))
        lines += [texts.t(language, "sms.withdraw_line", number=n, **_listing_words(language, listing))
                  for n, listing in enumerate(items[:STATUS_MAX_ITEMS], start=1)]
        return Reply(None, text="\n".join(lines))
    inbound.message.listing_id = chosen.id
    if not withdraw_listing(inbound.session, chosen, inbound.now, channel="sms", message_id=inbound.message.id):
        return Reply("sms.withdraw_match", _listing_words(language, chosen))
    return Reply("sms.withdrawn", _listing_words(language, chosen))


def handle_callback_request(inbound: Inbound) -> Reply:
    queue_callback(
        inbound.session,
        "callback_requested",
        resident_id=inbound.resident.id,
        message_id=inbound.message.id,
        dedupe_key=f"resident:{inbound.resident.id}:callback_requested",
    )
    return Reply("sms.callback_requested")


def handle_help(inbound: Inbound) -> Reply | None:
    return None if inbound.twilio_answered else Reply("sms.help")


def handle_stop(inbound: Inbound) -> Reply | None:
    changed = opt_out(inbound.resident, inbound.now)
    # Answered once: not again for a second STOP, nor when Twilio already did.
    if not changed or inbound.twilio_answered:
        return None
    return Reply("sms.stopped", purpose="opt_out_confirmation")


def handle_start(inbound: Inbound) -> Reply | None:
    changed = opt_in(inbound.resident, inbound.now)
    if inbound.twilio_answered and inbound.message.opt_out_type == "START":
        return None
    return Reply("sms.started") if changed else Reply("sms.help")


def handle_unrecognised(inbound: Inbound) -> Reply | None:
    """Never dropped: a mark someone was asked for, passed on to a matched neighbour, or stored, queued for a
    broker, and the reply says so."""
    mark = answers.answer_mark(inbound)
    if mark is not None:
        return mark
    relayed, reply = answers.relay_to_match_partner(inbound)
    if relayed:
        return reply
    resident = inbound.resident
    pending = resident.conversation or {}
    postcode = find_postcode(inbound.body)
    if pending.get("awaiting") == "postcode" and postcode:
        set_postcode(resident, postcode)
        complete_postcode(inbound.session, resident, postcode)
        resident.conversation = None
        return Reply("sms.postcode_saved", {"postcode": postcode})
    return for_a_broker(inbound)


def for_a_broker(inbound: Inbound) -> Reply:
    """Free text a person must read: on the resident's one open item for texts, and the reply says so."""
    # Several texts nobody could place gather on the resident's one open item: one call settles them.
    item = queue_callback(
        inbound.session,
        "unrecognised_message",
        resident_id=inbound.resident.id,
        message_id=inbound.message.id,
        dedupe_key=f"resident:{inbound.resident.id}:unrecognised",
    )
    inbound.message.callback_id = item.id
    if not inbound.body:
        return Reply("sms.empty")
    return Reply("sms.unrecognised")


def _is_sentence(rest: str) -> bool:
    return len(rest.split()) >= SENTENCE_WORDS


def _with_words_for_a_broker(handler: Handler, *, person_answers: bool = False) -> Handler:
    """HELP, STOP or START followed by a sentence ("Help, ik ben gevallen en kan niet opstaan"): the
    keyword acts, and the sentence reaches a person too. With ``person_answers`` the reply says a
    person will read it (someone who writes "help" and a sentence may be in trouble)."""

    def handle(inbound: Inbound) -> Reply | None:
        if not _is_sentence(inbound.rest):
            return handler(inbound)
        reply = handler(inbound)
        to_a_person = for_a_broker(inbound)
        return to_a_person if person_answers else reply

    return handle


HANDLERS: dict[str, Handler] = {
    "request": _listing("request"),
    "offer": _listing("offer"),
    "status": handle_status,
    "withdraw": handle_withdraw,
    "callback": handle_callback_request,
    "help": _with_words_for_a_broker(handle_help, person_answers=True),
    "stop": _with_words_for_a_broker(handle_stop),
    "start": _with_words_for_a_broker(handle_start),
    "yes": answers.handle_yes,
    "no": answers.handle_no,
    "done": answers.handle_done,
    "problem": answers.handle_problem,
    "forget": answers.handle_forget,
}


def _check_registry() -> None:
    from .keywords import KEYWORDS

    missing = {k.command for k in KEYWORDS.values()} - HANDLERS.keys()
    if missing:
        raise RuntimeError(f"SMS keywords without a handler: {sorted(missing)}")


_check_registry()


def claim_inbound(session: Session, message_id: int) -> Message | None:
    """Mark the message handled and return it; None when another run already did.

    The mark and the handling share one transaction: a run that fails rolls
    both back, and the message is 'received' again for the sweep.
    """
    claimed = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.direction == "inbound", Message.status == "received")
        .values(status="handled", handled_at=utcnow(), updated_at=utcnow())
        .returning(Message.id)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    return session.get(Message, message_id)


def handle_inbound(session: Session, message_id: int, settings: Mapping[str, Any] | None = None) -> Message | None:
    """Handle one stored inbound SMS: listing, queue item, opt-out, reply. ``settings``: the app's configuration."""
    message = claim_inbound(session, message_id)
    if message is None:
        return None
    now = utcnow()
    body = clean_body(message.body)
    number = try_parse_phone(message.raw_from)
    if number is None:
        # No number we can answer: a person must look at it.
        item = queue_callback(
            session,
            "unrecognised_message",
            message_id=message.id,
            dedupe_key=f"message:{message.id}:unrecognised",
        )
        message.callback_id = item.id
        return message
    resident = resident_for(session, number)
    resident.touch(now)
    message.resident_id = resident.id
    message.phone = number.e164

    words = split_words(body)
    found = lookup(words.first, words.first_two)
    keyword: Keyword | None = None
    rest = body
    if message.opt_out_type and message.opt_out_type.upper() in OPT_OUT_TYPES:
        command = OPT_OUT_TYPES[message.opt_out_type.upper()]
        if found and found[1].command == "yes" and command == "start":
            opt_in(resident, now)  # Twilio counts YES as opt-in; for us it also answers
            command = "yes"
        keyword = found[1] if found else Keyword(command, None)
        keyword = Keyword(command, keyword.language)
        message.keyword = message.opt_out_type.upper()
    elif found:
        word, keyword = found
        message.keyword = word
        rest = words.after_two if " " in word else words.after_first
    # A Dutch or English keyword tells which of the two the resident writes. Someone
    # who chose Turkish or Arabic (in the phone menu) has only those keywords to
    # text us with: they keep their language.
    # "Help, ik ben gevallen": a sentence after the word says more about the language than the word.
    sentence_follows = keyword is not None and keyword.command in SENTENCE_COMMANDS and _is_sentence(rest)
    if keyword is not None and keyword.language and resident.language in KEYWORD_LANGUAGES and not sentence_follows:
        resident.language = keyword.language

    inbound = Inbound(session, message, resident, body, rest, keyword, now, settings or {})
    handler = HANDLERS[keyword.command] if keyword else handle_unrecognised
    reply = handler(inbound)
    if reply is not None:
        text = reply.render(resident.language)
        queue_sms(
            session,
            resident,
            text,
            purpose=reply.purpose,
            dedupe_key=f"reply:{message.id}",
            urgent=True,
        )
    return message


def pending_inbound_ids(session: Session, older_than: dt.datetime) -> list[int]:
    return list(
        session.scalars(
            select(Message.id).where(
                Message.direction == "inbound",
                Message.status == "received",
                Message.created_at < older_than,
            )
        )
    )
