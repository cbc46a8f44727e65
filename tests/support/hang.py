"""Fault injection: a target that hangs. ``frozen(service)`` stops a real MariaDB, Redis or
memcached with SIGSTOP for the block: its port still accepts connections (the kernel's backlog)
but nothing answers, like a server stuck on I/O or a network that drops packets. SIGCONT
afterwards, also on failure."""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from dashboard.demo.services import _Service


@contextmanager
def frozen(*services: _Service) -> Iterator[None]:
    with ExitStack() as stack:
        for service in services:
            service._signal_group(signal.SIGSTOP)
            stack.callback(service._signal_group, signal.SIGCONT)
        yield
