"""One reading of what Twilio posts to a voice webhook, parsed once into typed values.

Every voice view (the menu, the notification call, the broker bridge, and
the menu's WSGI layer on PostgreSQL) reads Twilio's form through
``CallParams.read``; nothing else picks names out of the form by hand. It is
also where the form is checked: numbers within their columns' range, SIDs
whole and well formed (a malformed one is a ``MalformedRequest``: 400), no
control characters in what is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.limits import bounded_int, one_line, twilio_sid


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

    call_sid: str = ""  # always Twilio's whole SID once read
    from_: str | None = None
    to: str | None = None
    call_status: str = ""  # lower case; "" when Twilio sent none
    answered_by: str | None = None  # answering-machine detection: human, machine_start, ...
    error_code: int | None = None
    duration: int | None = None  # CallDuration, seconds, in the final status callback
    answer: Answer = field(default_factory=Answer)

    @classmethod
    def read(cls, form: Mapping[str, str]) -> CallParams:
        """Twilio's form, checked: a missing or malformed CallSid, or a malformed RecordingSid, raises
        ``MalformedRequest`` (Twilio sends every voice webhook a CallSid)."""
        recording_sid = form.get("RecordingSid")
        return cls(
            call_sid=twilio_sid(form.get("CallSid")),
            from_=one_line(form.get("From")),
            to=one_line(form.get("To")),
            call_status=(form.get("CallStatus") or "").lower(),
            answered_by=one_line(form.get("AnsweredBy")) or None,
            error_code=bounded_int(form.get("ErrorCode")),
            duration=int_or_none(form.get("CallDuration")),
            answer=Answer(
                digits=one_line(form.get("Digits")),
                recording_sid=twilio_sid(recording_sid) if recording_sid else None,
                recording_url=one_line(form.get("RecordingUrl")),
                recording_duration=int_or_none(form.get("RecordingDuration")),
                dial_status=(form.get("DialCallStatus") or "").lower() or None,
            ),
        )


def int_or_none(raw: str | None) -> int | None:
    """A number Twilio sends (a duration, a step's number in our own URL): digits within an INTEGER column's
    range, or None."""
    return bounded_int(raw)
