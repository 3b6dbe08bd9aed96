"""The phone menu as data: one entry per question a caller can be asked.

A step says what is asked (text keys in the catalogue, per language), which
keys do what, and how keys are gathered. ``render.py`` turns any step into
TwiML and ``machine.py`` runs the named actions; adding a question is one
entry here plus a parametrised test. The digits are fixed by the contract
(printed on flyers): main menu 1 ask, 2 offer, 3 status, 0 broker, 9
language; categories 1-9 in the contract's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.vocabulary import CATEGORIES, OFFER_TIMINGS, REQUEST_TIMINGS
from texts import LANGUAGES


@dataclass(frozen=True)
class Option:
    """One key in a menu: what is said for it and what pressing it does."""

    digit: str
    say: str  # text key; {digit} and {label} are filled in
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
    spoken: tuple[str, ...] = ()
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


_STEPS = (
    Step(
        "phone_entry", "digits", intro="voice.phone_entry", num_digits=None, finish_on_key="#",
        zero_is_broker=False, on_digits="phone", hints=(),
    ),
    Step(
        "phone_confirm", "menu", intro="voice.phone_read", spoken=("number",),
        options=(
            Option("1", "voice.confirm.yes", action="confirm_phone"),
            Option("2", "voice.confirm.again", value="phone_entry"),
        ),
    ),
    Step(
        "main_menu", "menu",
        options=(
            Option("1", "voice.main.ask", action="start_listing", value="request"),
            Option("2", "voice.main.offer", action="start_listing", value="offer"),
            Option("3", "voice.main.status", action="read_status"),
            Option("0", "voice.main.callback", action="broker"),
            Option("9", "voice.main.language", value="language_menu"),
        ),
        foreign_hint=("voice.language_choice", "9"),
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

STEPS: dict[str, Step] = {step.name: step for step in _STEPS}
# Not a question: the answer to a <Dial> to a match partner comes back here.
RELAY_STEP = "relay"
