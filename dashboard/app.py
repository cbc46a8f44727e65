"""The Flask application factory: the one place that registers blueprints and adds each area's
sinks and jobs to the runtime."""
from __future__ import annotations

import gzip
import logging

from flask import Flask, request

from dashboard import alerting, offload, watchdog
from dashboard.auth import guard, hardening
from dashboard.auth import views as auth_views
from dashboard.config import load as config_mod
from dashboard.config.settings import Settings
from dashboard.report import mailer
from dashboard.report import views as report_views
from dashboard.runtime import Runtime
from dashboard.web import alerts as alerts_views
from dashboard.web import api, errors, fleet, live, metrics, pages, panels
from dashboard.web import db as dbviews

COMPRESSIBLE = ("application/json", "text/html", "text/css", "text/csv", "application/javascript",
                "text/javascript", "text/plain")
OFFLOAD_GZIP_BYTES = 256 * 1024      # ~5 ms of gzip: below that the hand-off costs more
# Megabytes (a 24 h /api/history of 300 series: 10-15 MB of JSON) at level 1: 85 ms against
# 306 ms at level 5, for 10 % more bytes (5.3 against 4.8 MB); smaller answers at level 5.
GZIP_LEVEL, LARGE_GZIP_LEVEL = 5, 1


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               async_mode: str | None = None, role: str = "web") -> Flask:
    """Build the app. Nothing starts here: call ``app.extensions["dashboard"].start()``.

    ``role="collector"`` is for ``python -m dashboard collect``: no Socket.IO server, events
    go to the message queue through an external emitter instead.
    """
    settings = settings or config_mod.load()
    runtime = runtime or Runtime(settings)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["dashboard"] = runtime

    errors.init_app(app)                         # BadRequest -> 4xx JSON, for every blueprint
    # Blueprints: every route of the app, registered here and nowhere else.
    for bp in (pages.bp, api.bp, fleet.bp, auth_views.bp, dbviews.bp, alerts_views.bp,
               metrics.bp, report_views.bp):
        app.register_blueprint(bp)
    # Logins, roles, CSRF, rate limits, headers, in this order: the rate limiter's check runs
    # before ``enforce``, so unauthenticated floods count (issue 7).
    guard.init_app(app, runtime)
    hardening.init_limiter(app, settings)
    guard.enforce_on(app)
    hardening.init_app(app, settings)
    if role == "collector":
        runtime.emitter = live.broadcaster(live.external_emitter(settings))
    else:
        live.init_app(app, runtime, async_mode or settings.async_mode)
    # Sinks and jobs: what each area adds to the runtime (added here, started with it), once
    # per runtime even when create_app is called twice on one (tests, the demo).
    if runtime.alerting is None:
        runtime.add(dbviews.statements_push(runtime))    # Socket.IO db_statements (issue 3)
        runtime.alerting = alerting.service_for(runtime, emit=runtime.emit,
                                                panel_for=panels.rule_panels())
        runtime.add(alerting.parts(runtime.alerting, settings))
        if settings.watchdog is not None:                # pings an outside service (issue 18)
            runtime.add(watchdog.parts(runtime))
        if settings.report.recipients:                   # the morning e-mail (issue 6)
            runtime.report_mailer = mailer.DailyMailer(settings, runtime.store)
            runtime.add(mailer.parts(runtime.report_mailer))
    app.extensions["dashboard.alerting"] = runtime.alerting
    app.extensions["dashboard.report_mailer"] = runtime.report_mailer

    @app.after_request
    def compress(resp):
        # gzip our own dynamic responses; pre-gzipped vendor files are served as they are.
        if (resp.direct_passthrough or resp.status_code < 200 or resp.status_code >= 300
                or "gzip" not in request.headers.get("Accept-Encoding", "")
                or resp.headers.get("Content-Encoding")
                or not resp.mimetype.startswith(COMPRESSIBLE)):
            return resp
        data = resp.get_data()
        if len(data) < 1024:
            return resp
        # A large answer (a long /api/history: megabytes) is compressed in an OS thread: zlib
        # releases the GIL, and the event loop serves everyone else meanwhile (issue 15).
        packed = (offload.run(gzip.compress, data, LARGE_GZIP_LEVEL)
                  if len(data) >= OFFLOAD_GZIP_BYTES else gzip.compress(data, GZIP_LEVEL))
        resp.set_data(packed)
        resp.headers["Content-Encoding"] = "gzip"
        resp.headers["Content-Length"] = str(len(resp.get_data()))
        resp.vary.add("Accept-Encoding")
        return resp

    if settings.trusted_proxies:
        # Behind nginx: take the client address and scheme from its X-Forwarded-* headers
        # (login rate limits are per client address), wrapping Socket.IO's routes as well.
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    logging.getLogger("dashboard").setLevel(logging.INFO)
    return app
