"""The demo (issue 8, item 5): ``python -m dashboard demo`` as a real process, as a newcomer runs
it (``--fast``: every phase and alert timing x0.4, the same code paths).

Within the deadline every contract metric has data and the pool, cache and queue alerts fire
and resolve; after Ctrl-C no process of the demo remains and none of its ports listens.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from dashboard.demo.cli import has_targets
from dashboard.demo.services import free_port
from tests.e2e.test_first_start import log_in
from tests.support.auth_helpers import add_token
from tests.support.util import wait_until
from tests.test_prometheus import CONTRACT

ROOT = Path(__file__).resolve().parent.parent
DRIVEN = ("db_pool_utilization", "cache_hit_rate", "queue_pending")
PHASE_OF = {"db_pool_utilization": "surge", "cache_hit_rate": "cache", "queue_pending": "backlog"}


class Demo:
    """``python -m dashboard demo --fast`` in its own session, as a terminal would run it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"demo-{self.port}.out"
        self.proc: subprocess.Popen | None = None
        self.seen_pids: dict[int, float] = {}        # pid -> create_time, while it ran
        self.seen_ports: set[tuple[str, int]] = set()

    def start(self) -> "Demo":
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
        env.update(DASHBOARD_DATA_DIR=str(self.data_dir), PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "demo", "--fast", "--bind", f"127.0.0.1:{self.port}"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def out(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def state(self) -> dict | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the demo exited with {self.proc.returncode}:\n{self.out()[-3000:]}")
        try:
            return json.loads((self.data_dir / "demo.json").read_text())
        except (OSError, ValueError):
            return None

    def record_tree(self) -> None:
        """Every process and listening port of the demo, to check after it stops."""
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                self.seen_pids[p.pid] = p.create_time()
                for c in p.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN or (c.type == 2 and c.laddr):   # 2: UDP
                        self.seen_ports.add(("udp" if c.type == 2 else "tcp", c.laddr.port))
            except psutil.NoSuchProcess:
                pass

    def ctrl_c(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)      # what the terminal sends its foreground group

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _remaining(demo: Demo) -> list[str]:
    """Processes of the demo still alive: recorded ones, or any naming its data dir."""
    left = []
    for pid, created in demo.seen_pids.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    mark = str(demo.data_dir)
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.environ() if p.pid not in demo.seen_pids else {}
            if p.status() != psutil.STATUS_ZOMBIE and (
                    mark in cmd or mark in env.get("DASHBOARD_CONFIG", "")):
                left.append(f"{p.pid} {cmd[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return sorted(set(left))


def _listening(ports: set[tuple[str, int]]) -> list[tuple[str, int]]:
    busy = set()
    for c in psutil.net_connections(kind="inet"):
        kind = "udp" if c.type == 2 else "tcp"
        if c.laddr and (kind, c.laddr.port) in ports and (kind == "udp" or c.status == psutil.CONN_LISTEN):
            busy.add((kind, c.laddr.port))
    return sorted(busy)


def _stop_and_check(demo: Demo, code: int = 0) -> None:
    assert demo.proc is not None
    wait_until(lambda: demo.proc.poll() is not None, timeout=60,
               message=lambda: f"the demo did not exit after the signal:\n{demo.out()[-2000:]}")
    assert demo.proc.returncode == code, demo.out()[-2000:]
    wait_until(lambda: not _remaining(demo), timeout=30,
               message=lambda: f"processes of the demo left behind: {_remaining(demo)}")
    wait_until(lambda: not _listening(demo.seen_ports), timeout=10,
               message=lambda: f"ports still listening: {_listening(demo.seen_ports)}")
    if code == 0:
        assert not (demo.data_dir / "demo.json").exists()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "data"


def test_the_demo_moves_every_contract_metric_fires_and_resolves_alerts_and_ctrl_c_leaves_nothing(
        demo_dir: Path) -> None:
    demo = Demo(demo_dir).start()
    try:
        state = wait_until(demo.state, timeout=90, interval=0.2,
                           message=lambda: f"the demo never got ready:\n{demo.out()[-3000:]}")
        out = demo.out()
        assert f"{demo.url}/" in out and "DEMO" in out
        pw = (demo_dir / "admin_password").read_text().strip()
        assert f"password {pw}" in out                   # the login, shown to the person
        assert oct((demo_dir / "admin_password").stat().st_mode & 0o777) == "0o600"
        session = log_in(demo.url, "admin", pw)
        page = session.get(demo.url + "/", timeout=10).text
        assert "demo-badge" in page and "demo-notice" in page        # DEMO, and its timings
        assert "demo-notice" in session.get(demo.url + "/alerts", timeout=10).text

        token = add_token(demo_dir, "viewer")
        headers = {"Authorization": f"Bearer {token}"}
        t0, phases = state["cycle_started_at"], state["phases"]
        seen: set[str] = set()
        episodes: dict[str, dict] = {}               # alert id -> its latest description

        def caused(rule: str) -> dict | None:
            """The rule's first alert that fired after its phase began and has resolved."""
            start = t0 + phases[PHASE_OF[rule]][0]
            eps = sorted((e for e in episodes.values() if e["rule"] == rule and e["fired_at"] > start),
                         key=lambda e: e["fired_at"])
            return eps[0] if eps and eps[0]["resolved_at"] else None

        def progress() -> bool:
            demo.record_tree()
            latest = requests.get(demo.url + "/api/latest", headers=headers, timeout=10).json()
            for s in latest["samples"]:
                seen.update(s["values"])
            alerts = requests.get(demo.url + "/api/alerts?history_s=3600", headers=headers,
                                  timeout=10).json()
            episodes.update({e["id"]: e for e in alerts["active"] + alerts["recent"]})
            return set(CONTRACT) <= seen and all(caused(r) for r in DRIVEN)

        wait_until(progress, timeout=150, interval=2.0, message=lambda: (
            f"missing metrics {sorted(set(CONTRACT) - seen)}; alerts "
            f"{sorted((e['rule'], round(e['fired_at'] - t0), e['resolved_at'] and round(e['resolved_at'] - t0)) for e in episodes.values())}"  # noqa: E501 (an f-string expression cannot span lines before 3.12)
            f"; demo output:\n{demo.out()[-2000:]}"))
        for rule in DRIVEN:
            ep = caused(rule)
            assert ep is not None
            start, end = phases[PHASE_OF[rule]]
            print(f"{rule}: fired {ep['fired_at'] - t0:.0f} s into the cycle "
                  f"({ep['fired_at'] - t0 - start:.0f} s after its phase began), resolved "
                  f"{ep['resolved_at'] - t0:.0f} s "
                  f"({ep['resolved_at'] - t0 - end:+.0f} s from its phase's end)")
        assert any(e["rule"] == "queue_failed" for e in episodes.values()), "a failed job raised no alert"

        demo.record_tree()
        names = {psutil.Process(p).name() for p in demo.seen_pids if psutil.pid_exists(p)}
        assert {"mariadbd", "redis-server"} <= names and any("gunicorn" in " ".join(
            psutil.Process(p).cmdline()) for p in demo.seen_pids if psutil.pid_exists(p))
        assert {("tcp", demo.port), ("tcp", state["ports"]["mariadb"]), ("tcp", state["ports"]["redis"]),
                ("tcp", state["ports"]["shop"]), ("udp", state["ports"]["statsd_udp"])} <= demo.seen_ports
        demo.ctrl_c()
        _stop_and_check(demo)
    finally:
        demo.kill()


def test_a_second_start_on_the_same_data_dir_shows_the_same_login_and_sigterm_leaves_nothing(
        demo_dir: Path) -> None:
    first = (demo_dir / "admin_password").read_text().strip() \
        if (demo_dir / "admin_password").exists() else None
    demo = Demo(demo_dir).start()
    try:
        wait_until(demo.state, timeout=90, interval=0.2,
                   message=lambda: f"the demo never got ready:\n{demo.out()[-3000:]}")
        pw = (demo_dir / "admin_password").read_text().strip()
        assert first in (None, pw) and f"password {pw}" in demo.out()
        demo.record_tree()
        assert demo.proc is not None
        demo.proc.send_signal(signal.SIGTERM)
        _stop_and_check(demo)
    finally:
        demo.kill()


def test_run_sh_runs_the_demo_only_when_nothing_is_configured_to_monitor(tmp_path: Path) -> None:
    assert not has_targets({})
    assert has_targets({"DASHBOARD_REDIS_URL": "redis://127.0.0.1:6379/0"})
    host_only = tmp_path / "host.toml"
    host_only.write_text("interval_s = 2\n")
    assert not has_targets({"DASHBOARD_CONFIG": str(host_only)})
    broken = tmp_path / "broken.toml"
    broken.write_text("[mysql]\nurl = 'nope'\n")
    assert has_targets({"DASHBOARD_CONFIG": str(broken)})      # serve names the bad key
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert "dashboard.demo.cli" in script and "dashboard demo" in script


def test_killing_the_demo_outright_takes_its_servers_and_dashboard_with_it(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "data").start()
    try:
        wait_until(demo.state, timeout=90, interval=0.2,
                   message=lambda: f"the demo never got ready:\n{demo.out()[-3000:]}")
        demo.record_tree()
        assert demo.proc is not None
        demo.proc.kill()           # no chance to clean up: the children must notice on their own
        _stop_and_check(demo, code=-signal.SIGKILL)
    finally:
        demo.kill()
