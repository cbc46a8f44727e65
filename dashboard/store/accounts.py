"""The accounts' tables (``dashboard/auth/accounts.py`` keeps the policy: hashing, lifetimes,
roles; this module only keeps what it decides).

* ``auth_users``: name, role, password hash ("!" = cannot log in), created, last login.
* ``auth_tokens``: API tokens by the SHA-256 of their text, each with one role; revoked ones
  are kept (with when) for the list.
* ``auth_sessions``: browser logins by the SHA-256 of their id, with the user, when they started
  and when they were last seen.
* ``auth_known_addresses``: per user, keyed hashes of the addresses they logged in from.

The repository keeps one connection (``connect``: the store's) for its life and serialises its
calls with a lock, as web requests of any thread use it. Several statements of one method run
under one hold of the lock.
"""
from __future__ import annotations

import sqlite3
import threading
from typing import Any, Callable, cast

from dashboard.store.txn import Connection, Duplicate, immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    pw_hash    TEXT NOT NULL,
    created    REAL NOT NULL,
    last_login REAL
);
CREATE TABLE IF NOT EXISTS auth_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created    REAL NOT NULL,
    created_by TEXT NOT NULL,
    last_used  REAL,
    revoked    REAL
);
CREATE TABLE IF NOT EXISTS auth_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    created    REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions(user_id);
CREATE TABLE IF NOT EXISTS auth_changes (  -- bumped by every ended login: web instances poll it
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    n          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_known_addresses (
    user_id    INTEGER NOT NULL,
    addr_hash  TEXT NOT NULL,
    last_login REAL NOT NULL,
    PRIMARY KEY (user_id, addr_hash)
);
"""

# The rows the repository gives, in column order:
UserRow = tuple[int, str, str, str, float, "float | None"]     # id, name, role, pw_hash, created, last_login
TokenRow = tuple[int, str, str, float, str, "float | None", "float | None"]
#          id, name, role, created, created_by, last_used, revoked
TokenAuth = tuple[int, str, str, str, "float | None"]  # id, name, role, token_hash, revoked
SessionRow = tuple[int, float, float]                  # user_id, created, last_seen

_USER_COLS = "id, name, role, pw_hash, created, last_login"
_TOKEN_COLS = "id, name, role, created, created_by, last_used, revoked"


class AccountsRepo:
    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._conn = connect()
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _q(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def database_file(self) -> str | None:
        """The path of the database file; None or "" when it has none (in memory)."""
        files = [r[2] for r in self._q("PRAGMA database_list") if r[1] == "main"]
        return files[0] if files else None

    # --- users ---------------------------------------------------------------------------------

    def has_users(self) -> bool:
        return bool(self._q("SELECT count(*) FROM auth_users")[0][0])

    def create_user(self, name: str, role: str, pw_hash: str, now: float) -> int:
        """The new user's id; ``Duplicate`` when the name is taken."""
        try:
            with self._lock:
                cur = self._conn.execute(
                    "INSERT INTO auth_users (name, role, pw_hash, created) VALUES (?, ?, ?, ?)",
                    (name, role, pw_hash, now))
        except sqlite3.IntegrityError:
            raise Duplicate(name) from None
        return cast(int, cur.lastrowid)

    def create_first_admin(self, name: str, pw_hash: str, now: float) -> bool:
        """An admin when there is no user at all; False (nothing written) when there is one. The
        check and the insert share one write transaction, so concurrent processes create one."""
        with self._lock, immediate(self._conn):
            if self._conn.execute("SELECT count(*) FROM auth_users").fetchone()[0]:
                return False
            self._conn.execute(
                "INSERT INTO auth_users (name, role, pw_hash, created) VALUES (?, 'admin', ?, ?)",
                (name, pw_hash, now))
            return True

    def user(self, user_id: int) -> UserRow | None:
        rows = self._q(f"SELECT {_USER_COLS} FROM auth_users WHERE id = ?", (user_id,))
        return cast(UserRow, rows[0]) if rows else None

    def user_by_name(self, name: str) -> UserRow | None:
        rows = self._q(f"SELECT {_USER_COLS} FROM auth_users WHERE name = ?", (name,))
        return cast(UserRow, rows[0]) if rows else None

    def users(self) -> list[UserRow]:
        """Every user, by name."""
        return cast(list[UserRow], self._q(f"SELECT {_USER_COLS} FROM auth_users ORDER BY name"))

    def record_login(self, user_id: int, now: float) -> None:
        with self._lock:
            self._conn.execute("UPDATE auth_users SET last_login = ? WHERE id = ?", (now, user_id))

    def admins_other_than(self, user_id: int) -> int:
        """How many admins there are besides ``user_id``."""
        return int(self._q("SELECT count(*) FROM auth_users WHERE role = 'admin' AND id != ?",
                           (user_id,))[0][0])

    def set_password(self, user_id: int, pw_hash: str) -> None:
        """The new hash, and the user's sessions ended with it."""
        with self._lock, immediate(self._conn):
            self._conn.execute("UPDATE auth_users SET pw_hash = ? WHERE id = ?", (pw_hash, user_id))
            self._end_sessions_of(user_id)
            self._bump()

    def set_role(self, user_id: int, role: str) -> None:
        """The new role, and the user's sessions ended with it."""
        with self._lock, immediate(self._conn):
            self._conn.execute("UPDATE auth_users SET role = ? WHERE id = ?", (role, user_id))
            self._end_sessions_of(user_id)
            self._bump()

    def delete_user(self, user_id: int) -> None:
        """The user, its sessions and its known addresses."""
        with self._lock, immediate(self._conn):
            self._conn.execute("DELETE FROM auth_users WHERE id = ?", (user_id,))
            self._end_sessions_of(user_id)
            self._conn.execute("DELETE FROM auth_known_addresses WHERE user_id = ?", (user_id,))
            self._bump()

    # --- what web instances poll -------------------------------------------------------------

    def _bump(self) -> None:
        """Within the caller's lock and transaction: a login ended (logout, revocation, a
        password or role change, a deletion)."""
        self._conn.execute("INSERT INTO auth_changes (id, n) VALUES (1, 1)"
                           " ON CONFLICT(id) DO UPDATE SET n = n + 1")

    def changes(self) -> int:
        """How many times a login ended so far: a web instance that sees it move re-checks the
        logins of its live sockets (dashboard/web/live_logins.py)."""
        rows = self._q("SELECT n FROM auth_changes WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    # --- sessions (by the hash of their id) -----------------------------------------------------

    def prune_sessions(self, started_before: float, seen_before: float) -> None:
        """Anyone's sessions started before ``started_before`` or last seen before ``seen_before``."""
        with self._lock:
            self._conn.execute("DELETE FROM auth_sessions WHERE created < ? OR last_seen < ?",
                               (started_before, seen_before))

    def add_session(self, id_hash: str, user_id: int, now: float) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO auth_sessions (id_hash, user_id, created, last_seen) "
                               "VALUES (?, ?, ?, ?)", (id_hash, user_id, now, now))

    def session(self, id_hash: str) -> SessionRow | None:
        rows = self._q("SELECT user_id, created, last_seen FROM auth_sessions WHERE id_hash = ?",
                       (id_hash,))
        return cast(SessionRow, rows[0]) if rows else None

    def touch_session(self, id_hash: str, now: float) -> None:
        """The session was seen ``now``."""
        with self._lock:
            self._conn.execute("UPDATE auth_sessions SET last_seen = ? WHERE id_hash = ?",
                               (now, id_hash))

    def end_session(self, id_hash: str) -> None:
        with self._lock, immediate(self._conn):
            if self._conn.execute("DELETE FROM auth_sessions WHERE id_hash = ?",
                                  (id_hash,)).rowcount:
                self._bump()

    def _end_sessions_of(self, user_id: int) -> None:
        """Within the caller's lock, beside the change that ends them."""
        self._conn.execute("DELETE FROM auth_sessions WHERE user_id = ?", (user_id,))

    # --- addresses a user logged in from --------------------------------------------------------

    def remember_address(self, user_id: int, addr_hash: str, now: float, forget_before: float,
                         keep: int) -> None:
        """The user logged in from ``addr_hash`` now. Addresses anyone last logged in from before
        ``forget_before`` are forgotten, and the user's beyond their ``keep`` most recent."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO auth_known_addresses (user_id, addr_hash, last_login) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, addr_hash) DO UPDATE SET last_login = excluded.last_login",
                (user_id, addr_hash, now))
            self._conn.execute(
                "DELETE FROM auth_known_addresses WHERE last_login < ? OR (user_id = ? AND "
                "addr_hash NOT IN (SELECT addr_hash FROM auth_known_addresses WHERE user_id = ? "
                "ORDER BY last_login DESC LIMIT ?))",
                (forget_before, user_id, user_id, keep))

    def knows_address(self, user_id: int, addr_hash: str, since: float) -> bool:
        """Whether the user logged in from ``addr_hash`` at ``since`` or later."""
        return bool(self._q("SELECT 1 FROM auth_known_addresses WHERE user_id = ? AND "
                            "addr_hash = ? AND last_login >= ?", (user_id, addr_hash, since)))

    # --- tokens (by the hash of their text) -----------------------------------------------------

    def create_token(self, name: str, role: str, token_hash: str, now: float,
                     created_by: str) -> int:
        """The new token's id; ``Duplicate`` when the hash is known already."""
        try:
            with self._lock:
                cur = self._conn.execute(
                    "INSERT INTO auth_tokens (name, role, token_hash, created, created_by) "
                    "VALUES (?, ?, ?, ?, ?)", (name, role, token_hash, now, created_by))
        except sqlite3.IntegrityError:
            raise Duplicate("token") from None
        return cast(int, cur.lastrowid)

    def token(self, token_id: int) -> TokenRow | None:
        rows = self._q(f"SELECT {_TOKEN_COLS} FROM auth_tokens WHERE id = ?", (token_id,))
        return cast(TokenRow, rows[0]) if rows else None

    def tokens(self) -> list[TokenRow]:
        """Every token, the live ones first, each group by id."""
        return cast(list[TokenRow], self._q(
            f"SELECT {_TOKEN_COLS} FROM auth_tokens ORDER BY revoked IS NOT NULL, id"))

    def token_by_hash(self, token_hash: str) -> TokenAuth | None:
        rows = self._q("SELECT id, name, role, token_hash, revoked FROM auth_tokens "
                       "WHERE token_hash = ?", (token_hash,))
        return cast(TokenAuth, rows[0]) if rows else None

    def revoke_token(self, token_id: int, now: float) -> bool:
        """True when the token was live and is revoked now (False: unknown or revoked before)."""
        with self._lock, immediate(self._conn):
            cur = self._conn.execute("UPDATE auth_tokens SET revoked = ? WHERE id = ? "
                                     "AND revoked IS NULL", (now, token_id))
            if cur.rowcount:
                self._bump()
        return bool(cur.rowcount)

    def touch_token(self, token_id: int, now: float) -> None:
        """The token was used ``now``."""
        with self._lock:
            self._conn.execute("UPDATE auth_tokens SET last_used = ? WHERE id = ?", (now, token_id))
