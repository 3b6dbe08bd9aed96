"""One reading of what Twilio posts to a voice webhook, parsed once into typed values.

Every voice view (the menu, the notification call, the broker bridge, and
the menu's WSGI layer on PostgreSQL) reads Twilio's form through
``CallParams.read``; nothing else picks names out of the form by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """What the caller did at a step: keys, a recording, or how a <Dial> ended."""

    digits: str | None = None  # None: no Digits at all (Twilio fell through to the Redirect)
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    dial_status: str | None = None

    @property
    def has_recording(self) -> bool:
        return bool(self.recording_sid and self.recording_url)


@dataclass(frozen=True)
class CallParams:
    """Twilio's parameters of one voice request (CallSid, From, To, CallStatus, ... and the answer)."""

    call_sid: str = ""
    from_: str | None = None
    to: str | None = None
    call_status: str = ""  # lower case; "" when Twilio sent none
    answered_by: str | None = None  # answering-machine detection: human, machine_start, ...
    error_code: int | None = None
    answer: Answer = field(default_factory=Answer)

    @classmethod
    def read(cls, form: Mapping[str, str]) -> CallParams:
        error = form.get("ErrorCode") or ""
        return cls(
            call_sid=form.get("CallSid", ""),
            from_=form.get("From"),
            to=form.get("To"),
            call_status=(form.get("CallStatus") or "").lower(),
            answered_by=form.get("AnsweredBy") or None,
            error_code=int(error) if error.isdigit() else None,
            answer=Answer(
                digits=form.get("Digits"),
                recording_sid=form.get("RecordingSid"),
                recording_url=form.get("RecordingUrl"),
                recording_duration=int_or_none(form.get("RecordingDuration")),
                dial_status=(form.get("DialCallStatus") or "").lower() or None,
            ),
        )


def int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None
