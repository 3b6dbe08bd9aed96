"""Read by gunicorn from the working folder (the Procfile's web process).

A missing or malformed setting stops the master before it forks a worker, with
one line that names the setting, instead of a traceback from every worker.
"""

import sys


def on_starting(server):  # type: ignore[no-untyped-def]
    from gateway.config import ConfigError, check_environment

    if not str(getattr(server.app, "app_uri", "")).startswith("gateway"):
        return  # another app served from this folder (the benches' bare floor)
    try:
        check_environment()
    except ConfigError as error:
        print(f"buurtlijn: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
