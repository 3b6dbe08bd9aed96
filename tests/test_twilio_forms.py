"""Twilio's form posts: read by the gateway's lean parser exactly as the standard library reads them,
and signed exactly as Twilio's own library computes it."""

from __future__ import annotations

import urllib.parse

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from gateway.security import form_pairs, twilio_signature_of
from tests.conftest import AUTH_TOKEN

BODIES = [
    "Body=VRAAG+boodschappen+2034&From=%2B31612345678&To=%2B3197010520000",
    "Body=Help%2C+ik+ben+gevallen+%F0%9F%98%9F&MessageSid=SM1",  # emoji
    "Body=geinteresseerd+in+Belgi%C3%AB&NumMedia=0",  # UTF-8 accents
    "Body=%FF%FE+broken&From=x",  # not UTF-8: replaced, not an error
    "Body=&From=&To=%2B31",  # empty values
    "Digits&CallSid=CA1",  # a name without '='
    "a=1&&b=2&",  # empty items
    "a=1&a=2&a=1",  # a name twice, a value twice
    "Body=a%3Db%26c%3Dd&x=y=z",  # escaped and plain '=' and '&' in values
    "na+me=va+lue&%41=%42",  # escapes in names
    "",
]


@pytest.mark.parametrize("body", BODIES)
def test_the_lean_form_reader_reads_what_the_standard_library_reads(body):
    assert form_pairs(body) == urllib.parse.parse_qsl(body, keep_blank_values=True, errors="replace")


@pytest.mark.parametrize("body", [b for b in BODIES if b])
def test_the_signature_is_twilios_own(body):
    url = "https://buurtlijn.example/twilio/voice/step?s=category&n=2&c=abc_-1"
    pairs = urllib.parse.parse_qsl(body, keep_blank_values=True, errors="replace")
    expected = RequestValidator(AUTH_TOKEN).compute_signature(url, MultiDict(pairs))
    assert twilio_signature_of(AUTH_TOKEN, url, MultiDict(pairs).items(multi=True)) == expected


def test_a_webhook_sees_the_message_as_twilio_sent_it(twilio, db):
    from sqlalchemy import select

    from models import Message

    body = "Help, ik ben gevallen 😟 & kan niet op 1+1=2"
    response = twilio.sms("+31612345678", body)
    assert response.status_code == 200
    stored = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert stored.body == body
