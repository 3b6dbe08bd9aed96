"""The voice webhooks answered below Flask on PostgreSQL (gateway/webhooks_direct.py).

Whatever it answers must be what the Flask view would have answered; whatever
it cannot answer plainly must reach the view with its body intact.
"""

from __future__ import annotations

import functools
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
from flask import Flask
from sqlalchemy import func, select

from gateway import create_app
from gateway.database import get_database
from gateway.security import SECURITY_HEADERS
from models import Call, Callback, Listing
from tests.call_simulator import SimulatedCall, flask_poster
from gateway.twilio_sim import sign
from tests.conftest import AUTH_TOKEN, TwilioWebhooks, app_config

CALLER = "+31612345678"
VOICE_VIEWS = ("twilio_voice.incoming_call", "twilio_voice.step", "twilio_voice.call_status")


def _app(database_url: str, fake_twilio, *, direct: bool = True) -> Flask:  # type: ignore[no-untyped-def]
    if direct:
        return create_app(app_config(database_url, fake_twilio))
    import gateway.webhooks_direct as direct_module

    original = direct_module.init_app
    direct_module.init_app = lambda app: None  # type: ignore[assignment]
    try:
        return create_app(app_config(database_url, fake_twilio))
    finally:
        direct_module.init_app = original  # type: ignore[assignment]


def _count_views(app: Flask) -> list[str]:
    """The Flask voice views still answer, and say each time they were asked."""
    called: list[str] = []
    for endpoint in VOICE_VIEWS:
        view = app.view_functions[endpoint]

        @functools.wraps(view)  # the same name: still exempt from CSRF, as Twilio's webhooks are
        def counting(*args, _view=view, _endpoint=endpoint, **kwargs):  # type: ignore[no-untyped-def]
            called.append(_endpoint)
            return _view(*args, **kwargs)

        app.view_functions[endpoint] = counting
    return called


@pytest.fixture
def views_called(pg_app):  # type: ignore[no-untyped-def]
    return _count_views(pg_app)


def _call(app: Flask, from_: str = CALLER) -> SimulatedCall:
    return SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=from_).start()


def _count(app: Flask, model) -> int:  # type: ignore[no-untyped-def]
    with get_database(app).transaction() as session:
        return session.scalar(select(func.count(model.id)))


def test_a_whole_request_call_is_answered_below_flask(pg_app, views_called):
    call = _call(pg_app).press("1").press("1").press("2034").press("1").press("1").record(5).hang_up()
    assert call.ended
    assert views_called == []  # not one of the eight webhooks needed a Flask view
    assert (_count(pg_app, Call), _count(pg_app, Listing)) == (1, 1)
    assert _count(pg_app, Callback) == 1


def test_the_answers_and_headers_are_the_flask_views_own(pg_database_url, fake_twilio):
    """The same call through both layers hears the same, with the same headers (the sealed state aside)."""
    heard: dict[bool, list[str]] = {}
    headers: dict[bool, list[tuple[str, str]]] = {}
    for direct in (True, False):
        app = _app(pg_database_url, fake_twilio, direct=direct)
        try:
            responses = []
            poster = flask_poster(TwilioWebhooks(app.test_client()))

            def recording(path, params, _poster=poster, _responses=responses):  # type: ignore[no-untyped-def]
                answer = _poster(path, params)
                _responses.append(answer)
                return answer

            from_ = "+31612345670" if direct else "+31612345671"
            SimulatedCall(recording, from_=from_).start().press("9").press("2").press("1").press("3").press("2012") \
                .press("1").press("2").record(3).hang_up()
            # The state sealed into each action URL is random per answer: compare the rest.
            heard[direct] = [re.sub(r"&amp;c=[A-Za-z0-9_-]+", "", body) for _status, _type, body in responses]
            headers[direct] = sorted((name, value) for name, value in _last_headers(app, from_).items()
                                     if name != "Content-Length")
        finally:
            get_database(app).dispose()
    assert heard[True] == heard[False]
    assert headers[True] == headers[False]
    assert ("Content-Type", "text/xml; charset=utf-8") in headers[True]
    for name, value in SECURITY_HEADERS:
        assert (name, value) in headers[True]


