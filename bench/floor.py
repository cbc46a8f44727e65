"""The floor for bench/overhead.py: a bare Python loop that only samples, once per interval.

Host: the dashboard's own HostCollector.collect() (the same psutil calls, nothing else).
MySQL: ``SHOW GLOBAL STATUS`` on one persistent PyMySQL connection. Redis: ``INFO`` on one
persistent redis-py connection. No store, no web server, no Socket.IO: whatever the dashboard
costs above this is its own overhead.

    .venv/bin/python bench/floor.py [--interval 1] [--mysql-url URL] [--redis-url URL]
Runs until terminated (SIGTERM/SIGINT).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def mysql_sampler(url: str):
    import pymysql
    u = urlsplit(url)
    conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=unquote(u.username or ""), password=unquote(u.password or ""),
                           connect_timeout=5, read_timeout=10, autocommit=True)

    def sample() -> None:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS")
            cur.fetchall()
    return sample


def redis_sampler(url: str):
    import redis
    client = redis.Redis.from_url(url, socket_timeout=5)

    def sample() -> None:
        client.info()
    return sample


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--mysql-url")
    ap.add_argument("--redis-url")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from dashboard.collectors.host import HostCollector
    samplers = [HostCollector(interval_s=args.interval).collect]
    if args.mysql_url:
        samplers.append(mysql_sampler(args.mysql_url))
    if args.redis_url:
        samplers.append(redis_sampler(args.redis_url))
    print("floor: sampling", flush=True)
    next_at = time.monotonic()
    try:
        while True:
            for sample in samplers:
                sample()
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
