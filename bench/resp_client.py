"""The collectors' own Redis client (dashboard/collectors/resp.py) against redis-py, side by side
in one run (issue 19): CPU per pipelined round trip of the queue collector's shape, and the memory
an import of each adds to a fresh interpreter (anonymous RSS, over the standard library modules
the worker loads anyway).

    .venv/bin/python bench/resp_client.py [--commands 35] [--rounds 3000]

A private redis-server is started (dashboard.demo.services) and stopped. CPU is this process's
user + system time (the server's is not counted), alternated A B B A over two halves.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from dashboard.collectors import resp  # noqa: E402
from dashboard.demo.services import start_redis  # noqa: E402

IMPORT_RSS = """
def anon_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
import dataclasses, json, socket, ssl, threading, typing, urllib.parse  # the worker has these
before = anon_kb()
import {module}
print(anon_kb() - before)
"""


def plan(n: int) -> list[tuple]:
    kinds = [("LLEN", "queue:a"), ("ZCARD", "rq:failed:a"), ("LINDEX", "queue:a", 0),
             ("SCARD", "rq:workers:a"), ("HGET", "rq:job:1", "enqueued_at")]
    return [kinds[i % len(kinds)] for i in range(n)]


def with_redis_py(client: redis.Redis, commands: list[tuple], rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        pipe = client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        pipe.execute(raise_on_error=False)
    return time.process_time() - start


def with_resp(client: resp.Client, commands: list[tuple], rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        client.pipeline(commands)
    return time.process_time() - start


def import_kb(module: str) -> int:
    out = subprocess.run([sys.executable, "-c", IMPORT_RSS.format(module=module)], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return int(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=35)
    ap.add_argument("--rounds", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        server = start_redis(Path(d))
        try:
            seed = redis.Redis.from_url(server.url)
            seed.rpush("queue:a", *[f'{{"t": {i}}}' for i in range(100)])
            seed.zadd("rq:failed:a", {"x": 1})
            seed.hset("rq:job:1", "enqueued_at", "2026-12-04T10:00:00Z")
            py = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2,
                                      retry=Retry(NoBackoff(), 1), health_check_interval=0,
                                      client_name="dashboard")
            own = resp.Client(server.url, timeout_s=2)
            commands = plan(args.commands)
            half = args.rounds // 2
            times = {"redis-py": 0.0, "resp": 0.0}
            for name in ("redis-py", "resp", "resp", "redis-py"):
                if name == "redis-py":
                    times[name] += with_redis_py(py, commands, half)
                else:
                    times[name] += with_resp(own, commands, half)
            py.close()
            own.close()
        finally:
            server.stop()
    per = {k: v / (2 * half) * 1e6 for k, v in times.items()}
    print(f"pipeline of {args.commands} commands, {2 * half} round trips each, CPU of this process:")
    for k, v in per.items():
        print(f"  {k:<9} {v:8.1f} us per round trip")
    print(f"  ratio resp/redis-py: {per['resp'] / per['redis-py']:.2f}x")
    print("anonymous memory (RssAnon) an import adds to a fresh interpreter:")
    for module in ("redis", "dashboard.collectors.resp"):
        print(f"  import {module:<26} {import_kb(module) / 1024:6.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
