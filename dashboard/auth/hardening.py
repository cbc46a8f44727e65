"""Rate limits and the security headers of every response.

Limits per client address count IPv6 clients per /64 (``login_throttle.client_key``); failed
logins are also counted per account name (dashboard/login_throttle.py), in the same storage.

CSP: no inline script at all (``script-src 'self'``); pages pass data in
``<script type="application/json">`` blocks. ``style-src 'unsafe-inline'`` is needed by
plotly.js, which sets style attributes on the SVG it draws (checked in headless Chromium by
tests/e2e/test_security_browser.py: no CSP violation while the live page draws).

Referrer-Policy is ``strict-origin-when-cross-origin``, not ``no-referrer``: Flask-WTF's CSRF
check behind TLS compares the Referer with the host, and same-origin requests keep it.
"""
from __future__ import annotations

import logging
from typing import cast
from urllib.parse import urlsplit

from flask import Flask, current_app, g, render_template, request
from flask_limiter import Limiter
from werkzeug.exceptions import TooManyRequests

from dashboard.auth.throttle import LoginThrottle, client_key
from dashboard.config.settings import Settings
from dashboard.web import errors

log = logging.getLogger(__name__)

LOGIN_REFUSED = "Too many login attempts from your address. Wait a few minutes and try again."
# The same for every name, existing or not (login_throttle counts unknown names alike).
ACCOUNT_REFUSED = "Too many failed logins for this name. Wait a few minutes and try again."


def _csp(settings: Settings) -> str:
    origin = urlsplit(settings.public_url)
    ws = ("wss://" if origin.scheme == "https" else "ws://") + origin.netloc
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        f"connect-src 'self' {ws}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def init_limiter(app: Flask, settings: Settings) -> Limiter:
    storage = "memory://"
    options: dict = {}
    # Only the dashboard's own Redis (message_queue, shared by its web instances), else memory.
    # Never [redis]: that is the monitored application cache, where the limiter's reads would
    # count in cache.hit_rate and allkeys-lru could evict its counters. The message queue may
    # be down too: short timeouts and the in-memory fallback keep logins and the API answering.
    if settings.message_queue:
        storage = settings.message_queue
        options = {"socket_connect_timeout": 1, "socket_timeout": 1}
    limiter = Limiter(
        key_func=lambda: client_key(request.remote_addr),
        application_limits=[settings.auth.api_rate_limit],
        application_limits_exempt_when=lambda: not request.path.startswith("/api/"),
        storage_uri=storage, storage_options=options,
        strategy="moving-window",            # "10 per 5 minutes" means any 5 minutes
        in_memory_fallback_enabled=True, swallow_errors=True,
        key_prefix="dashboard-limits", headers_enabled=True,
    )

    @app.after_request
    def login_retry_after(resp):
        # Registered before Flask-Limiter's own hook, so it runs after it: that hook raises any
        # Retry-After to the reset of the per-address window, even while the window has room.
        if "login_wait_s" in g:
            resp.headers["Retry-After"] = str(g.login_wait_s)
        return resp

    limiter.init_app(app)
    app.extensions["dashboard.login_throttle"] = LoginThrottle(
        limiter.storage, app.extensions["dashboard.accounts"], cast(bytes, app.secret_key),
        settings.auth.login_account_failures)
    # Per app (tests build many): wrap this app's login view; the wrapper does the counting.
    app.view_functions["auth.login"] = limiter.limit(  # type: ignore[assignment]  # sync view
        settings.auth.login_rate_limit, methods=["POST"])(app.view_functions["auth.login"])
    app.extensions["dashboard.limiter"] = limiter

    @app.errorhandler(TooManyRequests)
    def too_many(e: TooManyRequests):
        if request.endpoint == "auth.login":
            # The same answer whoever is named in the form: nothing says whether a user exists.
            return render_template("login.html", error=LOGIN_REFUSED,
                                   next=request.form.get("next", "")), 429
        return errors.refuse(429, f"rate limit exceeded ({e.description}); slow down")

    return limiter


def init_app(app: Flask, settings: Settings) -> None:
    csp = _csp(settings)

    @app.after_request
    def security_headers(resp):
        h = resp.headers
        h.setdefault("Content-Security-Policy", csp)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # Pages and API answers carry internals: keep them out of shared and disk caches.
        if "Cache-Control" not in h and resp.mimetype in ("text/html", "application/json",
                                                          "text/csv", "text/plain"):
            h["Cache-Control"] = "no-store"
        return resp


def limiter(app: Flask | None = None) -> Limiter:
    return (app or current_app).extensions["dashboard.limiter"]


def login_throttle(app: Flask | None = None) -> LoginThrottle:
    return (app or current_app).extensions["dashboard.login_throttle"]


def refuse_login(wait_s: int, next_url: str):
    """The 429 for a name whose failed logins must wait (Retry-After: see init_limiter)."""
    g.login_wait_s = wait_s
    return render_template("login.html", error=ACCOUNT_REFUSED, next=next_url), 429
