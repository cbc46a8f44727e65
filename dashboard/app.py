"""The Flask application factory."""
from __future__ import annotations

import gzip
import logging

from flask import Flask, request

from dashboard.config import load as config_mod
from dashboard.config.settings import Settings
from dashboard.runtime import Runtime

COMPRESSIBLE = ("application/json", "text/html", "text/css", "text/csv", "application/javascript",
                "text/javascript", "text/plain")


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

    from dashboard.web import api, db as dbviews, live, pages
    from dashboard.auth import guard as auth

    from dashboard.web import errors
    errors.init_app(app)                         # BadRequest -> 4xx JSON, for every blueprint
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    from dashboard.web import fleet
    app.register_blueprint(fleet.bp)             # issue 8: one row per host, agents included
    auth.init_app(app, runtime)       # logins, roles, CSRF, rate limits, headers (issue 7)
    if role == "collector":
        runtime.emitter = live.broadcaster(live.external_emitter(settings))
    else:
        live.init_app(app, runtime, async_mode or settings.async_mode)
    dbviews.init_app(app, runtime)    # /api/db/*, Socket.IO db_statements (issue 3)
    from dashboard import alerting
    from dashboard.web import alerts as alerts_views  # issue 5: engine sink, outbox, /alerts, /api/alerts
    app.extensions["dashboard.alerting"] = alerting.install(runtime, emit=runtime.emit)
    app.register_blueprint(alerts_views.bp)
    from dashboard.web import metrics as prometheus  # issue 8: GET /metrics (auth as in dashboard.auth)
    app.register_blueprint(prometheus.bp)
    from dashboard.report import views as report_views; report_views.init_app(app, runtime)  # issue 6: daily summary

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
        resp.set_data(gzip.compress(data, compresslevel=5))
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
