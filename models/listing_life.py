"""Listing life: an open listing left alone is checked in on, and expires on NEE or silence.

Contract, "Listing life". A listing is *untouched* while nothing of its own happens: its clock
(``last_touched``: ``touched_at``, set when it is made, edited or reopened and when its owner says it is
still current) is older than ``BUURTLIJN_LISTING_CHECK_DAYS``, no match on it is under way or ended within
that time, and no broker has an item about it in hand (claimed: in touch already). A ``new_listing``
item still waiting does not stop the question; an expiry closes it, as a withdrawal does. Then its
owner is asked, in their channel and language, whether it is still current: one row in
``listing_checkins`` per question, and at most one question waiting per resident, so that a JA is never
ambiguous (the next due listing is asked once the first is answered or expired).

JA (SMS, or 1 on the call) keeps it open and restarts its clock; NEE (or 2), or no answer within
``BUURTLIJN_LISTING_ANSWER_DAYS``, ends it as ``expired`` (``models.listing.end_listing``, so the
marketplace hears of it as of any close) and tells the resident how to ask again. A resident who opted
out of SMS (and is not called) is not messaged: the question is noted without a message and the listing
expires silently after the same time. A marketplace member without a phone is not asked here: the
marketplace keeps its members' listings. The sweep (``workers/listing_jobs.py``) asks and expires.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, exists, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .audit import audit
from .base import Base, IdType, code, intpk, timestamp
from .call import Call
from .callback import Callback
from .listing import Listing, end_listing
from .match import Match
from .marketplace import close_waiting_items, match_under_way
from .resident import NUMBER_NONE, Resident
from .vocabulary import EXPIRED_OUTCOME, LIVE_MATCH_STATUSES, check_in

__all__ = [
    "CHECKIN_ANSWERS", "CheckinAnswer", "ListingCheckin", "answer_checkin", "ask_checkin", "due_for_checkin",
    "checkins_of", "expire_unanswered", "last_checkin", "outstanding_checkin",
]

# yes / no: the owner's answer; silence: none within the answer time; overtaken: the listing was
# matched or ended otherwise while the question waited (it is not expired for it).
CHECKIN_ANSWERS = ("yes", "no", "silence", "overtaken")
# sms | voice: how the question went out; none: not sent (the resident opted out of SMS).
CHECKIN_CHANNELS = ("sms", "voice", "none")
# A JA or NEE this long after a check-in was settled is answered about it ("already closed").
LATE_ANSWER_WITHIN = dt.timedelta(days=14)


class ListingCheckin(Base):
    __tablename__ = "listing_checkins"
    __table_args__ = (
        CheckConstraint(check_in("channel", CHECKIN_CHANNELS), name="channel"),
        CheckConstraint(f"answer IS NULL OR {check_in('answer', CHECKIN_ANSWERS)}", name="answer"),
    )

    id: Mapped[intpk]
    listing_id: Mapped[int] = mapped_column(IdType, ForeignKey("listings.id"), index=True)
    resident_id: Mapped[int] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    channel: Mapped[code]
    asked_at: Mapped[dt.datetime] = mapped_column()
    answer: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[timestamp]


def days_setting(config: Any, name: str) -> dt.timedelta:
    """``BUURTLIJN_LISTING_CHECK_DAYS`` or ``..._ANSWER_DAYS`` (decimal days, parsed by gateway.config)."""
    return dt.timedelta(days=float(config[name]))


def last_touched() -> Any:
    """When the listing's clock last started; rows from before ``touched_at`` count from their making."""
    return func.coalesce(Listing.touched_at, Listing.created_at)


def _waiting(resident_id: Any) -> Any:
    return exists().where(ListingCheckin.resident_id == resident_id, ListingCheckin.answer.is_(None))


def _due(now: dt.datetime, check_after: dt.timedelta) -> Any:
    since = now - check_after
    match_lately = exists().where(
        or_(Match.request_id == Listing.id, Match.offer_id == Listing.id),
        or_(Match.status.in_(LIVE_MATCH_STATUSES), Match.updated_at > since),
    )
    broker_on_it = exists().where(Callback.listing_id == Listing.id, Callback.status == "claimed")
    return (
        select(Listing.id).join(Resident, Resident.id == Listing.resident_id)
        .where(Listing.status == "open", last_touched() <= since, Resident.number_status != NUMBER_NONE,
               ~match_lately, ~broker_on_it, ~_waiting(Listing.resident_id))
    )


