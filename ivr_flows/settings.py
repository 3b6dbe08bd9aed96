"""What the phone menu needs from the configuration, read once per app."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from models.matching import DEFAULT_RELAY_DAYS_AFTER_DONE, relay_days_after_done
from models.workdays import DEFAULT_BROKER_HOURS, broker_hours, local_zone
from texts import LANGUAGES

from .tokens import CallTokens


@dataclass(frozen=True)
class Voice:
    """How <Say> speaks one of our languages: Twilio's language code and a voice that speaks it."""

    language: str
    voice: str


# Amazon Polly standard voices (they accept <prosody rate>). Any voice Twilio
# offers for the language may be configured instead, e.g.
# BUURTLIJN_VOICE_NL=Polly.Ruben or BUURTLIJN_VOICE_EN=en-US:Polly.Joanna.
DEFAULT_VOICES: dict[str, Voice] = {
    "nl": Voice("nl-NL", "Polly.Lotte"),
    "en": Voice("en-GB", "Polly.Amy"),
    "tr": Voice("tr-TR", "Polly.Filiz"),
    "ar": Voice("arb", "Polly.Zeina"),
}
# A little slower than normal, for elderly callers; "100%" (or empty) speaks plain text.
DEFAULT_SPEECH_RATE = "90%"
STEP_PATH = "/twilio/voice/step"


@dataclass(frozen=True)
class Settings:
    gateway_number: str | None = None
    voices: Mapping[str, Voice] = field(default_factory=lambda: dict(DEFAULT_VOICES))
    speech_rate: str | None = DEFAULT_SPEECH_RATE
    broker_hours: tuple[dt.time, dt.time] = DEFAULT_BROKER_HOURS
    zone: ZoneInfo = field(default_factory=lambda: local_zone({}))
    step_path: str = STEP_PATH
    gather_timeout: int = 8  # seconds to press a key, after the prompt ends
    record_max_seconds: int = 120
    record_silence_seconds: int = 5
    dial_timeout: int = 25
    # Where a call may be put through, and which number a caller may key in as theirs (models/destinations.py).
    destinations: Mapping[str, Any] = field(default_factory=dict)
    # Days a done match still puts its two people through to each other (BUURTLIJN_RELAY_DAYS_AFTER_DONE).
    relay_days_after_done: float = DEFAULT_RELAY_DAYS_AFTER_DONE
    # Seals the call's state into its step URLs (tokens.py); None: every step reads the row.
    tokens: CallTokens | None = field(default=None, compare=False, repr=False)

    def voice(self, language: str) -> Voice:
        return self.voices.get(language) or self.voices["nl"]


def _voice_setting(raw: str, default: Voice) -> Voice:
    language, sep, voice = raw.partition(":")
    return Voice(language.strip(), voice.strip()) if sep else Voice(default.language, raw.strip())


def settings_from_config(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """The app's config first, then the environment (BUURTLIJN_VOICE_XX, BUURTLIJN_SPEECH_RATE)."""
    environ = os.environ if environ is None else environ

    def setting(name: str) -> Any:
        value = config.get(name)
        return environ.get(name) if value is None else value

    voices = dict(DEFAULT_VOICES)
    for language in LANGUAGES:
        raw = setting(f"BUURTLIJN_VOICE_{language.upper()}")
        if raw:
            voices[language] = _voice_setting(str(raw), DEFAULT_VOICES[language])
    rate = setting("BUURTLIJN_SPEECH_RATE")
    rate = DEFAULT_SPEECH_RATE if rate is None else str(rate).strip()
    return Settings(
        gateway_number=config.get("TWILIO_PHONE_NUMBER"),
        voices=voices,
        speech_rate=None if rate in ("", "100%") else rate,
        broker_hours=broker_hours(config),
        zone=local_zone(config),
        tokens=CallTokens(str(config["SECRET_KEY"])) if config.get("SECRET_KEY") else None,
        destinations={name: config.get(name) for name in (
            "BUURTLIJN_DESTINATION_COUNTRIES", "BUURTLIJN_CALL_DAILY_CAP", "BUURTLIJN_CALL_DAILY_TOTAL_CAP")},
        relay_days_after_done=relay_days_after_done(config),
    )
