"""Finding and updating residents."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import utcnow
from .districts import district_map
from .phones import PhoneNumber
from .resident import Resident
from .sql import insert_ignoring_conflict


def resident_for(session: Session, number: PhoneNumber, *, language: str | None = None) -> Resident:
    """The resident with this number, created on first contact (race-safe)."""
    resident = session.scalars(select(Resident).where(Resident.phone == number.e164)).one_or_none()
    if resident is not None:
        return resident
    now = utcnow()
    insert_ignoring_conflict(
        session,
        Resident.__table__,
        {
            "phone": number.e164,
            "language": language or "nl",
            "line_type": number.line_type,
            "created_at": now,
            "updated_at": now,
        },
    )
    return session.scalars(select(Resident).where(Resident.phone == number.e164)).one()


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


# Lookup-or-create and "last contact now" in one statement (PostgreSQL), for
# the voice hot path (ivr_flows.fast). ``xmax = 0`` holds only for a row this
# statement inserted.
CONTACT_RESIDENT = """
INSERT INTO residents (phone, language, line_type, last_contact_at, created_at, updated_at)
VALUES (%(phone)s, 'nl', %(line_type)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (phone) DO UPDATE SET last_contact_at = EXCLUDED.last_contact_at, updated_at = EXCLUDED.updated_at
RETURNING id, language, postcode, district, (xmax = 0) AS created
"""
