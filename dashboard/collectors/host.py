"""Host statistics from psutil: CPU, load, memory, swap, disk space and I/O, network."""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import psutil

from dashboard.model import MetricSpec, Reading
from dashboard.rates import RateTracker

METRICS: Sequence[MetricSpec] = (
    MetricSpec("host.cpu_percent", "%", "CPU busy across all cores since the previous sample"),
    MetricSpec("host.load1", "count", "1-minute load average"),
    MetricSpec("host.load_per_core", "count", "1-minute load average divided by the number of cores"),
    MetricSpec("host.mem_percent", "%", "Memory in use (total minus available)"),
    MetricSpec("host.swap_percent", "%", "Swap in use"),
    MetricSpec("host.disk_percent", "%", "Space used on a mounted file system", ("mount",)),
    MetricSpec("host.net_rx_bps", "bytes/s", "Bytes received per second, all interfaces but loopback"),
    MetricSpec("host.net_tx_bps", "bytes/s", "Bytes sent per second, all interfaces but loopback"),
    MetricSpec("host.disk_read_bps", "bytes/s", "Bytes read from block devices per second"),
    MetricSpec("host.disk_write_bps", "bytes/s", "Bytes written to block devices per second"),
)

# Pseudo and container file systems say nothing about capacity.
_SKIP_FSTYPES = {"squashfs", "tmpfs", "devtmpfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2",
                 "nsfs", "autofs", "fuse.lxcfs", "iso9660", "ramfs"}


class HostCollector:
    source = "host"
    metrics = METRICS

    def __init__(self, interval_s: float = 1.0, timeout_s: float = 5.0,
                 mounts: Sequence[str] | None = None, disk_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._mounts = list(mounts) if mounts is not None else None
        self._disk_every_s = disk_every_s          # space used moves slowly; statvfs each 30 s
        self._clock = clock
        self._rates = RateTracker()
        self._cores = psutil.cpu_count() or 1
        self._disk_cache: list[Reading] = []
        self._disk_at = float("-inf")
        # psutil.cpu_percent(None) keeps its previous reading per thread, and every collection
        # runs in a new thread, so it would always answer 0. Keep our own previous reading.
        self._cpu_prev = psutil.cpu_times()

    def _discover_mounts(self) -> list[str]:
        seen, out = set(), []
        for p in psutil.disk_partitions(all=False):
            if p.fstype in _SKIP_FSTYPES or p.device in seen:
                continue
            seen.add(p.device)
            out.append(p.mountpoint)
        return out or ["/"]

    def _disk_space(self, now: float) -> list[Reading]:
        if now - self._disk_at < self._disk_every_s and self._disk_cache:
            return self._disk_cache
        out = []
        for m in self._mounts if self._mounts is not None else self._discover_mounts():
            try:
                out.append(Reading({"host.disk_percent": psutil.disk_usage(m).percent}, {"mount": m}))
            except OSError:
                continue  # unmounted since discovery
        self._disk_cache, self._disk_at = out, now
        return out

    def _cpu_percent(self) -> float | None:
        cur = psutil.cpu_times()
        prev, self._cpu_prev = self._cpu_prev, cur
        idle = lambda t: t.idle + getattr(t, "iowait", 0.0)  # noqa: E731
        total = sum(cur) - sum(prev)
        if total <= 0:
            return None
        return round(max(0.0, min(100.0, 100.0 * (1 - (idle(cur) - idle(prev)) / total))), 2)

    def collect(self) -> list[Reading]:
        now = self._clock()
        load1 = os.getloadavg()[0]
        values: dict[str, float | None] = {
            "host.cpu_percent": self._cpu_percent(),
            "host.load1": load1,
            "host.load_per_core": load1 / self._cores,
            "host.mem_percent": psutil.virtual_memory().percent,
            "host.swap_percent": psutil.swap_memory().percent,
        }
        rx = tx = 0
        for name, c in psutil.net_io_counters(pernic=True).items():
            if name != "lo":
                rx += c.bytes_recv
                tx += c.bytes_sent
        values["host.net_rx_bps"] = self._rates.rate("rx", rx, now)
        values["host.net_tx_bps"] = self._rates.rate("tx", tx, now)
        io = psutil.disk_io_counters()
        if io is not None:
            values["host.disk_read_bps"] = self._rates.rate("rd", io.read_bytes, now)
            values["host.disk_write_bps"] = self._rates.rate("wr", io.write_bytes, now)
        return [Reading({k: v for k, v in values.items() if v is not None})] + self._disk_space(now)

    def close(self) -> None:
        pass
