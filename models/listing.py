"""Requests and offers: one table, because one resident can do both."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.base import NO_VALUE, NEVER_SET

from .base import Base, IdType, code, created_at, intpk, timestamp, updated_at, utcnow
from .districts import district_map
from .vocabulary import (
    CHANNELS,
    CURRENT_LISTING_STATUSES,
    FALLBACK_CATEGORY,
    FINAL_LISTING_STATUSES,
    KINDS,
    LISTING_STATUSES,
    OFFER_TIMINGS,
    REQUEST_TIMINGS,
    check_in,
)

if TYPE_CHECKING:
    from .resident import Resident

__all__ = ["CHANNELS", "KINDS", "LISTING_STATUSES", "OFFER_TIMINGS", "REQUEST_TIMINGS", "Listing"]


class Listing(Base):
    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint(check_in("kind", KINDS), name="kind"),
        CheckConstraint(check_in("status", LISTING_STATUSES), name="status"),
        Index("ix_listings_status_kind", "status", "kind"),
        Index("ix_listings_updated_at", "updated_at"),
        # The report: listings made in a period.
        Index("ix_listings_created_at", "created_at"),
    )

    id: Mapped[intpk]
    resident_id: Mapped[int] = mapped_column(IdType, ForeignKey("residents.id"), index=True)
    kind: Mapped[code]
    category: Mapped[code] = mapped_column(default=FALLBACK_CATEGORY, server_default=FALLBACK_CATEGORY)
    description: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(4))
    district: Mapped[str | None] = mapped_column(String(32))
    timing: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[code]
    status: Mapped[code] = mapped_column(default="open", server_default="open")
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_duration: Mapped[int | None] = mapped_column(Integer)
    recording_deleted_at: Mapped[timestamp]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
    closed_at: Mapped[timestamp]
    # When the check-in clock last started (models/listing_life.py): made, edited, reopened, or its owner
    # said it is still current. Empty on rows from before it existed: their created_at counts.
    touched_at: Mapped[timestamp]
    # The marketplace's own id of a listing posted through the API.
    external_ref: Mapped[str | None] = mapped_column(String(120))

    resident: Mapped["Resident"] = relationship(back_populates="listings")  # noqa: F821

    @property
    def has_recording(self) -> bool:
        return self.recording_sid is not None and self.recording_deleted_at is None


# What a person changes on a listing (its owner, a broker): a change restarts its check-in clock, as a
# reopening does. Set here once, whichever code path changes them through the ORM.
TOUCHING_COLUMNS = ("category", "description", "timing")


def _touch_on_change(target: Listing, value: Any, oldvalue: Any, _initiator: Any) -> None:
    if oldvalue not in (NO_VALUE, NEVER_SET) and value != oldvalue:
        target.touched_at = utcnow()


def _touch_on_reopen(target: Listing, value: Any, oldvalue: Any, _initiator: Any) -> None:
    if value == "open" and oldvalue in FINAL_LISTING_STATUSES:
        target.touched_at = utcnow()


for _column in TOUCHING_COLUMNS:
    event.listen(getattr(Listing, _column), "set", _touch_on_change)
event.listen(Listing.status, "set", _touch_on_reopen)


def listing_values(
    resident: "Resident",
    *,
    kind: str,
    channel: str,
    now: dt.datetime,
    category: str = "other",
    description: str | None = None,
    postcode: str | None = None,
    timing: str | None = None,
) -> dict[str, Any]:
    """A new listing's row: ``marketplace.record_listing`` stores it, ``ivr_flows.fast`` writes it in SQL.

    Without a postcode of its own the listing takes the resident's.
    """
    postcode = postcode or resident.postcode
    return {
        "resident_id": resident.id,
        "kind": kind,
        "category": category,
        "description": description or None,
        "postcode": postcode,
        "district": district_map().district_for(postcode),
        "timing": timing,
        "channel": channel,
        "status": "open",
        "created_at": now,
        "updated_at": now,
        "touched_at": now,
    }


def end_listing(listing: Listing, status: str, now: dt.datetime) -> bool:
    """End a current listing as ``status`` (done, cancelled, expired); False when it had already ended."""
    if status not in FINAL_LISTING_STATUSES:
        raise ValueError(f"{status!r} does not end a listing")
    if listing.status not in CURRENT_LISTING_STATUSES:
        return False
    listing.status = status
    listing.closed_at = now
    listing.updated_at = now
    return True
