"""What the web server process never loads: the HTTP and WebSocket *client* libraries.

python-socketio imports its client classes with the server, and python-engineio's client imports
``requests`` (with urllib3, idna, charset_normalizer, certifi) and ``websocket-client`` when they
are installed: 10 MB of the worker's memory (measured: RSS of ``import requests`` alone) for code
the server never runs; issue 9 budgets 75 MB for the whole process tree. Both stay installed for
the tests and the bench clients, so they are kept out by the import system's own switch: a
``None`` entry in ``sys.modules`` makes ``import requests`` raise ImportError, which engineio
expects (its client then reports the library missing, and the server has no client).

Only the gunicorn worker's entry points (wsgi.py, wsgi_gevent.py) call this, before anything else
imports; nothing in the server uses these libraries (the collectors poll over http.client, alert
webhooks go out through urllib.request).

redis-py (issue 19) goes the same way when no ``message_queue`` is configured: ``import redis``
adds ~8 MB of anonymous memory (its command mixins, and ``redis.asyncio`` which its ``__init__``
imports), and python-socketio imports it for its Redis manager, which only a message queue
uses. The collectors read Redis through their own client (``dashboard.collectors.resp``); what
else uses redis-py in this process -- the cluster's leader lock, the agents collector, the
socketio manager -- runs with a message queue only, and then redis-py is loaded as before. The
agents, the ``collect`` process and the demo are other processes and keep it.

Libraries also import, at module level, code that only a development server or a test runs
(issue 19): flask-login and Flask-SocketIO their test clients (which pull in flask.testing,
click.testing and with it pdb), Flask-SocketIO werkzeug's debugger and reloader for its own
``run()`` (the debugger imports ``multiprocessing``), APScheduler ``concurrent.futures.process``
(multiprocessing's queues and connections) for its process-pool executor, and ``limits`` (under
flask-limiter) its asyncio storages and strategies (``limits.aio``: Redis, Memcached, MongoDB
drivers' bridges) for asyncio apps; our limiter and login throttle use the synchronous
``limits.storage`` (memory, or Redis with a message queue). gunicorn serves the app,
the scheduler runs threads (dashboard.scheduler), the tests run in other processes: the worker
never calls any of it. Their imports cannot simply fail (they are plain ``from x import y``), so
:func:`skip_unused_modules` puts a small stand-in module in their place whose names raise
``RuntimeError`` if anything ever calls them: 1.6 MB of anonymous memory (RssAnon after
``import wsgi``, 37.8 -> 36.2 MB) and 31 modules fewer.
"""
from __future__ import annotations

import sys
import types
from concurrent.futures import BrokenExecutor
from typing import Any

CLIENT_LIBRARIES = ("requests", "websocket")
MESSAGE_QUEUE_LIBRARIES = ("redis",)


def skip_client_libraries(message_queue: str | None = None) -> list[str]:
    """Keep the client libraries out of this process (and redis-py unless ``message_queue``);
    the names skipped (not already loaded)."""
    skipped = []
    for name in CLIENT_LIBRARIES + (() if message_queue else MESSAGE_QUEUE_LIBRARIES):
        if name not in sys.modules:
            # None blocks the import: Python's documented way to keep a module out.
            sys.modules[name] = None   # type: ignore[assignment]
            skipped.append(name)
    return skipped


# The module -> the names its importers in the worker take from it (see the module docstring).
UNUSED_MODULES: dict[str, tuple[str, ...]] = {
    "flask_login.test_client": ("FlaskLoginClient",),
    "flask_socketio.test_client": ("SocketIOTestClient",),
    "werkzeug.debug": ("DebuggedApplication",),
    "werkzeug._reloader": ("run_with_reloader",),
    "concurrent.futures.process": ("BrokenProcessPool",),
    "limits.aio": (),                # ``from . import aio`` in limits/__init__.py; nothing reads it
}


class BrokenProcessPool(BrokenExecutor):
    """APScheduler names it in an ``except`` of its process-pool executor, which we never use."""


def _not_here(module: str, name: str) -> type:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"{module}.{name} is not loaded in the web worker "
                           "(dashboard/process/serverimports.py)")
    return type(name, (), {"__init__": refuse, "__module__": module})


def skip_unused_modules() -> list[str]:
    """Stand-ins for the modules in UNUSED_MODULES (not already loaded); the names replaced.
    Call before anything imports flask-login, Flask-SocketIO or APScheduler."""
    skipped = []
    for module, names in UNUSED_MODULES.items():
        if module in sys.modules:
            continue
        stand_in = types.ModuleType(module, "Not loaded in the web worker (serverimports.py).")
        for name in names:
            setattr(stand_in, name, BrokenProcessPool if name == "BrokenProcessPool"
                    else _not_here(module, name))
        sys.modules[module] = stand_in
        skipped.append(module)
    return skipped


def worker_app(async_mode: str) -> Any:
    """The web worker's app, with every library above kept out first (wsgi.py, wsgi_gevent.py:
    their one shared step after the monkey-patching). The stand-ins go in before the settings
    load (which parses the rate limits with ``limits``); redis-py stays out unless the settings
    name a message queue."""
    skip_unused_modules()
    from dashboard.config import load as config_mod  # lazy: after the stand-ins are in place
    settings = config_mod.load()
    skip_client_libraries(settings.message_queue)
    from dashboard.app import create_app  # lazy: after the blocks; the app is what they keep lean
    return create_app(settings, async_mode=async_mode)
