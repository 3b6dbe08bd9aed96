"""Our TwiML against what Twilio accepts, and the menu data against the catalogues.

The allowlist below comes from Twilio's TwiML reference (twilio.com/docs/voice/twiml:
<Say>, <Gather>, <Record>, <Redirect>, <Hangup>, <Pause>, <Dial>, <Number>) and
Amazon Polly's SSML reference for <prosody> (rate n% between 20% and 200%).
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from werkzeug.exceptions import HTTPException

import texts
from gateway.database import get_database
from ivr_flows import RELAY_STEP, STEPS, Settings, Turn, render, settings_from_config
from ivr_flows.render import prompt
from models import Match
from models.base import utcnow
from models.marketplace import record_listing
from models.phones import parse_phone
from models.residents import resident_for
from tests.call_simulator import SimulatedCall, flask_poster

SSML = {"prosody": {"rate", "volume", "pitch"}, "break": {"strength", "time"}, "emphasis": {"level"},
        "lang": {"xml:lang"}, "p": set(), "s": set(), "say-as": {"interpret-as", "format"}, "sub": {"alias"},
        "w": {"role"}, "phoneme": {"alphabet", "ph"}}
ATTRIBUTES: dict[str, set[str]] = {
    "Response": set(),
    "Say": {"voice", "language", "loop"},
    "Gather": {"action", "method", "timeout", "finishOnKey", "numDigits", "input", "actionOnEmptyResult", "language",
               "hints", "partialResultCallback", "partialResultCallbackMethod", "profanityFilter", "speechTimeout",
               "speechModel", "enhanced", "bargeIn", "maxSpeechTime", "debug"},
    "Record": {"action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim", "transcribe",
               "transcribeCallback", "recordingStatusCallback", "recordingStatusCallbackMethod",
               "recordingStatusCallbackEvent", "storageUrl", "storageUrlMethod"},
    "Redirect": {"method"},
    "Hangup": set(),
    "Pause": {"length"},
    "Dial": {"action", "method", "timeout", "callerId", "answerOnBridge", "hangupOnStar", "timeLimit", "record",
             "ringTone", "trim", "callReason", "sequential", "referUrl", "referMethod", "recordingStatusCallback",
             "recordingStatusCallbackMethod", "recordingStatusCallbackEvent", "recordingTrack", "events"},
    "Number": {"sendDigits", "url", "method", "statusCallback", "statusCallbackEvent", "statusCallbackMethod", "byoc",
               "machineDetection", "machineDetectionTimeout", "amdStatusCallback", "amdStatusCallbackMethod"},
}
CHILDREN: dict[str, set[str]] = {
    "Response": {"Say", "Gather", "Record", "Redirect", "Hangup", "Pause", "Dial", "Play", "Reject"},
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Number", "Client", "Conference", "Queue", "Sip", "Sim"},
    "Say": set(SSML),
}
# Twilio's language codes with the Polly voices that speak them (Text-to-Speech voice table).
POLLY_VOICES = {
    "nl-NL": {"Polly.Lotte", "Polly.Ruben", "Polly.Laura-Neural"},
    "en-GB": {"Polly.Amy", "Polly.Brian", "Polly.Emma", "Polly.Amy-Neural", "Polly.Brian-Neural", "Polly.Emma-Neural"},
    "en-US": {"Polly.Joanna", "Polly.Matthew", "Polly.Salli", "Polly.Kendra", "Polly.Kimberly", "Polly.Ivy",
              "Polly.Justin", "Polly.Joey"},
    "tr-TR": {"Polly.Filiz", "Polly.Burcu-Neural"},
    "arb": {"Polly.Zeina"},
}
KEYS = set("0123456789#*")
E164 = re.compile(r"\+[1-9]\d{6,14}")


# Far below what Twilio takes in an action URL, with room for the call's sealed state (about 300 characters).
URL_LIMIT = 1024
# What a call we place says before its keys (a step with ``message``), as models.notify keeps it on the call.
MESSAGES = {
    "notify_message": {"key": "match.accepted_requester", "params": {"category": "boodschappen"}},
    "notify_proposal": {"key": "match.proposal",
                        "params": {"district": "Schalkwijk", "category": "boodschappen", "when": "deze week"}},
    "notify_feedback": {"key": "match.feedback", "params": {"category": "boodschappen"}},
    "notify_satisfaction": {"key": "match.satisfaction", "params": {"category": "boodschappen"}},
    "notify_checkin": {"key": "listing_life.checkin_request", "params": {"category": "boodschappen"}},
}


def step_data(step: str, **data: str) -> dict[str, object]:
    """Call data to render ``step`` with: what was keyed in, and the message of a call we place."""
    return {**data, **MESSAGES.get(step, {})}


def validate(body: str, app) -> list[str]:  # type: ignore[no-untyped-def]
    """Everything in ``body`` Twilio would not accept; empty when all is well."""
    problems: list[str] = []
    root = ET.fromstring(body)
    if root.tag != "Response":
        return [f"root is <{root.tag}>"]
    adapter = app.url_map.bind("localhost")

    def url_ok(url: str | None, where: str) -> None:
        if not url:
            problems.append(f"{where}: no URL")
            return
        parts = urllib.parse.urlsplit(url)
        try:
            endpoint, _args = adapter.match(parts.path, method="POST")
        except HTTPException:
            problems.append(f"{where}: {url} matches no POST route")
            return
        if not endpoint.startswith(("twilio_voice.", "twilio_notify.", "twilio_bridge.")):
            problems.append(f"{where}: {url} is not a voice webhook")
        query = urllib.parse.parse_qs(parts.query)
        if endpoint == "twilio_voice.step":
            if query.get("s", [""])[0] not in {*STEPS, RELAY_STEP}:
                problems.append(f"{where}: unknown step in {url}")
            if not query.get("n", [""])[0].isdigit():
                problems.append(f"{where}: no answer number in {url}")
            if set(query) - {"s", "n", "c"}:
                problems.append(f"{where}: unexpected parameters in {url}")
        if len(url) > URL_LIMIT:
            problems.append(f"{where}: {len(url)} characters")

    def check(element: ET.Element, parent: str) -> None:
        tag = element.tag
        if parent == "Say":
            allowed_attributes = SSML.get(tag)
            if allowed_attributes is None:
                problems.append(f"<{tag}> inside <Say>")
                return
            if tag == "prosody":
                rate = element.get("rate", "100%")
                if not (rate in {"x-slow", "slow", "medium", "fast", "x-fast"}
                        or (rate.endswith("%") and 20 <= int(rate[:-1]) <= 200)):
                    problems.append(f"prosody rate {rate}")
        else:
            if tag not in CHILDREN.get(parent, set()):
                problems.append(f"<{tag}> not allowed in <{parent}>")
                return
            allowed_attributes = ATTRIBUTES.get(tag, set())
        for name in element.attrib:
            if name not in allowed_attributes:
                problems.append(f"<{tag}> has no attribute {name}")
        if element.get("method", "POST") not in ("GET", "POST"):
            problems.append(f"<{tag}> method {element.get('method')}")
        if tag == "Say":
            language, voice = element.get("language"), element.get("voice")
            if language not in POLLY_VOICES:
                problems.append(f"<Say> language {language!r}")
            elif voice not in POLLY_VOICES[language]:
                problems.append(f"<Say> voice {voice!r} does not speak {language}")
            if not "".join(element.itertext()).strip():
                problems.append("<Say> says nothing")
        if tag == "Gather":
            url_ok(element.get("action"), "<Gather action>")
            if element.get("input") not in ("dtmf", "speech", "dtmf speech"):
                problems.append(f"<Gather input={element.get('input')!r}>")
            if not element.get("timeout", "5").isdigit() or int(element.get("timeout", "5")) < 1:
                problems.append("<Gather timeout>")
            if element.get("numDigits") is not None and not (element.get("numDigits").isdigit()
                                                              and int(element.get("numDigits")) >= 1):
                problems.append("<Gather numDigits>")
            finish = element.get("finishOnKey", "#")
            if len(finish) > 1 or not set(finish) <= KEYS:
                problems.append(f"<Gather finishOnKey={finish!r}>")
            if element.get("actionOnEmptyResult", "false") not in ("true", "false"):
                problems.append("<Gather actionOnEmptyResult>")
        if tag == "Record":
            url_ok(element.get("action"), "<Record action>")
            if int(element.get("maxLength", "3600")) <= 1:
                problems.append("<Record maxLength>")
            if not set(element.get("finishOnKey", "")) <= KEYS:
                problems.append("<Record finishOnKey>")
            if element.get("playBeep", "true") not in ("true", "false"):
                problems.append("<Record playBeep>")
            if element.get("trim", "trim-silence") not in ("trim-silence", "do-not-trim"):
                problems.append("<Record trim>")
        if tag == "Redirect":
            url_ok((element.text or "").strip(), "<Redirect>")
        if tag == "Dial":
            if element.get("action"):
                url_ok(element.get("action"), "<Dial action>")
            if element.get("callerId") and not E164.fullmatch(element.get("callerId")):
                problems.append("<Dial callerId> is not E.164")
        if tag == "Number" and not E164.fullmatch((element.text or "").strip()):
            problems.append("<Number> is not E.164")
        for child in element:
            check(child, tag)

    for child in root:
        check(child, "Response")
    return problems


@pytest.fixture(scope="module")
def routes():  # type: ignore[no-untyped-def]
    """The app's URL map, for checks that need no database."""
    from gateway import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "routes", "DATABASE_URL": "sqlite://"})


