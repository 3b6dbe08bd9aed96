"""Login throttling per client address (and per unknown e-mail address).

Failures per known account live on the broker row (``failed_logins``,
``locked_until``); this table counts what has no broker row: an address that
tries many accounts, or an e-mail address nobody owns (so that a lockout
does not tell a stranger whether an account exists).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, intpk, timestamp, utcnow


class LoginThrottle(Base):
    __tablename__ = "login_throttles"

    id: Mapped[intpk]
    # "addr:203.0.113.5" or "email:someone@example.org"
    key: Mapped[str] = mapped_column(String(300), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[timestamp]
