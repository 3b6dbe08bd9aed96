"""A resident's rights over their data: see everything we hold (export), and have it erased.

One service for every way in: the SMS ``VERGEET MIJ``, the phone menu, the ``buurtlijn`` command,
the coordinators' dashboard and the retention sweep all call ``erase_resident`` (or, for items
closed long ago, ``erase_listing_content``), so the rules are written once.

``COLUMNS`` says, for every column that can hold text, whether it can hold a resident's data and
what erasure does to it. ``tests/test_privacy.py`` walks ``Base.metadata``: a table or a text column
added without an entry here fails it, so a new place for personal data cannot be forgotten.

What erasure keeps: the rows themselves (reports count listings, matches and queue items), their
codes and dates, the coarse district (a stadsdeel, for counts), and Twilio's SIDs (ids, not data).
What it overwrites: every phone number, name, postcode, description, note, message body, keyed-in
digit, stored TwiML and sealed call state. Recordings are deleted at Twilio and here by a job. The
other person of a match keeps their own data; their match is cancelled and they are told.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, null, or_, select, update
from sqlalchemy.orm import Session

import texts

from .audit import audit
from .base import Base, utcnow
from .broker import AuditEvent
from .call import Call
from .callback import Callback
from .db import defer_job
from .events import Event, listing_key, record_resident_erased
from .jobs import DELETE_RECORDING, SEND_MESSAGE
from .listing import Listing
from .match import Match
from .matching import leave_match
from .message import Message
from .relay import Relay
from .reports import unroll_resident
from .outbox import send_job_id
from .phones import scrub_numbers
from .resident import Resident
from .listing_life import ListingCheckin
from .satisfaction import Satisfaction
from .vocabulary import CURRENT_LISTING_STATUSES, ERASED_OUTCOME, LIVE_MATCH_STATUSES, QUEUED_CALLBACK_STATUSES

# An erased resident's phone column (unique, not null) holds this and their id: never a number.
ERASED_PHONE_PREFIX = "erased-"
# The last SMS to an erased resident ("everything is erased"): the one message they may still get.
ERASURE_CONFIRMATION = "erasure_confirmation"


class Rule(Enum):
    KEEP = "keep"  # no personal data: a code, a date, an id, a SID
    CLEAR = "clear"  # set to NULL
    BLANK = "blank"  # set to '' (the column is NOT NULL)
    EMPTY = "empty"  # JSON set to {}
    PHONE = "phone"  # the resident's own number: replaced by ERASED_PHONE_PREFIX + id
    SCRUB = "scrub"  # JSON kept, every phone number in its strings replaced


KEEP, CLEAR, BLANK, EMPTY, PHONE, SCRUB = Rule.KEEP, Rule.CLEAR, Rule.BLANK, Rule.EMPTY, Rule.PHONE, Rule.SCRUB

# Tables that hold nothing about residents, and why.
NOT_ABOUT_RESIDENTS = {
    "brokers": "the organisation's own staff accounts",
    "login_throttles": "counts of failed logins to the dashboard, by address or e-mail: staff, not residents",
    "api_clients": "the marketplace's API clients: a name and a token's hash",
    "api_idempotency_keys": "a copy of an API answer for a retried request, deleted after 24 hours by the sweep",
    "events": "copies of listings and matches for the marketplace: an erasure deletes those about the "
              "resident's listings and tells the marketplace with one resident.erased event",
    "report_rolled_days": "the report's figures of a day: counts only",
    "report_days": "the report's sums per day and district, category or channel: counts only",
    "report_reach": "who the report counted as reached on a day, by id and group codes only (so that a "
                    "resident counts once in a period); an erasure has the resident's days counted again",
}

# Every text-like column of every table about residents, and what erasure does to it.
COLUMNS: dict[str, dict[str, Rule]] = {
    "residents": {
        "phone": PHONE, "name": CLEAR, "postcode": CLEAR, "district": CLEAR, "conversation": CLEAR,
        "notes": CLEAR, "language": KEEP, "number_status": KEEP, "line_type": KEEP,
    },
    "listings": {
        "description": CLEAR, "postcode": CLEAR, "recording_url": CLEAR, "external_ref": KEEP, "district": KEEP,
        "kind": KEEP,
        "category": KEEP, "timing": KEEP, "channel": KEEP, "status": KEEP, "recording_sid": KEEP,
    },
    "messages": {
        "phone": CLEAR, "raw_from": CLEAR, "body": BLANK, "error_message": CLEAR, "direction": KEEP,
        "twilio_sid": KEEP, "status": KEEP, "keyword": KEEP, "opt_out_type": KEEP, "purpose": KEEP,
        "dedupe_key": KEEP,
    },
    "calls": {
        "raw_from": CLEAR, "data": EMPTY, "reply_twiml": CLEAR, "call_sid": KEEP, "direction": KEEP,
        "purpose": KEEP, "language": KEEP, "step": KEEP, "status": KEEP, "twilio_status": KEEP, "dedupe_key": KEEP,
    },
    "callbacks": {
        "note": CLEAR, "reason": KEEP, "status": KEEP, "outcome": KEEP, "dedupe_key": KEEP,
    },
    "matches": {
        "note": CLEAR, "status": KEEP, "closed_by": KEEP, "close_reason": KEEP,
    },
    "relays": {"relayed": CLEAR, "outcome": KEEP},
    "satisfaction": {"channel": KEEP},
    "listing_checkins": {"channel": KEEP, "answer": KEEP},
    "audit_events": {
        "detail": SCRUB, "actor_type": KEEP, "action": KEEP, "object_type": KEEP, "object_id": KEEP,
        "result": KEEP, "remote_addr": KEEP,
    },
}


def is_erased(resident: Resident | None) -> bool:
    return resident is not None and resident.phone.startswith(ERASED_PHONE_PREFIX)


# --- what we hold ---------------------------------------------------------------------------------


@dataclass
class Holdings:
    """The ids of every row that is about one resident."""

    resident: Resident
    listings: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    callbacks: list[int] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)
    audit_events: list[int] = field(default_factory=list)
    relays: list[int] = field(default_factory=list)  # texts passed on from or to them within a match
    marks: list[int] = field(default_factory=list)  # their satisfaction marks
    checkins: list[int] = field(default_factory=list)  # "is it still current?" asked about their listings
    # Messages to the other person of a match that carry this resident's words.
    relayed: list[int] = field(default_factory=list)


def _ids(session: Session, query: Any) -> list[int]:
    return sorted(set(session.scalars(query)))


def holdings(session: Session, resident: Resident) -> Holdings:
    held = Holdings(resident)
    rid, phone = resident.id, resident.phone
    held.listings = _ids(session, select(Listing.id).where(Listing.resident_id == rid))
    held.messages = _ids(session, select(Message.id).where(
        or_(Message.resident_id == rid, Message.phone == phone, Message.raw_from == phone)))
    held.calls = _ids(session, select(Call.id).where(or_(Call.resident_id == rid, Call.raw_from == phone)))
    held.callbacks = _ids(session, select(Callback.id).where(or_(
        Callback.resident_id == rid,
        Callback.listing_id.in_(held.listings or [-1]),
        Callback.message_id.in_(held.messages or [-1]),
        Callback.call_id.in_(held.calls or [-1]),
    )))
    held.matches = _ids(session, select(Match.id).where(or_(
        Match.request_id.in_(held.listings or [-1]), Match.offer_id.in_(held.listings or [-1]))))
    inbound = _ids(session, select(Message.id).where(Message.id.in_(held.messages or [-1]),
                                                     Message.direction == "inbound"))
    if inbound:
        held.relayed = _ids(session, select(Message.id).where(
            Message.dedupe_key.in_([f"relay:{message_id}" for message_id in inbound])))
    about = [("resident", rid), *(("listing", i) for i in held.listings), *(("callback", i) for i in held.callbacks),
             *(("match", i) for i in held.matches), *(("message", i) for i in held.messages),
             *(("call", i) for i in held.calls)]
    conditions = [(AuditEvent.actor_type == "resident") & (AuditEvent.actor_id == rid)]
    by_type: dict[str, list[str]] = {}
    for object_type, object_id in about:
        by_type.setdefault(object_type, []).append(str(object_id))
    for object_type, object_ids in by_type.items():
        conditions.append((AuditEvent.object_type == object_type) & AuditEvent.object_id.in_(object_ids))
    held.audit_events = _ids(session, select(AuditEvent.id).where(or_(*conditions)))
    held.relays = _ids(session, select(Relay.id).where(or_(Relay.from_resident_id == rid, Relay.to_resident_id == rid)))
    held.marks = _ids(session, select(Satisfaction.id).where(Satisfaction.resident_id == rid))
    held.checkins = _ids(session, select(ListingCheckin.id).where(ListingCheckin.resident_id == rid))
    return held


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _row(row: Any) -> dict[str, Any]:
    return {column.key: _value(getattr(row, column.key)) for column in row.__table__.columns}


def _rows(session: Session, model: type[Base], ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return [_row(row) for row in session.scalars(select(model).where(model.id.in_(ids)).order_by(model.id))]


# The export's sections, one per table about residents, and the model each comes from.
EXPORTED: dict[str, type[Base]] = {
    "residents": Resident, "listings": Listing, "messages": Message, "calls": Call, "callbacks": Callback,
    "matches": Match, "audit_events": AuditEvent, "relays": Relay, "satisfaction": Satisfaction,
    "listing_checkins": ListingCheckin,
}


def export_resident(session: Session, resident: Resident) -> dict[str, Any]:
    """Everything Buurtlijn holds about ``resident``, as plain JSON values.

    One section per table (every column), plus ``recordings`` (ids and dates). Matches hold only
    listing ids, so the other person's data is not in it.
    """
    held = holdings(session, resident)
    listings = _rows(session, Listing, held.listings)
    return {
        "exported_at": utcnow().isoformat(),
        "resident": _row(resident),
        "listings": listings,
        "recordings": [
            {"listing_id": listing["id"], "recording_sid": listing["recording_sid"],
             "recorded_at": listing["created_at"], "duration_seconds": listing["recording_duration"],
             "deleted_at": listing["recording_deleted_at"]}
            for listing in listings if listing["recording_sid"]
        ],
        "messages": _rows(session, Message, held.messages),
        "calls": _rows(session, Call, held.calls),
        "callbacks": _rows(session, Callback, held.callbacks),
        "matches": _rows(session, Match, held.matches),
        "audit_events": _rows(session, AuditEvent, held.audit_events),
        "relays": _rows(session, Relay, held.relays),
        "satisfaction": _rows(session, Satisfaction, held.marks),
        "listing_checkins": _rows(session, ListingCheckin, held.checkins),
    }


def live_matches(session: Session, resident_id: int) -> list[Match]:
    """The resident's matches still going (proposed, accepted, confirmed), on either side."""
    listings = select(Listing.id).where(Listing.resident_id == resident_id).scalar_subquery()
    return list(session.scalars(select(Match).where(
        or_(Match.request_id.in_(listings), Match.offer_id.in_(listings)),
        Match.status.in_(LIVE_MATCH_STATUSES)).order_by(Match.id)))