def _last_headers(app: Flask, from_: str) -> dict[str, str]:
    """The headers of an incoming-call answer (a repeated delivery of the last call: same headers)."""
    params = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "1" * 32, "From": from_, "To": "+31235550100",
              "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    response = TwilioWebhooks(app.test_client()).post("/twilio/voice", params)
    assert response.status_code == 200
    ET.fromstring(response.data)
    return dict(response.headers)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "flask"])
def test_over_https_the_answer_carries_hsts_either_way(pg_database_url, fake_twilio, direct):
    app = _app(pg_database_url, fake_twilio, direct=direct)
    called = _count_views(app)
    try:
        params = {"CallSid": "CA" + "9" * 32, "From": CALLER, "To": "+31235550100", "CallStatus": "ringing"}
        signature = sign("https://localhost/twilio/voice", params, AUTH_TOKEN)
        response = app.test_client().post("/twilio/voice", data=params, base_url="https://localhost",
                                          headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert ET.fromstring(response.data).find("Gather") is not None
        assert called == ([] if direct else ["twilio_voice.incoming_call"])
    finally:
        get_database(app).dispose()


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [("unsigned", 403), ("wrong_content_type", 403), ("too_long", 413)],
)
def test_what_it_does_not_read_plainly_goes_to_the_view(pg_app, views_called, case, expected_status):
    client = pg_app.test_client()
    params = {"CallSid": "CA" + "8" * 32, "From": CALLER, "To": "+31235550100", "CallStatus": "ringing"}
    url = "http://localhost/twilio/voice"
    if case == "unsigned":
        response = client.post("/twilio/voice", data=params, headers={"X-Twilio-Signature": "forged"})
    elif case == "wrong_content_type":  # signed as a form, sent as JSON: the view refuses it too
        signature = sign(url, params, AUTH_TOKEN)
        response = client.post("/twilio/voice", json=params, headers={"X-Twilio-Signature": signature})
    else:
        params["Padding"] = "x" * (70 * 1024)  # Twilio's posts are a few hundred bytes: over 64 KiB is not Twilio
        signature = sign(url, params, AUTH_TOKEN)
        response = client.post("/twilio/voice", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == expected_status
    assert views_called == ["twilio_voice.incoming_call"]
    assert _count(pg_app, Call) == 0


def test_a_failure_below_flask_is_answered_by_the_view(pg_app, views_called, monkeypatch, caplog):
    """The view runs the step again (a step applies once) and the caller hears the next question."""
    import gateway.webhooks_direct as direct_module

    call = _call(pg_app)
    real = direct_module.fast.answer_step
    failures = []

    def fails_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(1)
            raise RuntimeError(f"a hiccup for {CALLER}")
        return real(*args, **kwargs)

    monkeypatch.setattr(direct_module.fast, "answer_step", fails_once)
    call.press("1")
    assert views_called == ["twilio_voice.step"]
    assert "boodschappen" in call.said  # the category question: the step was taken once, by the view
    assert "direct voice webhook /twilio/voice/step failed" in caplog.text
    assert "612345678" not in caplog.text  # the traceback, scrubbed


def test_on_sqlite_every_voice_webhook_is_the_flask_views(sqlite_template, tmp_path, fake_twilio):
    target = tmp_path / "buurtlijn.sqlite3"
    shutil.copy(sqlite_template, target)
    app = _app(f"sqlite:///{target}", fake_twilio)
    try:
        called = _count_views(app)
        _call(app).press("1").hang_up()
        assert called == ["twilio_voice.incoming_call", "twilio_voice.step", "twilio_voice.call_status"]
    finally:
        get_database(app).dispose()
