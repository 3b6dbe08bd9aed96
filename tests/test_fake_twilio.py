"""The fake Twilio server, exercised through the real twilio client (twilio 9.x)."""

from __future__ import annotations

import datetime as dt
import io
import os
import select
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fake_twilio import (
    FakeTwilio,
    OpenAPISpecNotFound,
    validate_against_openapi,
)

ACCOUNT_SID = "AC" + "1234567890abcdef" * 2
AUTH_TOKEN = "test-auth-token"
TO = "+31612345678"
OTHER_TO = "+31687654321"
FROM = "+3197010203040"
CALLBACK = "https://buurtlijn.example/twilio/status"
TWIML = '<Response><Say language="nl-NL">Hallo</Say></Response>'
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


def client_for(fake: FakeTwilio, auth_token: str = AUTH_TOKEN, timeout: float | None = 5.0) -> Client:
    # The documented way: every API resource we use lives on the "api" domain.
    client = Client(ACCOUNT_SID, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
def client(fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> Client:
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):  # they would rewrite the host name
        monkeypatch.delenv(name, raising=False)
    return client_for(fake)


def send(client: Client, to: str = TO, body: str = "Hoi") -> object:
    return client.messages.create(to=to, from_=FROM, body=body, status_callback=CALLBACK)


# ---------------------------------------------------------------- messages


def test_send_message_records_form_and_returns_parsed_instance(fake: FakeTwilio, client: Client) -> None:
    message = client.messages.create(to=TO, from_=FROM, body="Uw hulpvraag is geplaatst", status_callback=CALLBACK)

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.to == TO and message.from_ == FROM
    assert isinstance(message.date_created, dt.datetime)  # the RFC 2822 date parsed
    assert message.account_sid == ACCOUNT_SID
    [sent] = fake.messages()
    assert sent == {
        "To": TO,
        "From": FROM,
        "Body": "Uw hulpvraag is geplaatst",
        "StatusCallback": CALLBACK,
        "sid": message.sid,
    }
    [request] = fake.requests
    assert (request.method, request.status, request.auth_ok, request.resource) == ("POST", 201, True, "messages")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_messaging_service_send_is_accepted_without_from(fake: FakeTwilio, client: Client) -> None:
    service_sid = "MG" + "ab" * 16
    message = client.messages.create(to=TO, messaging_service_sid=service_sid, body="Hoi")
    assert message.status == "accepted"
    assert message.messaging_service_sid == service_sid and message.from_ is None
    assert fake.messages()[0]["MessagingServiceSid"] == service_sid


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, "1"), ("a" * 161, "2"), ("€" * 80, "1"), ("financiële " * 7, "2"), ("ë" * 70, "1")],
)
def test_num_segments_follows_gsm7_and_ucs2_limits(client: Client, body: str, segments: str) -> None:
    assert send(client, body=body).num_segments == segments  # type: ignore[attr-defined]


