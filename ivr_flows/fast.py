"""The phone menu's webhooks on PostgreSQL in one or two statements each.

The same state machine as ``calls`` (machine.py decides everything), with
the database work done differently. Through a pooled ORM session a menu
step costs a pre-ping, BEGIN, SELECT, UPDATE and COMMIT; here it is:

1. one SELECT of the call (with its resident's and listing's few columns
   the machine reads), in autocommit on the thread's own connection;
2. the machine runs on plain in-memory objects. A ``PlannedContext`` serves
   the reads from what was loaded and collects the writes (the resident's
   postcode or language, the listing, the recording, callbacks);
3. one statement writes it all and commits on its own: the version-checked
   ``UPDATE calls ... WHERE step_seq = <the answer's number>``, with any
   other rows in data-modifying CTEs behind a ``FOR UPDATE`` of the call, so
   they are written only when the call's UPDATE is. When it matches no row,
   another delivery of the same step won: read the call again and answer
   what it answered.

A single ``UPDATE ... RETURNING`` is not enough: where an answer leads
depends on the row (step, tries, entered data, language), and the reply
must be stored with the move so a repeated delivery hears the same.

Anything the plan does not cover (reading the caller's listings, a number
keyed in for a new resident, ...) raises ``NeedsSession`` before anything
is written, and the view runs the ORM path of ``calls`` instead. SQLite
(the demo) always takes that path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

from psycopg.types.json import Json
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from models import Call, Listing, Resident
from models.callback import REASON_PRIORITY, Callback
from models.call import IN_PROGRESS
from models.db import Database
from models.districts import district_map
from models.matching import RELAY_NUMBER_QUERY
from models.phones import is_withheld, try_parse_phone
from models.residents import contact_resident

from . import machine
from .calls import ENDED_STATUSES, _repeat, _store
from .machine import Answer, Context
from .settings import Settings

_DIALECT = psycopg_dialect.dialect()


class NeedsSession(Exception):
    """The step reads or writes something the plan does not cover: take the ORM path."""


class _NoSession:
    def __getattr__(self, name: str) -> Any:
        raise NeedsSession(name)


def _casts(table: Table) -> dict[str, str]:
    """Each column's PostgreSQL type: parameters are cast to it (INSERT ... SELECT cannot infer them)."""
    return {column.name: column.type.compile(dialect=_DIALECT) for column in table.columns}


CALLS, RESIDENTS, LISTINGS, CALLBACKS = (Call.__table__, Resident.__table__, Listing.__table__,
                                         Callback.__table__)
CASTS = {table.name: _casts(table) for table in (CALLS, RESIDENTS, LISTINGS, CALLBACKS)}  # type: ignore[attr-defined]
CALL_COLUMNS, RESIDENT_COLUMNS, LISTING_COLUMNS = (
    tuple(column.name for column in table.columns) for table in (CALLS, RESIDENTS, LISTINGS)  # type: ignore[attr-defined]
)
JSON_COLUMNS = frozenset({"data"})


class _Row:
    """A row's columns as plain attributes (None where not loaded), standing in for the model.

    The machine only reads and sets column attributes, and nothing here is
    flushed through a session, so the ORM's instrumented instances (their
    construction and every attribute access) would be pure cost on the hot path.
    """

    def __init__(self, columns: tuple[str, ...], values: dict[str, Any]) -> None:
        state = dict.fromkeys(columns)
        state.update(values)
        self.__dict__ = state


def _plain_call(**values: Any) -> Call:
    return cast(Call, _Row(CALL_COLUMNS, values))


def _plain_resident(**values: Any) -> Resident:
    return cast(Resident, _Row(RESIDENT_COLUMNS, values))


def _plain_listing(**values: Any) -> Listing:
    return cast(Listing, _Row(LISTING_COLUMNS, values))


