"""How much a burst of logins delays everyone else on the one eventlet worker.

scrypt (~0.13 s of CPU per check) runs in a native thread, one at a time (dashboard/offload.py,
dashboard/auth/accounts.py _one_hash_at_a_time); this prints /healthz latency with and without 8
simultaneous logins.

    .venv/bin/python bench/login_stall.py
"""
from __future__ import annotations

import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.auth_helpers import add_user  # noqa: E402
from tests.support.server import DashboardServer  # noqa: E402

LOGINS = 8


def probe(url: str, seconds: float, during=None) -> list[float]:
    lat: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            requests.get(url + "/healthz", timeout=30)
            lat.append(time.perf_counter() - t)
            time.sleep(0.01)

    th = threading.Thread(target=loop)
    th.start()
    time.sleep(0.3)
    if during:
        during()
    else:
        time.sleep(seconds)
    time.sleep(0.3)
    stop.set()
    th.join()
    return sorted(lat)


def login(url: str) -> None:
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(url + "/login").text).group(1)
    s.post(url + "/login", data={"name": "ops", "password": "wrong", "csrf_token": token})


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="login-stall-")) / "data"
    add_user(data, "ops", "viewer", password="the right password")
    server = DashboardServer(data).start()
    try:
        def burst() -> None:
            ths = [threading.Thread(target=login, args=(server.url,)) for _ in range(LOGINS)]
            for t in ths:
                t.start()
            for t in ths:
                t.join()
        t0 = time.perf_counter()
        busy = probe(server.url, 0, burst)
        span = time.perf_counter() - t0
        idle = probe(server.url, span)
        for name, lat in (("idle", idle), (f"{LOGINS} logins at once", busy)):
            print(f"/healthz {name:<18} max {lat[-1] * 1000:6.0f} ms   "
                  f"p50 {lat[len(lat) // 2] * 1000:4.0f} ms   n={len(lat)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