def due_for_checkin(session: Session, now: dt.datetime, check_after: dt.timedelta, limit: int) -> list[int]:
    """Open listings untouched for ``check_after`` whose owner has no question waiting, oldest clock first."""
    return list(session.scalars(_due(now, check_after).order_by(last_touched(), Listing.id).limit(limit)))


def _names(resident: Resident, listing: Listing) -> dict[str, str]:
    import texts  # it imports models

    return {"category": texts.category_name(resident.language, listing.category)}


def ask_checkin(session: Session, listing: Listing, now: dt.datetime, check_after: dt.timedelta) -> bool:
    """Ask ``listing``'s owner whether it is still current; False when it is no longer due (checked again
    under the owner's lock, so two sweeps never ask twice)."""
    from .notify import notify_resident, wants_voice  # it imports texts, which imports models

    resident = session.get(Resident, listing.resident_id, with_for_update=True)
    if resident is None or session.scalar(_due(now, check_after).where(Listing.id == listing.id)) is None:
        return False
    voice = wants_voice(resident)
    silent = resident.opted_out and not voice
    row = ListingCheckin(listing_id=listing.id, resident_id=resident.id, asked_at=now,
                         channel="none" if silent else "voice" if voice else "sms")
    session.add(row)
    session.flush()
    if not silent:
        notify_resident(session, resident, f"listing_life.checkin_{listing.kind}", _names(resident, listing),
                        purpose="listing_checkin", dedupe_key=f"checkin:{row.id}", listing_id=listing.id,
                        expects="checkin")
    audit(session, "listing.checkin_asked", actor_type="system", object_type="listing", object_id=listing.id,
          detail={"channel": row.channel})
    return True


def outstanding_checkin(session: Session, resident_id: int, *, lock: bool = False) -> ListingCheckin | None:
    """The question about a listing waiting for this resident's answer, if any."""
    query = select(ListingCheckin).where(ListingCheckin.resident_id == resident_id,
                                         ListingCheckin.answer.is_(None)).order_by(ListingCheckin.id.desc()).limit(1)
    return session.scalars(query.with_for_update() if lock else query).first()


def last_checkin(session: Session, resident_id: int, now: dt.datetime) -> ListingCheckin | None:
    """This resident's check-in settled lately (for a JA or NEE that comes after it)."""
    return session.scalars(
        select(ListingCheckin).where(ListingCheckin.resident_id == resident_id, ListingCheckin.answer.in_(
            ("yes", "no", "silence")), ListingCheckin.answered_at >= now - LATE_ANSWER_WITHIN)
        .order_by(ListingCheckin.answered_at.desc(), ListingCheckin.id.desc()).limit(1)
    ).first()


@dataclass(frozen=True)
class CheckinAnswer:
    """What an answer did, and what to say: ``key`` for an SMS reply, ``said`` for the call."""

    listing: Listing
    outcome: str  # kept | expired | closed_already
    key: str
    said: str
    params: dict[str, str]


def _settle(row: ListingCheckin, answer: str, now: dt.datetime) -> None:
    """The question is settled; a call still waiting to ask it again is not placed."""
    row.answer = answer
    row.answered_at = now
    session = Session.object_session(row)
    assert session is not None
    for call in session.scalars(select(Call).where(Call.listing_id == row.listing_id, Call.purpose == "notification",
                                                   Call.status == "pending")):
        if (call.data or {}).get("expects") == "checkin":
            call.status = "abandoned"
            call.data = {**(call.data or {}), "gave_up": f"checkin_{answer}"}


def _overtaken(session: Session, listing: Listing) -> bool:
    """Matched or ended otherwise while the question waited: the question no longer stands."""
    return listing.status != "open" or match_under_way(session, listing.id)


def expire_listing(session: Session, listing: Listing, now: dt.datetime, *, why: str) -> bool:
    """End ``listing`` as expired, once (False when it had ended already), audited as the system's act."""
    if not end_listing(listing, "expired", now):
        return False
    close_waiting_items(session, listing, EXPIRED_OUTCOME)
    audit(session, "listing.expired", actor_type="system", object_type="listing", object_id=listing.id,
          detail={"why": why})
    return True