_SELECT_CALL = (
    f"SELECT {', '.join('c.' + name for name in CALL_COLUMNS)}, r.language, r.postcode, r.district, l.resident_id"
    " FROM calls c LEFT JOIN residents r ON r.id = c.resident_id LEFT JOIN listings l ON l.id = c.listing_id"
    " WHERE c.call_sid = %(call_sid)s"
)
_relay = RELAY_NUMBER_QUERY.compile(dialect=_DIALECT).construct_expanded_state({"resident_id": 0})
_RELAY_NUMBER, _RELAY_PARAMS = _relay.statement, dict(_relay.parameters)

_END_CALL = (
    "UPDATE calls SET twilio_status = %(twilio_status)s, ended_at = COALESCE(ended_at, %(now)s), updated_at = %(now)s"
    " WHERE call_sid = %(call_sid)s AND status <> %(in_progress)s RETURNING id"
)


@dataclass
class PlannedContext(Context):
    """The machine's reads served from the loaded rows; its writes collected for one statement."""

    resident: Resident | None = None
    listing: Listing | None = None
    relay: str | None = None
    new_listing: Listing | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def resident_of(self, call: Call) -> Resident | None:
        if call.resident_id is None:
            return None
        if self.resident is not None and self.resident.id == call.resident_id:
            return self.resident
        raise NeedsSession("resident")

    def listing_of(self, call: Call) -> Listing | None:
        if self.listing is not None and self.listing.id == call.listing_id:
            return self.listing
        raise NeedsSession("listing")

    def relay_number(self, resident: Resident) -> str | None:
        return self.relay

    def add_listing(self, call: Call, resident: Resident, **fields: Any) -> Listing:
        """As ``record_listing(..., channel="voice", queue_for_broker=False)``; the id comes with the write."""
        if self.new_listing is not None:
            raise NeedsSession("a second listing")
        postcode = fields.get("postcode") or resident.postcode
        self.new_listing = _plain_listing(
            resident_id=resident.id, kind=fields["kind"], category=fields.get("category") or "other",
            description=fields.get("description") or None, postcode=postcode,
            district=district_map().district_for(postcode), timing=fields.get("timing"), channel="voice",
            status="open", created_at=self.now, updated_at=self.now,
        )
        return self.new_listing

    def queue_callback(self, reason: str, **fields: Any) -> None:
        """As ``models.queue.queue_callback`` (at most one open item per dedupe key)."""
        if self.new_listing is not None:
            raise NeedsSession("a callback about a listing without an id yet")
        self.callbacks.append({
            "reason": reason, "status": "open", "resident_id": fields.get("resident_id"),
            "listing_id": fields.get("listing_id"), "message_id": fields.get("message_id"),
            "call_id": fields.get("call_id"), "match_id": fields.get("match_id"),
            "priority": fields["priority"] if fields.get("priority") is not None else REASON_PRIORITY.get(reason, 10),
            "due_at": fields.get("due_at") or self.now, "attempts": 0, "dedupe_key": fields.get("dedupe_key"),
            "note": fields.get("note"), "created_at": self.now, "updated_at": self.now,
        })


# --- reading -----------------------------------------------------------------------------------------


@dataclass
class Loaded:
    call: Call
    resident: Resident | None
    listing: Listing | None


def _load(db: Database, call_sid: str) -> Loaded | None:
    row = db.autocommit_row(_SELECT_CALL, {"call_sid": call_sid[:64]})
    if row is None:
        return None
    call = _plain_call(**dict(zip(CALL_COLUMNS, row, strict=False)))
    language, postcode, district, listing_resident_id = row[len(CALL_COLUMNS):]
    resident = None
    if call.resident_id is not None and language is not None:
        resident = _plain_resident(id=call.resident_id, language=language, postcode=postcode, district=district)
    listing = None
    if call.listing_id is not None and listing_resident_id is not None:
        listing = _plain_listing(id=call.listing_id, resident_id=listing_resident_id)
    return Loaded(call, resident, listing)


def _state(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in columns}


# --- the webhooks --------------------------------------------------------------------------------------


