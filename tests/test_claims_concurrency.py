"""Two brokers can never hold the same item: many claimers at once on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from gateway import create_app
from models import Callback
from models.accounts import hash_password
from models.broker import Broker
from models.leases import claim_item, claim_next
from tests.conftest import app_config
from tests.dashboard_support import seed_listing

CLAIMERS = 20
ITEMS = 5


@pytest.fixture
def pg_app(pg_database_url, fake_twilio):  # type: ignore[no-untyped-def]
    app = create_app(app_config(pg_database_url, fake_twilio))
    yield app
    app.extensions["buurtlijn.db"].dispose()


def _brokers(app) -> list[int]:  # type: ignore[no-untyped-def]
    password_hash = hash_password("not-used-here")
    with app.extensions["buurtlijn.db"].transaction() as session:
        brokers = [Broker(email=f"b{n}@buuv.example", name=f"B{n}", role="broker", password_hash=password_hash)
                   for n in range(CLAIMERS)]
        session.add_all(brokers)
        session.flush()
        return [b.id for b in brokers]


def _race(app, work) -> list[tuple[int, int | None]]:  # type: ignore[no-untyped-def]
    """Run ``work(session, broker_id)`` in CLAIMERS threads released at the same moment."""
    # One connection per claimer (the app's pool is smaller), all in the same database.
    engine = create_engine(app.config["DATABASE_URL"], pool_size=CLAIMERS, max_overflow=0)
    sessions = sessionmaker(engine, expire_on_commit=False)
    broker_ids = _brokers(app)
    barrier = threading.Barrier(CLAIMERS)
    results: list[tuple[int, int | None]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claimer(broker_id: int) -> None:
        try:
            session = sessions()
            session.connection()  # connect before the start line, so all claim at once
            barrier.wait(timeout=30)
            got = work(session, broker_id)
            session.commit()
            session.close()
            with lock:
                results.append((broker_id, got))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(b,)) for b in broker_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    engine.dispose()
    assert errors == []
    assert len(results) == CLAIMERS
    return results


@pytest.mark.postgres
def test_many_brokers_claiming_next_at_once_never_share_an_item(pg_app):
    items = [seed_listing(pg_app, f"+3161234560{n}")[1] for n in range(ITEMS)]

    def claim(session, broker_id):  # type: ignore[no-untyped-def]
        callback = claim_next(session, broker_id)
        return callback.id if callback else None

    results = _race(pg_app, claim)
    claimed = [item for _, item in results if item is not None]
    assert sorted(claimed) == sorted(items)  # every item claimed, each exactly once
    assert Counter(item for _, item in results)[None] == CLAIMERS - ITEMS
    with pg_app.extensions["buurtlijn.db"].transaction() as session:
        rows = session.scalars(select(Callback).order_by(Callback.id)).all()
        holders = {row.id: row.claimed_by_id for row in rows}
        assert all(row.status == "claimed" for row in rows)
        assert holders == {item: broker for broker, item in results if item is not None}


@pytest.mark.postgres
def test_many_brokers_claiming_this_item_at_once_one_wins(pg_app):
    _, item = seed_listing(pg_app, "+31612345600")

    def claim(session, broker_id):  # type: ignore[no-untyped-def]
        return item if claim_item(session, item, broker_id).ok else None

    results = _race(pg_app, claim)
    winners = [broker for broker, got in results if got == item]
    assert len(winners) == 1
    with pg_app.extensions["buurtlijn.db"].transaction() as session:
        assert session.get(Callback, item).claimed_by_id == winners[0]
