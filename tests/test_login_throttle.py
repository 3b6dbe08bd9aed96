"""Counting login attempts: the lock, its end, the window, a place given back (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from models.accounts import create_broker
from models.base import utcnow
from models.throttle import Limit, clear_broker_attempts, count_attempt, count_broker_attempt, give_back_attempt
from tests.conftest import session_of

MINUTE = dt.timedelta(minutes=1)
LIMIT = Limit(3, lock_for=15 * MINUTE, window=15 * MINUTE)


def counts(db, key: str, at: list[dt.datetime]) -> list[bool]:  # type: ignore[no-untyped-def]
    return [count_attempt(db, key, LIMIT, now) for now in at]


def test_the_attempt_that_reaches_the_limit_locks_until_the_lock_runs_out(app):
    t0 = utcnow()
    with session_of(app) as db:
        assert counts(db, "addr:192.0.2.1", [t0] * 5) == [True, True, True, False, False]
        assert counts(db, "addr:192.0.2.1", [t0 + 14 * MINUTE]) == [False]
        # Once the lock has run out the count starts again from one.
        assert counts(db, "addr:192.0.2.1", [t0 + 16 * MINUTE] * 4) == [True, True, True, False]
        assert counts(db, "addr:192.0.2.2", [t0]) == [True]  # another key is its own


def test_the_count_starts_again_after_the_window(app):
    t0 = utcnow()
    with session_of(app) as db:
        assert counts(db, "email:x@example.org", [t0, t0 + MINUTE]) == [True, True]
        later = t0 + 16 * MINUTE
        assert counts(db, "email:x@example.org", [later] * 4) == [True, True, True, False]


def test_an_attempt_given_back_no_longer_counts(app):
    t0 = utcnow()
    with session_of(app) as db:
        assert counts(db, "addr:192.0.2.1", [t0, t0]) == [True, True]
        give_back_attempt(db, "addr:192.0.2.1")
        assert counts(db, "addr:192.0.2.1", [t0] * 3) == [True, True, False]


def test_a_brokers_account_locks_and_a_login_clears_it(app):
    t0 = utcnow()
    limit = Limit(2, lock_for=15 * MINUTE)
    with session_of(app) as db:
        broker = create_broker(db, email="x@buuv.example", name="X", role="broker", phone=None,
                               password="a-long-password")
        assert [count_broker_attempt(db, broker.id, limit, t0) for _ in range(3)] == [True, True, False]
        assert count_broker_attempt(db, broker.id, limit, t0 + 16 * MINUTE)
        clear_broker_attempts(db, broker.id)
        db.commit()
        db.refresh(broker)
        assert (broker.failed_logins, broker.locked_until) == (0, None)
