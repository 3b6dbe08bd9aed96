"""JA / NEE / KLAAR / NIET GELUKT, and texts passed on between matched neighbours.

``JA`` and ``NEE`` answer the helper's open proposal; ``JA 12`` picks
proposal 12 when several are open, and a plain ``JA`` then asks which one.
``KLAAR`` and ``NIET GELUKT`` answer for an accepted or confirmed match, from
either side. Each word becomes its match action in models.notify.answer_match,
as a keypress on a notification call does, so an answer counts the same in
either channel.

The message is stored with its keyword either way; with nothing open to
answer, the reply says so.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from models import Listing, Match
from models.audit import audit
from models.districts import find_postcode
from models.matching import Actor, MatchError, active_matches, open_proposals, relay_partner
from models.notify import answer_match
from models.relaying import daily_cap, relay_text

if TYPE_CHECKING:
    from .flows import Inbound, Reply

_NUMBER = re.compile(r"(?<!\d)(\d{1,9})(?!\d)")
# A late JA/KLAAR for a match answered this recently gets "already noted", not "nothing open".
RECENT = dt.timedelta(days=14)


def _reply(key: str, **params: object) -> "Reply":
    from .flows import Reply

    return Reply(key, dict(params))


def _number(rest: str) -> int | None:
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
    number = _number(inbound.rest)
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


def _settled_reply(match: Match | None, *, for_proposal: bool) -> "Reply":
    if match is None:
        return _reply("sms.nothing_to_answer")
    if for_proposal and match.status in ("expired", "cancelled"):
        return _reply("match.too_late")
    return _reply("match.already_answered")


def _answer_proposal(inbound: "Inbound", accept: bool) -> "Reply":
    session, resident = inbound.session, inbound.resident
    match, ask = _pick(inbound, open_proposals(session, resident.id))
    if ask is not None:
        return ask
    if match is None:
        return _settled_reply(_own_recent(inbound, as_helper=True, number=_number(inbound.rest),
                                           statuses=("accepted", "confirmed", "declined", "expired", "cancelled", "done")), for_proposal=True)
    inbound.message.match_id = match.id
    try:
        answer = answer_match(session, match, resident, _actor(inbound), "JA" if accept else "NEE")
    except MatchError:  # expired or cancelled while the answer was on its way
        return _settled_reply(match, for_proposal=True)
    return _reply(answer.texted)


def _answer_outcome(inbound: "Inbound", done: bool) -> "Reply":
    session, resident = inbound.session, inbound.resident
    match, ask = _pick(inbound, active_matches(session, resident.id))
    if ask is not None:
        return ask
    if match is None:
        return _settled_reply(_own_recent(inbound, as_helper=False, number=_number(inbound.rest),
                                          statuses=("done",)),
                              for_proposal=False)
    inbound.message.match_id = match.id
    try:
        answer = answer_match(session, match, resident, _actor(inbound), "KLAAR" if done else "NIET GELUKT")
    except MatchError:
        return _reply("match.already_answered")
    return _reply(answer.texted)


def handle_yes(inbound: "Inbound") -> "Reply":
    return _answer_proposal(inbound, accept=True)


def handle_no(inbound: "Inbound") -> "Reply":
    return _answer_proposal(inbound, accept=False)


def handle_done(inbound: "Inbound") -> "Reply":
    return _answer_outcome(inbound, done=True)


def handle_problem(inbound: "Inbound") -> "Reply":
    return _answer_outcome(inbound, done=False)


def relay_to_match_partner(inbound: "Inbound") -> tuple[bool, "Reply | None"]:
    """Pass a free text on to the other person of an accepted or confirmed match (models/relaying.py).

    (True, the reply to the sender if any) when it was taken as a relay: it
    is then no broker's item, unless the pair's daily cap was reached. A
    postcode someone was asked for, or an empty message, is not passed on.
    """
    resident = inbound.resident
    if not inbound.body.strip():
        return False, None
    if (resident.conversation or {}).get("awaiting") == "postcode" and find_postcode(inbound.body):
        return False, None
    found = relay_partner(inbound.session, resident.id)
    if found is None:
        return False, None
    match, other = found
    result = relay_text(inbound.session, match, resident, other, inbound.message, inbound.body,
                        daily_cap=daily_cap(inbound.settings), now=inbound.now)
    inbound.message.match_id = match.id
    audit(inbound.session, "match.relay_sms", actor_type="resident", actor_id=resident.id,
          object_type="match", object_id=match.id,
          detail={"message_id": inbound.message.id, "outcome": result.relay.outcome, "cut": result.relay.cut,
                  "cleaned": result.relay.cleaned})
    return True, (_reply(result.reply_key) if result.reply_key else None)
