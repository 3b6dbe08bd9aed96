"""JA / NEE / KLAAR / NIET GELUKT, VERGEET MIJ, and texts passed on between matched neighbours.

``JA`` and ``NEE`` answer the helper's open proposal; ``JA 12`` picks
proposal 12 when several are open, and a plain ``JA`` then asks which one.
``KLAAR`` and ``NIET GELUKT`` answer for an accepted or confirmed match, from
either side. Each word becomes its match action in models.notify.answer_match,
as a keypress on a notification call does, so an answer counts the same in
either channel.

``JA`` and ``NEE`` answer whatever waits for them (``waiting_for``, the one place that decides):
a request to be forgotten (``VERGEET MIJ``) the resident made themselves comes first; then, of a
match proposal and a listing's check-in ("is uw vraag nog actueel?", models/listing_life.py), the
question asked last. A JA or NEE after a check-in was settled is told where its listing stands.

The message is stored with its keyword either way; with nothing waiting for
the answer, it is free text a broker reads (contract, second wave), never dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from models import Listing, Match, Message
from models.audit import audit
from models.districts import find_postcode
from models.listing_life import answer_checkin, checkin_params, last_checkin, late_answer_key, outstanding_checkin
from models.matching import (
    Actor, MatchError, ProposalNotReached, active_matches, open_proposals, relay_partner, relay_since_in,
)
from models.notify import answer_match
from models.privacy import erase_resident, holds_anything, live_matches
from models.queue import queue_callback
from models.relaying import daily_cap, relay_text
from models.satisfaction import awaits_mark, record_mark

from .keywords import KEYWORDS

if TYPE_CHECKING:
    from .flows import Inbound, Reply

_NUMBER = re.compile(r"(?<!\d)(\d{1,9})(?!\d)")
# The words that say the help has happened (sms/keywords.py: the "done" command).
DONE_WORDS = tuple(word for word, keyword in KEYWORDS.items() if keyword.command == "done")
# A mark for "how did it go?": one digit 1 to 5, nothing else ("4,5", "6", "vier" are free text).
_MARK = re.compile(r"\s*([1-5])\s*[.!]?\s*")
# After the help, while a mark is asked for, a short text with a number ("vier", "4 sterren", "4,5") is an
# answer to BUUV's question that did not read as a mark: for a broker, not passed on to the neighbour.
_NUMBER_WORD = re.compile(
    r"\d|\b(?:een|één|twee|drie|vier|vijf|one|two|three|four|five|bir|iki|üç|dört|beş)\b"
    r"|(?<!\w)(?:واحد|اثنان|ثلاثة|أربعة|خمسة)(?!\w)", re.IGNORECASE)
MARK_LIKE_WORDS = 3
# A late JA/KLAAR for a match answered this recently gets "already noted", not "nothing open".
RECENT = dt.timedelta(days=14)
# VERGEET MIJ is confirmed with JA within this time; a later JA asks again, until the request
# lapses: after that a JA answers whatever else waits (a proposal that came since), as if never asked.
FORGET_CONFIRM_WITHIN = dt.timedelta(hours=24)
FORGET_REQUEST_LAPSES = dt.timedelta(days=7)
FORGET = "forget"
CHECKIN = "checkin"


def _reply(key: str, **params: object) -> "Reply":
    from .flows import Reply

    return Reply(key, dict(params))


def number_in(rest: str) -> int | None:
    """The first number in the text after a keyword ("JA 12", "INTREKKEN 2")."""
    found = _NUMBER.search(rest or "")
    return int(found.group(1)) if found else None


def _actor(inbound: "Inbound") -> Actor:
    return Actor("resident", inbound.resident.id, channel="sms")


def _own_recent(
    inbound: "Inbound", *, as_helper: bool, number: int | None, statuses: tuple[str, ...]
) -> Match | None:
    """This resident's latest match that is already settled (for "already noted" / "too late")."""
    request, offer = aliased(Listing), aliased(Listing)
    side = offer.resident_id == inbound.resident.id if as_helper else or_(
        request.resident_id == inbound.resident.id, offer.resident_id == inbound.resident.id
    )
    query = (
        select(Match)
        .join(request, Match.request_id == request.id)
        .join(offer, Match.offer_id == offer.id)
        .where(side, Match.status.in_(statuses), Match.updated_at >= inbound.now - RECENT)
        .order_by(Match.updated_at.desc(), Match.id.desc())
        .limit(1)
    )
    if number is not None:
        query = query.where(Match.id == number)
    return inbound.session.scalars(query).first()


def _pick(inbound: "Inbound", candidates: list[Match]) -> tuple[Match | None, "Reply | None"]:
    """The match the answer is about, or the reply that asks which one."""
    number = number_in(inbound.rest)
    if number is not None:
        chosen = [m for m in candidates if m.id == number]
        if chosen:
            return chosen[0], None
    elif len(candidates) == 1:
        return candidates[0], None
    if candidates:
        word = inbound.message.keyword or "JA"
        return None, _reply(
            "match.which_one",
            numbers=", ".join(str(m.id) for m in candidates[:5]),
            keyword=word,
            example=candidates[0].id,
        )
    return None, None


