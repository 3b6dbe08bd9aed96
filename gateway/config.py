"""Configuration: defaults, then the environment (see the contract), then test overrides.

Every setting is parsed and checked once, when a process starts (``finalise``):
a setting that is missing or malformed stops the start with one line naming it,
instead of a traceback or a failure hours later at send time.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from models.workdays import DEFAULT_TIMEZONE, broker_hours, parse_hours

# Settings an operator may tune through the environment, with their defaults.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    "REDIS_URL": None,  # None: jobs run in-process
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_PHONE_NUMBER": None,
    "TWILIO_API_BASE_URL": "https://api.twilio.com",
    "PUBLIC_BASE_URL": None,
    "BUURTLIJN_API_TOKEN": None,
    "SECRET_KEY": None,
    "LOG_LEVEL": "INFO",
    # Demo: no Twilio account; outbound SMS and calls are shown, not sent.
    "BUURTLIJN_DEMO": False,
    "BUURTLIJN_TIMEZONE": DEFAULT_TIMEZONE,
    # Non-urgent messages wait outside these hours (local time).
    "BUURTLIJN_QUIET_HOURS": "21:00-09:00",
    # When brokers call back: weekdays, local time.
    "BUURTLIJN_BROKER_HOURS": "09:00-17:00",
    # The outbound policy (models/destinations.py): countries we text and call, daily caps per number and in all.
    "BUURTLIJN_DESTINATION_COUNTRIES": "NL,BE,DE",
    "BUURTLIJN_SMS_DAILY_CAP": 20,
    "BUURTLIJN_SMS_DAILY_TOTAL_CAP": 2000,
    "BUURTLIJN_CALL_DAILY_CAP": 6,
    "BUURTLIJN_CALL_DAILY_TOTAL_CAP": 300,
    "BUURTLIJN_SMS_PER_SECOND": 10,
    # Texts passed on between the two neighbours of a match, per pair and 24 hours; the rest go to a broker.
    "BUURTLIJN_RELAY_DAILY_CAP": 10,
    # Days texts and calls are still passed on after a match is done (a thank-you, a forgotten item).
    "BUURTLIJN_RELAY_DAYS_AFTER_DONE": 3.0,
    "BUURTLIJN_RECORDING_RETENTION_DAYS": 90,
    # Personal content of items closed longer ago than this is erased (models/privacy.py).
    "BUURTLIJN_RETENTION_DAYS": 365,
    "BUURTLIJN_QUEUE_PREFIX": "buurtlijn",
    "BUURTLIJN_SWEEP_SECONDS": 30,
    "BUURTLIJN_MATCH_RESPONSE_HOURS": 24,  # a helper's time to answer a proposal; then it expires
    # Listing life (models/listing_life.py): an open listing left alone this many days is checked in on,
    # and expires when its owner says NEE or does not answer within the answer days.
    "BUURTLIJN_LISTING_CHECK_DAYS": 28.0,
    "BUURTLIJN_LISTING_ANSWER_DAYS": 7.0,
    "BUURTLIJN_SEND_BACKOFF_SECONDS": "30,120,600,1800,7200",  # waits before retrying a busy Twilio
    "BUURTLIJN_TRUSTED_PROXIES": 0,  # proxies in front of the web whose X-Forwarded-For is believed
    # Every request to Twilio: seconds to connect, and to wait for its answer (workers/twilio_api.py).
    "BUURTLIJN_TWILIO_TIMEOUT_SECONDS": 5.0,
    # Reports: counts below this are not shown (contract: Reports).
    "BUURTLIJN_REPORT_MIN_COUNT": 5,
    # Reports: what the organisation pays, in euros, for the telecom cost per match done; unset: not shown.
    "BUURTLIJN_PRICE_SMS_SEGMENT": None,
    "BUURTLIJN_PRICE_CALL_MINUTE": None,
    # PostgreSQL connections a web process keeps for its sessions (one per thread) and may open beyond that.
    "BUURTLIJN_DB_POOL_SIZE": 16,
    "BUURTLIJN_DB_MAX_OVERFLOW": 4,
    # Events for the online marketplace (models/events.py): both set, or neither.
    "BUURTLIJN_WEBHOOK_URL": None,
    "BUURTLIJN_WEBHOOK_SECRET": None,  # whsec_ + base64, as Standard Webhooks writes it
    "BUURTLIJN_WEBHOOK_BACKOFF_SECONDS": "10,60,300,1800,3600",  # waits between tries, the last repeated
    "BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS": 5,  # a try that gets no answer in this long has failed
}
# Whole numbers and the least each may be.
_INTS = {"BUURTLIJN_SMS_DAILY_CAP": 0, "BUURTLIJN_SMS_DAILY_TOTAL_CAP": 0, "BUURTLIJN_CALL_DAILY_CAP": 0,
         "BUURTLIJN_CALL_DAILY_TOTAL_CAP": 0, "BUURTLIJN_SMS_PER_SECOND": 0, "BUURTLIJN_RECORDING_RETENTION_DAYS": 0,
         "BUURTLIJN_RETENTION_DAYS": 1, "BUURTLIJN_REPORT_MIN_COUNT": 1, "BUURTLIJN_RELAY_DAILY_CAP": 0,
         "BUURTLIJN_SWEEP_SECONDS": 1, "BUURTLIJN_MATCH_RESPONSE_HOURS": 1, "BUURTLIJN_TRUSTED_PROXIES": 0,
         "BUURTLIJN_DB_POOL_SIZE": 1, "BUURTLIJN_DB_MAX_OVERFLOW": 0, "BUURTLIJN_WEBHOOK_TIMEOUT_SECONDS": 1}
# Decimal numbers: the range each must lie in, and what one looks like (for the refusal).
_DECIMALS = {
    "BUURTLIJN_TWILIO_TIMEOUT_SECONDS": (0.1, 60.0, "a number of seconds like 5 or 2.5"),
    "BUURTLIJN_PRICE_SMS_SEGMENT": (0.0, 999.99, "an amount in euros such as 0.08"),
    "BUURTLIJN_PRICE_CALL_MINUTE": (0.0, 999.99, "an amount in euros such as 0.08"),
    "BUURTLIJN_LISTING_CHECK_DAYS": (0.0001, 3650.0, "a number of days like 28 or 0.5"),
    "BUURTLIJN_LISTING_ANSWER_DAYS": (0.0001, 3650.0, "a number of days like 7 or 0.5"),
    "BUURTLIJN_RELAY_DAYS_AFTER_DONE": (0.0, 365.0, "a number of days like 3 or 0.5"),
}
_BOOLS = {"BUURTLIJN_DEMO"}
# Former names still read when the new one is not set.
_FORMER_NAMES = {"BUURTLIJN_DESTINATION_COUNTRIES": "BUURTLIJN_SMS_COUNTRIES"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}

# The signing token the demo and its simulator share; never a real account.
DEMO_AUTH_TOKEN = "demo-auth-token-not-secret"
DEMO_ACCOUNT_SID = "AC" + "0" * 32
DEMO_PHONE_NUMBER = "+3197010520000"

# What each process cannot run without outside the demo, checked in this order.
# The web answers Twilio (the token checks every webhook's signature) and sends;
# the worker sends through Twilio and takes its jobs from Redis; the database
# commands need only the secret key.
DATABASE_NEEDS: tuple[str, ...] = ("SECRET_KEY",)
WEB_NEEDS: tuple[str, ...] = ("SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER")
WORKER_NEEDS: tuple[str, ...] = ("REDIS_URL", *WEB_NEEDS)
_WHY_NEEDED = {
    "SECRET_KEY": "SECRET_KEY must be set (outside the demo): it signs sessions and the phone menu's steps",
    "REDIS_URL": "REDIS_URL is not set: without Redis, jobs run inside the web process",
    "TWILIO_ACCOUNT_SID": "TWILIO_ACCOUNT_SID is not set: outside the demo, messages and calls go through Twilio",
    "TWILIO_AUTH_TOKEN": "TWILIO_AUTH_TOKEN is not set: outside the demo, it sends and checks every webhook's signature",
    "TWILIO_PHONE_NUMBER": "TWILIO_PHONE_NUMBER is not set: outside the demo, messages and calls go out from it",
}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message is one line that names it."""


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings as the environment gives them (text), defaults for the rest; ``finalise`` parses them."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(key)
        if (raw is None or raw == "") and key in _FORMER_NAMES:
            raw = environ.get(_FORMER_NAMES[key])
        config[key] = default if raw is None or raw == "" else raw
    return config


