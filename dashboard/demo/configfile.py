"""The demo's configuration: an ordinary TOML file in the demo data dir, rewritten at each start
(the ports and passwords are new each time), loaded by ``python -m dashboard serve`` through
``DASHBOARD_CONFIG`` like any other.

Thresholds are the shipped defaults (docs/thresholds.md). Only the timings of the rules the demo
drives are shortened -- ``for_s`` and ``keep_firing_for_s`` of tens of seconds instead of one
to five minutes -- so that alerts fire and resolve while someone watches; the page says so.
No ``[[notify]]`` channel: the demo sends nothing anywhere.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dashboard.demo.timing import Timing

POOL_CAPACITY = 40          # the shop's "configured pool": the surge takes it to 85 %
SHOP_WORKERS = 8            # pm.max_children of the shop's worker pool

# Rules the workload drives on purpose; their hold and calm times follow the demo's timing.
DRIVEN_RULES = ("db_pool_utilization", "db_slow_queries", "db_avg_query_time", "cache_hit_rate",
                "queue_pending", "queue_failed", "app_response_time", "app_error_rate",
                "app_checkout_success", "app_worker_utilization")
NO_HOLD = ("queue_failed",)          # any new failed job fires at once (THRESHOLDS #8)


@dataclass(frozen=True)
class Targets:
    bind: str
    mysql_url: str
    redis_url: str
    statsd_bind: str
    shop_url: str


def _q(v: str) -> str:
    return json.dumps(v)             # a TOML basic string is a JSON string for these values


def render(data_dir: Path, t: Targets, timing: Timing) -> str:
    lines = [
        "# Written by `python -m dashboard demo` at each start (ports and passwords change):",
        "# edits are overwritten. It is an ordinary configuration file; see dashboard.example.toml.",
        "demo = true",
        f"data_dir = {_q(str(data_dir))}",
        f"bind = {_q(t.bind)}",
        f"public_url = {_q('http://' + t.bind)}",
        "interval_s = 1",
        "",
        "[mysql]",
        f"url = {_q(t.mysql_url)}",
        f"pool_capacity = {POOL_CAPACITY}",
        "connections_per_hour_limit = 5000     # the surge reconnects often; the demo's hosting limit",
        "slow_ms = 1000",
        f"digest_interval_s = {timing.digest_interval_s:g}",
        "",
        "[redis]",
        f"url = {_q(t.redis_url)}",
        f"hit_rate_window_s = {timing.window_s:g}",
        "",
        "[statsd]",
        f"bind = {_q(t.statsd_bind)}",
        "",
        "[phpfpm]",
        f"url = {_q(t.shop_url + '/status?json')}",
        f"max_children = {SHOP_WORKERS}",
        "",
        "[[queues]]",
        'name = "emails"',
        'kind = "redis-list"',
        'key = "queue:emails"',
        'age_field = "enqueued_at"',
        'failed_key = "queue:emails:failed"',
        f"window_s = {timing.window_s:g}",
        "",
    ]
    for name, path in (("home", "/"), ("health", "/health")):
        lines += ["[[probes]]", f"name = {_q(name)}", f"url = {_q(t.shop_url + path)}",
                  f"interval_s = {timing.probe_interval_s:g}", "timeout_s = 5", ""]
    lines.append("# Demo timings: thresholds as shipped, holds shortened so alerts fire and resolve "
                 "within minutes.")
    for rule in DRIVEN_RULES:
        lines.append(f"[rules.{rule}]")
        if rule not in NO_HOLD:
            lines.append(f"for_s = {timing.for_s:g}")
        lines += [f"keep_firing_for_s = {timing.keep_firing_s:g}", ""]
    return "\n".join(lines)


def write(data_dir: Path, t: Targets, timing: Timing) -> Path:
    path = data_dir / "demo.toml"
    tmp = path.with_suffix(".tmp")
    # 600 from the first byte: the file holds the monitoring account's password
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render(data_dir, t, timing))
    os.replace(tmp, path)
    return path
