"""A real alerting process (``tests/support/alert_child.py``) that a test can kill -9, and the
lines it prints (what it has done so far), waited for with a deadline."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


class AlertChild:
    """``python -m tests.support.alert_child DATA_DIR *args``; its log beside ``data_dir``."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.log = open(data_dir.parent / f"child-{time.monotonic_ns()}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.alert_child", str(data_dir), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_line(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.lines.get(timeout=max(0.01, deadline - time.monotonic())) == text:
                    return
            except queue.Empty:
                raise AssertionError(f"child did not print {text!r} within {timeout} s; "
                                     f"log: {Path(self.log.name).read_text()[-2000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()
