"""Who is connected is decided by the server alone (issue 13).

* python-socketio hands a client's *event* named ``connect`` or ``disconnect`` to the same
  handler as the server's own connect and disconnect. A socket could thus make the server forget
  it (and so never be cut when its login is revoked) or register itself under another login,
  while staying open. ``LifecycleOnly`` namespaces run those handlers only from the life cycle:
  a connect while the socket is pre-connected (between its CONNECT packet and the answer,
  when no client event is dispatched to it), a disconnect once the server marked it as leaving.
* An Engine.IO connection must hold a logged-in namespace ``LOGIN_WINDOW_S`` after it opened,
  and at every further window: every namespace refuses a connect without a login, so one
  that holds none never logged in, was refused, or its login ended (revoked, logged out). It
  gets no events, and is closed rather than left to hold a socket and try logins at leisure.
  One task checks the deadlines in order; it starts with the first connection and ends when no
  connection is left (as dashboard/web/live_logins.py's).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask_socketio import Namespace
from socketio import Server

from dashboard.auth.guard import socket_connect_guard

log = logging.getLogger(__name__)

LOGIN_WINDOW_S = 10.0
LIFECYCLE_EVENTS = frozenset({"connect", "disconnect"})


class LifecycleOnly(Namespace):
    """A namespace whose ``on_connect`` / ``on_disconnect`` no client event can call. Relies on
    python-socketio's default ``always_connect=False`` (the connect handler runs pre-connected)."""

    def trigger_event(self, event: str, *args: Any) -> Any:
        if event in LIFECYCLE_EVENTS and not self._from_lifecycle(event, args[0]):
            log.warning("ignored a client event named %r on %s", event, self.namespace)
            return None
        return super().trigger_event(event, *args)

    def _from_lifecycle(self, event: str, sid: str) -> bool:
        manager = self.server.manager
        if event == "connect":
            return manager.is_pre_connected(sid, self.namespace)
        return not manager.is_connected(sid, self.namespace)


class DefaultNamespace(LifecycleOnly):
    """``/``: nothing is served there, but python-socketio accepts it from anyone unless its
    connect handler refuses (#7)."""

    def __init__(self) -> None:
        super().__init__("/")

    def on_connect(self, auth: Any = None) -> None:
        socket_connect_guard(auth)


class LoginDeadline:
    """Closes the Engine.IO connections of ``server`` that hold no logged-in namespace when
    their window ends."""

    def __init__(self, server: Server, window_s: float = LOGIN_WINDOW_S) -> None:
        self.server = server
        self.window_s = window_s
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}     # Engine.IO sid -> deadline (monotonic), in order
        self._watching = False
        self._eio_connect = server.eio.handlers["connect"]
        server.eio.on("connect", self._connected)

    def _connected(self, eio_sid: str, environ: dict) -> Any:
        answer = self._eio_connect(eio_sid, environ)
        with self._lock:
            self._due[eio_sid] = time.monotonic() + self.window_s
            start, self._watching = not self._watching, True
        if start:
            self.server.start_background_task(self._watch)
        return answer

    def _logged_in(self, eio_sid: str) -> bool:
        manager = self.server.manager
        return any(manager.is_connected(manager.sid_from_eio_sid(eio_sid, ns), ns)
                   for ns in list(manager.get_namespaces()))

    def _check(self, eio_sid: str) -> None:
        if eio_sid not in self.server.eio.sockets:
            return                                  # closed meanwhile
        if self._logged_in(eio_sid):
            with self._lock:
                self._due[eio_sid] = time.monotonic() + self.window_s
            return
        log.info("closing Engine.IO connection %s: no login within %g s", eio_sid, self.window_s)
        self.server.eio.disconnect(eio_sid)

    def _watch(self) -> None:
        while True:
            with self._lock:
                if not self._due:
                    self._watching = False          # the next connection starts a new task
                    return
                eio_sid, due = next(iter(self._due.items()))
            wait = due - time.monotonic()
            if wait > 0:
                self.server.sleep(wait)
                continue
            with self._lock:
                self._due.pop(eio_sid, None)
            try:
                self._check(eio_sid)
            except Exception:  # noqa: BLE001 - never let the task die with connections left
                log.exception("checking Engine.IO connection %s failed", eio_sid)
