"""Finding and updating residents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import utcnow
from .db import Database
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


@dataclass(frozen=True)
class ContactedResident:
    """A caller's resident row as the voice webhook needs it, right after their last contact was stamped."""

    id: int
    language: str
    postcode: str | None
    district: str | None
    created: bool  # first contact: the row was made just now


# Lookup-or-create and "last contact now" in one statement that commits on
# its own. ``xmax = 0`` holds only for a row this statement inserted.
_CONTACT_RESIDENT = """
INSERT INTO residents (phone, language, line_type, last_contact_at, created_at, updated_at)
VALUES (%(phone)s, 'nl', %(line_type)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (phone) DO UPDATE SET last_contact_at = EXCLUDED.last_contact_at, updated_at = EXCLUDED.updated_at
RETURNING id, language, postcode, district, (xmax = 0) AS created
"""


def contact_resident(db: Database, number: PhoneNumber, now: dt.datetime) -> ContactedResident:
    """PostgreSQL: ``resident_for(...)`` then ``touch(now)`` as one round trip (the voice hot path)."""
    row = db.autocommit_row(_CONTACT_RESIDENT, {"phone": number.e164, "line_type": number.line_type, "now": now})
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
    return ContactedResident(id=row[0], language=row[1], postcode=row[2], district=row[3], created=bool(row[4]))
