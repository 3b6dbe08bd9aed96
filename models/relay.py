"""Every text passed on between the two neighbours of a match, as a broker sees it on the match."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdType, code, created_at, intpk
from .vocabulary import RELAY_OUTCOMES, check_in


class Relay(Base):
    __tablename__ = "relays"
    __table_args__ = (
        CheckConstraint(check_in("outcome", RELAY_OUTCOMES), name="outcome"),
        # The daily cap counts a pair's relays of the last 24 hours.
        Index("ix_relays_pair", "from_resident_id", "to_resident_id", "created_at"),
    )

    id: Mapped[intpk]
    match_id: Mapped[int] = mapped_column(IdType, ForeignKey("matches.id"), index=True)
    from_resident_id: Mapped[int] = mapped_column(IdType, ForeignKey("residents.id"))
    to_resident_id: Mapped[int] = mapped_column(IdType, ForeignKey("residents.id"))
    # The text as the sender wrote it stays on this inbound message, for the broker.
    inbound_message_id: Mapped[int] = mapped_column(IdType, ForeignKey("messages.id"), unique=True)
    # The SMS that passed it on (none when refused, or spoken on a call).
    outbound_message_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("messages.id"))
    outcome: Mapped[code]
    # What the other neighbour got (links and numbers replaced, cut to two segments); none when refused.
    relayed: Mapped[str | None] = mapped_column(Text)
    cut: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cleaned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[created_at]
