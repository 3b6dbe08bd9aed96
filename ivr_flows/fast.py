"""The phone menu's webhooks on PostgreSQL in one statement each.

The same state machine as ``calls`` (machine.py decides everything), with
the database work done differently. Through a pooled ORM session a menu
step costs a pre-ping, BEGIN, SELECT, UPDATE and COMMIT; here it is:

1. the call as it was left (with its resident's and listing's few columns
   the machine reads) comes sealed in the step's URL (tokens.py); without a
   token that opens, one SELECT reads it, in autocommit on the thread's own
   connection;
2. the machine runs on plain in-memory objects. A ``PlannedContext`` serves
   the reads from what was loaded and collects the writes (the resident's
   postcode or language, the listing, the recording, callbacks);
3. one statement writes it all and commits on its own: the version-checked
   ``UPDATE calls ... WHERE step_seq = <the answer's number>`` (and the
   status and last change the step started from), with any other rows in
   data-modifying CTEs that read that UPDATE's returned row, so they are
   written only when the call's UPDATE is. When it matches no row, the row
   moved on: read it, and answer what another delivery of this step answered,
   or take the step again from what the row now says.

A single ``UPDATE ... RETURNING`` is not enough: where an answer leads
depends on the row (step, tries, entered data, language), and the reply
must be stored with the move so a repeated delivery hears the same.

Anything the plan does not cover (reading the caller's listings, a number
keyed in for a new resident, a column the step's state does not carry, ...)
raises ``NeedsSession`` before anything is written, and the view runs the
ORM path of ``calls`` instead. SQLite (the demo) always takes that path.

The rows are built by the services' own functions (``listing_values``,
``callback_values``, ...); tests/test_voice_differential.py holds both paths
to the same answers and the same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

from psycopg.types.json import Json
from sqlalchemy import Table, literal_column
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from models import Call, Listing, Resident
from models.call import IN_PROGRESS, inbound_call_values, twilio_status_rank
from models.callback import Callback
from models.db import Database
from models.listing import listing_values
from models.matching import relay_number_query, relay_since
from models.phones import is_withheld, try_parse_phone
from models.queue import callback_values
from models.residents import contacted_resident_params, contacted_resident_sql
from models.vocabulary import TWILIO_CALL_ENDED_STATUSES, TWILIO_CALL_STATUS_RANK

from . import machine
from .calls import _repeat, _store
from .machine import Answer, Context
from .render import Turn, render
from .settings import Settings

_DIALECT = psycopg_dialect.dialect()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class NeedsSession(Exception):
    """The step reads or writes something the plan does not cover: take the ORM path."""


class UnsealedRead(NeedsSession):
    """The machine read a column of a row that was not loaded (not in the sealed state, or not selected).

    The ORM path then reads the real value. The tests turn this into a failure: whatever the machine
    reads must be in the state a step carries.
    """


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


def _param(table: str, name: str, prefix: str = "") -> str:
    return f"%({prefix}{name})s::{CASTS[table][name]}"


def _params(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": Json(value) if name in JSON_COLUMNS and value is not None else value
            for name, value in values.items()}


class _Row:
    """A new row's columns as plain attributes, standing in for the model; a column not given is NULL.

    The machine only reads and sets column attributes, and nothing here is
    flushed through a session, so the ORM's instrumented instances (their
    construction and every attribute access) would be pure cost on the hot path.
    """

    COLUMNS: frozenset[str] = frozenset()

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values

    def __getattr__(self, name: str) -> Any:  # only for attributes not set
        if name in self.COLUMNS:
            return self._not_given(name)
        raise AttributeError(name)

    def _not_given(self, name: str) -> Any:
        return None


class _LoadedRow(_Row):
    """A stored row, of which only some columns were read (or sealed into the step's URL).

    A column not loaded is unknown, not NULL: reading it sends the step to the ORM path.
    """

    def _not_given(self, name: str) -> Any:
        raise UnsealedRead(f"{self.__class__.__name__}.{name}")


class _CallRow(_Row):
    COLUMNS = frozenset(CALL_COLUMNS)


class _LoadedCall(_LoadedRow):
    COLUMNS = frozenset(CALL_COLUMNS)


class _LoadedResident(_LoadedRow):
    COLUMNS = frozenset(RESIDENT_COLUMNS)


class _ListingRow(_Row):
    COLUMNS = frozenset(LISTING_COLUMNS)


class _LoadedListing(_LoadedRow):
    COLUMNS = frozenset(LISTING_COLUMNS)


def _new_call(**values: Any) -> Call:
    return cast(Call, _CallRow(values))


def _loaded_call(**values: Any) -> Call:
    return cast(Call, _LoadedCall(values))


def _loaded_resident(**values: Any) -> Resident:
    return cast(Resident, _LoadedResident(values))


def _new_listing(**values: Any) -> Listing:
    return cast(Listing, _ListingRow(values))


def _loaded_listing(**values: Any) -> Listing:
    return cast(Listing, _LoadedListing(values))


def _snapshot(row: Any) -> dict[str, Any]:
    return dict(row.__dict__) if row is not None else {}


def _changed(row: Any, before: dict[str, Any]) -> dict[str, Any]:
    """The columns set to something new since ``before``, or set at all when ``before`` did not hold them.

    A column that was not loaded is unknown, not NULL (the step's reply: the row may hold the last one).
    """
    return {name: value for name, value in row.__dict__.items() if name not in before or before[name] != value}


_SELECT_CALL = (
    f"SELECT {', '.join('c.' + name for name in CALL_COLUMNS)}, r.language, r.postcode, r.district, l.resident_id"
    " FROM calls c LEFT JOIN residents r ON r.id = c.resident_id LEFT JOIN listings l ON l.id = c.listing_id"
    " WHERE c.call_sid = %(call_sid)s"
)

# The webhook of an incoming call from a number we can read, in one statement: the
# resident stamped (or made: contacted_resident_sql), their match partner looked up,
# and unless there is one (the call is then put through: incoming_call's other path)
# the menu call stored in the resident's language.
# Its columns: a new call's (the caller's own come from ``contacted``), and the first step (_store).
_CALLER_COLUMNS = ("resident_id", "language")
_MENU_CALL_COLUMNS = (*(name for name in inbound_call_values("", None, _EPOCH) if name not in _CALLER_COLUMNS),
                      "step", "reply_seq", "reply_twiml")
_CONTACTED = contacted_resident_sql(lambda name: _param("residents", name, "r_"))
_relay_of_contacted = relay_number_query(literal_column("(SELECT id FROM contacted)")).compile(dialect=_DIALECT)
_relay_of_contacted = _relay_of_contacted.construct_expanded_state({"relay_since": None})
# Its constants; relay_since is given with each call.
_MENU_CALL_PARAMS = {name: value for name, value in _relay_of_contacted.parameters.items() if name != "relay_since"}
_CONTACT_AND_MENU_CALL = (
    f"WITH contacted AS ({_CONTACTED}), relay AS ({_relay_of_contacted.statement}),"
    f" menu_call AS (INSERT INTO calls ({', '.join(_MENU_CALL_COLUMNS)}, {', '.join(_CALLER_COLUMNS)})"
    f" SELECT {', '.join(_param('calls', name) for name in _MENU_CALL_COLUMNS)}, contacted.id,"
    " contacted.language FROM contacted WHERE NOT EXISTS (SELECT 1 FROM relay)"
    " ON CONFLICT (call_sid) DO NOTHING RETURNING id)"
    " SELECT contacted.id, contacted.language, contacted.postcode, contacted.district,"
    " (SELECT * FROM relay), (SELECT id FROM menu_call) FROM contacted"
)

_END_CALL = (
    "UPDATE calls SET twilio_status = %(twilio_status)s, ended_at = COALESCE(ended_at, %(now)s), updated_at = %(now)s,"
    " duration_seconds = COALESCE(%(duration)s, duration_seconds)"
    " WHERE call_sid = %(call_sid)s AND status <> %(in_progress)s RETURNING id"
)
# A status before the end ("ringing", "in-progress") moves the call's twilio_status only forward, as
# ``calls.call_status`` does, along the vocabulary's rank (compiled once).
_MOVE_CALL_STATUS = (
    "UPDATE calls SET twilio_status = %(twilio_status)s WHERE call_sid = %(call_sid)s AND "
    + str(twilio_status_rank(literal_column("twilio_status")).compile(
        dialect=_DIALECT, compile_kwargs={"literal_binds": True}))
    + " < %(rank)s RETURNING id"
)


@dataclass
class PlannedContext(Context):
    """The machine's reads served from the loaded rows; its writes collected for one statement."""

    resident: Resident | None = None
    listing: Listing | None = None
    relay: str | None = None
    # The first turn knows whether the caller is in a match (the statement that stores the call asks);
    # a later step does not, and takes the ORM path if it needs to (the announcement before a relay).
    relay_known: bool = False
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
        if not self.relay_known:
            raise NeedsSession("relay")
        return self.relay

    def add_listing(self, call: Call, resident: Resident, **fields: Any) -> Listing:
        """As ``Context.add_listing`` (``record_listing``); the id comes with the write."""
        if self.new_listing is not None:
            raise NeedsSession("a second listing")
        self.new_listing = _new_listing(**listing_values(resident, channel="voice", now=self.now, **fields))
        return self.new_listing

    def queue_callback(self, reason: str, **fields: Any) -> None:
        """As ``Context.queue_callback`` (at most one open item per dedupe key)."""
        if self.new_listing is not None:
            raise NeedsSession("a callback about a listing without an id yet")
        self.callbacks.append(callback_values(reason, now=self.now, **fields))


# --- reading -----------------------------------------------------------------------------------------


@dataclass
class Loaded:
    call: Call
    resident: Resident | None
    listing: Listing | None


def _load(db: Database, call_sid: str) -> Loaded | None:
    row = db.autocommit_row(_SELECT_CALL, {"call_sid": call_sid})
    if row is None:
        return None
    call = _loaded_call(**dict(zip(CALL_COLUMNS, row, strict=False)))
    language, postcode, district, listing_resident_id = row[len(CALL_COLUMNS):]
    resident = None
    if call.resident_id is not None and language is not None:
        resident = _loaded_resident(id=call.resident_id, language=language, postcode=postcode, district=district)
    listing = None
    if call.listing_id is not None and listing_resident_id is not None:
        listing = _loaded_listing(id=call.listing_id, resident_id=listing_resident_id)
    return Loaded(call, resident, listing)


def _state(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in columns}


# --- the state in the step URL (tokens.py) ------------------------------------------------------------

# What a step reads of the call, in the order sealed into its token.
_TOKEN_CALL_COLUMNS = ("id", "step", "step_seq", "tries", "language", "data", "status", "purpose", "resident_id",
                       "listing_id")


def _micros(moment: dt.datetime) -> int:
    since = moment - _EPOCH  # exact integer arithmetic: the row's timestamp must compare equal
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def _token_values(call: Call, resident: Resident | None, listing: Listing | None) -> list[Any]:
    return [
        *(getattr(call, name) for name in _TOKEN_CALL_COLUMNS), _micros(call.updated_at),
        [resident.language, resident.postcode, resident.district] if resident is not None else None,
        listing.resident_id if listing is not None else None,
    ]


def _from_token(settings: Settings, call_sid: str, token: str | None) -> Loaded | None:
    values = settings.tokens.open(call_sid, token) if settings.tokens is not None and token else None
    if values is None or len(values) != len(_TOKEN_CALL_COLUMNS) + 3:
        return None
    call_values = dict(zip(_TOKEN_CALL_COLUMNS, values, strict=False))
    updated, resident_values, listing_resident_id = values[len(_TOKEN_CALL_COLUMNS):]
    call = _loaded_call(call_sid=call_sid, updated_at=_EPOCH + dt.timedelta(microseconds=updated), **call_values)
    resident = None
    if call.resident_id is not None and resident_values is not None:
        language, postcode, district = resident_values
        resident = _loaded_resident(id=call.resident_id, language=language, postcode=postcode, district=district)
    listing = None
    if call.listing_id is not None and listing_resident_id is not None:
        listing = _loaded_listing(id=call.listing_id, resident_id=listing_resident_id)
    return Loaded(call, resident, listing)


def _reply(settings: Settings, call: Call, turn: Turn, seq: int, resident: Resident | None,
           listing: Listing | None) -> str:
    """What Twilio gets: the stored reply, with the call's new state sealed into its action URLs.

    The stored reply (for a repeated delivery) has no token: a repeat reads the row.
    """
    token = None
    if settings.tokens is not None and not turn.ends_call:
        token = settings.tokens.seal(call.call_sid, _token_values(call, resident, listing))
    if token is None and call.reply_twiml:
        return call.reply_twiml
    return render(turn, language=call.language, data=call.data or {}, seq=seq + 1, settings=settings, token=token)


# --- the webhooks --------------------------------------------------------------------------------------


def incoming_call(db: Database, settings: Settings, *, call_sid: str, raw_from: str | None, now: dt.datetime) -> str:
    """As ``calls.incoming_call``: the resident stamped (or made), the call stored once per CallSid.

    A caller whose number we can read takes one statement; one in a match, or
    with a withheld number, two or three.
    """
    number = None if is_withheld(raw_from) else try_parse_phone(raw_from)
    call = _new_call(**inbound_call_values(call_sid, raw_from, now))
    if number is None:
        return _insert_call(db, settings, call, None, None, now)
    # Where a caller we know starts when nobody is to be put through: the machine decides.
    turn = machine.first_turn(PlannedContext(_NoSession(), settings, now, relay_known=True),  # type: ignore[arg-type]
                              call, _loaded_resident(language="nl"))
    _store(call, turn, 0, settings)
    row = db.autocommit_row(_CONTACT_AND_MENU_CALL, {
        **_MENU_CALL_PARAMS, "relay_since": relay_since(now, settings.relay_days_after_done),
        **_params(_state(call, _MENU_CALL_COLUMNS)),
        **_params(contacted_resident_params(number, now), "r_"),
    })
    assert row is not None  # the resident's upsert always returns its row
    resident_id, language, postcode, district, relay, call_id = row
    resident = _loaded_resident(id=resident_id, language=language, postcode=postcode, district=district)
    call.resident_id, call.language = resident_id, language
    if relay is not None:  # in a match: the call is put through to the other person
        call.step = None
        return _insert_call(db, settings, call, resident, relay, now)
    if call_id is None:
        return _delivered_before(db, settings, call_sid)
    call.id = call_id
    turn = machine.first_turn(PlannedContext(_NoSession(), settings, now, resident=resident,  # type: ignore[arg-type]
                                             relay_known=True),
                              call, resident)
    return _reply(settings, call, turn, 0, resident, None)


def _insert_call(db: Database, settings: Settings, call: Call, resident: Resident | None, relay: str | None,
                 now: dt.datetime) -> str:
    """Store the call with its first answer: a withheld caller is asked for their number, a match put through."""
    ctx = PlannedContext(_NoSession(), settings, now, resident=resident, relay=relay,  # type: ignore[arg-type]
                         relay_known=True)
    turn = machine.first_turn(ctx, call, resident)
    _store(call, turn, 0, settings)
    values = _given(call, CALL_COLUMNS)
    names = list(values)
    sql = (f"INSERT INTO calls ({', '.join(names)}) VALUES ({', '.join(_param('calls', n) for n in names)})"
           " ON CONFLICT (call_sid) DO NOTHING RETURNING id")
    inserted = db.autocommit_row(sql, _params(values))
    if inserted is None:
        return _delivered_before(db, settings, call.call_sid)
    call.id = inserted[0]
    return _reply(settings, call, turn, 0, resident, None)


def _delivered_before(db: Database, settings: Settings, call_sid: str) -> str:
    """The same call delivered twice: the other delivery stored it first; answer as it did."""
    existing = _load(db, call_sid)
    if existing is None:
        raise RuntimeError("a call that conflicted on its CallSid is not there")
    return _repeat(existing.call, 0, settings)


def answer_step(
    db: Database, settings: Settings, *, call_sid: str, step: str, seq: int, answer: Answer,
    raw_from: str | None, now: dt.datetime, token: str | None = None,
) -> str | None:
    """As ``calls.answer_step``; None when this step needs the ORM path (nothing was written).

    ``token``: the call's state from the step URL (tokens.py). Without one that
    opens for this very step, or when the row has moved on since, the row is read.
    """
    loaded = _from_token(settings, call_sid, token)
    if loaded is not None and (loaded.call.step_seq != seq or loaded.call.step != step):
        loaded = None
    for _attempt in range(3):
        if loaded is None:
            loaded = _load(db, call_sid)
            if loaded is None:
                # A step of a call we have no row for (its first webhook was lost): start afresh.
                return incoming_call(db, settings, call_sid=call_sid, raw_from=raw_from, now=now)
            if seq != loaded.call.step_seq or step != loaded.call.step:
                return _repeat(loaded.call, seq, settings)
        try:
            reply = _take_step(db, settings, loaded, seq=seq, answer=answer, now=now)
        except NeedsSession:
            return None
        if reply is not None:
            return reply
        loaded = None  # the row changed since it was read: read it again
    raise RuntimeError("a call step kept meeting a changed row")


def _take_step(db: Database, settings: Settings, loaded: Loaded, *, seq: int, answer: Answer,
               now: dt.datetime) -> str | None:
    """Run the machine on ``loaded`` and write the outcome; None when the row is no longer as loaded."""
    call = loaded.call
    before_call, before_resident, before_listing = (_snapshot(row) for row in (call, loaded.resident, loaded.listing))
    ctx = PlannedContext(_NoSession(), settings, now, resident=loaded.resident,  # type: ignore[arg-type]
                         listing=loaded.listing)
    turn = machine.answer(ctx, call, answer)
    _store(call, turn, seq, settings)
    call.updated_at = now
    plan = _Plan(call_id=call.id, seq=seq, was_status=before_call["status"], was_updated=before_call["updated_at"],
                 now=now, callbacks=ctx.callbacks, new_listing=ctx.new_listing)
    plan.call = _changed(call, before_call)
    if loaded.resident is not None:
        plan.resident_id, plan.resident = loaded.resident.id, _changed(loaded.resident, before_resident)
    if loaded.listing is not None:
        plan.listing_id, plan.listing = loaded.listing.id, _changed(loaded.listing, before_listing)
    if db.records_events and (ctx.new_listing is not None or plan.listing):
        # The listing's event is written with it, by the services in one transaction (models/events.py).
        raise NeedsSession("a listing with its event")
    sql, params = plan.statement()
    written = db.autocommit_row(sql, params)
    if written is None:
        return None
    listing = loaded.listing
    if ctx.new_listing is not None:
        call.listing_id = ctx.new_listing.id = written[1]
        listing = ctx.new_listing
    return _reply(settings, call, turn, seq, loaded.resident, listing)


def end_call(db: Database, *, call_sid: str, status: str, now: dt.datetime, duration: int | None = None) -> bool:
    """A status callback in one UPDATE: a status before the end (only ever forward), or the end of a call
    that is already over (the menu finished).

    False when the call ended while still in the menu or is unknown: then the
    ORM path decides (an abandoned call gets a callback).
    """
    status = (status or "").lower()
    if status not in TWILIO_CALL_ENDED_STATUSES:
        rank = TWILIO_CALL_STATUS_RANK.get(status)
        if rank is not None:
            db.autocommit_row(_MOVE_CALL_STATUS, {"twilio_status": status, "call_sid": call_sid, "rank": rank})
        return True
    row = db.autocommit_row(_END_CALL, {"twilio_status": status, "now": now, "call_sid": call_sid,
                                        "in_progress": IN_PROGRESS, "duration": duration})
    return row is not None


# --- writing -------------------------------------------------------------------------------------------


def _given(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """A new row's values; the columns left None get their server defaults (the same as the model's)."""
    return {name: value for name in columns if name != "id" and (value := getattr(row, name)) is not None}


def _sets(table: str, values: dict[str, Any], prefix: str) -> str:
    return ", ".join(f"{name} = {_param(table, name, prefix)}" for name in values)


# The call at the step the answer is for, unchanged since the step started (no hang-up got there first).
_AS_FOUND = ("id = %(call_id)s AND step_seq = %(seq)s AND status = %(was_status)s"
             " AND updated_at = %(was_updated)s::timestamptz")


@dataclass
class _Plan:
    """The writes of one step, as one statement that commits on its own."""

    call_id: int
    seq: int
    # The row as the step found it: the write applies only while it still is.
    was_status: str
    was_updated: dt.datetime
    now: dt.datetime
    callbacks: list[dict[str, Any]]
    new_listing: Listing | None
    call: dict[str, Any] = field(default_factory=dict)
    resident_id: int | None = None
    resident: dict[str, Any] = field(default_factory=dict)
    listing_id: int | None = None
    listing: dict[str, Any] = field(default_factory=dict)

    def statement(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"call_id": self.call_id, "seq": self.seq, "was_status": self.was_status,
                                  "was_updated": self.was_updated, **_params(self.call, "c_")}
        sets = _sets("calls", self.call, "c_")
        if not (self.resident or self.listing or self.new_listing is not None or self.callbacks):
            return f"UPDATE calls SET {sets} WHERE {_AS_FOUND} RETURNING id, listing_id", params
        # The other rows are written only when the call's own UPDATE is (by the delivery that finds the
        # call at this step): each reads that UPDATE's returned row, so a step that lost writes nothing.
        ctes = []
        if self.new_listing is not None:  # its id is drawn first, for the call to point at
            ctes.append("new_id AS (SELECT nextval(pg_get_serial_sequence('listings', 'id')) AS id)")
            sets += ", listing_id = (SELECT id FROM new_id)"
        ctes.append(f"moved AS (UPDATE calls SET {sets} WHERE {_AS_FOUND} RETURNING id, listing_id)")
        if self.resident:
            values = {**self.resident, "updated_at": self.now}
            params.update(_params(values, "r_"), resident_id=self.resident_id)
            ctes.append(f"resident AS (UPDATE residents SET {_sets('residents', values, 'r_')}"
                        " WHERE id = %(resident_id)s AND EXISTS (SELECT 1 FROM moved))")
        if self.listing:
            values = {**self.listing, "updated_at": self.now}
            params.update(_params(values, "l_"), listing_id=self.listing_id)
            ctes.append(f"listing AS (UPDATE listings SET {_sets('listings', values, 'l_')}"
                        " WHERE id = %(listing_id)s AND EXISTS (SELECT 1 FROM moved))")
        if self.new_listing is not None:
            values = _given(self.new_listing, LISTING_COLUMNS)
            params.update(_params(values, "n_"))
            ctes.append(f"new_listing AS (INSERT INTO listings (id, {', '.join(values)})"
                        f" SELECT new_id.id, {', '.join(_param('listings', name, 'n_') for name in values)}"
                        " FROM moved, new_id)")
        for index, callback in enumerate(self.callbacks):
            prefix = f"b{index}_"
            params.update(_params(callback, prefix))
            ctes.append(f"callback_{index} AS (INSERT INTO callbacks ({', '.join(callback)})"
                        f" SELECT {', '.join(_param('callbacks', name, prefix) for name in callback)} FROM moved"
                        " ON CONFLICT DO NOTHING)")
        return f"WITH {', '.join(ctes)} SELECT id, listing_id FROM moved", params
