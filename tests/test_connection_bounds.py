"""The database connections a process holds are bounded by its settings (README, "Deploying")."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from gateway import create_app
from gateway.cli import ONE_AT_A_TIME
from gateway.database import get_database
from tests.conftest import app_config


def _opens_at_most(app: Any, limit: int) -> None:
    """``limit`` connections at once can be had from the app's pool; one more waits until one is given back."""
    engine = get_database(app).engine
    held = [engine.connect() for _ in range(limit)]
    try:
        for connection in held:
            connection.execute(text("SELECT 1"))
        got_one = threading.Event()

        def one_more() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                got_one.set()

        waiting = threading.Thread(target=one_more, daemon=True)
        waiting.start()
        assert not got_one.wait(1.0), f"a connection beyond {limit} was opened"
        held.pop().close()  # one given back: the waiting thread takes it
        assert got_one.wait(10)
        waiting.join(10)
    finally:
        for connection in held:
            connection.close()
        get_database(app).dispose()


@pytest.mark.parametrize(("settings", "limit"), [
    ({"BUURTLIJN_DB_POOL_SIZE": 3, "BUURTLIJN_DB_MAX_OVERFLOW": 1}, 4),
    ({}, 16 + 4),  # the defaults: the web's 16 threads and four more
    (ONE_AT_A_TIME, 3),  # `buurtlijn worker` and its dispatcher, whatever the web's settings
])
def test_the_pool_opens_no_more_than_its_settings_allow(pg_database_url: str, fake_twilio: Any,
                                                        settings: dict[str, int], limit: int) -> None:
    _opens_at_most(create_app(app_config(pg_database_url, fake_twilio, **settings)), limit)