def test_every_answer_of_scripted_calls_is_valid_twiml(phone, app, db):
    documents: list[str] = []
    for digit in "1234":  # the whole request in each language, each by another caller
        call = phone(f"+3161234567{digit}").press("9").press(digit).press("1").press("1").press("2034").press("1").press("1").record(3)
        documents += call.documents
    call = phone("+31612345671").press("2").press("9").press("2")  # a known postcode now; replace it
    call.press("2011").press("1").press("4").record_nothing()
    documents += call.documents
    call = phone("anonymous").press("12#").press("0612345678#").press("2").press("0612345678#").press("1").press("3")
    call.press("0")
    documents += call.documents
    call = phone().press("7").silence().press("8")  # trouble
    documents += call.documents
    call = phone().press("1").press("1").press("2034").press("1").press("1").record(5, end="hangup")
    documents += call.documents
    asker = resident_for(db, parse_phone("+31611111111"))
    helper = resident_for(db, parse_phone("+31622222222"))
    request = record_listing(db, asker, kind="request", channel="sms", category="company")
    offer = record_listing(db, helper, kind="offer", channel="sms", category="company")
    db.add(Match(request_id=request.id, offer_id=offer.id, status="accepted", created_at=utcnow(), updated_at=utcnow()))
    db.commit()
    call = phone("+31611111111").silence().dial_result("busy").press("3")
    documents += call.documents

    assert len(documents) > 40
    for body in documents:
        assert validate(body, app) == [], body


