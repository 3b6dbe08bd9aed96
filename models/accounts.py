"""Broker accounts: creation and passwords (Argon2id, rehashed when parameters change)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .broker import ROLES, Broker
from .phones import parse_phone

hasher = PasswordHasher()  # argon2id with the library's current parameters
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10


class AccountError(ValueError):
    """The account cannot be made as asked; ``why`` names the reason in one word (the dashboard's
    ``brokers.error.<why>``), the message says it in English for the command line."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


def hash_password(password: str) -> str:
    return hasher.hash(password)


def check_password(broker: Broker, password: str) -> bool:
    """True when ``password`` is right; upgrades the stored hash if it is outdated."""
    try:
        hasher.verify(broker.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(broker.password_hash):
        broker.password_hash = hasher.hash(password)
    return True


def end_sessions(session: Session, broker_id: int) -> None:
    """Every session the broker has open, on any device, ends at its next request."""
    table = Broker.__table__
    session.execute(update(table).where(table.c.id == broker_id)
                    .values(session_version=table.c.session_version + 1))


def create_broker(
    session: Session, *, email: str, name: str, role: str, phone: str | None, password: str
) -> Broker:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"not an e-mail address: {email!r}", "email")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters", "password")
    if not name.strip():
        raise AccountError("a name is needed", "name")
    e164 = parse_phone(phone).e164 if phone else None
    if session.scalar(select(func.count(Broker.id)).where(Broker.email == email)):
        raise AccountError(f"a broker with e-mail {email} exists already", "exists")
    broker = Broker(email=email, name=name.strip(), role=role, phone=e164, password_hash=hash_password(password))
    session.add(broker)
    session.flush()
    return broker
