"""The SQLite file under ``data_dir``: its name and how every user of it connects."""
from __future__ import annotations

import sqlite3
from pathlib import Path

FILE_NAME = "history.sqlite3"   # everything the dashboard keeps, in one file under data_dir


def file_in(data_dir: Path | str) -> Path:
    """The store's file in ``data_dir``: the one place its name is made."""
    return Path(data_dir) / FILE_NAME


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the settings every user of the store's file needs."""
    conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
