"""The demo's phone simulator: text or call the gateway as a resident would.

Every action becomes a signed Twilio-style request to the real webhooks,
over HTTP; what the gateway sends back (an SMS, spoken words) is shown.
Registered only in the demo.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..security import csrf

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
csrf.exempt(bp)


def webhook_url(path: str) -> tuple[str, str]:
    """(where to send, what Twilio would sign) for one of our webhook paths."""
    local = request.host_url.rstrip("/") + path
    public = (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/") + path
    return local, public


@bp.get("/")
def page():  # type: ignore[no-untyped-def]
    return render_template("simulator.html", gateway_number=current_app.config["TWILIO_PHONE_NUMBER"])


from . import sms  # noqa: E402,F401  (routes)

try:  # the call simulator, when the phone menu is present
    from . import voice  # noqa: E402,F401
except ImportError:  # pragma: no cover
    pass
from . import notify  # noqa: E402,F401  (Buurtlijn calling the resident)
