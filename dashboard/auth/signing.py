"""Signed one-use links (acknowledge links in notifications) and the app's secret key.

A link token is ``itsdangerous.URLSafeSerializer`` (HMAC-SHA256 over a JSON payload, salted
with the link's *purpose*) carrying ``{"d": data, "exp": epoch, "n": nonce}``:

* **HMAC** — a token signed for one purpose ("ack") never verifies for another, and any edit
  to the payload breaks the signature.
* **Expiry** is fixed when the link is made (``exp`` inside the signed payload), so changing the
  verifier's clock tolerance cannot stretch an old link.
* **One use** — ``consume`` records the nonce in the store (``dashboard.store.link_uses``) in
  the same transaction that checks it; a second ``consume`` of the same token is refused, also across
  processes sharing the store's file. Rows are pruned once their link has expired anyway.

``check`` validates without consuming: a GET of the link (mail scanners and link previews fetch
links) must show a confirmation page and only the POST from that page may ``consume``.

The secret key lives in ``<data_dir>/secret_key`` (32 random bytes, mode 0600), created once;
it is never printed or logged. Sessions, CSRF tokens and link signatures all derive from it, so
deleting the file logs everyone out and voids every outstanding link.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from itsdangerous import BadSignature, URLSafeSerializer

from dashboard.store.link_uses import LinkUsesRepo

SECRET_FILE = "secret_key"
DEFAULT_TTL_S = 24 * 3600

class LinkRefused(Exception):
    """The link cannot be used. ``reason`` is one of ``invalid``, ``expired``, ``used``; the
    message is safe to show to the person who clicked (it never echoes the token)."""

    MESSAGES = {"invalid": "This link is not valid.",
                "expired": "This link has expired.",
                "used": "This link has already been used."}

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    purpose: str
    data: Any
    expires: float
    nonce: str


def secret_key(data_dir: Path | str) -> bytes:
    """The installation's secret key, created on first use (O_EXCL, 0600: two processes starting
    at once agree on one key)."""
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):                  # another process may be writing it right now
            key = path.read_bytes()
            if len(key) >= 32:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is shorter than 32 bytes; delete it to make a new key") from None
    try:
        os.write(fd, secrets.token_bytes(32))
    finally:
        os.close(fd)
    return path.read_bytes()


class LinkSigner:
    """``sign`` / ``check`` / ``consume`` signed one-use links.

    ``connect`` is the store's (``store.connect``): used links are kept there.
    """

    def __init__(self, key: bytes, connect: Callable[[], Any],
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._uses = LinkUsesRepo(connect)
        self._clock = clock

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(self._key, salt=f"dashboard-link:{purpose}")

    def sign(self, purpose: str, data: Any, ttl_s: float = DEFAULT_TTL_S) -> str:
        """A URL-safe token for ``data`` (anything JSON-serialisable), valid ``ttl_s`` seconds."""
        payload = {"d": data, "exp": round(self._clock() + ttl_s, 3), "n": secrets.token_urlsafe(12)}
        return self._serializer(purpose).dumps(payload)

    def check(self, token: str, purpose: str) -> LinkClaims:
        """Signature, purpose, expiry and not-yet-used; does not use the link up."""
        claims = self._decode(token, purpose)
        if self._uses.used(claims.nonce):
            raise LinkRefused("used")
        return claims

    def consume(self, token: str, purpose: str) -> LinkClaims:
        """Like ``check``, and marks the link used; exactly one caller ever gets the claims."""
        claims = self._decode(token, purpose)
        now = self._clock()
        # Uses of links expired a minute ago are forgotten: the table stays small.
        if not self._uses.use(claims.nonce, purpose, now, claims.expires, forget_before=now - 60):
            raise LinkRefused("used")
        return claims

    def _decode(self, token: str, purpose: str) -> LinkClaims:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise LinkRefused("invalid")
        try:
            payload = self._serializer(purpose).loads(token)
        except BadSignature:
            raise LinkRefused("invalid") from None
        if not isinstance(payload, dict) or not {"d", "exp", "n"} <= payload.keys():
            raise LinkRefused("invalid")
        if self._clock() > float(payload["exp"]):
            raise LinkRefused("expired")
        return LinkClaims(purpose=purpose, data=payload["d"], expires=float(payload["exp"]),
                          nonce=str(payload["n"]))


def signer(app=None) -> LinkSigner:
    """The app's ``LinkSigner`` (created by ``dashboard.auth.init_app``)."""
    if app is None:
        from flask import current_app
        app = current_app
    return app.extensions["dashboard.signing"]


def for_runtime(runtime) -> LinkSigner:
    """A ``LinkSigner`` for code without a Flask app (the collector process's notifiers): the
    same key file and the same nonce table as the web app's, so links made here verify there."""
    return LinkSigner(secret_key(runtime.settings.data_dir), runtime.store.connect)
