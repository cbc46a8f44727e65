import os

# eventlet's green DNS loads dnspython (~200 modules, ~12 MB in each of master and worker);
# the dashboard resolves a handful of names at connect time. Turn it off and send the plain
# resolver through eventlet's thread pool instead, so a slow lookup never blocks the worker.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything imports socket or threading (see DESIGN.md)

import socket  # noqa: E402

from eventlet import tpool  # noqa: E402

_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_in_thread(*args, **kwargs):
    return tpool.execute(_getaddrinfo, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo_in_thread

from dashboard import create_app  # noqa: E402

app = create_app(async_mode="eventlet")