def test_list_messages_filters_and_pages_like_twilio(fake: FakeTwilio, client: Client) -> None:
    first = send(client, body="een")
    send(client, body="twee")
    send(client, to=OTHER_TO, body="drie")

    to_to = client.messages.list(to=TO)
    assert [m.body for m in to_to] == ["twee", "een"]  # newest first
    assert fake.requests[-1].query == {"To": TO}

    # page_size=1 forces the client to follow next_page_uri through the fake.
    assert len(client.messages.list(limit=10, page_size=1)) == 3
    assert fake.requests[-1].query["Page"] == "2"

    assert client.messages.list(date_sent_after=dt.datetime(2000, 1, 1), from_=FROM, to=OTHER_TO)[0].body == "drie"
    assert fake.requests[-1].query["DateSent>"] == "2000-01-01T00:00:00Z"  # the lib's name and format
    assert client.messages.list(date_sent_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == []
    assert client.messages.list(date_sent_before=dt.datetime(2000, 1, 1)) == []

    assert client.messages(first.sid).fetch().body == "een"  # type: ignore[attr-defined]
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


# ---------------------------------------------------------------- calls


def test_create_and_update_call(fake: FakeTwilio, client: Client) -> None:
    call = client.calls.create(
        to=TO,
        from_=FROM,
        twiml=TWIML,
        status_callback=CALLBACK,
        status_callback_event=["initiated", "answered", "completed"],
        machine_detection="Enable",
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    [created] = fake.calls()
    assert created["Twiml"] == TWIML
    assert created["StatusCallbackEvent"] == ["initiated", "answered", "completed"]  # repeated form key
    assert created["MachineDetection"] == "Enable"

    updated = client.calls(call.sid).update(twiml="<Response><Hangup/></Response>", status="completed")
    assert updated.status == "completed"
    assert fake.call_updates() == [
        {"Twiml": "<Response><Hangup/></Response>", "Status": "completed", "sid": call.sid}
    ]
    assert client.calls(call.sid).fetch().status == "completed"
    assert [c.sid for c in client.calls.list(to=TO)] == [call.sid]


# ---------------------------------------------------------------- recordings


def test_fetch_media_and_delete_recording(fake: FakeTwilio, client: Client) -> None:
    call_sid = "CA" + "cd" * 16
    recording_sid = fake.add_recording(call_sid=call_sid, duration=3)

    recording = client.recordings(recording_sid).fetch()
    assert (recording.sid, recording.call_sid, recording.duration) == (recording_sid, call_sid, "3")
    assert recording.media_url.startswith(fake.base_url)

    wav = requests.get(recording.media_url + ".wav", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert wav.status_code == 200 and wav.headers["Content-Type"] == "audio/x-wav"
    with wave.open(io.BytesIO(wav.content)) as audio:
        assert (audio.getnchannels(), audio.getframerate()) == (1, 8000)
        assert audio.getnframes() / audio.getframerate() == pytest.approx(0.5)
    mp3 = requests.get(recording.media_url + ".mp3", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert mp3.status_code == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert requests.get(recording.media_url + ".wav", timeout=5).status_code == 401

    assert client.recordings(recording_sid).delete() is True
    assert fake.deleted_recordings() == [recording_sid]
    assert fake.requests[-1].status == 204
    with pytest.raises(TwilioRestException) as gone:
        client.recordings(recording_sid).fetch()
    assert (gone.value.status, gone.value.code) == (404, 20404)
    assert requests.get(recording.media_url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 404


def test_unknown_recording_sid_is_served_because_it_came_from_a_webhook(client: Client) -> None:
    sid = "RE" + "ef" * 16
    assert client.recordings(sid).fetch().status == "completed"


# ---------------------------------------------------------------- auth and validation


def test_wrong_token_is_401_authenticate(fake: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as error:
        send(client_for(fake, auth_token="wrong"))
    assert (error.value.status, error.value.code) == (401, 20003)
    assert fake.messages() == []
    assert [r.auth_ok for r in fake.requests] == [False]

    anonymous = requests.post(f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_other_account_in_path_is_not_found(fake: FakeTwilio) -> None:
    other = "AC" + "9" * 32
    reply = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{other}/Messages.json", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    )
    assert reply.status_code == 404 and reply.json()["code"] == 20404


@pytest.mark.parametrize(
    ("list_name", "form", "code"),
    [
        ("Messages.json", {"From": FROM, "Body": "x"}, 21604),
        ("Messages.json", {"To": TO, "Body": "x"}, 21603),
        ("Messages.json", {"To": TO, "From": FROM}, 21602),
        ("Messages.json", {"To": TO, "From": FROM, "Body": "x" * 1601}, 21617),
        ("Calls.json", {"From": FROM, "Twiml": TWIML}, 21201),
        ("Calls.json", {"To": TO, "Twiml": TWIML}, 21213),
        ("Calls.json", {"To": TO, "From": FROM}, 21205),
    ],
)
def test_missing_required_fields_are_400(fake: FakeTwilio, list_name: str, form: dict[str, str], code: int) -> None:
    reply = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/{list_name}",
        data=form,
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == code and body["status"] == 400 and body["message"]
    assert fake.messages() == [] and fake.calls() == []


# ---------------------------------------------------------------- fault injection


def _fetch_recording(client: Client) -> object:
    return client.recordings("RE" + "12" * 16).fetch()


def _create_call(client: Client) -> object:
    return client.calls.create(to=TO, from_=FROM, twiml=TWIML)


@pytest.mark.parametrize(
    ("resource", "action", "status", "code", "expected_code"),
    [
        ("messages", send, 400, 21610, 21610),
        ("messages", send, 400, 21614, 21614),
        ("messages", send, 429, 20429, 20429),
        ("messages", send, 500, None, 500),  # no code in the body: the lib falls back to the status
        ("messages", send, 503, None, 503),
        ("calls", _create_call, 400, 21211, 21211),
        ("recordings", _fetch_recording, 503, None, 503),
    ],
)
def test_injected_error_raises_twilio_rest_exception_once(
    fake: FakeTwilio,
    client: Client,
    resource: str,
    action: Callable[[Client], object],
    status: int,
    code: int | None,
    expected_code: int,
) -> None:
    fake.fail_next(resource, status=status, code=code)

    with pytest.raises(TwilioRestException) as error:
        action(client)
    assert (error.value.status, error.value.code) == (status, expected_code)
    assert fake.requests[-1].status == status
    assert fake.messages() == [] and fake.calls() == []

    action(client)  # times=1: the next request goes through
    assert fake.requests[-1].status in (200, 201)


def test_fail_next_body_is_twilio_shaped_and_respects_times_and_method(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next("messages", status=400, code=21610, message="Attempt to send to unsubscribed recipient", times=2,
                   method="POST")
    assert client.messages.list() == []  # a GET is not a POST: no fault used up

    raw = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": TO, "From": FROM, "Body": "x"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    assert raw.json() == {
        "code": 21610,
        "message": "Attempt to send to unsubscribed recipient",
        "more_info": "https://www.twilio.com/docs/errors/21610",
        "status": 400,
    }
    with pytest.raises(TwilioRestException) as second:
        send(client)
    assert "unsubscribed" in second.value.msg
    send(client)
    assert len(fake.messages()) == 1
    assert [r.status for r in fake.requests] == [200, 400, 400, 201]


def test_fail_for_to_is_permanent_until_reset(fake: FakeTwilio, client: Client) -> None:
    fake.fail_for_to(OTHER_TO, status=400, code=21211)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as error:
            send(client, to=OTHER_TO)
        assert (error.value.status, error.value.code) == (400, 21211)
        assert OTHER_TO in error.value.msg
    with pytest.raises(TwilioRestException):
        client.calls.create(to=OTHER_TO, from_=FROM, twiml=TWIML)
    send(client, to=TO)
    assert [m["To"] for m in fake.messages()] == [TO]

    fake.reset()
    assert fake.requests == [] and fake.messages() == []
    send(client, to=OTHER_TO)
    assert [m["To"] for m in fake.messages()] == [OTHER_TO]


def test_fail_next_rejects_unknown_resource(fake: FakeTwilio) -> None:
    with pytest.raises(ValueError, match="unknown resource"):
        fake.fail_next("sms", status=500)


# ---------------------------------------------------------------- latency and outages


def test_slow_twilio_times_out_the_client_but_still_accepts(fake: FakeTwilio) -> None:
    fake.delay = 0.3
    impatient = client_for(fake, timeout=0.05)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        send(impatient)
    assert time.monotonic() - started < 0.25
    # Like real Twilio, a request the client gave up on may still be sent: idempotency matters.
    assert fake.wait_for(1, timeout=2)

    started = time.monotonic()
    send(client_for(fake, timeout=5))
    assert time.monotonic() - started >= 0.3
    assert len(fake.messages()) == 2


# ---------------------------------------------------------------- lost answers and hangs


@pytest.mark.parametrize("resource", ["messages", "calls"])
def test_an_accepted_create_whose_answer_is_a_500(fake: FakeTwilio, client: Client, resource: str) -> None:
    fake.fail_next(resource, status=500, method="POST", accept=True)
    create = send if resource == "messages" else _create_call
    with pytest.raises(TwilioRestException) as error:
        create(client)
    assert error.value.status == 500
    stored = fake.messages() if resource == "messages" else fake.calls()
    assert len(stored) == 1  # Twilio has it, though the client heard "500"
    assert [r.status for r in fake.requests] == [500]
    create(client)  # once only
    assert len(fake.messages() if resource == "messages" else fake.calls()) == 2


@pytest.mark.parametrize("accept", [True, False], ids=["carried-out", "not-carried-out"])
def test_a_dropped_connection_gives_no_answer(fake: FakeTwilio, client: Client, accept: bool) -> None:
    fake.drop_next("messages", method="POST", accept=accept)
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client)
    assert len(fake.messages()) == (1 if accept else 0)
    [request] = fake.requests
    assert request.status is None and request.answered_at is not None
    send(client)
    assert len(fake.messages()) == (2 if accept else 1)


def test_faults_for_one_number_leave_the_others_alone(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next("messages", status=500, method="POST", to=OTHER_TO, accept=True)
    send(client, to=TO)
    send(client, to=TO)
    with pytest.raises(TwilioRestException):
        send(client, to=OTHER_TO)
    send(client, to=OTHER_TO)
    assert [m["To"] for m in fake.messages()] == [TO, TO, OTHER_TO, OTHER_TO]
    assert [r.status for r in fake.requests] == [201, 201, 500, 201]


@pytest.mark.parametrize("accept", [True, False], ids=["then-accepted", "then-dropped"])
def test_a_hang_outlasts_the_client_then_is_carried_out_or_not(fake: FakeTwilio, accept: bool) -> None:
    fake.hang_next("messages", 0.6, method="POST", accept=accept)
    impatient = client_for(fake, timeout=0.1)
    with pytest.raises(requests.exceptions.Timeout):
        send(impatient)
    [hung] = fake.requests
    assert hung.status is None and fake.messages() == []  # still hanging
    send(impatient, to=OTHER_TO)  # others are answered meanwhile
    assert [m["To"] for m in fake.messages()] == [OTHER_TO] and hung.answered_at is None
    assert fake.wait_for(lambda f: hung.answered_at is not None, timeout=3)
    assert [m["To"] for m in fake.messages()] == ([OTHER_TO, TO] if accept else [OTHER_TO])
    assert hung.status == (201 if accept else None)


def test_a_hang_ends_when_its_condition_holds(fake: FakeTwilio, client: Client) -> None:
    fake.hang_next("messages", 10.0, method="POST", to=TO,
                   until=lambda f: sum(m["To"] == OTHER_TO for m in f.messages()) >= 3)
    hung = threading.Thread(target=send, args=(client,))
    hung.start()
    assert fake.wait_for(lambda f: len(f.requests) == 1, timeout=2)
    for _ in range(3):
        send(client, to=OTHER_TO)
    hung.join(timeout=3)
    assert not hung.is_alive()
    assert [m["To"] for m in fake.messages()] == [OTHER_TO] * 3 + [TO]
    hung_request = fake.requests[0]
    assert all(r.answered_at <= hung_request.answered_at for r in fake.requests[1:])


def test_stop_ends_a_hang_without_carrying_it_out(fake: FakeTwilio, client: Client) -> None:
    fake.hang_next("messages", 10.0)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: outcome.append(pytest.raises(Exception, send, client).value))
    thread.start()
    assert fake.wait_for(lambda f: len(f.requests) == 1, timeout=2)
    fake.stop()
    thread.join(timeout=3)
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)
    assert fake.messages() == []


def test_reset_drops_a_hanging_request_without_carrying_it_out(fake: FakeTwilio, client: Client) -> None:
    fake.hang_next("messages", 10.0)
    thread = threading.Thread(target=lambda: pytest.raises(requests.exceptions.ConnectionError, send, client))
    thread.start()
    assert fake.wait_for(lambda f: len(f.requests) == 1, timeout=2)
    fake.reset()
    thread.join(timeout=3)
    assert not thread.is_alive() and fake.messages() == []


def test_stop_refuses_connections_and_start_reuses_the_port(fake: FakeTwilio, client: Client) -> None:
    port, base_url = fake.port, fake.base_url
    send(client)
    fake.stop()
    assert not fake.running
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base_url, timeout=2)

    fake.start()
    assert (fake.port, fake.base_url) == (port, base_url)
    send(client)
    assert len(fake.messages()) == 2


def test_stop_drops_a_delayed_request_promptly(fake: FakeTwilio, client: Client) -> None:
    fake.delay = 10.0
    outcome: list[BaseException] = []

    def sender() -> None:
        try:
            send(client)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    thread = threading.Thread(target=sender)
    thread.start()
    assert fake.wait_for(lambda f: len(f.requests) == 1, timeout=2)
    started = time.monotonic()
    fake.stop()
    thread.join(timeout=3)
    assert time.monotonic() - started < 2
    assert len(outcome) == 1 and isinstance(outcome[0], requests.exceptions.ConnectionError)
    assert fake.messages() == [] and fake.requests[0].status is None


def test_context_manager_stops_the_server() -> None:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        base_url = fake.base_url
        assert base_url.startswith("http://127.0.0.1:") and fake.port > 0
        assert requests.get(base_url, timeout=2).status_code == 401  # answered: auth comes first
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base_url, timeout=2)


def test_wait_for_count_and_predicate(fake: FakeTwilio, client: Client) -> None:
    def later() -> None:
        time.sleep(0.1)
        send(client)
        send(client)

    thread = threading.Thread(target=later)
    thread.start()
    assert fake.wait_for(2, timeout=3)
    thread.join()
    assert not fake.wait_for(3, timeout=0.1)
    assert fake.wait_for(lambda f: all(m["To"] == TO for m in f.messages()), timeout=0.1)
    assert not fake.wait_for(lambda f: len(f.calls()) > 0, timeout=0.1)


def test_make_client_points_at_the_fake(fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")  # would turn the URL into api.ie1.twilio.com
    send(fake.make_client())
    assert len(fake.messages()) == 1


# ---------------------------------------------------------------- OpenAPI contract


@pytest.mark.usefixtures("twilio_openapi_spec")
def test_what_the_twilio_lib_sends_conforms_to_the_spec(fake: FakeTwilio, client: Client) -> None:
    send(client)
    client.calls.create(
        to=TO, from_=FROM, twiml=TWIML, status_callback=CALLBACK, status_callback_event=["initiated", "completed"]
    )
    call_sid = fake.calls()[0]["sid"]
    client.calls(call_sid).update(status="completed")

    message_form, call_form, update_form = (r.form for r in fake.requests)
    assert validate_against_openapi("messages", message_form) == []
    assert validate_against_openapi("calls", call_form) == []
    assert validate_against_openapi("call_update", update_form) == []
    assert validate_against_openapi("messages", fake.messages()[0]) == []  # the helper's "sid" is ignored


@pytest.mark.usefixtures("twilio_openapi_spec")
def test_validator_reports_contract_violations() -> None:
    problems = validate_against_openapi("messages", {"To": TO, "From": FROM, "Bodyy": "typo"})
    assert any("unknown parameter Bodyy" in p for p in problems)
    assert any("Body, MediaUrl, ContentSid" in p for p in problems)

    assert validate_against_openapi("messages", {"Body": "x", "From": FROM}) == ["required parameter To is missing"]
    assert validate_against_openapi("messages", {"To": TO, "MessagingServiceSid": "MG123", "Body": "x"})

    call_problems = validate_against_openapi(
        "calls", {"To": TO, "From": FROM, "Url": "/relative", "Method": "PUT", "Timeout": "soon"}
    )
    assert len(call_problems) == 3
    assert any("Method='PUT' is not one of ['GET', 'POST']" in p for p in call_problems)
    assert any("Url='/relative'" in p for p in call_problems)
    assert any("Timeout='soon' is not an integer" in p for p in call_problems)

    with pytest.raises(ValueError):
        validate_against_openapi("faxes", {})


def test_missing_spec_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tests.fake_twilio as module

    monkeypatch.setattr(module, "DEFAULT_SPEC_PATH", tmp_path / "absent.json")
    monkeypatch.setenv("TWILIO_OAI_SPEC", str(tmp_path / "also-absent.json"))
    with pytest.raises(OpenAPISpecNotFound, match="TWILIO_OAI_SPEC"):
        validate_against_openapi("messages", {"To": TO})


# ---------------------------------------------------------------- standalone


def _read_line(stream: object, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output from the standalone fake"
    return stream.readline()  # type: ignore[attr-defined]


def test_standalone_prints_one_line_per_request() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_twilio", "--port", "0", "--account-sid", ACCOUNT_SID,
         "--auth-token", AUTH_TOKEN],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = _read_line(process.stderr, timeout=10)
        base_url = banner.split(" listening on ")[1].split()[0]
        reply = requests.post(
            f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            data={"To": TO, "From": FROM, "Body": "Hoi"},
            auth=(ACCOUNT_SID, AUTH_TOKEN),
            timeout=5,
        )
        assert reply.status_code == 201
        line = _read_line(process.stdout, timeout=5)
        assert f"POST /2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json 201" in line
        assert '"To": "+31612345678"' in line and line.count("\n") == 1
    finally:
        process.terminate()
        process.wait(timeout=5)
