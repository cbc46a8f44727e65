"""``--store-url`` for the store benchmarks: the history in PostgreSQL instead of the data dir's
SQLite file (issue 16).

``--store-url postgresql://user:pass@host:port/db`` uses that database (empty, owned by the
user); ``--store-url private`` starts a private cluster for the run with the tests' helper
(``tests/support/pg.py``: Debian's ``postgresql`` binaries, ``initdb`` in a temporary directory,
run as ``nobody`` under root, on a free loopback port, ``fsync=off``), makes a fresh database
each time ``database()`` is called, and removes the cluster at the end. Note that a private
cluster runs with ``fsync=off`` (as the tests'): a production server's commit also waits for
its WAL flush.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRIVATE = "private"
HELP = ("postgresql://user:pass@host:port/db (an empty database), or 'private': a private "
        "cluster for this run (tests/support/pg.py)")


@contextmanager
def databases(store_url: str | None) -> Iterator[Callable[[], str | None]]:
    """A function giving the ``store_url`` of an empty database (None without ``store_url``:
    the data dir's SQLite file), for as long as the block runs."""
    if not store_url:
        yield lambda: None
        return
    if store_url != PRIVATE:
        yield lambda: store_url
        return
    from tests.support.pg import start_cluster  # lazy: pytest and pg8000, only for "private"

    cluster = start_cluster()
    try:
        yield lambda: cluster.url(cluster.create_database())
    finally:
        cluster.remove()


def masked(url: str | None) -> str:
    if not url:
        return "SQLite (the data dir's file)"
    from dashboard.config.secrets import mask_url  # lazy: only with a URL to print

    return f"PostgreSQL {mask_url(url)}"
