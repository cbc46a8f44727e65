"""A real dashboard process (``python -m dashboard serve`` -> gunicorn) for end-to-end tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Mapping

import requests

from dashboard.demo.services import free_port
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parents[2]


class DashboardServer:
    """Start, stop, kill and restart the dashboard on a fixed loopback port and data dir."""

    def __init__(self, data_dir: Path, *, env: Mapping[str, str] | None = None,
                 config: Path | None = None, port: int | None = None,
                 command: str = "serve", args: tuple[str, ...] = (), root: Path = ROOT,
                 host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.root = Path(root)           # the code that runs: another commit's tree (benches)
        self.port = port or free_port()
        self.host = host                 # a test machine's address (tests/support/netns.py)
        self.prefix = tuple(prefix)      # e.g. ``ip netns exec NS``: run on that machine
        self.url = f"http://{host}:{self.port}"
        self.config = config
        self.command = command
        self.args = tuple(args)
        self.extra_env = dict(env or {})
        self.log_path = self.data_dir / f"{command}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.update({"DASHBOARD_DATA_DIR": str(self.data_dir),
                  "DASHBOARD_BIND": f"{self.host}:{self.port}",
                  "DASHBOARD_PUBLIC_URL": self.url, "PYTHONUNBUFFERED": "1"})
        e.update(self.extra_env)
        return e

    def start(self, wait: bool = True) -> "DashboardServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.prefix, sys.executable, "-m", "dashboard"]
        if self.config:
            argv += ["--config", str(self.config)]
        argv.append(self.command)
        argv.extend(self.args)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.root, env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        if wait:
            try:
                self.wait_healthy()
            except BaseException:
                self.kill()          # never left running by a test that fails here
                raise
        return self

    def healthz(self) -> dict | None:
        try:
            r = requests.get(self.url + "/healthz", timeout=2)
        except requests.RequestException:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_healthy(self, timeout: float = 60) -> dict:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"dashboard exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            h = self.healthz()
            return h if h and h["status"] == "ok" else None
        return wait_until(ready, timeout=timeout,
                          message=lambda: f"dashboard not healthy; log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _signal(self, sig: int) -> None:
        # The whole process group, even when its leader is gone: a gunicorn worker can outlive
        # its master for a moment and must not be left behind.
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> "DashboardServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
