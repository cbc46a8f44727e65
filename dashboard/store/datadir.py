"""The data directory is its owner's only: 0700, every file in it 0600, whatever the umask.

It holds the password hashes, API token digests, the signing key, the first admin's password
and the whole history. The systemd units set ``UMask=0077``; started from a shell (umask 022),
a container, a hand-run gunicorn or the demo, SQLite made ``history.sqlite3`` 0644. So:

- the dashboard's processes (``python -m dashboard ...`` and gunicorn's config) call
  ``private_umask`` when they start: whatever they write from then on (state files, dumps, the
  demo's servers' files) is born private. Only the entry points do: a library that changed the
  umask of whoever imports it (a test run, a script) would change it for every file they write;
- whatever opens the data dir (``Store``, the demo) calls ``make_private``, which creates the
  directory 0700, or tightens one left open (by an earlier version, by hand) and its entries;
- the store creates its database file 0600 itself; SQLite gives its -wal and -shm files the
  database file's mode.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_umask() -> None:
    """For the dashboard's own processes: every file they create is the owner's only."""
    os.umask(0o077)


def make_private(path: Path | str) -> Path:
    """Create ``path`` (0700) or tighten it and its entries: sub-directories 0700, files 0600.
    Only the top level: sub-directories (the demo's MariaDB and Redis) are their servers' own."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    with os.scandir(path) as entries:
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                _tighten(Path(e.path), DIR_MODE)
            elif e.is_file(follow_symlinks=False):
                _tighten(Path(e.path), FILE_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it does not exist (before SQLite creates it with the
    process's umask)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.lstat().st_mode) & ~mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass                        # removed meanwhile (a -wal at checkpoint, a .tmp renamed)
    except PermissionError:         # another user's file: say so rather than stop the start
        log.warning("cannot make %s private (mode %o): not its owner", path, mode)
