"""Logging that never writes a phone number, token or recording URL."""

from __future__ import annotations

import logging
import re

from flask import Flask

# +31612345678, 0612345678, 06-12345678: anything that dials.
_PHONE = re.compile(r"(?<![\w/])(\+|00)?\d[\d \-]{7,}\d")
_RECORDING_URL = re.compile(r"https?://\S*/Recordings/\S+")


def scrub(text: str) -> str:
    text = _RECORDING_URL.sub("[recording-url]", text)
    return _PHONE.sub(lambda m: "[phone …" + re.sub(r"\D", "", m.group(0))[-2:] + "]", text)


class ScrubPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        return True


def library_level(log_level: str | None) -> int:
    """Twilio's client (nine lines a request) and RQ (three a job) log at INFO: shown only when debugging."""
    return logging.DEBUG if str(log_level or "").upper() == "DEBUG" else logging.WARNING


def init_app(app: Flask) -> None:
    logging.getLogger("twilio").setLevel(library_level(app.config.get("LOG_LEVEL")))
    scrubber = ScrubPersonalData()
    for handler in logging.getLogger().handlers + app.logger.handlers:
        handler.addFilter(scrubber)
    app.logger.addFilter(scrubber)
    logging.getLogger("buurtlijn").addFilter(scrubber)