def _settled_reply(inbound: "Inbound", match: Match | None, *, for_proposal: bool) -> "Reply":
    if match is None:
        # Nothing waits for this answer: "Ja ik wil graag hulp met de tuin" is free text for a person.
        from .flows import for_a_broker

        return for_a_broker(inbound)
    if for_proposal and match.status in ("expired", "cancelled"):
        return _reply("match.too_late")
    return _reply("match.already_answered")


def _answer_proposal(inbound: "Inbound", accept: bool) -> "Reply":
    session, resident = inbound.session, inbound.resident
    match, ask = _pick(inbound, open_proposals(session, resident.id))
    if ask is not None:
        return ask
    if match is None:
        return _settled_reply(inbound, _own_recent(inbound, as_helper=True, number=number_in(inbound.rest),
                                                   statuses=("accepted", "confirmed", "declined", "expired",
                                                             "cancelled", "done")), for_proposal=True)
    inbound.message.match_id = match.id
    try:
        answer = answer_match(session, match, resident, _actor(inbound), "JA" if accept else "NEE")
    except ProposalNotReached:  # a JA to a question they never got: a broker reads it as written
        queue_callback(session, "unrecognised_message", resident_id=resident.id, message_id=inbound.message.id,
                       match_id=match.id, dedupe_key=f"message:{inbound.message.id}:unrecognised")
        return _reply("match.not_yet_sent")
    except MatchError:  # expired or cancelled while the answer was on its way
        return _settled_reply(inbound, match, for_proposal=True)
    return _reply(answer.texted)


def _answer_outcome(inbound: "Inbound", done: bool) -> "Reply":
    session, resident = inbound.session, inbound.resident
    match, ask = _pick(inbound, active_matches(session, resident.id))
    if ask is not None:
        return ask
    if match is None:
        return _settled_reply(inbound, _own_recent(inbound, as_helper=False, number=number_in(inbound.rest),
                                                   statuses=("done",)),
                              for_proposal=False)
    inbound.message.match_id = match.id
    if done and _before_the_day(inbound, match):
        return _reply("match.done_early")
    try:
        answer = answer_match(session, match, resident, _actor(inbound), "KLAAR" if done else "NIET GELUKT")
    except MatchError:
        return _reply("match.already_answered")
    return _reply(answer.texted)


def _before_the_day(inbound: "Inbound", match: Match) -> bool:
    """KLAAR before the agreed day: asked once whether the help has really been; a second KLAAR counts."""
    if match.meeting_at is None or inbound.now.astimezone(inbound.zone).date() >= (
            match.meeting_at.astimezone(inbound.zone).date()):
        return False
    said_before = inbound.session.scalar(
        select(func.count(Message.id)).where(
            Message.direction == "inbound", Message.resident_id == inbound.resident.id,
            Message.match_id == match.id, Message.keyword.in_(DONE_WORDS), Message.id != inbound.message.id,
        )
    )
    return not said_before


def handle_forget(inbound: "Inbound") -> "Reply | None":
    """VERGEET MIJ: ask to confirm with JA within 24 hours. Someone we hold nothing about is told so,
    and this message, the one thing we held, is erased at once."""
    session, resident = inbound.session, inbound.resident
    if not holds_anything(session, resident, besides_message=inbound.message.id):
        erase_resident(session, resident, actor_type="resident", actor_id=resident.id, via="sms",
                       farewell_key="sms.forget_nothing")
        return None
    resident.conversation = {"awaiting": FORGET, "asked_at": inbound.now.isoformat()}
    audit(session, "resident.erase_requested", actor_type="resident", actor_id=resident.id,
          object_type="resident", object_id=resident.id, detail={"via": "sms"})
    return _reply("sms.forget_confirm_match" if live_matches(session, resident.id) else "sms.forget_confirm")


def waiting_for(inbound: "Inbound") -> str | None:
    """What a JA or NEE from this resident answers: their own request to be forgotten, else the later of
    a listing's check-in (CHECKIN) and a proposal (None); "JA 12" naming a proposal answers that one."""
    pending = inbound.resident.conversation or {}
    if pending.get("awaiting") == FORGET and inbound.now - _asked_at(pending) <= FORGET_REQUEST_LAPSES:
        return FORGET
    checkin = outstanding_checkin(inbound.session, inbound.resident.id)
    if checkin is None or checkin.channel == "none":  # noted without a message (opted out): nothing was asked
        return None
    proposals = open_proposals(inbound.session, inbound.resident.id)
    if number_in(inbound.rest) in {m.id for m in proposals}:
        return None
    if any(m.created_at > checkin.asked_at for m in proposals):
        return None
    return CHECKIN


def _asked_at(pending: dict[str, object]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(pending.get("asked_at")))