def normalise_database_url(url: str) -> str:
    """Heroku-style postgres:// URLs select the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def finalise(config: dict[str, Any], instance_path: str, needs: Iterable[str] = WEB_NEEDS) -> None:
    """Parse every setting, fill derived ones, and refuse a missing or malformed one (ConfigError).

    ``needs``: the settings this process cannot run without outside the demo;
    the test suite's apps (TESTING) may leave them out, never malform them.
    """
    _parse(config)
    if not config.get("DATABASE_URL"):
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'buurtlijn.sqlite3'}"
    config["DATABASE_URL"] = normalise_database_url(config["DATABASE_URL"])
    if config.get("BUURTLIJN_DEMO"):
        config["SECRET_KEY"] = config.get("SECRET_KEY") or "demo-secret-key-not-for-production"
        config["TWILIO_AUTH_TOKEN"] = config.get("TWILIO_AUTH_TOKEN") or DEMO_AUTH_TOKEN
        config["TWILIO_ACCOUNT_SID"] = config.get("TWILIO_ACCOUNT_SID") or DEMO_ACCOUNT_SID
        config["TWILIO_PHONE_NUMBER"] = config.get("TWILIO_PHONE_NUMBER") or DEMO_PHONE_NUMBER
    elif not config.get("TESTING"):
        missing = [name for name in needs if not config.get(name)]
        if missing:
            also = f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""
            raise ConfigError(_WHY_NEEDED.get(missing[0], f"{missing[0]} must be set") + also)
    config["SENDS_FOR_REAL"] = sends_for_real(config)
    config["BASE_API_URL"] = (config.get("TWILIO_API_BASE_URL") or DEFAULTS["TWILIO_API_BASE_URL"]).rstrip("/")


def sends_for_real(config: Mapping[str, Any]) -> bool:
    """Outbound goes to Twilio; only the demo shows it instead of sending."""
    return not config.get("BUURTLIJN_DEMO")


# --- parsing each setting -------------------------------------------------------


def _whole_number(name: str, value: Any) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    least = _INTS[name]
    if number < least:
        raise ConfigError(f"{name} must be at least {least}, not {number}")
    return number


def _decimal(name: str, value: Any) -> float:
    least, most, looks_like = _DECIMALS[name]
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float(
            str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be {looks_like}, not {value!r}") from None
    if not least <= number <= most:  # also refuses nan
        raise ConfigError(f"{name} must be between {least:g} and {most:g}, not {value!r}")
    return number


def _switch(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be 1 or 0 (true or false), not {value!r}")
    return text in _TRUE


def _check_hours(name: str, value: str) -> None:
    if str(value).strip().lower() in {"", "off", "none", "0"}:
        return
    try:
        start, end = parse_hours(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be two times like 21:00-09:00, not {value!r}") from None
    if start == end:
        raise ConfigError(f"{name} {value!r}: the start and the end are the same")


def _check_broker_hours(name: str, value: str) -> None:
    try:
        broker_hours({name: value})
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None


def _check_zone(name: str, value: str) -> None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be a time zone like {DEFAULT_TIMEZONE}, not {value!r}") from None


def _check_countries(name: str, value: str) -> None:
    codes = [c.strip().upper() for c in str(value).split(",") if c.strip()]
    unknown = [c for c in codes if not phonenumbers.country_code_for_region(c)]
    if not codes or unknown:
        raise ConfigError(f"{name} must be country codes like NL,BE,DE; unknown: {', '.join(unknown) or value!r}")


def _check_backoff(name: str, value: str) -> None:
    try:
        waits = [float(x) for x in str(value).split(",") if x.strip()]
    except ValueError:
        waits = []
    if not waits or min(waits) < 0:
        raise ConfigError(f"{name} must be seconds separated by commas like 30,120,600, not {value!r}")


def _check_webhook_secret(name: str, value: str) -> None:
    import base64
    import binascii

    text = str(value).strip()
    key = b""
    if text.startswith("whsec_"):
        try:
            key = base64.b64decode(text[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"{name} must be whsec_ followed by 24 to 64 bytes in base64 (Standard Webhooks)")


def _check_url(schemes: set[str]) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        parts = urlsplit(str(value))
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ConfigError(f"{name} must be a {' or '.join(sorted(schemes))} URL, not {str(value)[:60]!r}")
    return check


def _check_database_url(name: str, value: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(normalise_database_url(str(value))).get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in {"postgresql", "sqlite"}:
        raise ConfigError(f"{name} must be a postgresql:// or sqlite:// URL, not {str(value).split(':')[0]!r}...")


def _check_account_sid(name: str, value: str) -> None:
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", str(value).strip()):
        raise ConfigError(f"{name} must be AC followed by 32 hexadecimal digits (Twilio's console shows it)")


def _check_e164(name: str, value: str) -> None:
    if not re.fullmatch(r"\+[1-9]\d{6,14}", str(value).strip()):
        raise ConfigError(f"{name} must be a number in E.164 form like +3197010520000")


def check_log_level(name: str, value: str) -> None:
    if not isinstance(logging.getLevelName(str(value).upper()), int):
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING or ERROR, not {value!r}")


def _check_speech_rate(name: str, value: str) -> None:
    if str(value).strip() not in {"", "x-slow", "slow", "medium", "fast", "x-fast"} and not re.fullmatch(
            r"\d{1,3}%", str(value).strip()):
        raise ConfigError(f"{name} must be a percentage like 90% (or slow, medium, fast), not {value!r}")


def _check_districts_file(name: str, value: str) -> None:
    from models.districts import load_districts

    try:
        load_districts(Path(value))
    except Exception as error:  # whatever stops the file from loading stops the start
        raise ConfigError(f"{name}: {value} cannot be read ({type(error).__name__}: {error})") from None


_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "DATABASE_URL": _check_database_url,
    "REDIS_URL": _check_url({"redis", "rediss", "unix"}),
    "TWILIO_ACCOUNT_SID": _check_account_sid,
    "TWILIO_PHONE_NUMBER": _check_e164,
    "TWILIO_API_BASE_URL": _check_url({"http", "https"}),
    "PUBLIC_BASE_URL": _check_url({"http", "https"}),
    "LOG_LEVEL": check_log_level,
    "BUURTLIJN_TIMEZONE": _check_zone,
    "BUURTLIJN_QUIET_HOURS": _check_hours,
    "BUURTLIJN_BROKER_HOURS": _check_broker_hours,
    "BUURTLIJN_DESTINATION_COUNTRIES": _check_countries,
    "BUURTLIJN_SEND_BACKOFF_SECONDS": _check_backoff,
    "BUURTLIJN_WEBHOOK_URL": _check_url({"http", "https"}),
    "BUURTLIJN_WEBHOOK_SECRET": _check_webhook_secret,
    "BUURTLIJN_WEBHOOK_BACKOFF_SECONDS": _check_backoff,
}
# Read from the environment where they are used (the phone's voice, the district map): checked here too.
_CHECKED_IN_ENVIRONMENT: dict[str, Callable[[str, Any], None]] = {
    "BUURTLIJN_SPEECH_RATE": _check_speech_rate,
    "BUURTLIJN_DISTRICTS_FILE": _check_districts_file,
}


def _parse(config: dict[str, Any]) -> None:
    """Each setting to its type, checked; a malformed one raises ConfigError naming it."""
    for name in _INTS:
        value = config.get(name)
        config[name] = DEFAULTS[name] if value is None or value == "" else _whole_number(name, value)
    for name in _DECIMALS:
        value = config.get(name)
        config[name] = DEFAULTS[name] if value is None or value == "" else _decimal(name, value)
    for name in _BOOLS:
        config[name] = _switch(name, config.get(name) or False)
    for name, check in _CHECKS.items():
        if config.get(name):
            check(name, config[name])
    if bool(config.get("BUURTLIJN_WEBHOOK_URL")) != bool(config.get("BUURTLIJN_WEBHOOK_SECRET")):
        given, missing = (("BUURTLIJN_WEBHOOK_URL", "BUURTLIJN_WEBHOOK_SECRET") if config.get("BUURTLIJN_WEBHOOK_URL")
                          else ("BUURTLIJN_WEBHOOK_SECRET", "BUURTLIJN_WEBHOOK_URL"))
        raise ConfigError(f"{missing} must be set too: {given} is, and events need both")
    for name, check in _CHECKED_IN_ENVIRONMENT.items():
        value = config.get(name) or os.environ.get(name)
        if value:
            check(name, value)


def check_environment(needs: Iterable[str] = WEB_NEEDS, environ: Mapping[str, str] | None = None) -> None:
    """Parse the environment as ``create_app`` will, before any process starts (ConfigError when not)."""
    config = from_environment(environ)
    instance = Path(__file__).resolve().parents[1] / "instance"
    finalise(config, str(instance), needs)
