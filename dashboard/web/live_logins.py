"""Who holds each ``/live`` socket, checked again for as long as it stays open.

Socket.IO authenticates once, at connect: without more, a wall screen keeps receiving samples
after its token is revoked, its user is deleted or demoted, its password is reset, or after
logout. So the login of each socket (token id; or user id, the password's tag and this login's
id) is remembered at connect, and:

* ``resume`` checks it again before answering;
* a background task checks every socket every ``RECHECK_S`` and disconnects those whose login
  no longer holds: that catches sessions past their lifetime (a session socket holds while its
  record in the store does; the check counts as a use);
* the same task looks every ``POLL_S`` at the store's count of ended logins
  (``Accounts.changes``, one row): when another process ended one (``revoke-token`` on the
  command line, an admin, a logout or a password change on another web instance, on this
  machine or another sharing the store) every socket is checked at once, so the socket is
  closed within about ``POLL_S`` (the issue allows 2 s), for the price of one small read;
* changes made in this process end that principal's sockets at once: ``Accounts`` tells us
  about token revocations, deleted users, role changes and password resets, and the logout view
  about a logout (only the sockets of that login: the same user elsewhere stays connected).

The task starts with the first socket (never at import or in ``create_app``), ends when the
last socket is gone and starts again with the next; it sleeps with the Socket.IO server's own
``sleep``, so it is a greenlet under eventlet/gevent and a daemon thread in threading mode.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from dashboard import beat
from dashboard.auth import guard as auth_mod

if TYPE_CHECKING:
    from dashboard.auth.accounts import Accounts

log = logging.getLogger(__name__)

RECHECK_S = 30.0
POLL_S = 1.0


@dataclass(frozen=True)
class SocketLogin:
    kind: str                      # "session" | "token"
    id: int                        # user id or token id
    role: str
    tag: str | None = None         # session: the password's tag when it logged in
    login_id: str | None = None    # session: which login (a logout ends only its sockets)


def from_handshake(auth: Any) -> SocketLogin | None:
    """The login of a connecting socket (inside the connect handler), or None."""
    from flask import session

    p = auth_mod.socket_principal(auth)
    if p is None or p.id is None:
        return None
    if p.kind == "token":
        return SocketLogin("token", p.id, p.role)
    tag = str(session.get("_user_id", "")).partition(".")[2]
    return SocketLogin("session", p.id, p.role, tag, session.get(auth_mod.LOGIN_KEY))


def still_valid(login: SocketLogin, accounts: "Accounts") -> bool:
    """Whether the token is unrevoked, or the user exists with the same password and role and
    the session is still on record (not logged out, not expired)."""
    if login.kind == "token":
        t = accounts.token(login.id)
        return t is not None and t.revoked is None and t.role == login.role
    u = accounts.user(login.id)
    return (u is not None and u.session_tag == login.tag and u.role == login.role
            and accounts.session_user(login.login_id) == login.id)


class LoginWatch:
    """The logins of one Socket.IO namespace's sockets, and the task that re-checks them."""

    def __init__(self, accounts: "Accounts", disconnect: Callable[[str], None],
                 start_task: Callable[..., Any], sleep: Callable[[float], Any],
                 recheck_s: float = RECHECK_S, poll_s: float = POLL_S) -> None:
        self.accounts = accounts
        self.poll_s = poll_s
        self._disconnect = disconnect
        self._start_task = start_task
        self._sleep = sleep
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._unreadable_logged_at = float("-inf")
        self._held: dict[str, SocketLogin] = {}
        self._watching = False

    def connected(self, sid: str, login: SocketLogin) -> None:
        with self._lock:
            self._held[sid] = login
            start, self._watching = not self._watching, True
        if start:
            self._start_task(self._watch)

    def gone(self, sid: str) -> None:
        with self._lock:
            self._held.pop(sid, None)

    def check(self, sid: str) -> bool:
        """For ``resume``: False (and the socket is disconnected) when its login lapsed."""
        with self._lock:
            login = self._held.get(sid)
        if login is not None and self._valid(login):
            return True
        self._end([sid], "its login is no longer valid")
        return False

    def account_changed(self, kind: str, ident: int) -> None:
        """``Accounts`` listener: ``("token", id)`` revoked, ``("user", id)`` deleted, role or
        password changed. The sockets of that principal are checked now."""
        want = "token" if kind == "token" else "session"
        with self._lock:
            mine = [(s, lg) for s, lg in self._held.items() if lg.kind == want and lg.id == ident]
        self._end([s for s, lg in mine if not self._valid(lg)], f"{kind} {ident} changed")

    def logged_out(self, user_id: int, login_id: str | None) -> None:
        with self._lock:
            mine = [s for s, lg in self._held.items()
                    if lg.kind == "session" and lg.id == user_id and lg.login_id == login_id]
        self._end(mine, f"user {user_id} logged out")

    def check_all(self) -> int:
        """Disconnect every socket whose login lapsed; returns how many."""
        with self._lock:
            held = list(self._held.items())
        lapsed = [sid for sid, login in held if not self._valid(login)]
        self._end(lapsed, "its login is no longer valid")
        return len(lapsed)

    def _valid(self, login: SocketLogin) -> bool:
        try:
            return still_valid(login, self.accounts)
        except sqlite3.OperationalError as e:    # the store away (a full disk, PostgreSQL down)
            self._store_away("could not check live sockets' logins (kept until the store answers)", e)
            return True
        except Exception:  # noqa: BLE001 - the accounts unreadable: keep, try again later
            log.exception("could not check a socket's login")
            return True

    def _end(self, sids: list[str], why: str) -> None:
        for sid in sids:
            self.gone(sid)
            log.info("closing live socket %s: %s", sid, why)
            try:
                self._disconnect(sid)
            except Exception:  # noqa: BLE001 - already gone
                log.debug("disconnect of %s failed", sid, exc_info=True)

    def _store_away(self, what: str, e: Exception) -> None:
        """One line a minute while the store is away, not a traceback per socket per second."""
        now = time.monotonic()
        if now - self._unreadable_logged_at >= 60:
            self._unreadable_logged_at = now
            log.warning("%s: %s", what, e)

    def _changes(self) -> int | None:
        try:
            return self.accounts.changes()
        except sqlite3.OperationalError as e:
            self._store_away("could not read the count of ended logins (the store is away)", e)
            return None
        except Exception:  # noqa: BLE001 - the store unreadable: the full re-check still runs
            log.warning("could not read the count of ended logins", exc_info=True)
            return None

    def _watch(self) -> None:
        seen = self._changes()
        last_full = time.monotonic()
        while True:
            # On the process's beat: the poll wakes with the tick, not on a phase of its own.
            self._sleep(beat.sleep_within(min(self.poll_s, self.recheck_s)))
            with self._lock:
                if not self._held:
                    self._watching = False        # the next socket starts a new task
                    return
            now, changes = time.monotonic(), self._changes()
            moved = changes is not None and changes != seen
            if not moved and now - last_full < self.recheck_s:
                continue
            if changes is not None:
                seen = changes
            last_full = now
            try:
                self.check_all()
            except Exception:  # noqa: BLE001 - never let the watch die with sockets left
                log.exception("re-checking live sockets failed")
