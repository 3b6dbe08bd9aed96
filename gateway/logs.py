"""Logging that never writes a phone number, token or recording URL.

One filter, ``SCRUBBER``, sits on every handler of the root logger and on the handlers of the
loggers that keep their records to themselves (gunicorn's access and error logs do not pass them
up). A filter on a logger would not do: Python applies it only to records made by that very
logger, not to those of its children (``buurtlijn.voice``) nor to other libraries' (RQ, twilio).
"""

from __future__ import annotations

import logging
import re

from flask import Flask

from models.phones import scrub_numbers

_RECORDING_URL = re.compile(r"https?://\S*/Recordings/\S+")


def scrub(text: str) -> str:
    return scrub_numbers(_RECORDING_URL.sub("[recording-url]", text))


class ScrubPersonalData(logging.Filter):
    """Writes the record's message out in full, scrubbed; so also what a dict of arguments
    (gunicorn's access log) or an exception's text would have carried."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep what it said, scrubbed, not the error
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


SCRUBBER = ScrubPersonalData()


def install_scrubber() -> None:
    """Put ``SCRUBBER`` on the root logger's handlers and on those of every logger that does not
    propagate to it; safe to call again (after ``logging.basicConfig``, after gunicorn's set-up)."""
    loggers = [logging.getLogger()] + [
        logger for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if SCRUBBER not in handler.filters:
                handler.addFilter(SCRUBBER)


def library_level(log_level: str | None) -> int:
    """Twilio's client (nine lines a request) and RQ (three a job) log at INFO: shown only when debugging."""
    return logging.DEBUG if str(log_level or "").upper() == "DEBUG" else logging.WARNING


def init_app(app: Flask) -> None:
    logging.getLogger("twilio").setLevel(library_level(app.config.get("LOG_LEVEL")))
    install_scrubber()
