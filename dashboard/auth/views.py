"""Login, logout, and the admin pages for users, API tokens and (read-only, masked) settings.

Every page here is rendered by Jinja with autoescape; new passwords and tokens are shown once,
in the answer to the POST that made them (never put in the cookie session, which is signed but
readable), and never logged.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for

from dashboard.auth import guard as auth
from dashboard.auth import hardening
from dashboard.auth.accounts import ROLES, AccountError, new_password

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def _local_path(t: str) -> bool:
    r"""A path on this site. Browsers drop tabs and newlines from a Location and read ``\`` as
    ``/``, so ``/<TAB>/evil`` or ``/\evil`` would become ``//evil`` (another host); a newline
    would also make the header invalid (a 500)."""
    return (t.startswith("/") and t[1:2] not in ("/", "\\")
            and not any(ord(c) < 0x21 or c in "\\\x7f" for c in t)
            and urlsplit(t).scheme == "" and urlsplit(t).netloc == "")


def _safe_next(target: str | None) -> str:
    """Only a path on this site, else ``/`` — no open redirect. The path is checked once more
    percent-decoded (up to its query), for whatever decodes the Location a second time."""
    if target and _local_path(target) and _local_path(unquote(target.partition("?")[0])):
        return target
    return "/"


@bp.route("/login", methods=["GET", "POST"])
def login():
    nxt = _safe_next(request.values.get("next"))
    if request.method == "GET":
        p = auth.current_principal()
        if p is not None and p.kind == "session":
            return redirect(nxt)
        return render_template("login.html", next=nxt, error=None)
    name, addr = request.form.get("name", ""), request.remote_addr
    throttle = hardening.login_throttle()
    wait = throttle.wait_s(name, addr)
    if wait:
        log.warning("login refused from %s: failed logins for that name, %d s to wait", addr, wait)
        return hardening.refuse_login(wait, nxt)
    user = auth.accounts().authenticate(name, request.form.get("password", ""))
    if user is None:
        # The attempted name is not logged: people type passwords into the name field.
        log.warning("failed login from %s", addr)
        throttle.failed(name)
        return render_template("login.html", next=nxt,
                               error="Invalid user name or password."), 401
    throttle.succeeded(user.id, addr)
    auth.start_session(user)
    log.info("login: %s (%s) from %s", user.name, user.role, request.remote_addr)
    return redirect(nxt)


@bp.post("/logout")
@auth.require_role("viewer")
def logout():
    me, login_id = auth.current_principal(), session.get(auth.LOGIN_KEY)
    auth.end_session()
    watch = current_app.extensions.get("dashboard.live_logins")
    if watch is not None and me is not None and me.kind == "session" and me.id is not None:
        watch.logged_out(me.id, login_id)          # this login's live sockets end with it
    return redirect(url_for("auth.login"))


# --- admin pages (admin role: every path under /admin) --------------------------------------

def _admin_page(status: int = 200, **extra):
    acc = auth.accounts()
    return render_template("admin.html", users=acc.users(), tokens=acc.tokens(), roles=ROLES,
                           me=auth.current_principal(), **extra), status


def _who() -> str:
    p = auth.current_principal()
    return p.name if p else "?"


@bp.get("/admin")
def admin():
    return _admin_page()


@bp.post("/admin/users")
def admin_create_user():
    name = request.form.get("name", "")
    role = request.form.get("role", "viewer")
    password = request.form.get("password") or new_password()
    try:
        user = auth.accounts().create_user(name, role, password)
    except AccountError as e:
        return _admin_page(400, error=str(e))
    log.info("user %s (%s) created by %s", user.name, user.role, _who())
    shown = None if request.form.get("password") else password
    return _admin_page(secret_for=user.name if shown else None, secret=shown,
                       message=f"User {user.name} created.")


@bp.post("/admin/users/<int:user_id>/role")
def admin_set_role(user_id: int):
    try:
        auth.accounts().set_role(user_id, request.form.get("role", ""))
    except AccountError as e:
        return _admin_page(400, error=str(e))
    log.info("role of user %d set to %s by %s", user_id, request.form.get("role"), _who())
    return redirect(url_for("auth.admin"))


@bp.post("/admin/users/<int:user_id>/password")
def admin_reset_password(user_id: int):
    user = auth.accounts().user(user_id)
    if user is None:
        abort(404)
    password = new_password()
    auth.accounts().set_password(user_id, password)     # also ends that user's sessions
    log.info("password of %s reset by %s", user.name, _who())
    return _admin_page(secret_for=user.name, secret=password,
                       message=f"New password for {user.name}.")


@bp.post("/admin/users/<int:user_id>/delete")
def admin_delete_user(user_id: int):
    me = auth.current_principal()
    if me is not None and me.kind == "session" and me.id == user_id:
        return _admin_page(400, error="you cannot delete yourself")
    try:
        auth.accounts().delete_user(user_id)
    except AccountError as e:
        return _admin_page(400, error=str(e))
    log.info("user %d deleted by %s", user_id, _who())
    return redirect(url_for("auth.admin"))


@bp.post("/admin/tokens")
def admin_create_token():
    try:
        token, text = auth.accounts().create_token(request.form.get("role", ""),
                                                   request.form.get("name", ""), _who())
    except AccountError as e:
        return _admin_page(400, error=str(e))
    log.info("token %d %s (%s) created by %s", token.id, token.name, token.role, _who())
    return _admin_page(secret_for=f"token {token.name}", secret=text,
                       message=f"Token {token.name} ({token.role}) created.")


@bp.post("/admin/tokens/<int:token_id>/revoke")
def admin_revoke_token(token_id: int):
    try:
        auth.accounts().revoke_token(token_id)
    except AccountError:
        abort(404)
    log.info("token %d revoked by %s", token_id, _who())
    return redirect(url_for("auth.admin"))


@bp.get("/admin/settings")
def admin_settings():
    settings = current_app.config["SETTINGS"]
    text = json.dumps(settings.masked(), indent=2, default=str)
    return render_template("admin_settings.html", settings_text=text)


# --- the same for scripts (Bearer token with the admin role) -------------------------------

def _token_json(t) -> dict:
    return {"id": t.id, "name": t.name, "role": t.role, "created": t.created,
            "created_by": t.created_by, "last_used": t.last_used, "revoked": t.revoked}


@bp.get("/api/admin/tokens")
def api_tokens():
    return jsonify(tokens=[_token_json(t) for t in auth.accounts().tokens()])


@bp.post("/api/admin/tokens")
def api_create_token():
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object {role, name}"), 400
    try:
        token, text = auth.accounts().create_token(str(body.get("role", "")),
                                                   str(body.get("name", "") or ""), _who())
    except AccountError as e:
        return jsonify(error=str(e)), 400
    log.info("token %d %s (%s) created by %s", token.id, token.name, token.role, _who())
    return jsonify(token=text, **_token_json(token)), 201


@bp.delete("/api/admin/tokens/<int:token_id>")
def api_revoke_token(token_id: int):
    try:
        auth.accounts().revoke_token(token_id)
    except AccountError as e:
        return jsonify(error=str(e)), 404
    log.info("token %d revoked by %s", token_id, _who())
    return jsonify(revoked=token_id)
