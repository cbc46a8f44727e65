"""Socket.IO namespace ``/live``: every stored tick is pushed to browsers as one ``samples``
event (a list of ``{seq, ts, source, values, labels}``), and a (re)connecting browser asks for
what it missed with ``resume`` (``{after_seq}``) and gets it from the store (and, while the
store cannot write, from the ticks kept in memory: dashboard/store/spool.py).

Each tick is serialised once and broadcast; python-socketio encodes a broadcast packet once for
all clients.

A socket's login is remembered at connect and checked again on ``resume``, every 30 s, and at
once when the account changes or logs out (dashboard/web/live_logins.py). ``resume`` replays at most
the last 15 minutes and 5,000 samples (``truncated`` beyond: the page then reloads
``/api/history``), at most once a second per socket: a reconnect storm of wall screens must not
turn into a storm of large store reads.

Broadcasts (``samples``, ``alert``, ``db_statements``) go to the room ``LOGGED_IN`` only, which a
socket joins once its login is checked: not to the whole namespace, which also holds sockets
whose connect is still being decided. No client event can connect or disconnect a socket, and an
Engine.IO connection without a login is closed after 10 s (dashboard/web/live_gate.py).
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from flask import request
from flask_socketio import SocketIO
from socketio.packet import Packet

from dashboard import offload
from dashboard.model import Sample
from dashboard.store import spool
from dashboard.web import live_gate, live_logins

if TYPE_CHECKING:
    from dashboard.runtime import Runtime

log = logging.getLogger(__name__)

NAMESPACE = "/live"
MAX_RESUME_S = 15 * 60           # a client gone longer than this re-loads history over HTTP
MAX_RESUME_SAMPLES = 5_000       # ...and one that missed more samples than this
RESUME_EVERY_S = 1.0             # per socket; more often gets {"error"}
SEQ_MAX = 2 ** 63 - 1            # SQLite's largest integer
CHANNEL = "flask-socketio"      # Flask-SocketIO's default; an external emitter must use the same
LOGGED_IN = "logged-in"          # room of the sockets whose login was checked: broadcasts go there
RECHECK_ENV = "DASHBOARD_LIVE_RECHECK_S"   # seconds between re-checks of every socket's login
LOGIN_ENV = "DASHBOARD_LIVE_LOGIN_S"       # seconds an Engine.IO connection has to log in


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment (tests shorten waits this way), else
    ``default``."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _sid() -> str:
    """This socket's id: Flask-SocketIO sets ``request.sid`` inside its event handlers."""
    return str(request.sid)  # type: ignore[attr-defined]


class LiveNamespace(live_gate.LifecycleOnly):
    def __init__(self, runtime: "Runtime") -> None:
        super().__init__(NAMESPACE)
        self.runtime = runtime
        self.logins: live_logins.LoginWatch | None = None      # set by init_app
        self._resumed: dict[str, float] = {}                   # sid -> last resume (monotonic)
        self._resume_lock = threading.Lock()

    def on_connect(self, auth: Any = None) -> bool | None:
        # A valid session cookie, or a token in the auth payload / Authorization header (#7).
        login = live_logins.from_handshake(auth)
        if login is None:
            raise ConnectionRefusedError("login required")
        if self.logins is not None:
            self.logins.connected(_sid(), login)
        self.enter_room(_sid(), LOGGED_IN)
        return None

    def on_disconnect(self, reason: Any = None) -> None:
        if self.logins is not None:
            self.logins.gone(_sid())
        with self._resume_lock:
            self._resumed.pop(_sid(), None)

    def _too_soon(self, sid: str) -> bool:
        now = time.monotonic()
        with self._resume_lock:
            last = self._resumed.get(sid)
            if last is not None and now - last < RESUME_EVERY_S:
                return True
            self._resumed[sid] = now
        return False

    def on_resume(self, data: Any) -> dict:
        """Answer (as the event's acknowledgement) with the samples after ``after_seq``."""
        if not isinstance(data, dict) or not isinstance(data.get("after_seq"), int) \
                or isinstance(data.get("after_seq"), bool) or not 0 <= data["after_seq"] <= SEQ_MAX:
            return {"error": "resume expects {after_seq: non-negative integer}"}
        if self.logins is not None and not self.logins.check(_sid()):
            return {"error": "login no longer valid"}
        if self._too_soon(_sid()):
            # Not a reason to reload history: the page asks again after retry_after_s.
            return {"error": f"at most one resume per {RESUME_EVERY_S:g} s",
                    "retry_after_s": RESUME_EVERY_S}
        after, since = data["after_seq"], time.time() - MAX_RESUME_S
        # The ticks the store could not write yet are in memory (read here, on the loop: cheap);
        # the store's part is read off the loop (issue 15).
        kept = self.runtime.spool.kept_after(after, since, MAX_RESUME_SAMPLES + 1)
        samples, truncated = offload.read(self.runtime.store, _missed, after, since, kept)
        samples = samples[:MAX_RESUME_SAMPLES]
        return {"samples": [s.to_wire() for s in samples],
                "last_seq": samples[-1].seq if samples else after,
                "truncated": truncated}


