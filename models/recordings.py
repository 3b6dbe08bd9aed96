"""Where the demo keeps a listing's recording (in production, Twilio keeps it)."""

from __future__ import annotations

import re
from pathlib import Path

RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")


def local_recording_path(instance_path: str, recording_sid: str) -> Path | None:
    """Where the demo keeps a simulated recording; None for anything not shaped like a SID."""
    if not RECORDING_SID.fullmatch(recording_sid or ""):
        return None
    return Path(instance_path) / "recordings" / f"{recording_sid}.wav"
