"""Small SQL helpers that work the same on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from typing import TypeVar

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

Row = TypeVar("Row")


def upsertable_insert(session: Session, table: Table) -> Any:
    """INSERT in the session's dialect, which can say ON CONFLICT (PostgreSQL and SQLite alike)."""
    builder = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return builder(table)


def insert_ignoring_conflict(session: Session, table: Table, values: dict[str, Any], *, returning: Any = None) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING [RETURNING]: one round trip, no race.

    Returns the RETURNING value, or None when a unique key already existed.
    """
    statement = upsertable_insert(session, table).values(**values).on_conflict_do_nothing()
    if returning is None:
        session.execute(statement)
        return None
    return session.execute(statement.returning(returning)).scalar_one_or_none()


def insert_once(session: Session, model: type[Row], values: dict[str, Any]) -> tuple[Row, bool]:
    """The row whose ``dedupe_key`` is in ``values``: inserted now, or the one already there.

    Returns (row, created). Race-safe: two workers inserting the same key
    at once end with one row, and only one of them sees created=True.
    """
    table = model.__table__  # type: ignore[attr-defined]
    session.flush()
    new_id = insert_ignoring_conflict(session, table, values, returning=table.c.id)
    row = session.scalars(select(model).where(table.c.dedupe_key == values["dedupe_key"])).one()
    return row, new_id is not None
