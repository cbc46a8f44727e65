"""Compressed soak of the server: every collector at 0.1 s with the demo workload (issue 9, item 3).

30 minutes at 0.1 s are ~18,000 ticks per collector: five hours of 1 s sampling. One Socket.IO
client stays connected on /live throughout. Every ``--every`` seconds (30) it prints the gunicorn
worker's RSS (and the process tree's), open file descriptors, OS threads, green threads and
objects tracked by the GC (through the worker's SIGUSR2 debug hook, ``dashboard/process/debugdump.py``,
enabled for this run only), the store's size on disk and its row counts. The raw retention is
set small (``--retention-min``, 15 min for a 30 min soak) so pruning really runs; the expected
size of the store is computed from it (bench/soakstore.py) and compared.

Targets (issue 9): RSS growth <= 5 MB after the warm-up (the first ``--warmup-min`` minutes,
5 by default: imports, caches, the first rollups and prunes), no growth in file descriptors or
threads, store size as computed from retention.

    .venv/bin/python bench/soak.py                    # 30 minutes
    .venv/bin/python bench/soak.py --minutes 4        # a quick look
    .venv/bin/python bench/soak.py --tracemalloc 12   # leak hunt: allocation sites that grew
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, soakstore  # noqa: E402
from bench.soakenv import soak_platform  # noqa: E402

RSS_TARGET_MB = 5.0


@dataclass
class Row:
    t_s: float
    rss_worker: int
    rss_tree: int
    fds: int
    threads: int
    greenlets: int | None
    objects: int | None
    timers: int | None
    cpu_s: float
    events: int
    store: soakstore.StoreReading
    dump: dict


class LiveClient:
    """One Socket.IO client on /live, counting ``samples`` events (python-socketio, threads)."""

    def __init__(self, url: str, auth: dict | None) -> None:
        import socketio
        self.events = 0
        self.connects = 0
        self.sio = socketio.Client(reconnection=True, reconnection_delay_max=5)
        self.sio.on("samples", self._on_samples, namespace="/live")
        self.sio.on("connect", self._on_connect, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], auth=auth, transports=["websocket"],
                         wait_timeout=20)

    def _on_connect(self) -> None:
        self.connects += 1

    def _on_samples(self, batch) -> None:
        self.events += 1

    def close(self) -> None:
        self.sio.disconnect()


def worker_of(master_pid: int) -> psutil.Process:
    kids = psutil.Process(master_pid).children()
    if not kids:
        raise RuntimeError("gunicorn has no worker")
    return kids[0]


def debug_dump(worker: psutil.Process, path: Path, timeout: float = 15.0) -> dict | None:
    """Ask the worker for a dump (SIGUSR2) and wait for a new one to be written."""
    before = _dump_no(path)
    os.kill(worker.pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _dump_no(path) > before:
            return json.loads(path.read_text())
        time.sleep(0.05)
    return None


def _dump_no(path: Path) -> int:
    try:
        return int(json.loads(path.read_text()).get("dump", 0))
    except (OSError, ValueError):
        return 0


def take(t0: float, master: psutil.Process, worker: psutil.Process, dump_path: Path,
         client: LiveClient, store_path: Path) -> Row:
    with worker.oneshot():
        rss_w = worker.memory_info().rss
        fds = worker.num_fds()
        threads = worker.num_threads()
        ct = worker.cpu_times()
    rss_tree = rss_w + master.memory_info().rss
    d = debug_dump(worker, dump_path) or {}
    return Row(time.monotonic() - t0, rss_w, rss_tree, fds, threads, d.get("greenlets"),
               d.get("objects"), (d.get("hub") or {}).get("timers"), ct.user + ct.system,
               client.events, soakstore.read(store_path), d)


HEADER = (f"{'t min':>6} {'RSS MB':>7} {'tree MB':>7} {'fds':>4} {'thr':>4} {'green':>5} "
          f"{'objects':>8} {'timers':>6} {'CPU %':>6} {'ev/s':>6} {'db MB':>6} {'wal MB':>6} "
          f"{'raw rows':>9} {'oldest':>7} {'rollups':>8} {'alerts':>7} {'outbox':>6}")


def fmt_row(r: Row, prev: Row | None) -> str:
    dt = r.t_s - prev.t_s if prev else r.t_s
    cpu = 100 * (r.cpu_s - prev.cpu_s) / dt if prev else float("nan")
    evs = (r.events - prev.events) / dt if prev else float("nan")
    s = r.store
    na = lambda v: "-" if v is None else str(v)  # noqa: E731
    return (f"{r.t_s / 60:6.1f} {r.rss_worker / 2**20:7.1f} {r.rss_tree / 2**20:7.1f} {r.fds:4d} "
            f"{r.threads:4d} {na(r.greenlets):>5} {na(r.objects):>8} {na(r.timers):>6} {cpu:6.1f} "
            f"{evs:6.1f} {s.db_bytes / 2**20:6.1f} {s.wal_bytes / 2**20:6.1f} {s.raw_rows:9d} "
            f"{s.oldest_age_s / 60:6.1f}m {s.rollup_rows:8d} {s.alert_rows:7d} {s.outbox_rows:6d}")


def settled(rows: list[Row], attr: str, warm_s: float) -> tuple[float, float, float]:
    """(baseline, final, max after warm-up): medians of the first two minutes after the warm-up
    and of the last three readings, so one transient reading does not decide."""
    after = [r for r in rows if r.t_s >= warm_s]
    base = [getattr(r, attr) for r in after if r.t_s < warm_s + 120] or [getattr(after[0], attr)]
    vals = [getattr(r, attr) for r in after]
    return statistics.median(base), statistics.median(vals[-3:]), max(vals)


def slope_per_h(rows: list[Row], attr: str, warm_s: float) -> float:
    pts = [(r.t_s / 3600, getattr(r, attr)) for r in rows if r.t_s >= warm_s]
    if len(pts) < 3:
        return float("nan")
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else float("nan")


def verdict(rows: list[Row], warm_s: float, env, args) -> bool:
    ok = True
    print(f"\nwarm-up: the first {warm_s / 60:g} min (imports, caches, first rollups and prunes); "
          f"baseline = median of the readings in the 2 min after it, final = median of the last 3")
    b, f, m = settled(rows, "rss_worker", warm_s)
    growth = (f - b) / 2**20
    met = growth <= RSS_TARGET_MB
    ok &= met
    print(f"worker RSS: baseline {b / 2**20:.1f} MB, final {f / 2**20:.1f} MB, max {m / 2**20:.1f} MB; "
          f"growth {growth:+.1f} MB (trend {slope_per_h(rows, 'rss_worker', warm_s) / 2**20:+.1f} MB/h); "
          f"target <= {RSS_TARGET_MB:g} MB: {'met' if met else 'MISSED'}")
    b, f, m = settled(rows, "rss_tree", warm_s)
    print(f"process tree RSS (master + worker): baseline {b / 2**20:.1f} MB, final {f / 2**20:.1f} MB")
    for attr, label in (("fds", "open file descriptors"), ("threads", "OS threads"),
                        ("greenlets", "green threads"), ("timers", "event-hub timers")):
        if getattr(rows[-1], attr) is None:
            print(f"{label}: not available (no debug dump)")
            continue
        # Counts move with what is in flight (a collection's green thread, a pending timer):
        # growth is the last third's median above everything seen in the first third.
        vals = [getattr(r, attr) for r in rows if r.t_s >= warm_s]
        third = max(3, len(vals) // 3)
        first, final = vals[:third], statistics.median(vals[-third:])
        met = final <= max(first)
        ok &= met or attr == "timers"
        print(f"{label}: {min(first):g}-{max(first):g} in the first third after the warm-up, "
              f"median {final:g} in the last third; {'no growth' if met else 'GREW'}")
    b, f, m = settled(rows, "objects", warm_s) if rows[-1].objects is not None else (0, 0, 0)
    if rows[-1].objects is not None:
        print(f"objects tracked by the GC: baseline {b:.0f}, final {f:.0f} "
              f"({100 * (f - b) / b:+.1f} %)")
    ok &= soakstore.verdict([r.t_s for r in rows], [r.store for r in rows],
                            env.raw_retention_h * 3600, env.server.data_dir / "history.sqlite3")
    print(f"alert webhook deliveries received: {env.hooks.received}")
    return ok


def _drop_snapshot(dump: dict) -> None:
    snap = (dump.get("tracemalloc") or {}).get("snapshot")
    if snap:
        Path(snap).unlink(missing_ok=True)


def print_growth(first: dict, last: dict, top: int = 15) -> None:
    """Allocation sites that grew between the dump after the warm-up and the last one, and the
    object types whose count grew the most."""
    import tracemalloc
    a = (first.get("tracemalloc") or {}).get("snapshot")
    b = (last.get("tracemalloc") or {}).get("snapshot")
    if a and b:
        diff = tracemalloc.Snapshot.load(b).compare_to(tracemalloc.Snapshot.load(a), "traceback")
        print(f"\ntracemalloc: allocation sites that grew after the warm-up (top {top})")
        for st in diff[:top]:
            print(f"  {st.size_diff / 1024:+9.1f} KiB {st.count_diff:+8d} blocks  "
                  f"(now {st.size / 1024:.1f} KiB)")
            for line in st.traceback.format()[-6:]:
                print(f"      {line}")
    da, db = first.get("dead_threads", {}), last.get("dead_threads", {})
    if db:
        print("finished threads still referenced (first after warm-up -> last): " + ", ".join(
            f"{k} {da.get(k, 0)}->{n}" for k, n in db.items()))
    ta, tb = first.get("types", {}), last.get("types", {})
    grown = sorted(((tb[k] - ta.get(k, 0), k) for k in tb), reverse=True)[:top]
    print("object types that grew after the warm-up: " + ", ".join(
        f"{k} {d:+d}" for d, k in grown if d > 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="soak duration (default 30)")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between readings (30)")
    ap.add_argument("--warmup-min", type=float, default=None,
                    help="warm-up excluded from the growth figures (default 5, or a sixth of a "
                         "shorter soak)")
    ap.add_argument("--retention-min", type=float, default=None,
                    help="raw_retention_h for the soak, in minutes (default: half the soak, at "
                         "most 15)")
    ap.add_argument("--interval", type=float, default=0.1, help="interval_s (default 0.1)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                    help="leak hunt: trace allocations in the worker (inflates RSS; prints the "
                         "allocation sites that grew after the warm-up)")
    ap.add_argument("--keep", action="store_true", help="keep the soak's directory")
    args = ap.parse_args(argv)
    if not 1 <= args.minutes <= 24 * 60 or not 5 <= args.every <= 600 or not 0.05 <= args.interval <= 10:
        ap.error("--minutes 1..1440, --every 5..600, --interval 0.05..10")
    warm_min = args.warmup_min if args.warmup_min is not None else min(5.0, args.minutes / 6)
    retention_min = args.retention_min if args.retention_min is not None else min(15.0, args.minutes / 2)
    harness.sigterm_as_exit()
    print(harness.machine_line())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    base = Path(tempfile.mkdtemp(prefix="dash-soak-"))
    dump_path = base / "debug-dump.json"
    server_env = {"DASHBOARD_DEBUG_DUMP": str(dump_path)}
    if args.tracemalloc:
        server_env["DASHBOARD_TRACEMALLOC"] = str(args.tracemalloc)
    rows: list[Row] = []
    try:
        with soak_platform(base, args.interval, retention_min / 60, server_env) as env:
            srv = env.server
            master = psutil.Process(srv.proc.pid)
            worker = worker_of(master.pid)
            client = LiveClient(srv.url, srv.auth.socketio_auth())
            print(f"server: {srv.url} (worker pid {worker.pid}); raw retention {retention_min:g} min "
                  f"(raw_retention_h = {env.raw_retention_h:.4g}), pruned every "
                  f"{soakstore.prune_every_s(env.raw_retention_h * 3600):g} s; "
                  f"{args.minutes:g} min at {args.interval:g} s = "
                  f"{args.minutes * 60 / args.interval:,.0f} ticks per collector")
            for n in env.notes:
                print(n)
            print(HEADER, flush=True)
            t0 = time.monotonic()
            tracemalloc_first: Row | None = None
            try:
                while True:
                    row = take(t0, master, worker, dump_path, client, srv.data_dir / "history.sqlite3")
                    rows.append(row)
                    print(fmt_row(row, rows[-2] if len(rows) > 1 else None), flush=True)
                    if args.tracemalloc:
                        # Keep the snapshots of the first reading after the warm-up (the diff's
                        # baseline) and of the latest one; they are large.
                        if tracemalloc_first is None and row.t_s >= warm_min * 60:
                            tracemalloc_first = row
                        if len(rows) > 1 and rows[-2] is not tracemalloc_first:
                            _drop_snapshot(rows[-2].dump)
                    if row.t_s >= args.minutes * 60:
                        break
                    next_at = t0 + len(rows) * args.every
                    while time.monotonic() < next_at:
                        if srv.proc.poll() is not None or not worker.is_running():
                            raise RuntimeError(f"the worker died:\n{srv.log_tail()}")
                        time.sleep(min(1.0, max(0.0, next_at - time.monotonic())))
                ok = verdict(rows, warm_min * 60, env, args)
                print(f"Socket.IO client: {client.events} samples events, connected "
                      f"{client.connects} time(s) (1 = never dropped)")
                first = next((r for r in rows if r.t_s >= warm_min * 60), rows[0])
                print_growth(first.dump, rows[-1].dump)
            finally:
                client.close()
        print(f"\nverdict: {'every target met' if ok else 'a target was MISSED (see above)'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