def incoming_call(db: Database, settings: Settings, *, call_sid: str, raw_from: str | None, now: dt.datetime) -> str:
    """As ``calls.incoming_call``: the resident stamped (or made), the call stored once per CallSid."""
    number = None if is_withheld(raw_from) else try_parse_phone(raw_from)
    resident, relay = None, None
    if number is not None:
        contact = contact_resident(db, number, now)
        resident = _plain_resident(id=contact.id, language=contact.language, postcode=contact.postcode,
                            district=contact.district)
        if not contact.created:  # someone new is in no match yet
            row = db.autocommit_row(_RELAY_NUMBER, {**_RELAY_PARAMS, "resident_id": contact.id})
            relay = row[0] if row else None
    call = _plain_call(
        call_sid=call_sid[:64], direction="inbound", purpose="menu",
        resident_id=resident.id if resident is not None else None,
        raw_from=(raw_from or "")[:64] or None, language=resident.language if resident is not None else "nl",
        step=None, step_seq=0, tries=0, data={}, status=IN_PROGRESS, twilio_status="ringing",
        created_at=now, updated_at=now,
    )
    ctx = PlannedContext(_NoSession(), settings, now, resident=resident, relay=relay)  # type: ignore[arg-type]
    turn = machine.first_turn(ctx, call, resident)
    _store(call, turn, 0, settings)
    values = _given(call, CALL_COLUMNS)
    names = list(values)
    sql = (f"INSERT INTO calls ({', '.join(names)}) VALUES ({', '.join(_param('calls', n) for n in names)})"
           " ON CONFLICT (call_sid) DO NOTHING RETURNING id")
    if db.autocommit_row(sql, _params(values)) is None:
        # The same call delivered twice: the other delivery stored it first.
        existing = _load(db, call_sid)
        if existing is None:
            raise RuntimeError("a call that conflicted on its CallSid is not there")
        return _repeat(existing.call, 0, settings)
    return call.reply_twiml or ""


def answer_step(
    db: Database, settings: Settings, *, call_sid: str, step: str, seq: int, answer: Answer,
    raw_from: str | None, now: dt.datetime,
) -> str | None:
    """As ``calls.answer_step``; None when this step needs the ORM path (nothing was written)."""
    loaded = _load(db, call_sid)
    if loaded is None:
        # A step of a call we have no row for (its first webhook was lost): start afresh.
        return incoming_call(db, settings, call_sid=call_sid, raw_from=raw_from, now=now)
    call = loaded.call
    if seq != call.step_seq or step != call.step:
        return _repeat(call, seq, settings)
    before_call = _state(call, CALL_COLUMNS)
    before_resident = _state(loaded.resident, RESIDENT_COLUMNS) if loaded.resident is not None else {}
    before_listing = _state(loaded.listing, LISTING_COLUMNS) if loaded.listing is not None else {}
    ctx = PlannedContext(_NoSession(), settings, now, resident=loaded.resident,  # type: ignore[arg-type]
                         listing=loaded.listing)
    try:
        turn = machine.answer(ctx, call, answer)
    except NeedsSession:
        return None
    _store(call, turn, seq, settings)
    call.updated_at = now
    plan = _Plan(call_id=call.id, seq=seq, now=now, callbacks=ctx.callbacks, new_listing=ctx.new_listing)
    plan.call = _changed(call, before_call)
    if loaded.resident is not None:
        plan.resident_id, plan.resident = loaded.resident.id, _changed(loaded.resident, before_resident)
    if loaded.listing is not None:
        plan.listing_id, plan.listing = loaded.listing.id, _changed(loaded.listing, before_listing)
    sql, params = plan.statement()
    if db.autocommit_row(sql, params) is None:
        # Another delivery of this very step won the race; answer as it did.
        again = _load(db, call_sid)
        if again is None:
            raise RuntimeError("a call that was there is gone")
        return _repeat(again.call, seq, settings)
    return call.reply_twiml or ""