@pytest.mark.parametrize("language", texts.LANGUAGES)
@pytest.mark.parametrize("step", list(STEPS))
def test_every_step_renders_valid_twiml_in_every_language(routes, step, language):
    for kind in ("request", "offer"):
        data = step_data(step, kind=kind, postcode="2034", number="0612345678")
        body = render(Turn(said=[(language, "x")], ask=step), language=language, data=data, seq=7, settings=Settings())
        assert validate(body, routes) == [], body
        root = ET.fromstring(body)
        if STEPS[step].kind == "record":
            assert root.find("Record") is not None and root.find("Gather") is None
        else:
            gather = root.find("Gather")
            # The prompt sits inside the <Gather>: keys work while it is spoken.
            assert gather is not None and gather.findall("Say")
            # At least 8 seconds to press a key; only the announcement before a relay waits less (silence connects).
            timeout = "3" if step == "relay_announce" else "8"
            assert (gather.get("input"), gather.get("timeout"), gather.get("actionOnEmptyResult")) == (
                "dtmf", timeout, "true")
        assert root[-1].tag == "Redirect"  # what happens when Twilio falls through


def test_the_validator_finds_what_twilio_would_refuse(routes):
    bad = ('<Response><Gather input="keys" action="/nowhere" finishOnKey="ab"><Say language="nl" voice="Polly.Amy">'
           "hoi</Say></Gather><Say language=\"tr-TR\" voice=\"Polly.Filiz\"><blink>x</blink></Say>"
           "<Record action=\"/twilio/voice/step?s=record\" playBeep=\"yes\"/><Redirect>/twilio/voice/step</Redirect>"
           "<Play/><Whisper/></Response>")
    problems = " | ".join(validate(bad, routes))
    for expected in ("input='keys'", "/nowhere matches no POST route", "finishOnKey='ab'", "language 'nl'",
                     "<blink> inside <Say>", "no answer number", "<Record playBeep>", "unknown step",
                     "<Whisper> not allowed"):
        assert expected in problems


# --- the menu data -------------------------------------------------------------------------


