"""Socket.IO namespace ``/live``: every stored tick is pushed to browsers as one ``samples``
event (a list of ``{seq, ts, source, values, labels}``), and a (re)connecting browser asks for
what it missed with ``resume`` (``{after_seq}``) and gets it from the store.

Each tick is serialised once and broadcast; python-socketio encodes a broadcast packet once for
all clients.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from flask_socketio import Namespace, SocketIO


if TYPE_CHECKING:
    from dashboard.runtime import Runtime

log = logging.getLogger(__name__)

NAMESPACE = "/live"
MAX_RESUME_S = 6 * 3600          # a client gone longer than this re-loads history over HTTP
MAX_RESUME_SAMPLES = 50_000
CHANNEL = "flask-socketio"      # Flask-SocketIO's default; an external emitter must use the same


class LiveNamespace(Namespace):
    def __init__(self, runtime: "Runtime") -> None:
        super().__init__(NAMESPACE)
        self.runtime = runtime

    def on_connect(self, auth: Any = None) -> bool | None:
        # A valid session cookie, or a token in the auth payload / Authorization header (#7).
        from dashboard.auth import socket_connect_guard
        socket_connect_guard(auth)
        return None

    def on_resume(self, data: Any) -> dict:
        """Answer (as the event's acknowledgement) with every sample after ``after_seq``."""
        if not isinstance(data, dict) or not isinstance(data.get("after_seq"), int) \
                or isinstance(data.get("after_seq"), bool) or data["after_seq"] < 0:
            return {"error": "resume expects {after_seq: non-negative integer}"}
        since = time.time() - MAX_RESUME_S
        samples = self.runtime.store.after(data["after_seq"], since_ts=since,
                                           limit=MAX_RESUME_SAMPLES + 1)
        truncated = len(samples) > MAX_RESUME_SAMPLES
        samples = samples[:MAX_RESUME_SAMPLES]
        return {"samples": [s.to_wire() for s in samples],
                "last_seq": samples[-1].seq if samples else data["after_seq"],
                "truncated": truncated}


def init_app(app, runtime: "Runtime", async_mode: str) -> SocketIO:
    """The Socket.IO server of a web process. With ``message_queue`` set, every instance
    subscribes to it, so samples emitted by any process (the collector leader) reach every
    browser on every instance."""
    settings = runtime.settings
    socketio = SocketIO(
        app,
        async_mode=async_mode,
        message_queue=settings.message_queue,
        channel=CHANNEL,
        cors_allowed_origins=[settings.public_url, f"http://{settings.bind}"],
        max_http_buffer_size=64 * 1024,          # clients only send small control messages
        ping_interval=10, ping_timeout=10,
        json=None,
    )
    socketio.on_namespace(LiveNamespace(runtime))
    from dashboard.auth import socket_connect_guard
    socketio.on("connect")(socket_connect_guard)   # the default namespace needs a login too (#7)
    runtime.emitter = socketio.emit
    app.extensions["dashboard.socketio"] = socketio
    return socketio


def external_emitter(settings) -> SocketIO:
    """For a process without a web server (``python -m dashboard collect``): writes events to
    the message queue only. Flask-SocketIO's docs: same channel, ``async_mode="threading"``."""
    return SocketIO(message_queue=settings.message_queue, channel=CHANNEL, async_mode="threading")
