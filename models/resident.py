"""A resident: anyone who asks or offers help by phone or SMS."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, code, created_at, e164, intpk, timestamp, updated_at
from .vocabulary import RESIDENT_LANGUAGES as LANGUAGES

__all__ = ["LANGUAGES", "NO_PHONE_PREFIX", "NUMBER_NONE", "Resident"]

# A marketplace member who gave no phone number is a resident without one: the phone column holds
# this prefix and a random tail (unique, never dialled), the number_status says so, and the API and
# events show no phone. The marketplace hears about such a member's listings through its events.
NO_PHONE_PREFIX = "online:"
NUMBER_NONE = "none"
# Number states whose listings are suggested to brokers: a working phone, or a member reached online.
SUGGESTABLE_NUMBER_STATUSES = ("ok", NUMBER_NONE)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[intpk]
    phone: Mapped[e164] = mapped_column(unique=True)
    language: Mapped[code] = mapped_column(default="nl", server_default="nl")
    # Optional: anonymous participation is normal at BUUV.
    name: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(4))
    district: Mapped[str | None] = mapped_column(String(32))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    opted_out_at: Mapped[timestamp]
    opted_in_at: Mapped[timestamp]
    # ok | invalid (Twilio 21211) | not_mobile (Twilio 21614) | none (a marketplace member without a phone)
    number_status: Mapped[code] = mapped_column(default="ok", server_default="ok")
    # mobile | fixed_line | voip | unknown, from phonenumbers
    line_type: Mapped[code] = mapped_column(default="unknown", server_default="unknown")
    prefers_voice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The open SMS dialogue, e.g. {"awaiting": "postcode", "listing_id": 12}.
    conversation: Mapped[dict[str, Any] | None]
    notes: Mapped[str | None] = mapped_column(Text)
    last_contact_at: Mapped[timestamp]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    listings: Mapped[list["Listing"]] = relationship(  # noqa: F821
        back_populates="resident", order_by="Listing.id"
    )

    @property
    def reachable_by_sms(self) -> bool:
        return (
            not self.opted_out
            and self.number_status == "ok"
            and self.line_type != "fixed_line"
            and not self.prefers_voice
        )

    def touch(self, when: dt.datetime) -> None:
        for name, value in contact_values(when).items():
            setattr(self, name, value)


def contact_values(when: dt.datetime) -> dict[str, Any]:
    """What a contact changes on a resident's row: ``Resident.touch``, and ``ivr_flows.fast`` in SQL."""
    return {"last_contact_at": when, "updated_at": when}