def holds_anything(session: Session, resident: Resident, *, besides_message: int | None = None) -> bool:
    """Whether there is anything about ``resident`` beyond their row (and the message ``besides_message``)."""
    held = holdings(session, resident)
    return bool(held.listings or held.calls or held.callbacks or resident.name or resident.postcode
                or resident.notes or set(held.messages) - {besides_message})


# --- erasure --------------------------------------------------------------------------------------


def _overwrite(table: str, row_id_column: Any, ids: list[int], session: Session, resident_id: int) -> None:
    """Apply ``COLUMNS[table]`` to the rows ``ids`` in one UPDATE."""
    if not ids:
        return
    values: dict[str, Any] = {}
    for name, rule in COLUMNS[table].items():
        if rule is CLEAR:
            values[name] = null()  # SQL NULL, also in a JSON column (not JSON's null)
        elif rule is BLANK:
            values[name] = ""
        elif rule is EMPTY:
            values[name] = {}
        elif rule is PHONE:
            values[name] = f"{ERASED_PHONE_PREFIX}{resident_id}"
    model = row_id_column.class_
    if "updated_at" in model.__table__.columns:
        values["updated_at"] = utcnow()
    # RETURNING names the rows, so that the marketplace's events see listings and matches change too.
    session.execute(update(model).where(row_id_column.in_(ids)).values(**values).returning(row_id_column),
                    execution_options={"synchronize_session": False})


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_numbers(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


@dataclass(frozen=True)
class Erasure:
    """What one erasure did, by count (for the audit line, the dashboard and the command's output)."""

    resident_id: int
    counts: dict[str, int]
    partners_told: int
    recordings: int


def erase_listing_content(session: Session, listing_ids: list[int], resident_id: int) -> int:
    """Erase what these listings say (description, postcode, recording) and the notes of their queue
    items; the rows stay. Returns how many recordings are to be deleted (a job each)."""
    if not listing_ids:
        return 0
    recordings = _ids(session, select(Listing.id).where(
        Listing.id.in_(listing_ids), Listing.recording_sid.is_not(None), Listing.recording_deleted_at.is_(None)))
    _overwrite("listings", Listing.id, listing_ids, session, resident_id)
    items = _ids(session, select(Callback.id).where(Callback.listing_id.in_(listing_ids)))
    _overwrite("callbacks", Callback.id, items, session, resident_id)
    for listing_id in recordings:
        defer_job(session, DELETE_RECORDING, listing_id, job_id=f"delete-recording-{listing_id}")
    return len(recordings)


def erase_resident(
    session: Session,
    resident: Resident,
    *,
    actor_type: str,
    actor_id: int | None = None,
    via: str,
    remote_addr: str | None = None,
    farewell_key: str | None = None,
) -> Erasure | None:
    """Erase everything about ``resident``; None when they were erased before (a second erasure does nothing).

    ``farewell_key``: a catalogue text sent as the one last SMS (the resident asked by SMS); it is
    the only message that still goes to the number, and the sweep forgets the number once it went.
    """
    if is_erased(resident):
        return None
    session.flush()
    now = utcnow()
    phone, language = resident.phone, resident.language
    held = holdings(session, resident)

    # The other person of a live match is told it is off; their own data stays.
    partners = 0
    for match in live_matches(session, resident.id):
        leave_match(session, match, resident.id)
        partners += 1
    session.flush()

    # Work still queued finds nothing to do: messages not sent, calls not placed, items not called.
    session.execute(update(Message).where(Message.id.in_(held.messages or [-1]), Message.direction == "outbound",
                                          Message.status.in_(("pending", "submitting")))
                    .values(status="blocked", error_message=None, status_at=now),
                    execution_options={"synchronize_session": False})
    session.execute(update(Message).where(Message.id.in_(held.messages or [-1]), Message.direction == "inbound",
                                          Message.status == "received")
                    .values(status="handled", handled_at=now),
                    execution_options={"synchronize_session": False})
    session.execute(update(Call).where(Call.id.in_(held.calls or [-1]), Call.status == "pending")
                    .values(status="blocked"),
                    execution_options={"synchronize_session": False})
    for callback in session.scalars(select(Callback).where(Callback.id.in_(held.callbacks or [-1]),
                                                           Callback.resident_id == resident.id,
                                                           Callback.status.in_(QUEUED_CALLBACK_STATUSES))):
        callback.status, callback.outcome, callback.closed_at = "cancelled", ERASED_OUTCOME, now
        callback.claimed_by_id, callback.lease_expires_at, callback.dedupe_key = None, None, None
    session.execute(update(Listing).where(Listing.id.in_(held.listings or [-1]),
                                          Listing.status.in_(CURRENT_LISTING_STATUSES))
                    .values(status="cancelled", closed_at=now).returning(Listing.id),
                    execution_options={"synchronize_session": False})
    session.flush()

    recordings = erase_listing_content(session, held.listings, resident.id)
    _overwrite("messages", Message.id, held.messages + held.relayed, session, resident.id)
    _overwrite("calls", Call.id, held.calls, session, resident.id)
    _overwrite("callbacks", Callback.id, held.callbacks, session, resident.id)
    _overwrite("matches", Match.id, held.matches, session, resident.id)
    # Their words passed on to a match partner; what the partner sent them stays the partner's.
    _overwrite("relays", Relay.id, _ids(session, select(Relay.id).where(Relay.from_resident_id == resident.id)),
               session, resident.id)
    session.execute(delete(Event).where(Event.order_key.in_([listing_key(i) for i in held.listings] or ["-"])))
    for event in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(held.audit_events or [-1]),
                                                          AuditEvent.detail.is_not(None))):
        event.detail = _scrub(event.detail)
    # Their district goes: the report's rolled-up days with their rows are counted again without it.
    unroll_resident(session, resident.id)
    _overwrite("residents", Resident.id, [resident.id], session, resident.id)
    session.execute(update(Resident).where(Resident.id == resident.id)
                    .values(opted_out=True, opted_out_at=now, prefers_voice=False),
                    execution_options={"synchronize_session": False})
    session.flush()
    # The UPDATEs above went past the objects this session holds: read them again.
    session.expire_all()

    counts = {"listings": len(held.listings), "messages": len(held.messages), "calls": len(held.calls),
              "callbacks": len(held.callbacks), "matches": len(held.matches)}
    audit(session, "resident.erase", actor_type=actor_type, actor_id=actor_id, object_type="resident",
          object_id=resident.id, remote_addr=remote_addr,
          detail={"via": via, **counts, "recordings": recordings, "partners_told": partners})
    # The online marketplace forgets them too (nothing is written when no webhook is configured).
    record_resident_erased(session, held.listings, held.matches)
    if farewell_key is not None:
        _send_farewell(session, resident.id, phone, texts.t(language, farewell_key))
    return Erasure(resident.id, counts, partners, recordings)