def _missed(store: Any, after: int, since: float, kept: list[Sample]) -> tuple[list, bool]:
    """The samples after ``after`` since ``since`` (at most ``MAX_RESUME_SAMPLES`` + 1), the
    store's merged with ``kept`` (those still in memory), and whether some were left out
    (older, or more): read off the event loop (issue 15)."""
    try:
        stored = store.after(after, since_ts=since, limit=MAX_RESUME_SAMPLES + 1)
    except sqlite3.Error:               # the store unreadable: what memory holds still counts
        stored = []
    samples = spool.merge(stored, kept, MAX_RESUME_SAMPLES + 1)
    truncated = len(samples) > MAX_RESUME_SAMPLES
    if not truncated and (not samples or samples[0].seq != after + 1):
        # Samples after the cursor older than the window are not replayed: say so.
        try:
            first = store.after(after, limit=1)
        except sqlite3.Error:
            first = []
        truncated = bool(first) and first[0].ts < since
    return samples, truncated


class PacketJson:
    """The JSON of the Socket.IO packets: orjson for what goes out (a tick's ``samples``
    packet, 6 kB of floats, took ~40 us through the stdlib's encoder, a sixth of publishing
    the tick: issue 19), the stdlib's for what comes in. Anything orjson would encode
    differently from the stdlib -- subclasses of str, int, dict, list, dataclasses, dates,
    non-str keys, ints past 64 bits -- goes through the stdlib as before. (A NaN or
    infinity, which the stdlib writes as ``NaN``, not JSON, and the browser's parser refuses,
    becomes ``null``.)"""

    _OPTS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | \
        orjson.OPT_PASSTHROUGH_DATETIME

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=PacketJson._OPTS).decode()
        except TypeError:                 # orjson.JSONEncodeError: what only the stdlib takes
            return json.dumps(obj, **{"separators": (",", ":"), **kwargs})

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, **kwargs)


class JsonPacket(Packet):
    """Socket.IO packets whose data is JSON values only, never ``bytes``: python-socketio would
    otherwise walk every value of every event looking for binaries to send as attachments
    (``data_is_binary``, about a third of a tick's emit in issue 19's profile). Binary packets
    from a client are still decoded (``decode`` does not look at this flag)."""

    uses_binary_events = False
    json = PacketJson


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
        serializer=JsonPacket,
    )
    namespace = LiveNamespace(runtime)
    socketio.on_namespace(namespace)
    accounts = app.extensions.get("dashboard.accounts")
    if accounts is not None:
        namespace.logins = live_logins.LoginWatch(
            accounts, lambda sid: socketio.server.disconnect(sid, namespace=NAMESPACE),
            socketio.start_background_task, socketio.sleep,
            env_seconds(RECHECK_ENV, live_logins.RECHECK_S))
        accounts.listeners.append(namespace.logins.account_changed)
        app.extensions["dashboard.live_logins"] = namespace.logins
    socketio.on_namespace(live_gate.DefaultNamespace())   # a login there too (#7)
    live_gate.LoginDeadline(socketio.server, env_seconds(LOGIN_ENV, live_gate.LOGIN_WINDOW_S))
    runtime.emitter = broadcaster(socketio)
    app.extensions["dashboard.socketio"] = socketio
    return socketio


def external_emitter(settings) -> SocketIO:
    """For a process without a web server (``python -m dashboard collect``): writes events to
    the message queue only. Flask-SocketIO's docs: same channel, ``async_mode="threading"``."""
    return SocketIO(message_queue=settings.message_queue, channel=CHANNEL, async_mode="threading")


def broadcaster(socketio: SocketIO) -> Callable[..., Any]:
    """``Runtime.emitter``: emits to the logged-in sockets only. Through the message queue too
    (the room travels in the message): every instance sends on to its own ``LOGGED_IN``."""
    return partial(socketio.emit, to=LOGGED_IN)
