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
"""
from __future__ import annotations

import sys

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