def _send_farewell(session: Session, resident_id: int, phone: str, body: str) -> None:
    message = Message(direction="outbound", resident_id=resident_id, phone=phone, body=texts.fit_gsm7(body),
                      status="pending", purpose=ERASURE_CONFIRMATION, urgent=True, attempts=0,
                      dedupe_key=f"erased:{resident_id}")
    session.add(message)
    session.flush()
    defer_job(session, SEND_MESSAGE, message.id, job_id=send_job_id(message.id, 0))


def forget_sent_farewells(session: Session) -> int:
    """The last message to an erased resident, once it went (or failed), forgets their number and words."""
    return session.execute(
        update(Message)
        .where(Message.purpose == ERASURE_CONFIRMATION, Message.phone.is_not(None),
               Message.status.not_in(("pending", "submitting")))
        .values(phone=None, raw_from=None, body="", error_message=None),
        execution_options={"synchronize_session": False},
    ).rowcount or 0


# --- retention ------------------------------------------------------------------------------------

# Login throttle rows (dashboard staff, by address or e-mail) are kept this long after their window,
# unless still locked: long enough to lock out a guesser, no longer.
LOGIN_THROTTLE_KEEP = dt.timedelta(days=1)
CLOSED_LISTING_STATUSES = ("done", "cancelled", "expired")
CLOSED_CALLBACK_STATUSES = ("done", "cancelled")
CLOSED_MATCH_STATUSES = ("declined", "expired", "done", "cancelled")
# Someone with nothing going on and no contact for the retention period is forgotten entirely.
RETENTION_RESIDENTS_PER_RUN = 500


