"""A session cookie copied from a browser: it ends when the broker logs out or is disabled."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.dashboard_support import login, post

COOKIE = "session"


def copy_of(client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie, as a thief would."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    thief = client.application.test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief


def test_a_cookie_copied_before_logout_is_refused_after_it(client, brokers):
    login(client, "mila@buuv.example")
    stolen = copy_of(client)
    assert stolen.get("/dashboard").status_code == 200

    post(client, "/logout")
    assert stolen.get("/dashboard").status_code == 302
    assert stolen.get("/dashboard/calls/1.json").status_code == 401


def test_logging_out_ends_the_brokers_sessions_in_other_browsers_too(client, brokers):
    elsewhere = client.application.test_client()
    login(client, "mila@buuv.example")
    login(elsewhere, "mila@buuv.example")
    post(client, "/logout")
    assert elsewhere.get("/dashboard").status_code == 302
    login(elsewhere, "mila@buuv.example")  # a new login works as before
    assert elsewhere.get("/dashboard").status_code == 200


def test_a_cookie_copied_before_the_broker_is_disabled_stays_refused_when_enabled_again(client, brokers):
    mila = client.application.test_client()
    login(mila, "mila@buuv.example")
    stolen = copy_of(mila)
    login(client, "cor@buuv.example")

    post(client, f"/dashboard/brokers/{brokers.mila}/active", {"active": "0", "confirmed": "1"},
         page="/dashboard/brokers")
    assert stolen.get("/dashboard").status_code == 302
    post(client, f"/dashboard/brokers/{brokers.mila}/active", {"active": "1"}, page="/dashboard/brokers")
    assert stolen.get("/dashboard").status_code == 302
    assert mila.get("/dashboard").status_code == 302
    login(mila, "mila@buuv.example")
    assert mila.get("/dashboard").status_code == 200
