"""The call's state sealed into its step URLs (ivr_flows/tokens.py).

A token only ever saves a read: it opens for its own call and its own key
alone, holds nothing readable, and a step with a token that is missing,
altered, stale or from another key is answered from the database exactly
as a step without one.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

import pytest
from sqlalchemy import select

from gateway import create_app
from gateway.database import get_database
from ivr_flows.tokens import MAX_TOKEN_CHARS, CallTokens
from models import Call, Listing, Resident
from tests.call_simulator import SimulatedCall, flask_poster
from tests.conftest import TwilioWebhooks, app_config

CALL_SID = "CA" + "5" * 32
CALLER = "+31612345678"


# --- the token itself ------------------------------------------------------------------------------


def test_a_token_opens_for_its_own_call_with_its_own_key():
    tokens = CallTokens("a secret")
    values = [7, "category", 2, 0, "nl", {"kind": "request", "postcode": "2034"}, None]
    token = tokens.seal(CALL_SID, values)
    assert tokens.open(CALL_SID, token) == values
    assert CallTokens("a secret").open(CALL_SID, token) == values  # another process, the same key
    assert tokens.open("CA" + "6" * 32, token) is None  # another call
    assert CallTokens("another secret").open(CALL_SID, token) is None  # the key changed
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # safe in a URL and in XML as it is


def test_a_token_says_nothing_readable_and_differs_every_time():
    tokens = CallTokens("a secret")
    values = [{"postcode": "2034", "phone": "+31612345678"}]
    first, second = tokens.seal(CALL_SID, values), tokens.seal(CALL_SID, values)
    assert first != second  # a fresh nonce each time: equal states do not show as equal tokens
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert b"2034" not in raw and b"3161234" not in raw and b"postcode" not in raw


@pytest.mark.parametrize("token", [None, "", "not-a-token", "A" * 5, "!!!", "A" * (MAX_TOKEN_CHARS + 1)])
def test_anything_else_opens_to_nothing(token):
    assert CallTokens("a secret").open(CALL_SID, token) is None


def test_an_altered_token_opens_to_nothing():
    tokens = CallTokens("a secret")
    token = tokens.seal(CALL_SID, [1, 2, 3])
    for position in (0, len(token) // 2, len(token) - 2):
        flipped = "B" if token[position] != "B" else "C"
        assert tokens.open(CALL_SID, token[:position] + flipped + token[position + 1:]) is None


# --- in the phone menu (PostgreSQL: only the fast path reads tokens) ----------------------------------


def _phone(app, from_: str = CALLER) -> SimulatedCall:  # type: ignore[no-untyped-def]
    return SimulatedCall(flask_poster(TwilioWebhooks(app.test_client())), from_=from_)


def _action_urls(call: SimulatedCall) -> list[str]:
    return [urllib.parse.unquote(url) for document in call.documents
            for url in re.findall(r'action="([^"]*)"', document)]


def test_the_step_urls_carry_a_token_that_holds_nothing_twilio_could_read(pg_app):
    call = _phone(pg_app).start().press("1").press("1").press("2034").press("1")
    urls = _action_urls(call)
    assert urls and all("&amp;c=" in url for url in urls), urls
    assert not any("2034" in url or "groceries" in url or "612345678" in url for url in urls), urls


def test_a_withheld_callers_number_never_shows_in_a_url(pg_app):
    call = _phone(pg_app, "anonymous").start().press("0612345678#").press("1").press("1").press("1")
    assert "s=postcode_entry" in call.gather.get("action")  # past the number, into the menu
    assert not any("612345678" in url for url in _action_urls(call))


def _with_token(path: str, token: str) -> str:
    return re.sub(r"&c=[A-Za-z0-9_-]+", f"&c={token}", path)


@pytest.mark.parametrize("spoil", ["altered", "dropped", "another call's"])
def test_a_step_whose_token_does_not_open_is_answered_from_the_database(pg_app, spoil):
    other = _phone(pg_app, "+31687654321").start().press("2")  # an offer, at the category question
    call = _phone(pg_app).start().press("1")  # a request, at the category question
    action = call.gather.get("action")
    token = re.search(r"&c=([A-Za-z0-9_-]+)", action).group(1)  # type: ignore[union-attr]
    spoiled = {
        "altered": _with_token(action, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")),
        "dropped": re.sub(r"&c=[A-Za-z0-9_-]+", "", action),
        "another call's": _with_token(action, re.search(r"&c=([A-Za-z0-9_-]+)",  # type: ignore[union-attr]
                                                        other.gather.get("action")).group(1)),
    }[spoil]
    status, _type, body = call.post(spoiled, call.params(Digits="1"))  # groceries
    assert status == 200 and "s=postcode_entry" in body
    session = get_database(pg_app).session()
    stored = session.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()
    assert (stored.step, stored.data["kind"], stored.data["category"]) == ("postcode_entry", "request", "groceries")
    untouched = session.scalars(select(Call).where(Call.call_sid == other.call_sid)).one()
    assert (untouched.step, untouched.data["kind"]) == ("category", "offer")
    session.close()


def test_a_call_goes_on_when_the_key_changes_halfway(pg_database_url, fake_twilio):
    """A deploy with a new SECRET_KEY while people are on the line: their next step reads the row."""
    first = create_app(app_config(pg_database_url, fake_twilio, SECRET_KEY="the old key"))
    call = _phone(first).start().press("1").press("1")
    second = create_app(app_config(pg_database_url, fake_twilio, SECRET_KEY="the new key"))
    call.post = flask_poster(TwilioWebhooks(second.test_client()))
    call.press("2034").press("1").press("1").record(5)
    session = get_database(second).session()
    [listing] = session.scalars(select(Listing)).all()
    assert (listing.category, listing.postcode, listing.timing, listing.recording_duration) \
        == ("groceries", "2034", "asap", 5)
    assert session.scalars(select(Resident)).one().postcode == "2034"
    session.close()
    for app in (first, second):
        get_database(app).dispose()


def test_without_a_key_every_step_reads_the_row_and_the_call_works_the_same(pg_database_url, fake_twilio):
    app = create_app(app_config(pg_database_url, fake_twilio, SECRET_KEY=None))
    call = _phone(app).start().press("1").press("1").press("2034").press("1").press("1").record(5)
    assert call.ended and not any("c=" in url for url in _action_urls(call))
    session = get_database(app).session()
    [listing] = session.scalars(select(Listing)).all()
    assert (listing.category, listing.postcode, listing.recording_duration) == ("groceries", "2034", 5)
    session.close()
    get_database(app).dispose()
