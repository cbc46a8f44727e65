"""Who may do what: the single enforcement point for every route of every blueprint.

``dashboard.app.create_app`` installs, in this order, one ``before_request`` chain for the whole
app (``hardening.init_limiter``, then ``enforce_on``):

1. Flask-Limiter (per client address, IPv6 per /64): ``auth.api_rate_limit`` over all of
   ``/api/``, and ``auth.login_rate_limit`` on ``POST /login``. Kept in the dashboard's own Redis
   (``message_queue``) when configured, else in memory (and in memory while that Redis is
   unreachable); never in the monitored ``[redis]``.
2. ``enforce``: authenticate (``Authorization: Bearer`` token, else the session cookie, whose
   random id must name a live session in the store: see dashboard/auth/accounts.py), then
   decide: public endpoints pass (an invalid token is ignored there, so ``/healthz`` is always
   200); otherwise no principal -> 302 to /login
   (pages) or 401 JSON (``/api/*``, ``/metrics``); a role too low -> 403; a state-changing
   request authenticated by the cookie must carry the CSRF token (Flask-WTF) -> else 400.

Required role of a view: ``@require_role(...)`` if given; else ``admin`` under ``/admin`` and
``/api/admin``; else ``operator`` for any method other than GET/HEAD/OPTIONS (ack, silences,
anything that changes state); else ``viewer``. Blueprints written elsewhere are covered without
any change; the decorators only make a rule explicit or loosen it (``public``, ``signed_link``).

Socket.IO connections do not pass through Flask routes: ``socket_principal`` is called from
``LiveNamespace.on_connect``.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from dashboard.auth import signing
from dashboard.auth.accounts import RANK, Accounts, Principal
from dashboard.store.pg import PgUnavailable
from dashboard.web import errors

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIXES = ("/admin", "/api/admin")
PUBLIC_ENDPOINTS = frozenset({"pages.healthz", "auth.login"})
LOGIN_KEY = "login"          # session: this login's random id; the store keeps its hash and ends it


# --- decorators for views (they only mark the function; ``enforce`` reads the marks) ---------

def require_role(role: str) -> Callable:
    """``@require_role("operator")`` under ``@bp.post(...)``: the least role that may call it."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: Callable) -> Callable:
        view._auth_role = role  # type: ignore[attr-defined]
        return view
    return mark


def public(view: Callable) -> Callable:
    """No login needed (health checks, the login page itself). Use sparingly."""
    view._auth_public = True  # type: ignore[attr-defined]
    return view


def signed_link(purpose: str, arg: str = "token") -> Callable:
    """The view may be reached without a login by whoever holds a valid signed link for
    ``purpose`` in the URL argument ``arg`` (see dashboard/auth/signing.py); an invalid, expired or
    used link is refused before the view runs. ``link_claims()`` gives the view the claims."""
    def mark(view: Callable) -> Callable:
        view._auth_link = (purpose, arg)  # type: ignore[attr-defined]
        return view
    return mark


def current_principal() -> Principal | None:
    """The principal of the current request (set by ``enforce``), or None."""
    return g.get("principal")


def link_claims() -> signing.LinkClaims | None:
    return g.get("link_claims")


def accounts(app: Flask | None = None) -> Accounts:
    return (app or current_app).extensions["dashboard.accounts"]


# --- Flask-Login ---------------------------------------------------------------------------

class SessionUser(UserMixin):
    def __init__(self, principal: Principal, tag: str) -> None:
        self.principal = principal
        self.name = principal.name
        self.role = principal.role
        self._tag = tag

    def get_id(self) -> str:
        return f"{self.principal.id}.{self._tag}"


class TokenUser(UserMixin):
    """Lets ``flask_login.current_user`` answer for token-authenticated requests too."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.name = principal.name
        self.role = principal.role

    def get_id(self) -> str:
        return f"token.{self.principal.id}"


def _load_session_user(user_id: str) -> SessionUser | None:
    uid, _, tag = (user_id or "").partition(".")
    if not re.fullmatch(r"[0-9]+", uid):
        return None
    user = accounts().user(int(uid))
    if user is None or user.session_tag != tag:
        return None                       # deleted, or the password changed since login
    if accounts().session_user(session.get(LOGIN_KEY)) != user.id:
        return None                       # logged out, expired, or never issued by this store
    return SessionUser(Principal(user.name, user.role, "session", user.id), tag)


def start_session(user) -> None:
    """Log ``user`` (an accounts.User) in: a fresh session in the store, its id in the cookie
    (permanent: the browser keeps it for ``session_idle_h`` after the last answer)."""
    session.clear()
    principal = Principal(user.name, user.role, "session", user.id)
    login_user(SessionUser(principal, user.session_tag))
    session.permanent = True
    session[LOGIN_KEY] = accounts().start_session(user.id)


def end_session() -> None:
    """End this request's session in the store (copies of the cookie die with it) and clear it."""
    accounts().end_session(session.get(LOGIN_KEY))
    logout_user()
    session.clear()


