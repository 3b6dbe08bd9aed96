"""Random walks through the phone menu, with Twilio's retries at random points.

Twilio repeats a webhook it got no answer to. Each walk is a call of random
keys, silences, recordings and hang-ups, signed as Twilio signs them; after
some of its steps the same request is delivered again. What must hold:

- every repeat answers what the first delivery answered (the TwiML the same,
  but for the call's state sealed afresh into its URLs, ivr_flows/tokens.py);
- the call goes on as if nothing had been repeated: the same walk without
  repeats, from another new caller, hears the same;
- the call never loops: silence from wherever the walk stopped reaches the
  three-tries escape (a broker calls back) and the call ends.

On SQLite, and on PostgreSQL on the fast path and the ORM path
(``VOICE_FAST_PATH = False``, as tests/test_voice_differential.py).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests.call_simulator import SimulatedCall, flask_poster, without_state_token
from tests.conftest import TwilioWebhooks, _empty_postgres, app_config, running_app

set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "buurtlijn-hypothesis"))
# Bounded so the file runs in under a minute on all three: fixed examples, the same in CI every time.
WALKS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ESCAPE_WITHIN = 12  # silences: three tries at any question, then a broker calls back and the call ends

# A move: what the caller does at whatever the call waits for.
#   ("keys", k): at a question, the keys k; at the beep, a message ended with #; at a put-through, answered
#   ("quiet",):  at a question, silence; at the beep, nothing said; at a put-through, nobody answers
#   ("hang_up",)
KEYS = st.sampled_from(["1", "1", "1", "2", "2", "3", "0", "9", "4", "7", "*", "#", "2034", "2034", "1016", "12",
                        "OWN"])  # the keys that lead on, more often
PRESS = KEYS.map(lambda keys: ("keys", keys))
MOVE = st.one_of(PRESS, PRESS, PRESS, PRESS, st.just(("quiet",)), st.just(("quiet",)), st.just(("hang_up",)))
WALK = st.lists(st.tuples(MOVE, st.booleans()), min_size=2, max_size=14)  # (move, then Twilio repeats it)
NUMBERS = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql-fast", "postgresql-orm"])
def menu_app(request: pytest.FixtureRequest, tmp_path: Path, fake_twilio: Any) -> Iterator[Flask]:
    if request.param == "sqlite":
        target = tmp_path / "buurtlijn.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("postgres_url")
        _empty_postgres(url)
    with running_app(app_config(url, fake_twilio, VOICE_FAST_PATH=request.param != "postgresql-orm")) as app:
        yield app


def _new_number() -> str:
    return f"06{next(NUMBERS) + 40_000_000:08d}"  # a mobile number no earlier walk used


def _call(app: Flask, caller: str) -> SimulatedCall:
    return SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=caller).start()


def _move(call: SimulatedCall, move: tuple[str, ...], own_number: str) -> None:
    """The move, at whatever the call waits for."""
    if move[0] == "hang_up":
        call.hang_up()
    elif call.waiting_for == "Gather":
        call.press(own_number if move[1] == "OWN" else move[1]) if move[0] == "keys" else call.silence()
    elif call.waiting_for == "Record":
        call.record(4) if move[0] == "keys" else call.record_nothing()
    elif call.waiting_for == "Dial":
        call.dial_result("completed" if move[0] == "keys" else "no-answer")
    else:
        raise AssertionError(f"the call waits for {call.waiting_for}")


def _repeat(call: SimulatedCall) -> None:
    """Twilio delivers the last request again: answered exactly as the first time."""
    first = call.documents[-1] if call.requests[-1][0] != "/twilio/voice/status" else None
    status, body = call.replay_last()
    assert status == 200, body
    if first is not None:
        assert without_state_token(body) == without_state_token(first), (call.requests[-1][0], call.transcript)


def _walk(app: Flask, caller: str, walk: list[tuple[tuple[str, ...], bool]], *, repeats: bool,
          own_number: str) -> SimulatedCall:
    """``own_number``: what a withheld caller keys in as their number."""
    call = _call(app, caller)
    if repeats:
        _repeat(call)
    for move, repeated in walk:
        if call.ended:
            break
        _move(call, move, own_number)
        if repeats and repeated:
            _repeat(call)
    # From wherever it stopped, silence ends the call: three tries at a question, then a broker calls back.
    for quiet in range(ESCAPE_WITHIN):
        if call.ended:
            break
        _move(call, ("quiet",), own_number)
        if repeats and quiet % 2 == 0:
            _repeat(call)
    assert call.ended, f"still going after {ESCAPE_WITHIN} silences: {call.said!r}"
    return call


@WALKS
@given(walk=WALK)
def test_a_repeated_step_answers_the_same_and_the_call_goes_on(menu_app: Flask, walk: Any) -> None:
    keyed = _new_number()  # keys that only a withheld caller's question would keep
    clean = _walk(menu_app, _new_number(), walk, repeats=False, own_number=keyed)
    repeated = _walk(menu_app, _new_number(), walk, repeats=True, own_number=keyed)
    assert repeated.transcript == clean.transcript
    assert [without_state_token(d) for d in repeated.documents] == [without_state_token(d) for d in clean.documents]


@WALKS
@given(walk=WALK)
def test_a_withheld_caller_repeated_answers_the_same_and_ends(menu_app: Flask, walk: Any) -> None:
    _walk(menu_app, "anonymous", [(("keys", "OWN"), True), *walk], repeats=True, own_number=_new_number())
