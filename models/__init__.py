"""Persistence and the domain services that work on it.

Tables live one module per domain; services take a SQLAlchemy session so
that webhooks, the dashboard, the API and the jobs share one implementation.
"""

from .base import Base, utcnow
from .broker import AuditEvent, Broker
from .call import Call
from .events import Event
from .callback import Callback
from .listing import Listing
from .match import Match
from .message import Message
from .resident import Resident
from .throttle import LoginThrottle

__all__ = [
    "AuditEvent",
    "Base",
    "Broker",
    "Call",
    "Callback",
    "Event",
    "Listing",
    "LoginThrottle",
    "Match",
    "Message",
    "Resident",
    "utcnow",
]
