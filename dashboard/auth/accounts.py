"""Users, roles and API tokens: the policy (their tables: ``dashboard/store/accounts.py``).

* Passwords: werkzeug scrypt (``scrypt:32768:8:1``). A login for a name that does not exist
  still runs one scrypt check against a dummy hash, so "no such user" and "wrong password"
  take the same path and the same time.
* API tokens: ``dsh_`` + 32 random bytes (URL-safe). Only the SHA-256 of a token is stored; a
  token has ~256 bits of entropy, so a slow KDF would add nothing but per-request cost. Shown
  once at creation, revocable, each with one role.
* Roles are ranked viewer < operator < admin; a principal may do what its role or any lower
  role may.
* Sessions: a browser login is a row here (so every web instance, and a later shared database,
  sees the same sessions): the SHA-256 of its random id (the id itself is only in the signed
  cookie), the user, when it started and when it was last seen. It ends at logout, when the
  user's role or password changes or the user is deleted, when unused for ``session_idle_h``
  and in any case ``session_max_h`` after it started. Rows past either limit are pruned.
* Known addresses: per user, keyed hashes of the addresses they logged in from (at most
  ``KNOWN_ADDRESSES`` per user, forgotten after ``KNOWN_ADDRESS_DAYS``), so a throttled account
  still lets its owner in (dashboard/login_throttle.py).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from werkzeug.security import check_password_hash, generate_password_hash

from dashboard import offload
from dashboard.store.accounts import AccountsRepo
from dashboard.store.txn import Connection, Duplicate

ROLES = ("viewer", "operator", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "dsh_"
PASSWORD_METHOD = "scrypt"
NAME_MAX = 64
TOKEN_TOUCH_S = 60.0                 # last_used is written at most once a minute per token
SESSION_TOUCH_S = 60.0               # so is a session's last_seen (idle clock resolution)
KNOWN_ADDRESSES = 20
KNOWN_ADDRESS_DAYS = 90
T = TypeVar("T")


class AccountError(ValueError):
    """A request the accounts cannot honour; the message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a logged-in user, an API token or a signed link."""
    name: str
    role: str
    kind: str                        # "session" | "token" | "link"
    id: int | None = None

    def can(self, role: str) -> bool:
        return RANK.get(self.role, -1) >= RANK[role]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    pw_hash: str
    created: float
    last_login: float | None

    @property
    def session_tag(self) -> str:
        """Changes when the password changes, so sessions made before a reset stop working."""
        return hashlib.sha256(self.pw_hash.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    role: str
    created: float
    created_by: str
    last_used: float | None
    revoked: float | None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX or any(c.isspace() or not c.isprintable() for c in name):
        raise AccountError(f"a name is 1 to {NAME_MAX} printable characters without spaces")
    return name


def login_name(name: str) -> str:
    """The name a login form's text is looked up (and throttled) by."""
    return (name or "").strip()[:NAME_MAX + 1]


def new_password() -> str:
    return secrets.token_urlsafe(15)            # 20 characters, 120 bits


def _one_hash_at_a_time(fn: Callable[..., T], *args) -> T:
    """Run ``fn`` off the event loop (dashboard/offload.py), one hash at a time.

    scrypt costs ~0.13 s of CPU. On the event loop of the one eventlet worker every login would
    freeze all pages and Socket.IO for that long (8 logins at once stalled /healthz 1.3 s);
    hashlib.scrypt releases the GIL, so in a native thread it runs beside the loop. One at a time
    (a green semaphore: waiting logins yield): several at once would take both cores from the
    event loop (8 parallel: /healthz stalled 0.6-0.9 s instead of ~0.1)."""
    global _hash_gate
    if _hash_gate is None:
        _hash_gate = threading.Semaphore(1)     # made after monkey-patching, so it is green
    with _hash_gate:
        return offload.run(fn, *args)


_hash_gate: threading.Semaphore | None = None


def hash_password(password: str) -> str:
    return _one_hash_at_a_time(generate_password_hash, password, PASSWORD_METHOD)


