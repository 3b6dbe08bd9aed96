"""One renderer for every step: a Turn in, TwiML out.

Plain string building (no template engine, no DOM): this runs on every
webhook. Prompts sit inside the <Gather>, so keys work while they are being
spoken; every <Say> carries the language and a voice that speaks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from typing import Any

import texts
from models.notify import spoken_message

from .settings import Settings
from .speech import spoken_digits
from .steps import LINES, RELAY_STEP, STEPS, Step

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
Spoken = tuple[str, str]  # (language, text)


@dataclass
class Turn:
    """What the caller hears next: ``said`` first, then the step asked, a dial, or goodbye."""

    said: list[Spoken] = field(default_factory=list)
    ask: str | None = None
    dial: str | None = None
    dial_timeout: int | None = None  # seconds the dialled number rings; None: the settings' dial_timeout

    @property
    def ends_call(self) -> bool:
        return self.ask is None and self.dial is None


def step_url(settings: Settings, step: str, seq: int, token: str | None = None) -> str:
    """Where Twilio posts the answer to ``step``; ``seq`` tells a repeat from a new answer.

    ``token``: the call's state, sealed (tokens.py), so the answer needs no read.
    """
    url = f"{settings.step_path}?s={step}&n={seq}"
    return f"{url}&c={token}" if token else url


def say(language: str, key: str, **params: Any) -> Spoken:
    return (language, texts.t(language, key, **params))


def prompt(step: Step, language: str, data: Mapping[str, Any]) -> list[Spoken]:
    """Everything asked at ``step``: its message or intro, each option with its key, hints."""
    kind = str(data.get("kind") or "request")
    spoken = tuple(str(data.get(name) or "") for name in step.spoken)
    read_back = data.get(step.read_back) if step.read_back else None
    words = tuple(sorted((str(name), str(value)) for name, value in (read_back or {}).items()))
    asked = list(_prompt(step.name, language, kind, spoken, words))
    # A call's own message is not cached: it is one call's text, and may quote a neighbour.
    return [(language, spoken_message(language, data)), *asked] if step.message else asked


@lru_cache(maxsize=2048)
def _prompt(step_name: str, language: str, kind: str, spoken: tuple[str, ...],
            words: tuple[tuple[str, str], ...] = ()) -> tuple[Spoken, ...]:
    step = STEPS[step_name]
    lines: list[Spoken] = []
    if step.intro:
        params = {name: spoken_digits(language, value) for name, value in zip(step.spoken, spoken, strict=True)}
        params.update(words)
        lines.append(say(language, step.intro.format(kind=kind), **params))
    for option in step.options:
        if option.say is None:
            continue
        option_language = option.language or language
        label = texts.t(option_language, option.label) if option.label else ""
        lines.append(say(option_language, option.say, digit=option.digit, label=label))
    for hint in step.hints:
        lines.append(say(language, hint))
    if step.foreign_hint:
        key, digit = step.foreign_hint
        lines.extend(say(other, key, digit=digit) for other in texts.LANGUAGES if other != language)
    return tuple(lines)


def _says(lines: Iterable[Spoken], settings: Settings) -> str:
    """<Say> elements, one per run of lines in the same language."""
    out: list[str] = []
    current: str | None = None
    run: list[str] = []

    def flush() -> None:
        if current is None or not run:
            return
        voice = settings.voice(current)
        text = escape(" ".join(run), quote=False)
        if settings.speech_rate:
            text = f'<prosody rate="{escape(settings.speech_rate)}">{text}</prosody>'
        out.append(f'<Say language="{escape(voice.language)}" voice="{escape(voice.voice)}">{text}</Say>')

    for language, text in lines:
        if language != current:
            flush()
            current, run = language, []
        run.append(text)
    flush()
    return "".join(out)


def render(
    turn: Turn, *, language: str, data: Mapping[str, Any], seq: int, settings: Settings, token: str | None = None,
    action: str | None = None,
) -> str:
    """The TwiML for ``turn``; action URLs carry ``seq``, the number of the next answer, and ``token``.

    ``action``: where Twilio posts the answer instead, for calls answered at URLs of their own
    (a notification call, the broker bridge).
    """
    parts = [XML_HEAD, "<Response>"]
    if turn.ask is not None:
        step = STEPS[turn.ask]
        url = escape(action or step_url(settings, step.name, seq, token))
        speech = _says([*turn.said, *prompt(step, language, data)], settings)
        if step.kind == "record":
            parts.append(speech)
            parts.append(
                f'<Record action="{url}" method="POST" maxLength="{settings.record_max_seconds}" '
                f'timeout="{settings.record_silence_seconds}" finishOnKey="#" playBeep="true" trim="trim-silence"/>'
            )
        else:
            num_digits = f' numDigits="{step.num_digits}"' if step.num_digits else ""
            parts.append(
                f'<Gather input="dtmf" action="{url}" method="POST" timeout="{step.gather_timeout or settings.gather_timeout}"'
                f'{num_digits} finishOnKey="{escape(step.finish_on_key)}" actionOnEmptyResult="true">'
                f"{speech}</Gather>"
            )
        # Reached only when Twilio falls through: after an empty recording, or
        # a <Gather> that ends without calling its action. The step then hears
        # "nothing was entered" and decides.
        parts.append(f'<Redirect method="POST">{url}</Redirect>')
    elif turn.dial is not None:
        parts.append(_says(turn.said, settings))
        caller_id = f' callerId="{escape(settings.gateway_number)}"' if settings.gateway_number else ""
        url = escape(action or step_url(settings, RELAY_STEP, seq, token))
        parts.append(
            f'<Dial action="{url}" method="POST" timeout="{turn.dial_timeout or settings.dial_timeout}"{caller_id}>'
            f"<Number>{escape(turn.dial, quote=False)}</Number></Dial>"
        )
    else:
        parts.append(_says(turn.said, settings))
        parts.append("<Hangup/>")
    parts.append("</Response>")
    return "".join(parts)


def render_line(
    name: str, *, language: str, settings: Settings, number: str | None = None, action: str | None = None,
) -> str:
    """The TwiML for the line ``name`` (steps.LINES): said, then a <Dial> to ``number`` or goodbye."""
    line = LINES[name]
    if (line.then == "dial") != (number is not None):
        raise ValueError(f"line {name} {'needs' if line.then == 'dial' else 'takes no'} number to dial")
    turn = Turn(said=[say(language, line.say)], dial=number, dial_timeout=line.dial_timeout)
    return render(turn, language=language, data={}, seq=0, settings=settings, action=action)