def _answer_forget(inbound: "Inbound", yes: bool) -> "Reply | None":
    session, resident = inbound.session, inbound.resident
    if not yes:
        resident.conversation = None
        audit(session, "resident.erase_requested", actor_type="resident", actor_id=resident.id,
              object_type="resident", object_id=resident.id, result="withdrawn", detail={"via": "sms"})
        return _reply("sms.forget_kept")
    if inbound.now - _asked_at(resident.conversation or {}) > FORGET_CONFIRM_WITHIN:
        return handle_forget(inbound)  # too late to count: ask again, with a new 24 hours
    erase_resident(session, resident, actor_type="resident", actor_id=resident.id, via="sms",
                   farewell_key="sms.forget_done")
    return None  # the farewell is the last message; nothing else is sent


def _answer_checkin(inbound: "Inbound", yes: bool) -> "Reply":
    done = answer_checkin(inbound.session, inbound.resident, yes, inbound.now, channel="sms")
    assert done is not None  # waiting_for found it, under the same transaction
    inbound.message.listing_id = done.listing.id
    return _reply(done.key, **done.params)


def _late_for_checkin(inbound: "Inbound", yes: bool) -> "Reply | None":
    """A JA or NEE with no proposal open, after a check-in was settled lately: where that listing stands."""
    session, resident = inbound.session, inbound.resident
    if (inbound.rest or "").strip(" .!?") or open_proposals(session, resident.id):
        return None  # "Ja ik wil hulp met de tuin" with nothing waiting is free text for a broker
    row = last_checkin(session, resident.id, inbound.now)
    if row is None:
        return None
    settled = _own_recent(inbound, as_helper=True, number=None, statuses=("accepted", "confirmed", "declined",
                                                                           "expired", "cancelled", "done"))
    if settled is not None and row.answered_at is not None and settled.updated_at > row.answered_at:
        return None  # the proposal was the later question: answered as before
    inbound.message.listing_id = row.listing_id
    return _reply(late_answer_key(session, row, yes), **checkin_params(session, resident, row))


def _answer(inbound: "Inbound", yes: bool) -> "Reply | None":
    waiting = waiting_for(inbound)
    if waiting == FORGET:
        return _answer_forget(inbound, yes=yes)
    if waiting == CHECKIN:
        return _answer_checkin(inbound, yes)
    return _late_for_checkin(inbound, yes) or _answer_proposal(inbound, accept=yes)


def handle_yes(inbound: "Inbound") -> "Reply | None":
    return _answer(inbound, yes=True)


def handle_no(inbound: "Inbound") -> "Reply | None":
    return _answer(inbound, yes=False)


def handle_done(inbound: "Inbound") -> "Reply":
    return _answer_outcome(inbound, done=True)


def handle_problem(inbound: "Inbound") -> "Reply":
    return _answer_outcome(inbound, done=False)


def answer_mark(inbound: "Inbound") -> "Reply | None":
    """A bare 1 to 5 while this resident's "how did it go?" waits: their mark, kept once.

    None when it is no mark or nothing waits for one (never asked, or asked too long ago): the
    message is then free text, as ever. A second mark changes nothing and is thanked as already known.
    """
    found = _MARK.fullmatch(inbound.body or "")
    if found is None:
        return None
    given = record_mark(inbound.session, inbound.resident.id, int(found.group(1)), now=inbound.now)
    if given is None:
        return None
    inbound.message.match_id = given.match_id
    if not given.recorded:
        return _reply("match.already_answered")
    audit(inbound.session, "match.satisfaction", actor_type="resident", actor_id=inbound.resident.id,
          object_type="match", object_id=given.match_id, detail={"channel": "sms"})
    return _reply("match.mark_thanks")


def relay_to_match_partner(inbound: "Inbound") -> tuple[bool, "Reply | None"]:
    """Pass a free text on to the other person of a match that still relays (models/relaying.py;
    ``models.matching.still_relays``: accepted, confirmed, or done a few days ago, and not ended by a broker).

    (True, the reply to the sender if any) when it was taken as a relay: it
    is then no broker's item, unless the pair's daily cap was reached or it
    has a trouble word. A postcode someone was asked for, or an empty
    message, is not passed on.
    """
    resident = inbound.resident
    if not inbound.body.strip():
        return False, None
    if (resident.conversation or {}).get("awaiting") == "postcode" and find_postcode(inbound.body):
        return False, None
    found = relay_partner(inbound.session, resident.id,
                          relay_since_in(inbound.settings, inbound.now))
    if found is None:
        return False, None
    match, other = found
    if (match.status == "done" and len(inbound.body.split()) <= MARK_LIKE_WORDS and _NUMBER_WORD.search(inbound.body)
            and awaits_mark(inbound.session, resident.id, match.id, inbound.now)):
        return False, None
    result = relay_text(inbound.session, match, resident, other, inbound.message, inbound.body,
                        daily_cap=daily_cap(inbound.settings), now=inbound.now)
    inbound.message.match_id = match.id
    audit(inbound.session, "match.relay_sms", actor_type="resident", actor_id=resident.id,
          object_type="match", object_id=match.id,
          detail={"message_id": inbound.message.id, "outcome": result.relay.outcome, "cut": result.relay.cut,
                  "cleaned": result.relay.cleaned, "trouble": result.trouble})
    return True, (_reply(result.reply_key) if result.reply_key else None)
