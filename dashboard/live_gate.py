"""Who is connected is decided by the server alone (issue 13).

* python-socketio hands a client's *event* named ``connect`` or ``disconnect`` to the same
  handler as the server's own connect and disconnect. A socket could thus make the server forget
  it (and so never be cut when its login is revoked) or register itself under another login,
  while staying open. ``LifecycleOnly`` namespaces run those handlers only from the life cycle:
  a connect while the socket is pre-connected (between its CONNECT packet and the answer,
  when no client event is dispatched to it), a disconnect once the server marked it as leaving.
"""
from __future__ import annotations

import logging
from typing import Any

from flask_socketio import Namespace

log = logging.getLogger(__name__)

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
        from dashboard.auth import socket_connect_guard
        socket_connect_guard(auth)

