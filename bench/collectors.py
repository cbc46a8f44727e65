"""What the cache, queue and StatsD collection costs (issue 4).

Starts its own Redis (dashboard.devservices) and measures, in this process:

  cache     CPU per tick of the cache collector (one ``INFO stats memory clients``);
  queue     CPU per tick of the queue collector over 10 queues: 7 redis-lists (JSON items with an
            age field, two with a failed set, one with a processing list, one of 1,000,000
            items), one Celery queue with its 4 priority lists, and 2 RQ queues made by the
            real ``rq`` library (discovered);
  runner    the same two through ``CollectorRunner.tick`` (a thread per collection, samples
            built): what the dashboard really spends per tick on them;
  statsd    a sender process pushing 10,000 packets/s over loopback UDP for a few seconds
            while the collector aggregates every second: packets lost (sent - received, and
            the kernel's drop counter for the socket), the listener's CPU.

CPU is process CPU time (``time.process_time``) around back-to-back calls, so it includes the
collection threads and nothing else: Redis runs in its own process. Targets: cache + queue
<= 0.1 % of one core at 1 s sampling; StatsD 10,000 packets/s with no loss on loopback.
Figures are printed, never asserted.

    .venv/bin/python bench/collectors.py [--ticks 300] [--statsd-seconds 5] [--rate 10000]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq import Queue  # noqa: E402

from bench.harness import machine_line, percentile  # noqa: E402
from dashboard.collectors.cache import CacheCollector  # noqa: E402
from dashboard.collectors.queues.collector import QueueCollector  # noqa: E402
from dashboard.collectors.statsd import StatsdCollector, StatsdListener  # noqa: E402
from dashboard.config import load as config  # noqa: E402
from dashboard.demo import services as devservices  # noqa: E402
from dashboard.scheduler import CollectorRunner  # noqa: E402


def fill_queues(r: redis.Redis) -> list[dict]:
    now = time.time()
    queues = []
    for i in range(7):
        key = f"queue:list{i}"
        size = 1_000_000 if i == 0 else 50 * (i + 1)
        item = json.dumps({"created_at": now - 60 * i, "job": "send_email", "to": "x@example.com"})
        pipe = r.pipeline(transaction=False)
        for _ in range(0, size, 50_000):
            pipe.rpush(key, *([item] * min(50_000, size)))
        pipe.execute()
        q = {"name": f"list{i}", "kind": "redis-list", "key": key, "age_field": "created_at"}
        if i in (1, 2):
            r.zadd(f"{key}:failed", {"job-1": 1, "job-2": 2})
            q["failed_key"] = f"{key}:failed"
        if i == 3:
            r.rpush(f"{key}:processing", item)
            q["processing_key"] = f"{key}:processing"
        queues.append(q)
    msg = json.dumps({"body": "e30=", "headers": {"task": "t", "sent_at": now - 30}})
    for key in ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"):
        r.lpush(key, *([msg] * 20))
    queues.append({"name": "celery", "kind": "celery", "age_field": "headers.sent_at"})
    for name in ("default", "reports"):
        q = Queue(name, connection=r)
        for _ in range(25):
            q.enqueue(len, "abc")
    queues.append({"name": "rq", "kind": "rq"})
    return queues


def cpu_per_call(fn, ticks: int) -> tuple[float, float]:
    """Mean and p95 process CPU per call, in milliseconds."""
    fn()
    fn()                                          # warm: connections, discovery, type probes
    costs = []
    for _ in range(ticks):
        t0 = time.process_time()
        fn()
        costs.append((time.process_time() - t0) * 1000)
    return sum(costs) / len(costs), percentile(costs, 95)


def report(label: str, mean_ms: float, p95_ms: float) -> None:
    print(f"  {label:<34} {mean_ms:7.3f} ms CPU/tick (p95 {p95_ms:.3f})  = "
          f"{mean_ms / 10:.3f} % of one core at 1 s")


def bench_cache_queue(ticks: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-collectors-"))
    server = devservices.start_redis(base / "redis")
    try:
        r = redis.Redis.from_url(server.url)
        qs = fill_queues(r)
        settings = config.from_dict({"redis": {"url": server.url}, "queues": qs})
        cache = CacheCollector(server.url)
        queues = QueueCollector(settings.queues, server.url)
        labels = {x.labels["queue"] for x in queues.collect() if x.labels.keys() == {"queue"}}
        print(f"\ncache and queue collection, {ticks} ticks each ({len(labels)} queues: "
              f"{', '.join(sorted(labels))})")
        c = cpu_per_call(cache.collect, ticks)
        q = cpu_per_call(queues.collect, ticks)
        report("cache.collect()", *c)
        report("queue.collect() (10 queues)", *q)
        runner = CollectorRunner([cache, queues], lambda samples: None)
        rc = cpu_per_call(lambda: runner.collect_round([cache], cache.timeout_s), ticks)
        rq = cpu_per_call(lambda: runner.collect_round([queues], queues.timeout_s), ticks)
        report("runner.collect_round([cache])", *rc)
        report("runner.collect_round([queue])", *rq)
        total = c[0] + q[0]
        print(f"  cache + queue collection: {total / 10:.3f} % of one core at 1 s "
              f"(target <= 0.1 %); through the runner: {(rc[0] + rq[0]) / 10:.3f} %")
        stats = r.info("commandstats")
        heavy = [k for k in stats if k in ("cmdstat_lrange", "cmdstat_scan", "cmdstat_keys")]
        print(f"  commands that read whole lists or scan keys: {heavy or 'none'}")
        cache.close()
        queues.close()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _sender(address: tuple[str, int], rate: int, seconds: float, out) -> None:
    """Paced sends from another process: 10 packets every 1/rate*10 s."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(address)
    lines = [b"shop.requests:1|c", b"shop.response_time:%d|ms", b"checkout.success:1|c",
             b"shop.errors:1|c|@0.1", b"shop.queue_depth:%d|g"]
    sent, start, batch = 0, time.perf_counter(), 10
    step = batch / rate
    total = int(rate * seconds)
    while sent < total:
        target = start + (sent // batch) * step
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for i in range(batch):
            line = lines[(sent + i) % len(lines)]
            s.send(line % (sent % 900 + 20) if b"%d" in line else line)
        sent += batch
    out.send((sent, time.perf_counter() - start))
    s.close()


def udp_drops(port: int) -> int | None:
    """The kernel's drop counter for our socket (last column of /proc/net/udp)."""
    try:
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            if int(f[1].split(":")[1], 16) == port:
                return int(f[-1])
    except OSError:
        return None
    return None


def bench_statsd(rate: int, seconds: float) -> None:
    listener = StatsdListener("127.0.0.1:0")
    collector = StatsdCollector(listener, interval_s=1.0)
    collector.start()
    port = listener.address[1]
    print(f"\nstatsd: {rate:,} packets/s for {seconds:g} s from another process, "
          f"aggregated every second (SO_RCVBUF asked {listener.rcvbuf >> 20} MB)")
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_sender, args=(listener.address, rate, seconds, child))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    proc.start()
    aggregates = []
    while proc.is_alive() or not parent.poll():
        time.sleep(1.0)
        aggregates.append(collector.collect()[0].values)
        if time.perf_counter() - wall0 > seconds + 20:
            break
    sent, send_s = parent.recv()
    proc.join(10)
    deadline = time.perf_counter() + 5
    while listener.packets_total < sent and time.perf_counter() < deadline:
        time.sleep(0.05)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    aggregates.append(collector.collect()[0].values)
    received = listener.packets_total
    drops = udp_drops(port)
    collector.close()
    p95s = [a["app.response_ms_p95"] for a in aggregates if "app.response_ms_p95" in a]
    print(f"  sent {sent:,} in {send_s:.2f} s ({sent / send_s:,.0f}/s); received {received:,}; "
          f"lost {sent - received:,}; kernel drops {drops if drops is not None else 'n/a'}; "
          f"malformed {listener.malformed_total}")
    print(f"  listener + aggregation CPU: {cpu / wall * 100:.1f} % of one core over {wall:.1f} s "
          f"({cpu / max(received, 1) * 1e6:.1f} µs per packet); p95 over the 10 s window "
          f"{min(p95s, default=0):.0f}-{max(p95s, default=0):.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--statsd-seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=int, default=10_000)
    args = ap.parse_args()
    print(machine_line())
    bench_cache_queue(args.ticks)
    bench_statsd(args.rate, args.statsd_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
