import os

# eventlet's green DNS loads dnspython (~200 modules, ~12 MB in each of master and worker);
# the dashboard resolves a handful of names at connect time. Turn it off and send the plain
# resolver through eventlet's thread pool instead, so a slow lookup never blocks the worker.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything imports socket or threading (see docs/design.md)

import ipaddress  # noqa: E402
import socket  # noqa: E402

from eventlet import tpool  # noqa: E402

_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_in_thread(host, *args, **kwargs):
    # An address literal (127.0.0.1, ::1) needs no lookup: answer it here. A hand-off to the
    # thread pool costs an OS thread switch and a pipe wake-up of the hub, on every HTTP probe.
    if host is None or _is_ip_literal(host):
        return _getaddrinfo(host, *args, **kwargs)
    return tpool.execute(_getaddrinfo, host, *args, **kwargs)


def _is_ip_literal(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])      # "fe80::1%eth0": scope id
        return True
    except ValueError:
        return False


socket.getaddrinfo = _getaddrinfo_in_thread

from dashboard.process.serverimports import worker_app  # noqa: E402

app = worker_app("eventlet")
