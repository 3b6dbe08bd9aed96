"""Every call Buurtlijn places or bridges is steps of the one phone engine: the notification call of
each kind and the broker bridge's lines, in every language, with the configured voice."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

import texts
from gateway import create_app
from gateway.database import get_database
from ivr_flows import LINES, CallParams, Settings, render_line, settings_from_config
from ivr_flows.steps import NOTIFICATION_STEPS, STEPS
from models import Broker, Call, ListingCheckin, Match
from models.base import utcnow
from models.limits import MalformedRequest
from models.marketplace import record_listing
from models.notify import EXPECTS, MATCH_ANSWERS, queue_call, spoken_message
from models.phones import parse_phone
from models.residents import resident_for
from tests.conftest import GATEWAY_NUMBER, PUBLIC_BASE, TwilioWebhooks, app_config, parse_twiml
from tests.delivery_support import LANDLINE_HELPER, REQUESTER, add_listing, gather_of, placed_call, say_text
from tests.test_voice_twiml import validate

# One message of each kind of notification call: what it expects -> (text key, values).
KINDS: dict[str | None, tuple[str, dict[str, str]]] = {
    None: ("match.accepted_requester", {"category": "boodschappen"}),
    "proposal": ("match.proposal", {"district": "Schalkwijk", "category": "boodschappen", "when": "deze week"}),
    "feedback": ("match.feedback", {"category": "boodschappen"}),
    "satisfaction": ("match.satisfaction", {"category": "boodschappen"}),
    "checkin": ("listing_life.checkin_request", {"category": "boodschappen"}),
}


def _queued_call(  # type: ignore[no-untyped-def]
    app, language: str, expects: str | None, match_id: int | None = None,
) -> None:
    key, params = KINDS[expects]
    with app.app_context(), get_database(app).transaction() as tx:  # the job places it in-process
        resident = resident_for(tx, parse_phone(LANDLINE_HELPER), language=language)
        resident.language = language
        resident.prefers_voice = True
        listing_id = None
        if expects == "checkin":  # the question waits for this resident's listing (models.listing_life)
            tx.flush()
            listing = record_listing(tx, resident, kind="request", channel="voice", category="groceries",
                                     queue_for_broker=False)
            tx.add(ListingCheckin(listing_id=listing.id, resident_id=resident.id, channel="voice",
                                  asked_at=utcnow()))
            listing_id = listing.id
        queue_call(tx, resident, key, params, purpose="test", dedupe_key=f"test:{language}:{expects}",
                   expects=expects, match_id=match_id, listing_id=listing_id)


def _message(language: str, expects: str | None) -> str:
    key, params = KINDS[expects]
    return f"{spoken_message(language, {'key': key, 'params': params})} {texts.t(language, 'match.call.repeat_hint')}"


def test_every_kind_of_notification_call_has_its_steps():
    assert set(NOTIFICATION_STEPS) == {None, *EXPECTS} == set(KINDS)
    for step in NOTIFICATION_STEPS.values():
        assert STEPS[step].message and not STEPS[step].zero_is_broker


@pytest.mark.parametrize("expects", list(KINDS))
@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_notification_call_speaks_and_repeats_in_the_residents_language(
    notify_app, webhooks, fake_twilio, session, language, expects  # noqa: F811
):
    _queued_call(notify_app, language, expects)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    voice = Settings().voice(language)
    message = _message(language, expects)

    answered = call.answer()
    assert validate(ET.tostring(answered, encoding="unicode"), notify_app) == []
    gather = gather_of(answered)
    assert gather.get("action") == f"/twilio/notify/{call.call_id}/key"
    [say] = gather.findall("./Say")
    assert (say.get("language"), say.get("voice")) == (voice.language, voice.voice)
    assert say_text(say) == message

    # Silence: the message again, with nothing before it; '*' repeats without counting a try.
    assert say_text(gather_of(call.press(""))) == message
    assert say_text(gather_of(call.press("*"))) == message
    session.expire_all()
    assert session.get(Call, call.call_id).tries == 1

    if expects is None:  # nothing to answer: any key ends it politely
        bye = call.press("7")
        assert bye.find("./Gather") is None and bye.find("./Hangup") is not None
        assert say_text(bye.find("./Say")) == texts.t(language, "match.call.goodbye")
        session.expire_all()
        assert session.get(Call, call.call_id).data["answer"] == "heard"
        return
    # A wrong key: "not understood", then the message again.
    wrong = call.press("7")
    assert validate(ET.tostring(wrong, encoding="unicode"), notify_app) == []
    assert say_text(gather_of(wrong)) == f"{texts.t(language, 'match.call.not_understood')} {message}"
    # 0 is no broker here: a wrong key too, and the third miss says goodbye without an answer.
    bye = call.press("0")
    assert validate(ET.tostring(bye, encoding="unicode"), notify_app) == []
    assert bye.find("./Gather") is None and bye.find("./Hangup") is not None
    assert say_text(bye.find("./Say")) == texts.t(language, "match.call.goodbye")
    session.expire_all()
    row = session.get(Call, call.call_id)
    assert row.tries == 3 and "answer" not in row.data


# Each key of a call that asks: the match's state before, what the key says, the state after.
KEYS = [
    ("proposal", "1", "proposed", "JA", "accepted"),
    ("proposal", "2", "proposed", "NEE", "declined"),
    ("feedback", "1", "confirmed", "KLAAR", "done"),
    ("feedback", "2", "confirmed", "NIET GELUKT", "confirmed"),
]


@pytest.mark.parametrize(("expects", "digit", "before", "word", "after"), KEYS)
@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_a_key_answers_the_match_once_in_the_residents_language(
    notify_app, webhooks, fake_twilio, session, language, expects, digit, before, word, after  # noqa: F811
):
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, LANDLINE_HELPER, "offer", language=language, prefers_voice=True)
    with get_database(notify_app).transaction() as tx:
        match = Match(request_id=request_id, offer_id=offer_id, status=before, created_at=utcnow(),
                      updated_at=utcnow())
        tx.add(match)
        tx.flush()
        match_id = match.id
    _queued_call(notify_app, language, expects, match_id)
    call = placed_call(fake_twilio, session, webhooks, LANDLINE_HELPER)
    gather_of(call.answer())

    bye = call.press(digit)
    said = texts.t(language, MATCH_ANSWERS[word].said)
    assert say_text(bye.find("./Say")) == said and bye.find("./Hangup") is not None
    assert say_text(call.press(digit).find("./Say")) == said  # Twilio repeats the step: the answer counts once
    session.expire_all()
    row = session.get(Match, match_id)
    assert row.status == after and session.get(Call, call.call_id).data["answer"] == word
    if word == "NIET GELUKT":
        assert row.problem_reported_at is not None


def test_each_answer_word_is_one_match_action_in_both_channels():
    # A mark (1 to 5) is no match action: models.satisfaction keeps it (tests/test_satisfaction.py).
    # Nor is "still current?": models.listing_life keeps it (tests/test_listing_life.py).
    assert {answer.answers for answer in MATCH_ANSWERS.values()} == set(EXPECTS) - {"satisfaction", "checkin"}
    for name in ("notify_proposal", "notify_feedback"):
        step = STEPS[name]
        words = [option.value for option in step.options]
        assert words and all(MATCH_ANSWERS[word].answers == step.name.removeprefix("notify_") for word in words)
    for answer in MATCH_ANSWERS.values():
        for language in texts.LANGUAGES:
            assert texts.has(language, answer.texted) or texts.has("nl", answer.texted)
            assert texts.has(language, answer.said) or texts.has("nl", answer.said)


# --- the broker bridge ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LINES))
@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_line_is_said_with_the_configured_voice(name, language):
    settings = settings_from_config({"BUURTLIJN_VOICE_NL": "Polly.Ruben", "TWILIO_PHONE_NUMBER": GATEWAY_NUMBER}, {})
    dial = LINES[name].then == "dial"
    root = parse_twiml(render_line(name, language=language, settings=settings,
                                   number="+31612345678" if dial else None, action="/next" if dial else None))
    say = root[0]
    voice = settings.voice(language)
    assert say.tag == "Say" and (say.get("language"), say.get("voice")) == (voice.language, voice.voice)
    assert say_text(say) == texts.t(language, LINES[name].say)
    assert root[1].tag == ("Dial" if dial else "Hangup")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_broker_hears_the_bridge_in_their_language_and_voice(database_url, fake_twilio, language):
    app = create_app(app_config(database_url, fake_twilio, PUBLIC_BASE_URL=PUBLIC_BASE,
                                BUURTLIJN_VOICE_NL="Polly.Ruben"))
    try:
        with get_database(app).transaction() as tx:
            resident = resident_for(tx, parse_phone("+31612345678"))
            broker = Broker(email=f"{language}@buuv.example", name="Mila", role="broker", language=language,
                            phone="+31612340000", password_hash="x")
            tx.add(broker)
            tx.flush()
            call = Call(call_sid="pending-bridge", direction="outbound", purpose="broker_bridge",
                        resident_id=resident.id, broker_id=broker.id, language=language, step_seq=0, tries=0,
                        data={}, status="dialling")
            tx.add(call)
            tx.flush()
            call_id = call.id
        twilio = TwilioWebhooks(app.test_client(), base=PUBLIC_BASE)
        params = {"CallSid": "CA" + "b" * 32, "From": GATEWAY_NUMBER, "To": "+31612340000",
                  "CallStatus": "in-progress"}
        voice = settings_from_config(app.config).voice(language)

        connected = twilio.post(f"/twilio/bridge/{call_id}/connect", params).data
        assert validate(connected.decode(), app) == []
        say, dial = list(parse_twiml(connected))
        assert (say.get("language"), say.get("voice")) == (voice.language, voice.voice)
        assert say_text(say) == texts.t(language, "bridge.connecting")
        assert dial.get("timeout") == "30" and dial.get("callerId") == GATEWAY_NUMBER

        response = twilio.post(f"/twilio/bridge/{call_id}/dialled", {**params, "DialCallStatus": "busy"})
        say, hangup = list(parse_twiml(response.data))
        assert (say.get("language"), say.get("voice"), hangup.tag) == (voice.language, voice.voice, "Hangup")
        assert say_text(say) == texts.t(language, "bridge.not_answered")
        with get_database(app).transaction() as tx:
            assert tx.scalars(select(Call.call_sid).where(Call.id == call_id)).one() == params["CallSid"]
    finally:
        get_database(app).dispose()


# --- one reading of Twilio's parameters ------------------------------------------------------------


CALL_SID, RECORDING_SID = "CA" + "1" * 32, "RE" + "1" * 32


def test_twilios_parameters_are_read_once_into_typed_values():
    params = CallParams.read({
        "CallSid": CALL_SID, "From": "+31612345678", "To": GATEWAY_NUMBER, "CallStatus": "No-Answer",
        "Digits": "1", "RecordingSid": RECORDING_SID, "RecordingUrl": f"https://api.twilio.com/r/{RECORDING_SID}",
        "RecordingDuration": "12", "DialCallStatus": "Completed", "AnsweredBy": "human", "ErrorCode": "13224",
    })
    assert (params.call_sid, params.from_, params.to, params.call_status, params.answered_by, params.error_code) == (
        CALL_SID, "+31612345678", GATEWAY_NUMBER, "no-answer", "human", 13224)
    answer = params.answer
    assert (answer.digits, answer.recording_duration, answer.dial_status, answer.has_recording) == (
        "1", 12, "completed", True)
    empty = CallParams.read({"CallSid": CALL_SID, "RecordingDuration": "soon", "ErrorCode": "-1"})
    assert (empty.call_status, empty.error_code) == ("", None)
    with pytest.raises(MalformedRequest):  # Twilio sends every voice webhook its CallSid
        CallParams.read({"RecordingDuration": "soon", "ErrorCode": "-1"})
    assert empty.answer.recording_duration is None
    assert empty.answer.digits is None  # no Digits at all: Twilio fell through to the Redirect
