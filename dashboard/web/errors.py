"""App-wide error handling: the one error every JSON endpoint raises for bad input (a 4xx with
``{"error": "..."}``), JSON for every HTTP error under ``/api/``, and integer URL parts that
SQLite can hold."""
from __future__ import annotations

import math

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from dashboard.store.pg import PgUnavailable

SQLITE_INT_MAX = 2 ** 63 - 1


class BadRequest(Exception):
    """A request the client must change. ``str()`` names the parameter and what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SQLiteIntegerConverter(IntegerConverter):
    """``<int:id>`` that matches only what fits a SQLite INTEGER: a larger id is no such
    record (404) instead of an OverflowError (500) when it reaches the query."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", SQLITE_INT_MAX)
        super().__init__(map, *args, **kwargs)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics" or (
        request.accept_mimetypes.best == "application/json")


def refuse(status: int, message: str):
    """A refusal in the caller's language: JSON ``{"error"}`` for the API, the refused page else."""
    if wants_json():
        resp = jsonify(error=message)
        resp.status_code = status
    else:
        resp = current_app.make_response((render_template("refused.html", message=message,
                                                          status=status), status))
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="dashboard"'
    return resp


def seconds_arg(name: str, default: str, lo: float, hi: float, limit: str) -> float:
    """A query parameter that is a number of seconds within ``[lo, hi]``, else a 400 naming
    the parameter (``limit``: how the bounds are said, e.g. "from 10 s to 7 days")."""
    try:
        value = float(request.args.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise BadRequest(f"{name} must be {limit}")
    return value


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered: routes pick their converters when added."""
    app.url_map.converters["int"] = SQLiteIntegerConverter

    @app.errorhandler(BadRequest)
    def _bad_request(e: BadRequest):
        return jsonify(error=str(e)), e.status

    @app.errorhandler(PgUnavailable)
    def _store_unavailable(e: PgUnavailable):
        # store_url's server does not answer (logins, alerts, reports live there): say so,
        # and when to try again, instead of a 500 with a traceback per request.
        resp = refuse(503, "the store is unavailable (its database does not answer); try again shortly")
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        # Scripts and the page's JS read {"error"} from every API answer, 404 and 405 included;
        # pages keep Werkzeug's HTML. More specific handlers (429, CSRF) still win.
        if not _is_api() or e.code is None:
            return e
        default = type(e).description
        text = e.name if not e.description or e.description == default else \
            f"{e.name}: {e.description}"
        resp = e.get_response()                 # keeps headers such as Allow and Retry-After
        resp.set_data(jsonify(error=text).get_data())
        resp.mimetype = "application/json"
        return resp
