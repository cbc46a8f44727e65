"""The dashboard itself as the demo's child: ``python -m dashboard serve`` (gunicorn) with the
demo's config, in its own process group, told to die with the demo (``PR_SET_PDEATHSIG`` via
util-linux ``setpriv``, as ``devservices`` does for the servers), its output in a log file.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import requests

ROOT = Path(__file__).resolve().parents[2]
KEEP_ENV = ("DASHBOARD_LOG_LEVEL",)


class DashboardChild:
    def __init__(self, config: Path, url: str, log_path: Path) -> None:
        self.config, self.url, self.log_path = config, url, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        # Only the demo's file configures it: a DASHBOARD_MYSQL_URL (say) in the caller's
        # environment must not point the demo's dashboard elsewhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_") or k in KEEP_ENV}
        env.update(DASHBOARD_CONFIG=str(self.config), PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "dashboard", "serve"]
        if shutil.which("setpriv"):
            # Called from the main thread: pdeathsig follows the thread that forked.
            argv = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} demo starts the dashboard\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float, cancelled: Callable[[], bool]) -> bool:
        """True once /healthz answers (any collector state); False if cancelled or it exited."""
        deadline = time.monotonic() + timeout
        session = requests.Session()
        session.trust_env = False
        try:
            while time.monotonic() < deadline and not cancelled():
                if self.exit_code is not None:
                    return False
                try:
                    if session.get(self.url + "/healthz", timeout=2).status_code in (200, 503):
                        return True
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            return False
        finally:
            session.close()

    def _group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)        # gunicorn's master and its worker
        except ProcessLookupError:
            pass

    def stop(self, hurry: Callable[[], bool], timeout: float = 15.0) -> None:
        """SIGTERM (gunicorn's graceful stop), SIGKILL after ``timeout`` or when in a hurry."""
        if self.proc is None:
            return
        self._group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline and not hurry():
            time.sleep(0.1)
        self._group(signal.SIGKILL)      # also takes a worker its master left behind
        self.proc.wait(10)
