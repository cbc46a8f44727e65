"""The one error every JSON endpoint raises for bad input: a 4xx with ``{"error": "..."}``."""
from __future__ import annotations

from flask import Flask, jsonify


class BadRequest(Exception):
    """A request the client must change. ``str()`` names the parameter and what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def init_app(app: Flask) -> None:
    @app.errorhandler(BadRequest)
    def _bad_request(e: BadRequest):
        return jsonify(error=str(e)), e.status
