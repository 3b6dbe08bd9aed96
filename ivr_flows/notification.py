"""The calls Buurtlijn places to tell a resident something, as steps of the one phone engine.

Twilio fetches the call's first TwiML when the resident picks up, and posts
each key to the call's own key URL (gateway/webhooks_notify.py). What is
said and which keys do what is data (steps.NOTIFICATION_STEPS, texts/*.toml):
the message inside a <Gather>, ``*`` repeats it, and for a proposal 1 = ja,
2 = nee (for "is het gelukt?" 1 = klaar, 2 = niet gelukt). An answer goes
through models.notify.answer_match, as the same word by SMS does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models import Call, Match, Resident
from models.audit import audit
from models.matching import Actor, MatchError
from models.notify import MATCH_ANSWERS, answer_match, call_answered, call_expects, is_notification, record_answer
from models.listing_life import answer_checkin, outstanding_checkin
from models.satisfaction import record_mark

from . import machine
from .params import CallParams
from .render import Turn, render, say
from .settings import Settings
from .steps import NOTIFICATION_STEPS, STEPS, Option, Step


@dataclass
class NotificationContext(machine.Context):
    """The machine's context, and where the answer came from (for the audit trail)."""

    remote_addr: str | None = None


def notification_step(call: Call) -> Step:
    return STEPS[NOTIFICATION_STEPS[call_expects(call)]]


def picked_up(session: Session, settings: Settings, call_id: int, params: CallParams, *, action: str) -> str:
    """Twilio: the resident picked up. The message, or goodbye when a proposal was settled meanwhile."""
    call = _load(session, call_id)
    if call is None:
        return _render(None, Turn(), settings, action)
    call_answered(session, call, params.call_sid)
    step = notification_step(call)
    turn = Turn(ask=step.name)
    if call_expects(call) == "proposal" and call.match_id is not None:
        match = session.get(Match, call.match_id)
        if match is not None and match.status != "proposed":
            record_answer(call, "too_late")
            turn = _said(call, "match.call.too_late")
    if call_expects(call) == "checkin" and not (call.data or {}).get("answer"):
        waiting = outstanding_checkin(session, call.resident_id) if call.resident_id is not None else None
        if waiting is None or waiting.listing_id != call.listing_id:  # answered by SMS, or expired meanwhile
            record_answer(call, "too_late")
            turn = _said(call, "match.call.too_late")
    return _render(call, turn, settings, action)


def key_pressed(
    session: Session, settings: Settings, call_id: int, params: CallParams, *, action: str, now: dt.datetime,
    remote_addr: str | None = None,
) -> str:
    """Twilio: the <Gather> ended, with a key or in silence."""
    call = _load(session, call_id)
    if call is None:
        return _render(None, Turn(), settings, action)
    ctx = NotificationContext(session, settings, now, remote_addr=remote_addr)
    digits = (params.answer.digits or "").strip()[:1]
    return _render(call, machine.keyed(ctx, call, notification_step(call), digits), settings, action)


def _load(session: Session, call_id: int) -> Call | None:
    call = session.get(Call, call_id, with_for_update=True)
    return call if is_notification(call) else None


def _render(call: Call | None, turn: Turn, settings: Settings, action: str) -> str:
    language = call.language if call is not None else "nl"
    data = (call.data or {}) if call is not None else {}
    return render(turn, language=language, data=data, seq=0, settings=settings, action=action)


def _said(call: Call, key: str) -> Turn:
    """Say ``key`` and hang up. The call's row settles with the answer and Twilio's status callback."""
    return Turn(said=[say(call.language, key)])


# --- the actions the notification steps name (registered in machine.ACTIONS) -----------------


def answer_the_match(ctx: machine.Context, call: Call, option: Option | None) -> Turn:
    """1 or 2 on a proposal or feedback call: the answer's word, acted on once."""
    assert option is not None and option.value is not None
    match = ctx.session.get(Match, call.match_id) if call.match_id is not None else None
    if match is None:
        step = notification_step(call)
        return machine.retry(ctx, call, step, step.wrong_key)
    answered = (call.data or {}).get("answer")
    if answered:  # Twilio repeated this step: the answer counts once
        known = MATCH_ANSWERS.get(answered)
        return _said(call, known.said if known is not None else "match.call.already")
    resident = ctx.session.get(Resident, call.resident_id)
    assert resident is not None
    remote_addr = ctx.remote_addr if isinstance(ctx, NotificationContext) else None
    actor = Actor("resident", call.resident_id, remote_addr=remote_addr, channel="voice")
    try:
        answer = answer_match(ctx.session, match, resident, actor, option.value)
    except MatchError:
        record_answer(call, "too_late")
        return _said(call, "match.call.too_late" if call_expects(call) == "proposal" else "match.call.already")
    record_answer(call, answer.word)
    return _said(call, answer.said)


def answer_the_mark(ctx: machine.Context, call: Call, option: Option | None) -> Turn:
    """1 to 5 on a "how did it go?" call: the resident's mark, kept once (a repeat or late one changes
    nothing)."""
    assert option is not None and option.value is not None
    answered = (call.data or {}).get("answer")
    if answered:  # Twilio repeated this step
        return _said(call, "match.call.said_mark" if answered.isdigit() else "match.call.already")
    given = record_mark(ctx.session, call.resident_id, int(option.value), now=ctx.now,
                        match_id=call.match_id) if call.resident_id is not None else None
    if given is None or not given.recorded:
        record_answer(call, "already")
        return _said(call, "match.call.already")
    record_answer(call, option.value)
    remote_addr = ctx.remote_addr if isinstance(ctx, NotificationContext) else None
    audit(ctx.session, "match.satisfaction", actor_type="resident", actor_id=call.resident_id,
          object_type="match", object_id=given.match_id, remote_addr=remote_addr, detail={"channel": "voice"})
    return _said(call, "match.call.said_mark")


def answer_the_checkin(ctx: machine.Context, call: Call, option: Option | None) -> Turn:
    """1 or 2 on "is it still current?": the listing stays open, or expires; acted on once."""
    assert option is not None and option.value is not None
    answered = (call.data or {}).get("answer")
    if answered:  # Twilio repeated this step: the answer counts once
        return _said(call, (call.data or {}).get("said") or "match.call.already")
    resident = ctx.session.get(Resident, call.resident_id) if call.resident_id is not None else None
    done = answer_checkin(ctx.session, resident, option.value == "JA", ctx.now, channel="voice",
                          listing_id=call.listing_id) if resident is not None else None
    if done is None:
        record_answer(call, "too_late")
        return _said(call, "match.call.too_late")
    record_answer(call, option.value)
    call.data = {**(call.data or {}), "said": done.said}
    return _said(call, done.said)


def heard(ctx: machine.Context, call: Call, option: Option | None) -> Turn:
    """Any key on a call that asks nothing: it was heard; goodbye."""
    record_answer(call, "heard")
    return _said(call, "match.call.goodbye")


def hang_up(ctx: machine.Context, call: Call, option: Option | None) -> Turn:
    """Silences or wrong keys to the end: goodbye. A proposal stays open for an SMS answer or a broker."""
    return _said(call, "match.call.goodbye")


NOTIFICATION_ACTIONS: dict[str, Callable[[machine.Context, Call, Option | None], Turn]] = {
    "answer_match": answer_the_match,
    "answer_mark": answer_the_mark,
    "answer_checkin": answer_the_checkin,
    "heard": heard,
    "hang_up": hang_up,
}
