"""Fan-out latency: N Socket.IO clients on namespace /live of a real gunicorn.

For every ``samples`` event each client records (receipt time - the tick's sample ``ts``), both
read with time.time() on this machine. Printed per N: p50 / p99 / max over every (client, tick)
pair of the ticks stamped inside the window, clients that failed to connect or were disconnected,
deliveries missed, and the server process tree's CPU (total and per 100 clients).

Clients are python-socketio AsyncClients sharing one event loop and one aiohttp session per
client process (threads per client would not scale to 1,000). A client process that is busy
delays its own receipts, so the client processes' CPU and the spread between the first and the
last receipt of each tick are printed too: read the latency figures against them.

Issue 9's target: 1,000 clients on one web instance, p99 sample -> client <= 250 ms, no client
dropped; the CPU per 100 clients is printed. A tick's payload is encoded once for all clients
(python-socketio builds one packet per broadcast; tests/test_fanout.py counts the encodings).

    .venv/bin/python bench/latency.py                       # 1, 100, 500, 1000 clients, 20 s each
    .venv/bin/python bench/latency.py --clients 1,100,500,1000 --window 30
"""
from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import queue
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

NAMESPACE = "/live"
GRACE_S = 5.0                    # a tick stamped in the window may arrive this much later


@dataclass
class ClientRecord:
    events: list[tuple[int, float, float]] = field(default_factory=list)   # (seq, ts, receipt)
    connected: bool = False
    error: str | None = None
    disconnected_at: float | None = None


# --- client process ----------------------------------------------------------------------------

