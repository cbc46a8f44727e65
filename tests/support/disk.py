"""A disk that fills up, for real: a small tmpfs mounted by the test and a file written until
no byte is left (fault injection without mocks). Needs root (CI runs as root)."""
from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` on ``where`` for the block, unmounted afterwards (also on failure).
    Where none can be mounted the test is skipped saying why; with CI=true that is a failure."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                            str(where)], capture_output=True, text=True, timeout=30)
        problem = (r.stderr.strip() or f"mount exited with {r.returncode}") if r.returncode else ""
    except FileNotFoundError:
        problem = "no mount command"
    if problem:
        reason = f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason=reason)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], check=True)   # a file still open


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left (ENOSPC at every write size); delete the
    file to give the space back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler
