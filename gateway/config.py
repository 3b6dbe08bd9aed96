"""Configuration: defaults, then the environment (see the contract), then test overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from models.workdays import DEFAULT_TIMEZONE, broker_hours

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
    # Demo: no Twilio account; outbound SMS and calls are shown, not sent.
    "BUURTLIJN_DEMO": False,
    "BUURTLIJN_TIMEZONE": DEFAULT_TIMEZONE,
    # Non-urgent messages wait outside these hours (local time).
    "BUURTLIJN_QUIET_HOURS": "21:00-09:00",
    # When brokers call back: weekdays, local time.
    "BUURTLIJN_BROKER_HOURS": "09:00-17:00",
    # SMS pumping guard: destination countries and a daily cap per number.
    "BUURTLIJN_SMS_COUNTRIES": "NL,BE,DE",
    "BUURTLIJN_SMS_DAILY_CAP": 20,
    "BUURTLIJN_SMS_PER_SECOND": 10,
    "BUURTLIJN_RECORDING_RETENTION_DAYS": 90,
    "BUURTLIJN_QUEUE_PREFIX": "buurtlijn",
    "BUURTLIJN_SWEEP_SECONDS": 30,
    "BUURTLIJN_MATCH_RESPONSE_HOURS": 24,  # a helper's time to answer a proposal; then it expires
    "BUURTLIJN_SEND_BACKOFF_SECONDS": "30,120,600,1800,7200",  # waits before retrying a busy Twilio
}
_INTS = {"BUURTLIJN_SMS_DAILY_CAP", "BUURTLIJN_SMS_PER_SECOND", "BUURTLIJN_RECORDING_RETENTION_DAYS",
         "BUURTLIJN_SWEEP_SECONDS", "BUURTLIJN_MATCH_RESPONSE_HOURS"}
_BOOLS = {"BUURTLIJN_DEMO"}

# The signing token the demo and its simulator share; never a real account.
DEMO_AUTH_TOKEN = "demo-auth-token-not-secret"
DEMO_ACCOUNT_SID = "AC" + "0" * 32
DEMO_PHONE_NUMBER = "+3197010520000"


class ConfigError(RuntimeError):
    pass


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ if environ is None else environ)
    config: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(key)
        if raw is None or raw == "":
            config[key] = default
        elif key in _INTS:
            config[key] = int(raw)
        elif key in _BOOLS:
            config[key] = raw.strip().lower() in {"1", "true", "yes", "on"}
        else:
            config[key] = raw
    return config


def normalise_database_url(url: str) -> str:
    """Heroku-style postgres:// URLs select the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def finalise(config: dict[str, Any], instance_path: str) -> None:
    """Fill derived settings and refuse unsafe combinations."""
    if not config.get("DATABASE_URL"):
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'buurtlijn.sqlite3'}"
    config["DATABASE_URL"] = normalise_database_url(config["DATABASE_URL"])
    if config.get("BUURTLIJN_DEMO"):
        config.setdefault("SECRET_KEY", None)
        config["SECRET_KEY"] = config["SECRET_KEY"] or "demo-secret-key-not-for-production"
        config["TWILIO_AUTH_TOKEN"] = config.get("TWILIO_AUTH_TOKEN") or DEMO_AUTH_TOKEN
        config["TWILIO_ACCOUNT_SID"] = config.get("TWILIO_ACCOUNT_SID") or DEMO_ACCOUNT_SID
        config["TWILIO_PHONE_NUMBER"] = config.get("TWILIO_PHONE_NUMBER") or DEMO_PHONE_NUMBER
    elif not config.get("SECRET_KEY") and not config.get("TESTING"):
        raise ConfigError("SECRET_KEY must be set (outside the demo)")
    try:
        broker_hours(config)
    except ValueError as error:
        raise ConfigError(f"BUURTLIJN_BROKER_HOURS: {error}") from error
    config["SENDS_FOR_REAL"] = sends_for_real(config)
    config["BASE_API_URL"] = (config.get("TWILIO_API_BASE_URL") or DEFAULTS["TWILIO_API_BASE_URL"]).rstrip("/")


def sends_for_real(config: dict[str, Any]) -> bool:
    """Outbound goes to Twilio; otherwise (the demo) it is shown, not sent."""
    return bool(
        not config.get("BUURTLIJN_DEMO")
        and config.get("TWILIO_ACCOUNT_SID")
        and config.get("TWILIO_AUTH_TOKEN")
        and config.get("TWILIO_PHONE_NUMBER")
    )
