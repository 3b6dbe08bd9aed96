"""Coordinators: a resident's export (JSON download, printable Dutch page) and erasure behind a confirmation."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AuditEvent, Listing, Resident
from models.privacy import is_erased
from tests.dashboard_support import logged_in, post, seed_listing

RESIDENT = "+31612345002"


def _setup(app, brokers):  # type: ignore[no-untyped-def]
    listing_id, callback_id = seed_listing(app, RESIDENT, description="Zonnebloemstraat, boodschappen")
    return listing_id, callback_id


def _resident_id(db) -> int:  # type: ignore[no-untyped-def]
    return db.scalars(select(Resident.id)).one()


def _events(db, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_coordinator_downloads_the_export_and_prints_it_in_dutch(app, brokers, db):
    _listing_id, callback_id = _setup(app, brokers)
    cor = logged_in(app, "cor@buuv.example")
    resident_id = _resident_id(db)
    item = cor.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert f"/dashboard/residents/{resident_id}" in item  # the way there, from the resident on the item page
    page = cor.get(f"/dashboard/residents/{resident_id}")
    assert page.status_code == 200 and "vragen en aanbod (1)" in page.get_data(as_text=True)
    download = cor.get(f"/dashboard/residents/{resident_id}/export.json")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    data = json.loads(download.data)
    assert data["resident"]["phone"] == RESIDENT and data["listings"][0]["description"].startswith("Zonnebloem")
    printable = cor.get(f"/dashboard/residents/{resident_id}/export").get_data(as_text=True)
    assert "Uw gegevens bij Buurtlijn (BUUV)" in printable and "Zonnebloemstraat" in printable
    assert "Vragen en aanbiedingen (1)" in printable
    assert [e.detail["format"] for e in _events(db, "resident.export")] == ["json", "print"]


def test_a_broker_may_neither_export_nor_erase(app, brokers, db):
    _setup(app, brokers)
    mila = logged_in(app, "mila@buuv.example")
    resident_id = _resident_id(db)
    for path in (f"/dashboard/residents/{resident_id}", f"/dashboard/residents/{resident_id}/export.json",
                 f"/dashboard/residents/{resident_id}/export"):
        assert mila.get(path).status_code == 403
    assert post(mila, f"/dashboard/residents/{resident_id}/erase", {"confirm": "yes"}).status_code == 403
    assert not is_erased(db.get(Resident, resident_id))
    assert f"/dashboard/residents/{resident_id}" not in mila.get("/dashboard").get_data(as_text=True)


def test_erasure_needs_the_confirmation_and_the_csrf_token(app, brokers, db):
    listing_id, _callback_id = _setup(app, brokers)
    cor = logged_in(app, "cor@buuv.example")
    resident_id = _resident_id(db)
    page = f"/dashboard/residents/{resident_id}"
    assert cor.post(f"{page}/erase", data={"confirm": "yes"}).status_code == 400  # no CSRF token
    unconfirmed = post(cor, f"{page}/erase", {}, page=page, follow_redirects=True)
    assert "Er is niets gewist" in unconfirmed.get_data(as_text=True)
    db.expire_all()
    assert not is_erased(db.get(Resident, resident_id))

    done = post(cor, f"{page}/erase", {"confirm": "yes"}, page=page, follow_redirects=True)
    assert "Alles over deze bewoner is gewist." in done.get_data(as_text=True)
    db.expire_all()
    assert is_erased(db.get(Resident, resident_id))
    assert db.get(Listing, listing_id).description is None
    [event] = _events(db, "resident.erase")
    assert event.actor_type == "broker" and event.detail["via"] == "dashboard" and RESIDENT not in str(event.detail)
    assert RESIDENT not in cor.get(page).get_data(as_text=True)
    again = post(cor, f"{page}/erase", {"confirm": "yes"}, page=page, follow_redirects=True)
    assert again.status_code == 200 and len(_events(db, "resident.erase")) == 1
