"""Shared helpers for the dashboard tests: brokers, logging in with CSRF tokens, seeding listings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.database import get_database
from models import Callback
from models.accounts import create_broker
from models.marketplace import record_listing
from models.phones import parse_phone
from models.residents import resident_for, set_postcode

PASSWORD = "buurtlijn-test-password"
MILA_PHONE = "+31612340001"
BRAM_PHONE = "+31612340003"
COR_PHONE = "+31612340002"
_TOKEN = re.compile(r'name="csrf(?:_token|-token)"\s+(?:value|content)="([^"]+)"')


@dataclass(frozen=True)
class Brokers:
    mila: int  # broker
    bram: int  # broker
    cor: int  # coordinator


def make_brokers(app: Flask) -> Brokers:
    with get_database(app).transaction() as session:
        mila = create_broker(session, email="mila@buuv.example", name="Mila", role="broker",
                             phone=MILA_PHONE, password=PASSWORD)
        bram = create_broker(session, email="bram@buuv.example", name="Bram", role="broker",
                             phone=BRAM_PHONE, password=PASSWORD)
        cor = create_broker(session, email="cor@buuv.example", name="Cor", role="coordinator",
                            phone=COR_PHONE, password=PASSWORD)
        return Brokers(mila.id, bram.id, cor.id)


def token_in(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def csrf_token(client: FlaskClient, page: str = "/dashboard") -> str:
    return token_in(client.get(page).get_data(as_text=True))


def login(client: FlaskClient, email: str, password: str = PASSWORD, **environ: Any) -> Any:
    token = token_in(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, **environ)


def logged_in(app: Flask, email: str) -> FlaskClient:
    """A browser of the dashboard, logged in as ``email``."""
    client = app.test_client()
    login(client, email)
    return client


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, page: str = "/dashboard",
         **kwargs: Any) -> Any:
    """A form post as the browser makes it: with the CSRF token of the page it came from."""
    form = dict(data or {})
    form["csrf_token"] = csrf_token(client, page)
    return client.post(path, data=form, **kwargs)


def seed_listing(
    app: Flask,
    phone: str,
    kind: str = "request",
    category: str = "groceries",
    postcode: str | None = "2034",
    description: str | None = None,
) -> tuple[int, int]:
    """A listing as the SMS channel records it; returns (listing id, callback id)."""
    with get_database(app).transaction() as session:
        resident = resident_for(session, parse_phone(phone))
        if postcode:
            set_postcode(resident, postcode)
        listing = record_listing(session, resident, kind=kind, channel="sms", category=category,
                                 description=description or f"{kind} {category}", postcode=postcode)
        callback = session.scalars(select(Callback).where(Callback.listing_id == listing.id)).one()
        return listing.id, callback.id
