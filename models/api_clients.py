"""Who may use the JSON API (clients with a hashed token and a scope), and the answers kept for
``Idempotency-Key`` so that a retried POST or PATCH changes nothing twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import CheckConstraint, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base, UTCDateTime, code, created_at, intpk, timestamp, utcnow
from .vocabulary import API_SCOPES, IDEMPOTENCY_HOURS, check_in

TOKEN_PREFIX = "bl_"


class ApiClient(Base):
    __tablename__ = "api_clients"
    __table_args__ = (CheckConstraint(check_in("scope", API_SCOPES), name="scope"),)

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(120), unique=True)
    scope: Mapped[code]
    # SHA-256 of the token: tokens are long and random, so a fast hash is enough and the lookup is one index probe.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]
    revoked_at: Mapped[timestamp]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClientError(ValueError):
    pass


def create_api_client(session: Session, name: str, scope: str) -> tuple[ApiClient, str]:
    """A new client and its token, which is shown this once and stored only hashed."""
    name = name.strip()
    if not name or len(name) > 120:
        raise ApiClientError("the name must be 1 to 120 characters")
    if scope not in API_SCOPES:
        raise ApiClientError(f"the scope must be one of: {', '.join(API_SCOPES)}")
    if session.scalars(select(ApiClient).where(ApiClient.name == name)).first() is not None:
        raise ApiClientError(f"an API client named {name!r} exists already")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, scope=scope, token_hash=token_hash(token))
    session.add(client)
    session.flush()
    return client, token


def client_for_token(session: Session, token: str) -> ApiClient | None:
    """The active client holding ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    client = session.scalars(select(ApiClient).where(ApiClient.token_hash == token_hash(token))).one_or_none()
    return client if client is not None and client.active else None


def revoke_api_client(session: Session, client_id: int, when: dt.datetime | None = None) -> ApiClient | None:
    client = session.get(ApiClient, client_id)
    if client is not None and client.revoked_at is None:
        client.revoked_at = when or utcnow()
    return client


class IdempotentAnswer(Base):
    """The first answer to a POST or PATCH with an ``Idempotency-Key``, kept 24 hours.

    ``status_code`` is null while the first request is still running.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("client", "key", name="uq_api_idempotency_keys_client_key"),)

    id: Mapped[intpk]
    client: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def forget_old_answers(session: Session, now: dt.datetime) -> int:
    """Delete the answers kept longer than IDEMPOTENCY_HOURS (the sweep); returns how many."""
    result = session.execute(delete(IdempotentAnswer).where(
        IdempotentAnswer.created_at < now - dt.timedelta(hours=IDEMPOTENCY_HOURS)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