@pytest.mark.parametrize("language", texts.LANGUAGES)
@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_is_fully_translated_and_repeats_each_key(step, language):
    definition = STEPS[step]
    keys: list[str] = []
    if definition.intro:
        keys += [definition.intro.format(kind=kind) for kind in ("request", "offer")]
    keys += [option.say for option in definition.options if option.language is None and option.say]
    keys += [option.label for option in definition.options if option.label]
    keys += list(definition.hints)
    for key in keys:
        assert texts.has(language, key), f"{language}: {key} missing"
    lines = prompt(definition, language, step_data(step, kind="request", postcode="2034", number="0612345678"))
    for option in definition.options:
        spoken = [text for _lang, text in lines if option.digit in text]
        assert spoken, f"{step}: key {option.digit} is never said"


@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_uses_keys_that_mean_one_thing(step):
    definition = STEPS[step]
    digits = [option.digit for option in definition.options]
    assert len(digits) == len(set(digits))
    assert set(digits) <= set("0123456789")  # '*' always repeats; '#' is never a choice
    if "0" in digits:
        zero = definition.option("0")
        # 0 reaches a person, wherever it is listed; before a relay, the menu (where 0 is a person again).
        assert zero.action == "broker" or (step == "relay_announce" and (zero.action, zero.value) == ("goto",
                                                                                                      "main_menu"))
    if definition.kind == "digits":
        assert not definition.zero_is_broker  # 0 is a digit while keying in a number
        assert definition.finish_on_key == "#"


def test_the_main_menu_has_the_contracts_digits():
    menu = STEPS["main_menu"]
    assert {o.digit: (o.action, o.value) for o in menu.options} == {
        "1": ("start_listing", "request"), "2": ("start_listing", "offer"), "3": ("read_status", None),
        "0": ("broker", None), "9": ("goto", "language_menu"),
    }
    assert [(o.digit, o.value) for o in STEPS["language_menu"].options] == [("1", "nl"), ("2", "en"), ("3", "tr"),
                                                                            ("4", "ar")]


def test_all_languages_have_the_same_voice_texts():
    def voice_keys(language: str) -> set[str]:
        return {key for key in texts.catalogue(language) if key.startswith("voice.")}

    dutch = voice_keys("nl")
    assert len(dutch) > 80
    for language in ("en", "tr", "ar"):
        assert voice_keys(language) == dutch, language
    for language in ("tr", "ar"):
        for table in ("category", "kind", "status"):
            assert {k for k in texts.catalogue(language) if k.startswith(table + ".")} == \
                   {k for k in texts.catalogue("nl") if k.startswith(table + ".")}


# --- voices and speed are configurable -------------------------------------------------------


def test_voices_and_speech_rate_come_from_the_configuration():
    settings = settings_from_config(
        {"BUURTLIJN_VOICE_NL": "Polly.Ruben", "BUURTLIJN_SPEECH_RATE": "100%"},
        environ={"BUURTLIJN_VOICE_EN": "en-US:Polly.Joanna"},
    )
    body = render(Turn(said=[("nl", "Hallo"), ("en", "Hello")]), language="nl", data={}, seq=1, settings=settings)
    says = ET.fromstring(body).findall("Say")
    assert [(s.get("language"), s.get("voice"), s.text) for s in says] == [
        ("nl-NL", "Polly.Ruben", "Hallo"), ("en-US", "Polly.Joanna", "Hello")]
    slow = render(Turn(said=[("tr", "Merhaba")]), language="tr", data={}, seq=1, settings=settings_from_config({}, {}))
    prosody = ET.fromstring(slow).find("Say/prosody")
    assert prosody is not None and prosody.get("rate") == "90%" and prosody.text == "Merhaba"


def test_the_app_speaks_with_the_configured_voice(database_url, fake_twilio):
    from gateway import create_app
    from tests.conftest import TwilioWebhooks, app_config

    app = create_app(app_config(database_url, fake_twilio, BUURTLIJN_VOICE_NL="nl-NL:Polly.Ruben"))
    call = SimulatedCall(flask_poster(TwilioWebhooks(app.test_client()))).start()
    assert call.heard[0].voice == "Polly.Ruben"
    assert validate(call.documents[0], app) == []
    get_database(app).dispose()


def test_text_with_xml_characters_is_escaped(routes):
    body = render(Turn(said=[("nl", "Jan & Piet <zeggen> \"hoi\"")]), language="nl", data={}, seq=1, settings=Settings())
    assert ET.fromstring(body).find("Say/prosody").text == "Jan & Piet <zeggen> \"hoi\""
    assert validate(body, routes) == []