def _check(pw_hash: str, password: str) -> bool:
    return _one_hash_at_a_time(check_password_hash, pw_hash, password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    """Users, tokens and sessions. ``connect`` gives a connection to the store's file."""

    def __init__(self, connect: Callable[[], Connection], session_idle_h: float = 12.0,
                 session_max_h: float = 168.0, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir
        self.session_idle_s = session_idle_h * 3600
        self.session_max_s = session_max_h * 3600
        self._repo = AccountsRepo(connect)
        self._touched: dict[int, float] = {}
        self._dummy_hash: str | None = None
        # Called with ("token", id) after a revocation and ("user", id) after a deletion, a
        # role or a password change: live sockets of that principal are checked at once.
        self.listeners: list[Callable[[str, int], None]] = []

    def _changed(self, kind: str, ident: int) -> None:
        for listener in self.listeners:
            try:
                listener(kind, ident)
            except Exception:  # noqa: BLE001 - the change is made; a listener must not undo it
                logging.getLogger(__name__).exception("accounts listener failed")

    def close(self) -> None:
        self._repo.close()

    def changes(self) -> int:
        """A number that moves whenever a login ends, in any process sharing the store."""
        return self._repo.changes()

    def data_dir(self) -> Path:
        """The store's data dir, for files kept beside it: the one given, else the directory of
        the SQLite file."""
        if self._data_dir is not None:
            return self._data_dir
        file = self._repo.database_file()
        return Path(file).parent if file else Path(".")

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, name: str, role: str, password: str | None = None,
                    pw_hash: str | None = None) -> User:
        """``password`` is hashed here; ``pw_hash`` stores a ready hash ("!" = cannot log in)."""
        name, role = check_name(name), check_role(role)
        if pw_hash is None:
            if not password or len(password) < 8:
                raise AccountError("a password has at least 8 characters")
            pw_hash = hash_password(password)
        try:
            user_id = self._repo.create_user(name, role, pw_hash, time.time())
        except Duplicate:
            raise AccountError(f"a user named {name!r} exists already") from None
        user = self.user(user_id)
        assert user is not None
        return user

    def bootstrap_admin(self, name: str = "admin") -> str | None:
        """Create the first admin with a random password if there is no user at all.

        Returns the password (to be shown once) or None when users exist. The check and the
        insert share one write transaction, so concurrent first starts create one admin.
        """
        if self._repo.has_users():
            return None                      # the usual case: no scrypt work at each start
        password = new_password()
        pw_hash = hash_password(password)
        if not self._repo.create_first_admin(name, pw_hash, time.time()):
            return None
        return password

    def user(self, user_id: int) -> User | None:
        row = self._repo.user(user_id)
        return User(*row) if row else None

    def user_by_name(self, name: str) -> User | None:
        row = self._repo.user_by_name(name)
        return User(*row) if row else None

    def users(self) -> list[User]:
        return [User(*r) for r in self._repo.users()]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None: one scrypt check either way."""
        user = self.user_by_name(login_name(name))
        if user is None or not user.pw_hash.startswith(PASSWORD_METHOD):
            if self._dummy_hash is None:
                self._dummy_hash = hash_password(secrets.token_urlsafe(16))
            _check(self._dummy_hash, password or "")
            return None
        if not _check(user.pw_hash, password or ""):
            return None
        self._repo.record_login(user.id, time.time())
        return user

    def set_password(self, user_id: int, password: str) -> None:
        if len(password) < 8:
            raise AccountError("a password has at least 8 characters")
        pw_hash = hash_password(password)
        self._repo.set_password(user_id, pw_hash)           # and ends the user's sessions
        self._changed("user", user_id)

    def _admins_left_without(self, user_id: int) -> int:
        return self._repo.admins_other_than(user_id)

    def set_role(self, user_id: int, role: str) -> None:
        check_role(role)
        user = self.user(user_id)
        if user is None:
            raise AccountError("no such user")
        if user.role == "admin" and role != "admin" and not self._admins_left_without(user_id):
            raise AccountError("the last admin cannot lose the admin role")
        self._repo.set_role(user_id, role)                  # and ends the user's sessions
        self._changed("user", user_id)

    def delete_user(self, user_id: int) -> None:
        user = self.user(user_id)
        if user is None:
            raise AccountError("no such user")
        if user.role == "admin" and not self._admins_left_without(user_id):
            raise AccountError("the last admin cannot be deleted")
        self._repo.delete_user(user_id)          # with its sessions and known addresses
        self._changed("user", user_id)

    # --- sessions (browser logins) --------------------------------------------------------------

    def start_session(self, user_id: int) -> str:
        """A new session of the user; returns its id for the signed cookie (only its hash is
        kept). Sessions past their lifetime, anyone's, are pruned here: logins are rare."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        self._repo.prune_sessions(now - self.session_max_s, now - self.session_idle_s)
        self._repo.add_session(_token_hash(sid), user_id, now)
        return sid

    def session_user(self, sid: object) -> int | None:
        """The user id of session ``sid`` while it lasts, else None (an expired one is deleted).
        Counts as a use: last_seen is written when a minute old or more."""
        if not isinstance(sid, str) or not 0 < len(sid) <= 100:
            return None
        digest = _token_hash(sid)
        row = self._repo.session(digest)
        if row is None:
            return None
        user_id, created, last_seen = row
        now = time.time()
        if now - created > self.session_max_s or now - last_seen > self.session_idle_s:
            self.end_session(sid)
            return None
        if now - last_seen >= SESSION_TOUCH_S:
            self._repo.touch_session(digest, now)
        return user_id

    def end_session(self, sid: object) -> None:
        if isinstance(sid, str):
            self._repo.end_session(_token_hash(sid))

    # --- addresses a user logged in from (dashboard/login_throttle.py hashes them) -----------

    def remember_address(self, user_id: int, addr_hash: str) -> None:
        now = time.time()
        self._repo.remember_address(user_id, addr_hash, now, now - KNOWN_ADDRESS_DAYS * 86400,
                                    KNOWN_ADDRESSES)

    def knows_address(self, user_id: int, addr_hash: str) -> bool:
        return self._repo.knows_address(user_id, addr_hash,
                                        time.time() - KNOWN_ADDRESS_DAYS * 86400)

    # --- tokens --------------------------------------------------------------------------------

    def create_token(self, role: str, name: str = "", created_by: str = "cli") -> tuple[Token, str]:
        """A new token: returns its record and the token text, which is never retrievable again."""
        check_role(role)
        name = check_name(name) if name else f"{role}-token"
        text = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = self._repo.create_token(name, role, _token_hash(text), time.time(), created_by)
        token = self.token(token_id)
        assert token is not None
        return token, text

    def token(self, token_id: int) -> Token | None:
        row = self._repo.token(token_id)
        return Token(*row) if row else None

    def tokens(self) -> list[Token]:
        return [Token(*r) for r in self._repo.tokens()]

    def revoke_token(self, token_id: int) -> None:
        revoked = self._repo.revoke_token(token_id, time.time())
        if not revoked and self.token(token_id) is None:
            raise AccountError("no such token")
        if revoked:
            self._changed("token", token_id)

    def verify_token(self, text: str) -> Principal | None:
        """The token's principal, or None when it is unknown or revoked."""
        if not text or not text.startswith(TOKEN_PREFIX) or len(text) > 200:
            return None
        digest = _token_hash(text)
        row = self._repo.token_by_hash(digest)
        if row is None or row[4] is not None or not hmac.compare_digest(row[3], digest):
            return None
        token_id, name, role = row[0], row[1], row[2]
        now = time.time()
        if now - self._touched.get(token_id, 0.0) > TOKEN_TOUCH_S:
            self._touched[token_id] = now
            self._repo.touch_token(token_id, now)
        return Principal(name=f"token:{name}", role=role, kind="token", id=token_id)
