"""How much one viewer's long history read stalls everyone else's live page (issue 15).

A store filled with 24 h of history (``--hosts`` agent hosts x ``--metrics`` values, one sample a
minute, through ``Store.append`` with explicit times and ``Store.rollup``: 300 x 5 is 1,500
series, 2.2 million one-minute rollups), copied once per code under test; for each, a real server
(gunicorn, eventlet, host collector at 1 s) on that copy, one live Socket.IO client recording when
each ``samples`` event arrives, a /healthz prober, then 1 and then 6 parallel
``GET /api/history?window_s=86400`` from one login. Printed per run: the answers' status codes,
the longest read, the longest gap between the live client's ``samples`` events from the first
read's start to the last read's end, and the slowest /healthz meanwhile.

``--before REV`` (default: the commit before issue 15's change) runs that commit's code
(``git archive`` into a temporary directory: no worktree is registered) on the same data, in the
same run, first.

    .venv/bin/python bench/read_stall.py [--hosts 300] [--metrics 5] [--before REV]
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from tests.support.auth_helpers import accounts_for  # noqa: E402
from tests.support.history_fill import fill  # noqa: E402
from tests.support.server import DashboardServer  # noqa: E402
from tests.support.util import wait_until  # noqa: E402

BEFORE = "30c5aa4"           # the lead's tree this branch started from
READ = "/api/history?window_s=86400"


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` in ``into`` (nothing else of git is touched)."""
    tar = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into


class Live:
    """A Socket.IO client on /live recording when each ``samples`` event arrives. A hub stalled
    past Socket.IO's ping timeout (10 s) drops it: ``ensure`` connects it again."""

    def __init__(self, server: DashboardServer, token: str) -> None:
        self.server, self.token = server, token
        self.arrivals: list[float] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("samples", lambda batch: self.arrivals.append(time.monotonic()),
                       namespace="/live")

    def ensure(self) -> None:
        if not self.client.connected:
            self.client.connect(self.server.url, namespaces=["/live"], transports=["websocket"],
                                wait_timeout=10, auth={"token": self.token})
        seen = len(self.arrivals)
        wait_until(lambda: len(self.arrivals) >= seen + 2, timeout=20, message="no samples")


def burst(server: DashboardServer, live: Live, n: int) -> str:
    """``n`` parallel reads of one login while /healthz is probed: what the others saw."""
    healthz: list[float] = []
    stop = threading.Event()

    failed: list[str] = []

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                requests.get(server.url + "/healthz", timeout=120)
            except requests.RequestException as e:      # the worker was killed (gunicorn timeout)
                failed.append(type(e).__name__)
            healthz.append(time.perf_counter() - t)
            time.sleep(0.05)

    def get(_: int) -> tuple[int | str, float, int]:
        t = time.perf_counter()
        try:
            r = requests.get(server.url + READ, timeout=600, headers={
                "Authorization": f"Bearer {live.token}", "Accept-Encoding": "gzip"}, stream=True)
            size = len(r.raw.read())             # as sent: gzipped
        except requests.RequestException:
            return "reset", time.perf_counter() - t, 0
        return r.status_code, time.perf_counter() - t, size

    live.ensure()
    prober = threading.Thread(target=probe)
    prober.start()
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(get, range(n)))
    finally:
        done = time.monotonic()
        stop.set()
        prober.join()
    arrivals = live.arrivals
    try:
        wait_until(lambda: arrivals[-1] > done + 1, timeout=10)
        dropped = ""
    except AssertionError:
        dropped = " (live client dropped: gap counted to the reads' end)"
    times = [a for a in arrivals if a < start][-1:] + [a for a in arrivals if a >= start]
    if dropped:
        times.append(done)
    gap = max(b - a for a, b in zip(times, times[1:]) if a <= done)
    codes = ",".join(str(c) for c, _, _ in answers)
    read = max((s for c, s, _ in answers if c == 200), default=float("nan"))
    size = max((b for c, _, b in answers if c == 200), default=0)
    if failed:
        dropped += f" (/healthz failed {len(failed)} times: the worker was killed)"
    return (f"{n} read(s)  status {codes:<24} longest 200 read {read:5.2f} s "
            f"({size / 1e6:.1f} MB gzipped)  longest samples gap {gap:5.2f} s{dropped}  "
            f"/healthz max {max(healthz) * 1000:5.0f} ms (n={len(healthz)})")


def run(root: Path, data: Path, label: str) -> None:
    server = DashboardServer(data, root=root, env={"DASHBOARD_INTERVAL_S": "1"}).start()
    try:
        with accounts_for(data) as acc:
            live = Live(server, acc.create_token("viewer", "bench", created_by="bench")[1])
        try:
            for n in (1, 6):
                print(f"{label:<7} {burst(server, live, n)}", flush=True)
        finally:
            live.client.disconnect()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=300)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--before", default=BEFORE, help="commit to compare with ('' for none)")
    args = ap.parse_args()
    harness.sigterm_as_exit()
    tmp = Path(tempfile.mkdtemp(prefix="read-stall-"))
    try:
        t = time.perf_counter()
        fill(tmp / "filled", args.hosts, args.metrics, hours=24)
        print(f"filled {args.hosts} hosts x {args.metrics} metrics x 24 h in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        codes = [("after", ROOT)]
        if args.before:
            codes.insert(0, ("before", export(args.before, tmp / "before")))
        for label, root in codes:
            data = tmp / f"data-{label}"
            shutil.copytree(tmp / "filled", data)
            print(harness.machine_line(), flush=True)
            run(root, data, label)
        print(harness.machine_line())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
