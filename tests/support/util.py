"""Small helpers for tests. No fixed sleeps in tests: poll with a deadline instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy; return that value.

    Fails with ``AssertionError`` after ``timeout`` seconds, saying ``message`` (a string, or a
    callable evaluated at failure time to describe the state) and the last value seen.
    Exceptions of the types in ``ignore`` (e.g. ``(OSError,)`` while a server comes up) count
    as "not yet"; any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
        except ignore as exc:
            last, last_exc = None, exc
        if last:
            return last
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            text = text or f"condition not met within {timeout:g} s"
            detail = f"last error: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
            raise AssertionError(f"{text} ({detail})") from last_exc
        time.sleep(interval)


def mysql_params(url: str) -> dict[str, Any]:
    """``mysql://user:pass@host:port/db`` -> keyword arguments for ``pymysql.connect``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ValueError(f"not a mysql:// URL: {url!r}")
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "connect_timeout": 5,
        "read_timeout": 30,
        "write_timeout": 30,
        "autocommit": True,
    }
    database = parts.path.lstrip("/")
    if database:
        params["database"] = unquote(database)
    return params


def mysql_connect(url: str, **overrides: Any):
    """A pymysql connection for a mysql:// URL (close it, or use it as a context manager)."""
    import pymysql

    return pymysql.connect(**{**mysql_params(url), **overrides})


def kill_9_writer(data_dir, tick: str, ticks: int) -> list[int]:
    """Run a store writer in a child process and SIGKILL it once it has committed ``ticks`` ticks.

    ``tick`` is the body of its endless loop (Python, 4-space indented), with ``s`` the Store on
    ``data_dir`` (on ``DASHBOARD_STORE_URL`` when set: the ``store_backend`` fixture's database),
    ``Sample`` imported, ``i`` the tick number (from 1) and ``time`` imported; it must
    ``print(<last seq of the tick>, flush=True)`` after each append. Returns those seqs: the
    ticks the writer saw committed before it was killed.
    """
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from dashboard.store import Store
        from dashboard.model import Sample
        s = Store({str(data_dir)!r}, store_url=os.environ.get("DASHBOARD_STORE_URL") or None)
        i = 0
        while True:
            i += 1
    """) + textwrap.indent(textwrap.dedent(tick), "    ")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    committed: list[int] = []
    try:
        while len(committed) < ticks:
            line = proc.stdout.readline()
            assert line, "writer died"
            committed.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    return committed