def answer_checkin(session: Session, resident: Resident, yes: bool, now: dt.datetime, *, channel: str,
                   listing_id: int | None = None) -> CheckinAnswer | None:
    """The owner's JA or NEE to the question waiting (for ``listing_id``, on a call); None when none waits."""
    row = outstanding_checkin(session, resident.id, lock=True)
    if row is None or (listing_id is not None and row.listing_id != listing_id):
        return None
    listing = session.get(Listing, row.listing_id, with_for_update=True)
    assert listing is not None
    params = _names(resident, listing)
    if _overtaken(session, listing):
        _settle(row, "overtaken", now)
        return CheckinAnswer(listing, "closed_already", f"listing_life.closed_already_{listing.kind}",
                             "match.call.too_late", params)
    detail = {"channel": channel, "answer": "yes" if yes else "no"}
    audit(session, "listing.checkin_answered", actor_type="resident", actor_id=resident.id,
          object_type="listing", object_id=listing.id, detail=detail)
    if yes:
        _settle(row, "yes", now)
        listing.touched_at = now
        return CheckinAnswer(listing, "kept", f"listing_life.kept_{listing.kind}", "listing_life.call.kept",
                             params)
    _settle(row, "no", now)
    expire_listing(session, listing, now, why="no")
    return CheckinAnswer(listing, "expired", f"listing_life.closed_{listing.kind}",
                         f"listing_life.call.closed_{listing.kind}", params)


def late_answer_key(session: Session, row: ListingCheckin, yes: bool) -> str:
    """The reply to a JA or NEE after the check-in was settled: kept already, or closed already."""
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    if row.answer == "yes" and listing.status == "open":
        return f"listing_life.kept_{listing.kind}" if yes else f"listing_life.still_open_{listing.kind}"
    return f"listing_life.closed_already_{listing.kind}"


def checkin_params(session: Session, resident: Resident, row: ListingCheckin) -> dict[str, str]:
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    return _names(resident, listing)


def checkins_of(session: Session, listing_ids: list[int]) -> dict[int, list[ListingCheckin]]:
    """Each listing's check-ins, newest first: the item page shows when it was asked and what came of it."""
    found: dict[int, list[ListingCheckin]] = {}
    if listing_ids:
        for row in session.scalars(select(ListingCheckin).where(ListingCheckin.listing_id.in_(listing_ids))
                                   .order_by(ListingCheckin.id.desc())):
            found.setdefault(row.listing_id, []).append(row)
    return found


def unanswered(session: Session, now: dt.datetime, answer_within: dt.timedelta, limit: int) -> list[int]:
    """Questions whose time is up, and those whose listing was matched or ended meanwhile."""
    on_it = or_(Match.request_id == ListingCheckin.listing_id, Match.offer_id == ListingCheckin.listing_id)
    live = exists().where(on_it, Match.status.in_(LIVE_MATCH_STATUSES))
    not_open = exists().where(Listing.id == ListingCheckin.listing_id, Listing.status != "open")
    return list(session.scalars(
        select(ListingCheckin.id).where(ListingCheckin.answer.is_(None),
                                        or_(ListingCheckin.asked_at <= now - answer_within, live, not_open))
        .order_by(ListingCheckin.id).limit(limit)
    ))


def expire_unanswered(session: Session, checkin_id: int, now: dt.datetime, answer_within: dt.timedelta) -> bool:
    """No answer in time: the listing expires and its owner is told how to ask again. True when it expired."""
    from .notify import notify_resident, wants_voice  # it imports texts, which imports models

    row = session.get(ListingCheckin, checkin_id, with_for_update=True)
    if row is None or row.answer is not None:
        return False
    listing = session.get(Listing, row.listing_id, with_for_update=True)
    resident = session.get(Resident, row.resident_id)
    assert listing is not None and resident is not None
    if _overtaken(session, listing):
        _settle(row, "overtaken", now)
        return False
    if row.asked_at > now - answer_within:
        return False
    _settle(row, "silence", now)
    if not expire_listing(session, listing, now, why="silence"):
        return False
    if row.channel != "none" and not (resident.opted_out and not wants_voice(resident)):
        notify_resident(session, resident, f"listing_life.expired_{listing.kind}", _names(resident, listing),
                        purpose="listing_expired", dedupe_key=f"checkin:{row.id}:expired", listing_id=listing.id)
    return True
