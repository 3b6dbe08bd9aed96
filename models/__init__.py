"""Persistence and the domain services that work on it.

Tables live one module per domain; services take a SQLAlchemy session so
that webhooks, the dashboard, the API and the jobs share one implementation.
"""

from importlib import import_module

from .api_clients import ApiClient, IdempotentAnswer
from .base import Base, utcnow
from .broker import AuditEvent, Broker
from .call import Call
from .events import Event
from .callback import Callback
from .listing import Listing
from .listing_life import ListingCheckin
from .match import Match
from .message import Message
from .relay import Relay
from .report_rollup import ReportDay, ReportReach, RolledDay
from .resident import Resident
from .satisfaction import Satisfaction
from .throttle import LoginThrottle

__all__ = [
    "ApiClient",
    "IdempotentAnswer",
    "AuditEvent",
    "Base",
    "Broker",
    "Call",
    "Callback",
    "Event",
    "Listing",
    "ListingCheckin",
    "LoginThrottle",
    "Match",
    "Message",
    "Relay",
    "ReportDay",
    "ReportReach",
    "RolledDay",
    "Resident",
    "Satisfaction",
    "utcnow",
]

# Loaded with the tables: its before-flush hook keeps the report's roll-up true to the ledgers.
import_module(f"{__name__}.reports")
