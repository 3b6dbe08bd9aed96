"""Every call as data: one entry per question a caller can be asked, and per line said.

A step says what is asked (text keys in the catalogue, per language), which
keys do what, what silence and a wrong key do, and how keys are gathered.
``render.py`` turns any step into TwiML and ``machine.py`` runs the named
actions; adding a question is one entry here plus a parametrised test. The
menu callers reach on our number, the calls we place to tell a resident
something (``NOTIFICATION_STEPS``) and the lines a broker hears on a bridged
call (``LINES``) are all entries here; a new kind of call is new entries and
texts, not a new view. The digits are fixed by the contract
(printed on flyers): main menu 1 ask, 2 offer, 3 status, 0 broker, 9
language; categories 1-9 in the contract's order. After the status, 7
withdraws a request or offer and 8 has everything forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.vocabulary import CATEGORIES, OFFER_TIMINGS, REQUEST_TIMINGS, SATISFACTION_MARKS
from texts import LANGUAGES


@dataclass(frozen=True)
class Option:
    """One key in a menu: what is said for it and what pressing it does."""

    digit: str
    say: str | None  # text key; {digit} and {label} are filled in. None: the step's message names the key
    action: str = "goto"  # a name in machine.ACTIONS
    value: str | None = None  # the action's argument (for goto: the next step)
    label: str | None = None  # text key filling {label}
    language: str | None = None  # said in this language instead of the caller's (language menu)


@dataclass(frozen=True)
class Step:
    name: str
    # menu: one key picks an option; digits: a number is keyed in; record: a spoken message.
    kind: Literal["menu", "digits", "record"]
    # Said before the options. "{kind}" in the key picks the request/offer variant;
    # ``spoken`` names call-data values read digit by digit into it.
    intro: str | None = None
    # Said first instead of an intro: the message a call we place was made for
    # (its text key and values are kept on the call, see models.notify).
    message: bool = False
    spoken: tuple[str, ...] = ()
    # A call-data value holding words already in the caller's language (a listing read back)
    # that fill the intro's placeholders.
    read_back: str | None = None
    options: tuple[Option, ...] = ()
    num_digits: int | None = 1
    finish_on_key: str = ""  # menus: none, so that '#' is a key like any other
    # 0 asks for a broker, except where 0 is a digit of what is keyed in.
    zero_is_broker: bool = True
    on_digits: str | None = None  # digits steps: a name in machine.DIGIT_HANDLERS
    hints: tuple[str, ...] = ("voice.repeat_hint",)
    # (text key, digit) said once in every other language, in its own voice.
    foreign_hint: tuple[str, str] | None = None
    max_tries: int = 3
    # Said before the question again: after silence (None: nothing) and after a key that means nothing here.
    no_key: str | None = "voice.no_key"
    wrong_key: str = "voice.wrong_key"
    # A name in machine.ACTIONS for any key that is no option (None: a wrong key).
    other_keys: str | None = None
    # A name in machine.ACTIONS, run after ``max_tries`` silences or wrong keys.
    out_of_tries: str = "trouble"
    # A name in machine.ACTIONS run when nothing is pressed (None: ask again after ``no_key``).
    on_silence: str | None = None
    # Seconds to press a key after the prompt (None: the settings' gather_timeout).
    gather_timeout: int | None = None

    def option(self, digit: str) -> Option | None:
        for option in self.options:
            if option.digit == digit:
                return option
        return None


def _timing_options(codes: tuple[str, ...]) -> tuple[Option, ...]:
    return tuple(
        Option(str(number), f"voice.when.{code}", action="set_timing", value=code)
        for number, code in enumerate(codes, 1)
    )


# Another language: in the main menu, and alone at the number question (Dutch numbers start with 0).
LANGUAGE_DIGIT = "9"

# The main menu's keys: printed on flyers, fixed by the contract.
_MAIN_OPTIONS = (
    Option("1", "voice.main.ask", action="start_listing", value="request"),
    Option("2", "voice.main.offer", action="start_listing", value="offer"),
    Option("3", "voice.main.status", action="read_status"),
    Option("0", "voice.main.callback", action="broker"),
    Option(LANGUAGE_DIGIT, "voice.main.language", value="language_menu"),
)

_FORGET_OPTION = Option("8", "voice.forget.offer", action="ask_forget")

_STEPS = (
    # A resident in an accepted or confirmed match: put through to the other person unless they press 0.
    Step(
        "relay_announce", "menu", intro="voice.relay_announce",
        options=(Option("0", None, action="goto", value="main_menu"),),
        hints=(), on_silence="relay_dial", other_keys="relay_dial", gather_timeout=3,
    ),
    # A lone 9 is no phone number (Dutch ones start with 0): it opens the language menu, then this asks again.
    Step(
        "phone_entry", "digits", intro="voice.phone_entry", num_digits=None, finish_on_key="#",
        zero_is_broker=False, on_digits="phone", hints=(),
        foreign_hint=("voice.language_choice", LANGUAGE_DIGIT),
    ),
    Step(
        "phone_confirm", "menu", intro="voice.phone_read", spoken=("number",),
        options=(
            Option("1", "voice.confirm.yes", action="confirm_phone"),
            Option("2", "voice.confirm.again", value="phone_entry"),
        ),
    ),
    Step("main_menu", "menu", options=_MAIN_OPTIONS, foreign_hint=("voice.language_choice", LANGUAGE_DIGIT)),
    # After option 3 has read out what is open: the same menu, and 8 to have everything forgotten;
    # with something open (status_menu_open), also 7 to withdraw it.
    Step(
        "status_menu", "menu",
        options=(*_MAIN_OPTIONS[:3], _FORGET_OPTION, *_MAIN_OPTIONS[3:]),
        foreign_hint=("voice.language_choice", LANGUAGE_DIGIT),
    ),
    Step(
        "status_menu_open", "menu",
        options=(*_MAIN_OPTIONS[:3], Option("7", "voice.withdraw.offer", action="ask_withdraw"), _FORGET_OPTION,
                 *_MAIN_OPTIONS[3:]),
        foreign_hint=("voice.language_choice", LANGUAGE_DIGIT),
    ),
    # One open listing read back at a time (oldest first, as INTREKKEN numbers them): 1 withdraws it,
    # 2 the next one; at the last (or only) one, 2 goes back to the menu.
    Step(
        "withdraw_choice", "menu", intro="voice.withdraw.read", read_back="reading",
        options=(
            Option("1", "voice.withdraw.this", action="withdraw"),
            Option("2", "voice.withdraw.next", action="withdraw_next"),
        ),
    ),
    Step(
        "withdraw_last", "menu", intro="voice.withdraw.read", read_back="reading",
        options=(
            Option("1", "voice.withdraw.this", action="withdraw"),
            Option("2", "voice.withdraw.back", value="main_menu"),
        ),
    ),
    Step(
        "forget_confirm", "menu", intro="voice.forget.confirm",
        options=(
            Option("1", "voice.forget.yes", action="forget"),
            Option("2", "voice.forget.no", value="main_menu"),
        ),
    ),
    Step(
        "language_menu", "menu",
        options=tuple(
            Option(str(number), "voice.language_choice", action="set_language", value=code, language=code)
            for number, code in enumerate(LANGUAGES, 1)
        ),
        # Every line here is in its own language: a repeat hint in one of them would speak to a
        # quarter of the callers. Silence or a wrong key repeats the menu anyway, and * still does.
        hints=(),
    ),
    Step(
        "category", "menu", intro="voice.category_{kind}",
        options=tuple(
            Option(str(number), "voice.option", action="set_category", value=code, label=f"voice.category.{code}")
            for number, code in enumerate(CATEGORIES, 1)
        ),
    ),
    Step(
        "postcode_known", "menu", intro="voice.postcode_known", spoken=("postcode",),
        options=(
            Option("1", "voice.confirm.yes", action="keep_postcode"),
            Option("2", "voice.confirm.other_postcode", value="postcode_entry"),
        ),
    ),
    Step(
        "postcode_entry", "digits", intro="voice.postcode_entry", num_digits=4, finish_on_key="#",
        zero_is_broker=False, on_digits="postcode", hints=(),
    ),
    Step(
        "postcode_confirm", "menu", intro="voice.postcode_read", spoken=("postcode",),
        options=(
            Option("1", "voice.confirm.yes", action="keep_postcode"),
            Option("2", "voice.confirm.again", value="postcode_entry"),
        ),
    ),
    Step("when_request", "menu", intro="voice.when_request", options=_timing_options(REQUEST_TIMINGS)),
    Step("when_offer", "menu", intro="voice.when_offer", options=_timing_options(OFFER_TIMINGS)),
    Step("record", "record", intro="voice.record_{kind}", zero_is_broker=False, hints=()),
)


def _notification(name: str, *options: Option, other_keys: str | None = None) -> Step:
    """A call we place: its message, then the keys it asks for. No broker on 0, no callback at the end:
    a resident who does not answer is asked again in another way (models.notify)."""
    return Step(
        name, "menu", message=True, options=options, finish_on_key="#", zero_is_broker=False,
        hints=("match.call.repeat_hint",), no_key=None, wrong_key="match.call.not_understood",
        other_keys=other_keys, out_of_tries="hang_up",
    )


# The calls Buurtlijn places to tell a resident something (models.notify.queue_call), one step
# per kind of answer expected. The option's value is the answer's word (models.notify.MATCH_ANSWERS).
_NOTIFICATION_STEPS = (
    _notification("notify_message", other_keys="heard"),  # nothing to answer: any key ends it politely
    _notification(
        "notify_proposal",
        Option("1", None, action="answer_match", value="JA"),
        Option("2", None, action="answer_match", value="NEE"),
    ),
    _notification(
        "notify_feedback",
        Option("1", None, action="answer_match", value="KLAAR"),
        Option("2", None, action="answer_match", value="NIET GELUKT"),
    ),
    # How it went: a mark from 1 to 5 (models.satisfaction).
    _notification("notify_satisfaction", *(Option(str(mark), None, action="answer_mark", value=str(mark))
                                           for mark in SATISFACTION_MARKS)),
    # Is a listing still current? 1 = ja (it stays open), 2 = nee (it expires): models.listing_life.
    _notification(
        "notify_checkin",
        Option("1", None, action="answer_checkin", value="JA"),
        Option("2", None, action="answer_checkin", value="NEE"),
    ),
)
# What a notification call expects (``expects`` of models.notify.queue_call) -> its step.
NOTIFICATION_STEPS: dict[str | None, str] = {
    None: "notify_message", "proposal": "notify_proposal", "feedback": "notify_feedback",
    "satisfaction": "notify_satisfaction", "checkin": "notify_checkin",
}

STEPS: dict[str, Step] = {step.name: step for step in (*_STEPS, *_NOTIFICATION_STEPS)}
# Not a question: the answer to a <Dial> to a match partner comes back here.
RELAY_STEP = "relay"


@dataclass(frozen=True)
class Line:
    """A line of a call that asks nothing: it is said, then the call dials a number or ends."""

    name: str
    say: str  # text key
    then: Literal["dial", "hang_up"] = "hang_up"
    dial_timeout: int | None = None  # seconds the dialled number rings; None: the settings' dial_timeout


# The broker bridge (gateway/webhooks_bridge.py): said to the broker who calls a resident back,
# in the broker's language.
LINES: dict[str, Line] = {
    line.name: line
    for line in (
        Line("bridge_connecting", "bridge.connecting", then="dial", dial_timeout=30),
        Line("bridge_not_answered", "bridge.not_answered"),
        Line("bridge_unknown", "bridge.unknown"),
        Line("bridge_refused", "bridge.refused"),
    )
}