def session_principal() -> Principal | None:
    """The logged-in user of the cookie session while its record in the store lasts."""
    uid = session.get("_user_id")
    if not uid:
        return None
    user = _load_session_user(uid)
    if user is None:
        end_session()
        return None
    g._login_user = user
    return user.principal


def bearer_token() -> str | None:
    scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
    return cred.strip() if scheme.lower() == "bearer" else None


def socket_connect_guard(auth: Any = None) -> None:
    """Socket.IO connect handler: refuse without a login (python-socketio would otherwise
    accept the default namespace from anyone)."""
    if socket_principal(auth) is None:
        raise ConnectionRefusedError("login required")


def socket_principal(auth: Any) -> Principal | None:
    """For Socket.IO connect: a token in the auth payload ``{"token": ...}`` or the
    Authorization header of the handshake, else the session cookie."""
    token = auth.get("token") if isinstance(auth, dict) else None
    token = token if isinstance(token, str) else bearer_token()
    if token:
        return accounts().verify_token(token)
    return session_principal()


# --- the enforcement point -----------------------------------------------------------------

def required_role(view: Callable | None) -> str:
    explicit = getattr(view, "_auth_role", None)
    if explicit:
        return explicit
    if request.path.startswith(ADMIN_PREFIXES):
        return "admin"
    return "viewer" if request.method in SAFE_METHODS else "operator"


def _is_public(view: Callable | None) -> bool:
    if request.endpoint in PUBLIC_ENDPOINTS or getattr(view, "_auth_public", False):
        return True
    if request.endpoint == "static":
        # Style sheets only (the login and acknowledge-link pages need them; they hold no data).
        name = (request.view_args or {}).get("filename", "")
        return name.endswith(".css") and "/" not in name
    return request.path == "/metrics" and current_app.config["SETTINGS"].metrics_public


def enforce():
    g.principal = None
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    # Public first: /healthz must answer 200 to a monitor whatever Authorization header it
    # sends (a stale or revoked token), and the login page must open for such a browser.
    is_public = _is_public(view)
    token = bearer_token()
    try:
        if token is not None:
            g.principal = accounts().verify_token(token)
            if g.principal is None and not is_public:
                return errors.refuse(401, "invalid or revoked token")
            if g.principal is None:
                token = None                     # ignored: as if the header were not there
            else:
                g._login_user = TokenUser(g.principal)
        if token is None:
            g.principal = session_principal()
    except PgUnavailable:
        # No login can be checked while the store's server is down: /healthz still answers
        # (as to anyone: "degraded"); anything else is a 503 (web/errors.py).
        if not is_public:
            raise
        g.principal, token = None, None
    by_cookie = token is None

    if is_public:
        if by_cookie and request.method not in SAFE_METHODS:
            current_app.extensions["csrf"].protect()     # the login form too (login CSRF)
        return None

    link = getattr(view, "_auth_link", None)
    if link is not None:
        purpose, arg = link
        try:
            g.link_claims = signing.signer().check((request.view_args or {}).get(arg, ""), purpose)
        except signing.LinkRefused as e:
            return errors.refuse(403 if g.principal else 401, str(e))
        if g.principal is None:
            g.principal = Principal("link", "operator", "link")
        if by_cookie and request.method not in SAFE_METHODS:
            current_app.extensions["csrf"].protect()
        return None

    if g.principal is None:
        if errors.wants_json() or request.method not in SAFE_METHODS:
            return errors.refuse(401, "login required (session cookie or Authorization: Bearer token)")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    need = required_role(view)
    if not g.principal.can(need):
        return errors.refuse(403, f"this needs the {need} role; you are {g.principal.role}")
    if by_cookie and request.method not in SAFE_METHODS:
        current_app.extensions["csrf"].protect()
    return None


def _csrf_error(e: CSRFError):
    return errors.refuse(400, f"CSRF check failed: {e.description} Reload the page and try again.")


def init_app(app: Flask, runtime) -> None:
    settings = runtime.settings
    app.secret_key = signing.secret_key(settings.data_dir)
    app.config.update(
        SESSION_COOKIE_NAME="dashboard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.auth.session_idle_h),
        REMEMBER_COOKIE_HTTPONLY=True,
        # A wall screen keeps its page open for days: the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_CHECK_DEFAULT=False,         # ``enforce`` calls protect() after authenticating
    )
    app.extensions["dashboard.accounts"] = Accounts(
        runtime.store.connect, settings.auth.session_idle_h, settings.auth.session_max_h,
        data_dir=settings.data_dir)
    app.extensions["dashboard.signing"] = signing.LinkSigner(app.secret_key, runtime.store.connect)

    lm = LoginManager()
    lm.init_app(app)
    lm.user_loader(_load_session_user)
    lm.login_view = "auth.login"
    CSRFProtect(app)

    tz = settings.tz
    app.add_template_filter(
        lambda t: datetime.fromtimestamp(float(t), tz).strftime("%Y-%m-%d %H:%M"), "auth_ts")


def enforce_on(app: Flask) -> None:
    """``enforce`` before every route of every blueprint (after the rate limiter's check)."""
    app.before_request(enforce)
    app.register_error_handler(CSRFError, _csrf_error)
