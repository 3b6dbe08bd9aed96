"""Declarative base and the column types every table shares."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names are explicit so Alembic migrations are the same on
# PostgreSQL and SQLite (batch mode needs named constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both PostgreSQL and SQLite.

    SQLite keeps no zone; values read back are marked UTC again so that
    comparisons with ``utcnow()`` never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use models.base.utcnow()")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# BigInteger ids on PostgreSQL, plain INTEGER on SQLite (where only INTEGER
# PRIMARY KEY autoincrements).
IdType = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(IdType, primary_key=True)]
created_at = Annotated[dt.datetime, mapped_column(UTCDateTime, default=utcnow, server_default=func.now())]
updated_at = Annotated[
    dt.datetime,
    mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()),
]
timestamp = Annotated[dt.datetime | None, mapped_column(UTCDateTime)]
e164 = Annotated[str, mapped_column(String(20))]
code = Annotated[str, mapped_column(String(32))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: UTCDateTime}


__all__ = [
    "Base",
    "IdType",
    "Mapped",
    "UTCDateTime",
    "code",
    "created_at",
    "e164",
    "intpk",
    "mapped_column",
    "timestamp",
    "updated_at",
    "utcnow",
]