def apply_retention(session: Session, now: dt.datetime, keep: dt.timedelta) -> dict[str, int]:
    """Erase, by the rules above, what is older than ``keep``: the content of closed listings, queue
    items and matches, old messages and calls, and residents with nothing going on and no contact
    since; old login throttles are deleted. Safe to run any time; returns what it did, per kind."""
    from .throttle import LoginThrottle  # staff data: its own rule, not COLUMNS

    cutoff = now - keep
    done: dict[str, int] = {}
    old_listings = session.execute(select(Listing.id, Listing.resident_id).where(
        Listing.status.in_(CLOSED_LISTING_STATUSES), func.coalesce(Listing.closed_at, Listing.updated_at) < cutoff,
        or_(Listing.description.is_not(None), Listing.postcode.is_not(None), Listing.recording_url.is_not(None),
            Listing.recording_sid.is_not(None) & Listing.recording_deleted_at.is_(None)))).all()
    for listing_id, resident_id in old_listings:
        erase_listing_content(session, [listing_id], resident_id)
    done["listings"] = len(old_listings)
    done["callbacks"] = _clear_old(session, "callbacks", Callback, Callback.status.in_(CLOSED_CALLBACK_STATUSES),
                                   Callback.closed_at < cutoff, Callback.note.is_not(None))
    done["matches"] = _clear_old(session, "matches", Match, Match.status.in_(CLOSED_MATCH_STATUSES),
                                 Match.updated_at < cutoff, Match.note.is_not(None))
    done["messages"] = _clear_old(session, "messages", Message, Message.created_at < cutoff,
                                  Message.status.not_in(("pending", "submitting", "received")),
                                  or_(Message.body != "", Message.phone.is_not(None), Message.raw_from.is_not(None)))
    done["calls"] = _clear_old(session, "calls", Call, Call.created_at < cutoff,
                               Call.status.not_in(("pending", "submitting", "dialling", "answered", "in_progress")),
                               or_(Call.raw_from.is_not(None), Call.reply_twiml.is_not(None)))
    busy = or_(
        Listing.status.in_(CURRENT_LISTING_STATUSES),
        Listing.id.in_(select(Match.request_id).where(Match.status.in_(LIVE_MATCH_STATUSES))),
        Listing.id.in_(select(Match.offer_id).where(Match.status.in_(LIVE_MATCH_STATUSES))),
    )
    quiet = list(session.scalars(
        select(Resident).where(
            ~Resident.phone.startswith(ERASED_PHONE_PREFIX),
            func.coalesce(Resident.last_contact_at, Resident.created_at) < cutoff,
            ~Resident.id.in_(select(Listing.resident_id).where(busy)),
            ~Resident.id.in_(select(Callback.resident_id).where(Callback.status.in_(QUEUED_CALLBACK_STATUSES),
                                                                Callback.resident_id.is_not(None))),
        ).order_by(Resident.id).limit(RETENTION_RESIDENTS_PER_RUN)))
    for resident in quiet:
        erase_resident(session, resident, actor_type="system", via="retention")
    done["residents"] = len(quiet)
    done["login_throttles"] = session.execute(
        delete(LoginThrottle).where(LoginThrottle.window_started_at < now - LOGIN_THROTTLE_KEEP,
                                    or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now)),
        execution_options={"synchronize_session": False}).rowcount or 0
    done["farewells"] = forget_sent_farewells(session)
    return done


def _clear_old(session: Session, table: str, model: Any, *conditions: Any) -> int:
    """Apply ``COLUMNS[table]`` to the rows matching ``conditions`` (their own resident's id is not
    needed: no PHONE rule outside ``residents``)."""
    ids = _ids(session, select(model.id).where(*conditions))
    _overwrite(table, model.id, ids, session, resident_id=0)
    return len(ids)
