"""The phone engine: every call as data (steps.py), one renderer (render.py), and the
call state machine (machine.py, calls.py) that keeps every call's state in the
database, keyed by CallSid.

The menu callers reach on our number runs through ``calls`` (and ``fast`` on
PostgreSQL), the calls we place to tell a resident something through
``notification``, and the broker bridge's lines through ``render_line``.
Twilio's parameters are read once into ``CallParams`` (params.py). The
webhook views in gateway/ are glue around these.
"""

from .calls import (answer_step, apology, call_status, close_stale_call, incoming_call, load_call, sorry_goodbye,
                    stale_call_ids)
from .params import Answer, CallParams
from .render import Turn, render, render_line
from .settings import DEFAULT_VOICES, Settings, Voice, settings_from_config
from .steps import CATEGORIES, LINES, RELAY_STEP, STEPS, Line, Option, Step

__all__ = [
    "CATEGORIES",
    "DEFAULT_VOICES",
    "LINES",
    "RELAY_STEP",
    "STEPS",
    "Answer",
    "CallParams",
    "Line",
    "Option",
    "Settings",
    "Step",
    "Turn",
    "Voice",
    "answer_step",
    "apology",
    "call_status",
    "close_stale_call",
    "incoming_call",
    "load_call",
    "render",
    "render_line",
    "settings_from_config",
    "sorry_goodbye",
    "stale_call_ids",
]
