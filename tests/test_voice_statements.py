"""Each voice webhook is a few statements in one transaction (counted, not timed):
read the call, maybe add a listing or callback, update the call. No Twilio
REST request happens while a caller waits. On PostgreSQL most steps take the
fast path (ivr_flows/fast.py): one write, the call's state having come sealed
in the step URL (ivr_flows/tokens.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from gateway.database import get_database
from tests.call_simulator import SimulatedCall, flask_poster


VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def _verb(statement: str) -> str:
    """SELECT, INSERT, UPDATE...; for a WITH statement "WITH " and its own verb (after its CTEs)."""
    first = statement.split(None, 1)[0].upper()
    if first != "WITH":
        return first
    depth, word = 0, ""
    for char in statement + " ":
        if char.isalpha() and depth == 0:
            word += char
            continue
        if word.upper() in VERBS:
            return f"WITH {word.upper()}"
        word = ""
        depth += {"(": 1, ")": -1}.get(char, 0)
    return "WITH"


@pytest.fixture
def statements(app, monkeypatch):  # type: ignore[no-untyped-def]
    database = get_database(app)
    engine = database.engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen.append(_verb(statement))

    event.listen(engine, "before_cursor_execute", record)
    autocommit_row = database.autocommit_row

    def counted(sql, params):  # type: ignore[no-untyped-def]
        seen.append(_verb(sql))
        return autocommit_row(sql, params)

    monkeypatch.setattr(database, "autocommit_row", counted)

    @contextmanager
    def counting() -> Iterator[list[str]]:
        seen.clear()
        yield seen

    yield counting
    event.remove(engine, "before_cursor_execute", record)


def test_each_step_is_a_few_statements(app, twilio, statements, fake_twilio):
    postgresql = get_database(app).is_postgresql
    SimulatedCall(flask_poster(twilio)).start().hang_up()  # the resident exists now, as for most callers
    call = SimulatedCall(flask_poster(twilio))
    with statements() as seen:
        call.start()
    assert len(seen) <= 5, seen  # the call, the resident (and its last contact), a match to put through?

    # (keys, most statements): repeat, main menu, category (reads the resident's postcode),
    # postcode keyed, postcode confirmed (saved on the resident), timing (stores the listing)
    for keys, limit in (("*", 2), ("1", 2), ("1", 3), ("2034", 2), ("1", 4), ("1", 6)):
        with statements() as seen:
            call.press(keys)
        assert len(seen) <= limit, (keys, seen)
        if postgresql:  # one write: the call's state came sealed in the step URL, so no read
            # (several rows: WITH moved AS (UPDATE calls ...), resident AS (...) SELECT ... FROM moved)
            assert seen in (["UPDATE"], ["WITH SELECT"]), seen
        else:
            assert "UPDATE" in seen or "WITH UPDATE" in seen, seen
    with statements() as seen:
        call.record(5)  # the recording, the callback, the call; then the status callback
    assert len(seen) <= 8, seen
    assert fake_twilio.requests == []  # nothing asked of Twilio while the caller waits
