"""Login throttling: an attempt is counted before its password is checked.

Failures per known account live on the broker row (``failed_logins``,
``locked_until``); this table counts what has no broker row: an address that
tries many accounts, or an e-mail address nobody owns (so that a lockout
does not tell a stranger whether an account exists).

Each count is one statement that takes a place under the limit or finds
none: concurrent guesses wait for each other's row, so no more of them reach
the password check than the limit allows, however many arrive at once. The
attempt that takes the last place locks the row before its password is
checked. A login that succeeds gives its place back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, and_, case, literal, or_, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base, UTCDateTime, intpk, timestamp, utcnow
from .broker import Broker
from .sql import upsertable_insert


class LoginThrottle(Base):
    __tablename__ = "login_throttles"

    id: Mapped[intpk]
    # "addr:203.0.113.5" or "email:someone@example.org"
    key: Mapped[str] = mapped_column(String(300), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[timestamp]


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` password checks, then ``lock_for`` without any.

    With a ``window`` the count starts again once the window has passed;
    without one it runs until a login succeeds or a lock ends.
    """

    attempts: int
    lock_for: dt.timedelta
    window: dt.timedelta | None = None


def _at(value: dt.datetime) -> ColumnElement[dt.datetime]:
    return literal(value, UTCDateTime())


def _unlocked(locked_until: Any, now: dt.datetime) -> ColumnElement[bool]:
    return or_(locked_until.is_(None), locked_until <= _at(now))


def _one_more(counter: Any, locked_until: Any, limit: Limit, now: dt.datetime,
              started: Any = None) -> dict[Any, Any]:
    """SET values counting one attempt (applied only where the row is not locked)."""
    starts_again = and_(locked_until.is_not(None), locked_until <= _at(now))  # a lock that ran out
    if limit.window is not None:
        starts_again = or_(starts_again, started < _at(now - limit.window))
    count = case((starts_again, 1), else_=counter + 1)
    values = {counter: count, locked_until: case((count >= limit.attempts, _at(now + limit.lock_for)), else_=None)}
    if started is not None:
        values[started] = case((starts_again, _at(now)), else_=started)
    return values


def count_attempt(session: Session, key: str, limit: Limit, now: dt.datetime | None = None) -> bool:
    """Count one attempt for ``key``; False when it is locked (nothing counted then)."""
    now = now or utcnow()
    table = LoginThrottle.__table__
    first = upsertable_insert(session, table).values(
        key=key[:300], failures=1, window_started_at=now,
        locked_until=now + limit.lock_for if limit.attempts <= 1 else None)
    statement = first.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={column.name: value for column, value in _one_more(
            table.c.failures, table.c.locked_until, limit, now, table.c.window_started_at).items()},
        where=_unlocked(table.c.locked_until, now),
    ).returning(table.c.failures)
    return session.execute(statement).first() is not None


def give_back_attempt(session: Session, key: str) -> None:
    """An attempt that turned out not to be a failure (a login, or refused for the account) no longer counts."""
    table = LoginThrottle.__table__
    session.execute(update(table).where(table.c.key == key[:300], table.c.failures > 0)
                    .values(failures=table.c.failures - 1))


def count_broker_attempt(session: Session, broker_id: int, limit: Limit, now: dt.datetime | None = None) -> bool:
    """Count one attempt on the broker's account; False when it is locked (nothing counted then)."""
    now = now or utcnow()
    table = Broker.__table__
    statement = (update(table)
                 .where(table.c.id == broker_id, _unlocked(table.c.locked_until, now))
                 .values(_one_more(table.c.failed_logins, table.c.locked_until, limit, now))
                 .returning(table.c.failed_logins))
    return session.execute(statement).first() is not None


def clear_broker_attempts(session: Session, broker_id: int) -> None:
    """A login succeeded: the account's count and lock start again."""
    table = Broker.__table__
    session.execute(update(table).where(table.c.id == broker_id).values(failed_logins=0, locked_until=None))
