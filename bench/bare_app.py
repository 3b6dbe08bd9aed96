"""The floor: a bare Flask app answering every POST with a constant TwiML reply.

No signature check, no database, no queue - what Flask under the benchmark's
gunicorn settings costs per request and nothing more. It answers on any path,
so the very requests sent to the gateway (SMS and every voice step, whatever
action URL the menu uses) can be sent to it unchanged.

    gunicorn 'bench.bare_app:app'
"""

from __future__ import annotations

from flask import Flask, Response

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

app = Flask(__name__)


@app.post("/", defaults={"path": ""})
@app.post("/<path:path>")
def constant_twiml(path: str) -> Response:
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")
