"""Finding and updating residents."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import utcnow
from .districts import district_map
from .phones import PhoneNumber
from .resident import NO_PHONE_PREFIX, NUMBER_NONE, Resident, contact_values
from .sql import insert_ignoring_conflict


def resident_for(session: Session, number: PhoneNumber, *, language: str | None = None) -> Resident:
    """The resident with this number, created on first contact (race-safe)."""
    resident = session.scalars(select(Resident).where(Resident.phone == number.e164)).one_or_none()
    if resident is not None:
        return resident
    insert_ignoring_conflict(session, Resident.__table__, new_resident_values(number, utcnow(), language=language))
    return session.scalars(select(Resident).where(Resident.phone == number.e164)).one()


def new_resident_values(number: PhoneNumber, now: dt.datetime, *, language: str | None = None) -> dict[str, Any]:
    """A resident's row on first contact: ``resident_for`` stores it, ``ivr_flows.fast`` writes it in SQL."""
    return {
        "phone": number.e164,
        "language": language or "nl",
        "line_type": number.line_type,
        "created_at": now,
        "updated_at": now,
    }


def resident_without_phone(session: Session, *, language: str | None = None) -> Resident:
    """A marketplace member who gave no phone number: a resident of their own, never texted or called."""
    now = utcnow()
    resident = Resident(phone=NO_PHONE_PREFIX + secrets.token_hex(6), language=language or "nl",
                        number_status=NUMBER_NONE, created_at=now, updated_at=now)
    session.add(resident)
    session.flush()
    return resident


def find_resident(session: Session, e164: str) -> Resident | None:
    return session.scalars(select(Resident).where(Resident.phone == e164)).one_or_none()


def set_postcode(resident: Resident, postcode: str) -> None:
    resident.postcode = postcode
    resident.district = district_map().district_for(postcode)


def opt_out(resident: Resident, when: dt.datetime | None = None) -> bool:
    """Returns True when this changed anything (so it is answered once)."""
    if resident.opted_out:
        return False
    resident.opted_out = True
    resident.opted_out_at = when or utcnow()
    return True


def opt_in(resident: Resident, when: dt.datetime | None = None) -> bool:
    if not resident.opted_out:
        return False
    resident.opted_out = False
    resident.opted_in_at = when or utcnow()
    return True


def contacted_resident_sql(param: Callable[[str], str]) -> str:
    """Lookup-or-create and "last contact now" in one statement (PostgreSQL), for the voice hot path
    (ivr_flows.fast): ``resident_for`` then ``Resident.touch``, from the same values.

    ``param(name)`` places the value of column ``name``; ``xmax = 0`` holds only for a row this statement
    inserted.
    """
    now = utcnow()
    inserted = contacted_resident_params(PhoneNumber("+31000000000", None, "unknown"), now)
    touched = contact_values(now)
    return (
        f"INSERT INTO residents ({', '.join(inserted)}) VALUES ({', '.join(param(name) for name in inserted)})"
        f" ON CONFLICT (phone) DO UPDATE SET {', '.join(f'{name} = EXCLUDED.{name}' for name in touched)}"
        " RETURNING id, language, postcode, district, (xmax = 0) AS created"
    )


def contacted_resident_params(number: PhoneNumber, now: dt.datetime) -> dict[str, Any]:
    """The values ``contacted_resident_sql`` places."""
    return {**new_resident_values(number, now), **contact_values(now)}
