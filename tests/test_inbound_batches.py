"""Group commit of inbound SMS: concurrent webhooks share a statement, and each is stored once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models import Message
from models.db import Database
from models.inbox import _INSERT_MANY_AND_NOTIFY, InboundBatches, _inbound_values


@pytest.fixture
def pg_db(pg_database_url: str) -> Iterator[Database]:
    from models.migrate import upgrade

    db = Database(pg_database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


def stored(db: Database) -> list[tuple[str | None, str]]:
    with db.transaction() as session:
        return sorted(session.execute(
            select(Message.twilio_sid, Message.body).where(Message.direction == "inbound")).all(),
            key=lambda row: (row[0] or "", row[1]))


def values(sid: str | None, body: str = "VRAAG boodschappen 2034") -> dict[str, object]:
    return _inbound_values(sid, "+31612345678", body, None)


class HeldWriter:
    """Holds the first statement until released, so that the webhooks arriving meanwhile queue up."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch):
        self.statements: list[tuple[str, object]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_batches = False
        real = db.autocommit_row

        def autocommit_row(sql, params, **options):  # type: ignore[no-untyped-def]
            self.statements.append((sql, params))
            if len(self.statements) == 1:
                self.first_started.set()
                assert self.release.wait(10)
            if self.fail_batches and len(params["sids"]) > 1:
                raise RuntimeError("batch refused")
            if params["sids"] == ["SM-bad"]:
                raise RuntimeError("this row is refused")
            return real(sql, params, **options)

        monkeypatch.setattr(db, "autocommit_row", autocommit_row)


def record_in_threads(batches: InboundBatches, rows: list[dict[str, object]], held: HeldWriter) -> dict[int, str]:
    """The first row is written alone and held; the rest arrive meanwhile. Returns each row's error, if any."""
    errors: dict[int, str] = {}

    def record(index: int) -> None:
        try:
            batches.record(rows[index])
        except Exception as exc:
            errors[index] = str(exc)

    first = threading.Thread(target=record, args=(0,))
    first.start()
    assert held.first_started.wait(10)
    others = [threading.Thread(target=record, args=(i,)) for i in range(1, len(rows))]
    for thread in others:
        thread.start()
    # Every other webhook is waiting for the writer before the writer goes on.
    assert _wait(lambda: len(batches._queue) == len(rows) - 1)
    held.release.set()
    for thread in [first, *others]:
        thread.join(10)
        assert not thread.is_alive()
    return errors


def _wait(condition, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_webhooks_arriving_while_one_writes_share_the_next_statement(pg_db, monkeypatch):
    held = HeldWriter(pg_db, monkeypatch)
    rows = [values(f"SM{n:032d}") for n in range(12)] + [values("SM" + "0" * 32, "replayed by Twilio")]
    errors = record_in_threads(InboundBatches(pg_db), rows, held)

    assert errors == {}
    assert [len(params["sids"]) if sql == _INSERT_MANY_AND_NOTIFY else 1 for sql, params in held.statements] == [1, 12]
    # Twelve messages, each once: the replay of the first MessageSid stored nothing.
    assert stored(pg_db) == sorted((f"SM{n:032d}", "VRAAG boodschappen 2034") for n in range(12))


def test_an_idle_gateway_writes_each_message_at_once(pg_db):
    batches = InboundBatches(pg_db)
    batches.record(values("SM" + "a" * 32))
    assert stored(pg_db) == [("SM" + "a" * 32, "VRAAG boodschappen 2034")]  # committed on return
    batches.record(values(None, "no MessageSid at all"))
    assert len(stored(pg_db)) == 2
    assert batches._queue == [] and not batches._writing


def test_a_failing_batch_is_written_row_by_row_and_one_bad_row_fails_alone(pg_db, monkeypatch):
    held = HeldWriter(pg_db, monkeypatch)
    held.fail_batches = True
    rows = [values("SM-first"), values("SM-a"), values("SM-bad"), values("SM-b")]
    errors = record_in_threads(InboundBatches(pg_db), rows, held)

    # Only the bad row's webhook fails (a 500: Twilio sends it again); the others are stored.
    assert errors == {2: "this row is refused"}
    assert [sid for sid, _ in stored(pg_db)] == ["SM-a", "SM-b", "SM-first"]


def test_the_writer_role_passes_on_so_nobody_waits_forever(pg_db, monkeypatch):
    """Rows that queue up while a batch is written are written by one of them, not left behind."""
    batches = InboundBatches(pg_db)
    rows = [values(f"SM{n:032d}x") for n in range(60)]
    start = threading.Barrier(20)

    def record(chunk: list[dict[str, object]]) -> None:
        start.wait()
        for row in chunk:
            batches.record(row)

    threads = [threading.Thread(target=record, args=(rows[i::20],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
        assert not thread.is_alive()
    assert len(stored(pg_db)) == 60
    assert batches._queue == [] and not batches._writing
