"""Buurtlijn's web application: Twilio webhooks, the brokers' dashboard, the API."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None, needs: Iterable[str] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``test_config``.

    Refuses to build (``config.ConfigError``, one line naming the setting) when a
    setting is malformed or, outside the demo, one of ``needs`` is missing
    (default: what the web needs, ``config.WEB_NEEDS``).
    """
    from . import config as cfg
    from . import database, jobs, logs, pages, security

    app = Flask(__name__, instance_relative_config=True)
    app.config.update(cfg.from_environment())
    if test_config:
        app.config.update(test_config)
    cfg.finalise(app.config, app.instance_path, cfg.WEB_NEEDS if needs is None else needs)

    logs.init_app(app)
    database.init_app(app)
    jobs.init_app(app)
    security.init_app(app)
    pages.init_app(app)

    from .api import bp as api_bp
    from .api import init_app as api_init
    from .webhooks_bridge import bp as bridge_bp
    from .webhooks_sms import bp as sms_bp
    from .webhooks_voice import bp as voice_bp

    app.register_blueprint(sms_bp)
    app.register_blueprint(voice_bp)
    app.register_blueprint(api_bp)
    api_init(app)
    app.register_blueprint(__import__("gateway.recordings", fromlist=["bp"]).bp)  # spoken messages, behind login
    app.register_blueprint(bridge_bp)
    app.register_blueprint(__import__("gateway.webhooks_notify", fromlist=["bp"]).bp)  # calls we make to notify

    from . import webhooks_direct

    webhooks_direct.init_app(app)  # inside the dashboard's ProxyFix, which must see requests first

    from .dashboard import init_app as init_dashboard

    init_dashboard(app)

    if app.config.get("BUURTLIJN_DEMO"):
        from .simulator import bp as simulator_bp

        app.register_blueprint(simulator_bp)

    logging.getLogger(__name__).debug("app created (demo=%s)", app.config.get("BUURTLIJN_DEMO"))
    return app
