"""TwiML responses."""

from __future__ import annotations

from flask import Response

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def empty_response() -> Response:
    return twiml(EMPTY)