def end_call(db: Database, *, call_sid: str, status: str, now: dt.datetime) -> bool:
    """The status callback of a call that is already over (the menu finished): one UPDATE.

    False when the call is still in the menu or unknown: then the ORM path
    decides (an abandoned call gets a callback).
    """
    status = (status or "").lower()
    if status not in ENDED_STATUSES:
        return False
    row = db.autocommit_row(_END_CALL, {"twilio_status": status[:32], "now": now, "call_sid": call_sid[:64],
                                        "in_progress": IN_PROGRESS})
    return row is not None


# --- writing -------------------------------------------------------------------------------------------


def _given(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """A new row's values; the columns left None get their server defaults (the same as the model's)."""
    return {name: value for name in columns if name != "id" and (value := getattr(row, name)) is not None}


def _changed(row: Any, before: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(row, name) for name, old in before.items() if getattr(row, name) != old}


def _param(table: str, name: str, prefix: str = "") -> str:
    return f"%({prefix}{name})s::{CASTS[table][name]}"


def _params(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": Json(value) if name in JSON_COLUMNS and value is not None else value
            for name, value in values.items()}


def _sets(table: str, values: dict[str, Any], prefix: str) -> str:
    return ", ".join(f"{name} = {_param(table, name, prefix)}" for name in values)


@dataclass
class _Plan:
    """The writes of one step, as one statement that commits on its own."""

    call_id: int
    seq: int
    now: dt.datetime
    callbacks: list[dict[str, Any]]
    new_listing: Listing | None
    call: dict[str, Any] = field(default_factory=dict)
    resident_id: int | None = None
    resident: dict[str, Any] = field(default_factory=dict)
    listing_id: int | None = None
    listing: dict[str, Any] = field(default_factory=dict)

    def statement(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"call_id": self.call_id, "seq": self.seq, **_params(self.call, "c_")}
        sets = _sets("calls", self.call, "c_")
        if not (self.resident or self.listing or self.new_listing is not None or self.callbacks):
            return (f"UPDATE calls SET {sets} WHERE id = %(call_id)s AND step_seq = %(seq)s RETURNING id", params)
        # The other rows are written only by the delivery that holds the call at this step.
        ctes = ["locked AS MATERIALIZED (SELECT id FROM calls WHERE id = %(call_id)s AND step_seq = %(seq)s"
                " FOR UPDATE)"]
        if self.resident:
            values = {**self.resident, "updated_at": self.now}
            params.update(_params(values, "r_"), resident_id=self.resident_id)
            ctes.append(f"resident AS (UPDATE residents SET {_sets('residents', values, 'r_')}"
                        " WHERE id = %(resident_id)s AND EXISTS (SELECT 1 FROM locked))")
        if self.listing:
            values = {**self.listing, "updated_at": self.now}
            params.update(_params(values, "l_"), listing_id=self.listing_id)
            ctes.append(f"listing AS (UPDATE listings SET {_sets('listings', values, 'l_')}"
                        " WHERE id = %(listing_id)s AND EXISTS (SELECT 1 FROM locked))")
        if self.new_listing is not None:
            values = _given(self.new_listing, LISTING_COLUMNS)
            params.update(_params(values, "n_"))
            ctes.append(f"new_listing AS (INSERT INTO listings ({', '.join(values)})"
                        f" SELECT {', '.join(_param('listings', name, 'n_') for name in values)} FROM locked"
                        " RETURNING id)")
            sets += ", listing_id = (SELECT id FROM new_listing)"
        for index, callback in enumerate(self.callbacks):
            prefix = f"b{index}_"
            params.update(_params(callback, prefix))
            ctes.append(f"callback_{index} AS (INSERT INTO callbacks ({', '.join(callback)})"
                        f" SELECT {', '.join(_param('callbacks', name, prefix) for name in callback)} FROM locked"
                        " ON CONFLICT DO NOTHING)")
        return (f"WITH {', '.join(ctes)} UPDATE calls SET {sets} WHERE id = (SELECT id FROM locked) RETURNING id",
                params)