def client_process(url: str, count: int, auth: dict | None, headers: dict, concurrency: int,
                   start_at, window_s: float, ready_q, result_q, idx: int) -> None:
    """Entry point of one client process (spawned): connect ``count`` clients, report, measure."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count + 256, hard), hard))
    asyncio.run(_clients(url, count, auth, headers, concurrency, start_at, window_s,
                         ready_q, result_q, idx))


async def _clients(url, count, auth, headers, concurrency, start_at, window_s, ready_q, result_q,
                   idx) -> None:
    harness.use_bench_packages()     # aiohttp, before socketio/engineio look for it
    import aiohttp
    import socketio

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False))
    records = [ClientRecord() for _ in range(count)]
    clients: list = []
    gate = asyncio.Semaphore(concurrency)

    async def connect(rec: ClientRecord) -> None:
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=session)
        clients.append(sio)

        def on_samples(batch):
            now = time.time()
            if batch:
                # One tick's samples share the tick's ts; the newest one stands for the tick.
                rec.events.append((max(s["seq"] for s in batch), max(s["ts"] for s in batch), now))

        def on_disconnect(*_reason):
            if rec.disconnected_at is None:
                rec.disconnected_at = time.time()

        sio.on("samples", on_samples, namespace=NAMESPACE)
        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        async with gate:
            try:
                await asyncio.wait_for(sio.connect(url, namespaces=[NAMESPACE],
                                                   transports=["websocket"], auth=auth,
                                                   headers=headers, wait_timeout=20), 30)
                rec.connected = True
            except Exception as e:  # noqa: BLE001 - counted and reported, not fatal
                rec.error = f"{type(e).__name__}: {e}"[:160]

    await asyncio.gather(*(connect(r) for r in records))
    ready_q.put((idx, sum(r.connected for r in records)))
    while start_at.value == 0.0:
        await asyncio.sleep(0.05)
    t0 = start_at.value
    await asyncio.sleep(max(0.0, t0 + window_s + GRACE_S - time.time()))
    # Everything recorded so far is the result; the disconnects below are not counted.
    snapshot = [(list(r.events), r.connected, r.error, r.disconnected_at) for r in records]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.disconnect() for c in clients),
                                              return_exceptions=True), 30)
    finally:
        await session.close()
    result_q.put((idx, snapshot))


# --- one level of N clients ----------------------------------------------------------------------

@dataclass
class LevelResult:
    n: int
    connected: int
    failed: int
    errors: list[str]
    dropped: int
    ticks: int
    missed: int
    latencies_ms: list[float]
    first_ms: list[float]
    spread_ms: list[float]
    server_cpu: float
    client_cpu: float
    window_s: float
    per_tick: list[tuple[int, float, float, int]]   # (seq, first ms, last ms, receipts)
    server_runq_ms: float = 0.0
    pressure_pct: float | None = None


def run_level(srv: harness.DashboardServer, n: int, window_s: float, procs: int,
              concurrency: int) -> LevelResult:
    ctx = mp.get_context("spawn")
    start_at = ctx.Value("d", 0.0)
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    sizes = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    sizes = [s for s in sizes if s]
    workers = [ctx.Process(target=client_process, daemon=True,
                           args=(srv.url, size, srv.auth.socketio_auth(), srv.auth.headers(),
                                 concurrency, start_at, window_s, ready_q, result_q, i))
               for i, size in enumerate(sizes)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60 + n * 0.2
        for _ in workers:
            _get_alive(ready_q, workers, deadline)
        server = srv.tree()
        client_trees = [harness.ProcessTree(w.pid, "clients") for w in workers]
        t0 = time.time() + 1.0
        start_at.value = t0
        time.sleep(max(0.0, t0 - time.time()))
        s0 = server.sample()
        c0 = [t.sample() for t in client_trees]
        psi0 = harness.cpu_pressure_s()
        time.sleep(max(0.0, t0 + window_s - time.time()))
        s1 = server.sample()
        c1 = [t.sample() for t in client_trees]
        psi1 = harness.cpu_pressure_s()
        snapshots = []
        deadline = time.monotonic() + window_s + GRACE_S + 60
        for _ in workers:
            snapshots.extend(_get_alive(result_q, workers, deadline)[1])
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
                w.join(timeout=5)
        for q in (ready_q, result_q):
            q.close()
    r = summarise(n, snapshots, t0, window_s, harness.cpu_percent_between(s0, s1),
                  sum(harness.cpu_percent_between(a, b) for a, b in zip(c0, c1)))
    r.server_runq_ms = (s1.runq_s - s0.runq_s) * 1000
    if psi0 is not None and psi1 is not None:
        r.pressure_pct = 100 * (psi1 - psi0) / (s1.t - s0.t)
    return r


def _get_alive(q, workers, deadline: float):
    """The next message of ``q``; fail early if a client process died instead of waiting."""
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a client process exited with {dead[0].exitcode}") from None
            if time.monotonic() > deadline:
                raise


def summarise(n, snapshots, t0, window_s, server_cpu, client_cpu) -> LevelResult:
    t1 = t0 + window_s
    ticks: dict[int, list[float]] = {}                     # seq -> receipt times
    lat, errors = [], []
    dropped = 0
    for events, connected, error, disc in snapshots:
        if error and len(errors) < 3:
            errors.append(error)
        if connected and disc is not None and disc < t1 + GRACE_S:
            dropped += 1
        for seq, ts, recv in events:
            if t0 <= ts < t1:
                lat.append((recv - ts) * 1000)
                ticks.setdefault(seq, []).append(recv)
    connected = sum(1 for s in snapshots if s[1])
    ts_of = {seq: ts for events, *_ in snapshots for seq, ts, _r in events}
    first = [(min(r) - ts_of[s]) * 1000 for s, r in ticks.items()]
    spread = [(max(r) - min(r)) * 1000 for r in ticks.values()]
    missed = sum(connected - len(r) for r in ticks.values())
    per_tick = [(s, (min(r) - ts_of[s]) * 1000, (max(r) - ts_of[s]) * 1000, len(r))
                for s, r in sorted(ticks.items())]
    return LevelResult(n, connected, n - connected, errors, dropped, len(ticks), missed, lat,
                       first, spread, server_cpu, client_cpu, window_s, per_tick)


TARGET_P99_MS = 250.0


def report(r: LevelResult, idle_cpu: float, per_tick: bool = False) -> None:
    p = harness.percentile
    per100 = r.server_cpu / (r.n / 100)
    above = max(r.server_cpu - idle_cpu, 0.0) / (r.n / 100)
    print(f"\n== {r.n} client(s), window {r.window_s:g} s ==")
    print(f"  connected {r.connected}/{r.n}, failed to connect {r.failed}, "
          f"dropped/disconnected during the window {r.dropped}")
    for e in r.errors:
        print(f"    connect error: {e}")
    print(f"  ticks {r.ticks}, deliveries {len(r.latencies_ms)}, missed deliveries {r.missed}")
    print(f"  sample ts -> client receipt: p50 {p(r.latencies_ms, 50):.1f} ms, "
          f"p99 {p(r.latencies_ms, 99):.1f} ms, max {max(r.latencies_ms, default=float('nan')):.1f} ms")
    print(f"  first client per tick: p50 {p(r.first_ms, 50):.1f} ms; "
          f"first->last receipt spread: p50 {p(r.spread_ms, 50):.1f} ms, "
          f"max {max(r.spread_ms, default=float('nan')):.1f} ms")
    if r.n >= 100:
        print(f"  server tree CPU {r.server_cpu:.1f} % of one core = {per100:.2f} % per 100 "
              f"clients ({above:.2f} % per 100 above idle {idle_cpu:.2f} %)")
    else:
        print(f"  server tree CPU {r.server_cpu:.1f} % of one core (idle {idle_cpu:.2f} %)")
    print(f"  client processes CPU {r.client_cpu:.1f} % of one core")
    if r.n >= 1000:
        p99 = p(r.latencies_ms, 99)
        ok = p99 <= TARGET_P99_MS and r.dropped == 0 and r.failed == 0
        print(f"  target (issue 9: {r.n} clients, p99 <= {TARGET_P99_MS:g} ms, none dropped): "
              f"{'met' if ok else 'MISSED'}")
    psi = "n/a" if r.pressure_pct is None else f"{r.pressure_pct:.1f} %"
    print(f"  server waited for a CPU (run queue) {r.server_runq_ms:.0f} ms in the window; "
          f"machine CPU pressure (PSI some) {psi}")
    if per_tick:
        for seq, first, last, count in r.per_tick:
            print(f"    tick seq {seq}: first {first:.1f} ms, last {last:.1f} ms, {count} receipts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,100,500,1000",
                    help="comma-separated N (default 1,100,500,1000)")
    ap.add_argument("--window", type=float, default=20.0, help="seconds measured per N (default 20)")
    ap.add_argument("--procs", default="auto",
                    help="client processes per N (default: one per 500 clients, at most the cores)")
    ap.add_argument("--connect-concurrency", type=int, default=50,
                    help="handshakes in flight per client process (default 50)")
    ap.add_argument("--per-tick", action="store_true",
                    help="also print each tick's first and last receipt latency")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    if not levels or min(levels) < 1 or max(levels) > 5000:
        ap.error("--clients: integers between 1 and 5000")
    if args.window <= 0 or args.window > 300:
        ap.error("--window: between 0 and 300 s")
    harness.sigterm_as_exit()
    harness.use_bench_packages()     # install once here, not in every client process
    harness.raise_nofile(2 * max(levels) + 1024)   # the server inherits it: one fd per client
    print(harness.machine_line())
    with harness.DashboardServer() as srv:
        print(f"server: {srv.url} (gunicorn, eventlet worker), auth: {srv.auth.note}")
        tree = srv.tree()
        a = tree.sample()
        time.sleep(5)
        idle_cpu = harness.cpu_percent_between(a, tree.sample())
        print(f"server tree CPU with no client: {idle_cpu:.2f} % of one core (5 s)")
        for n in levels:
            procs = (max(1, min(math.ceil(n / 500), os.cpu_count() or 1))
                     if args.procs == "auto" else max(1, int(args.procs)))
            r = run_level(srv, n, args.window, procs, args.connect_concurrency)
            report(r, idle_cpu, args.per_tick)
            time.sleep(2)     # let the server close the last level's sockets
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except queue.Empty:
        print("latency: client processes did not report in time", file=sys.stderr)
        sys.exit(1)
