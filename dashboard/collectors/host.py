"""Host statistics from psutil: CPU, load, memory, swap, disk space and I/O, network.

On Linux, memory, swap, network and disk I/O are read from /proc directly: one read of each file
per tick. psutil reads /proc/meminfo twice and /proc/vmstat (4 KB) for swap, and checks
/sys/block/<name> for every line of /proc/diskstats on every call; that was 0.35 ms of the
0.43 ms a collection took (measured, hot; several times that at 1 Hz with cold caches), in a
dashboard whose whole budget is 3 ms a second (issue 2). The values are psutil's: the same
fields, formulas and rounding (tests/test_host_collector.py compares them).
"""
from __future__ import annotations

import os
import re
import time
from typing import Callable, Sequence

import psutil

from dashboard.collectors.rates import RateTracker
from dashboard.model import MetricSpec, Reading

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
        self._proc = _ProcReader() if _ProcReader.usable() else None
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
        }
        p = self._proc
        if p is not None:
            values["host.mem_percent"], values["host.swap_percent"] = p.memory()
            rx, tx = p.net_bytes()
            disk = p.disk_bytes()
        else:
            values["host.mem_percent"] = psutil.virtual_memory().percent
            values["host.swap_percent"] = psutil.swap_memory().percent
            rx, tx = _psutil_net_bytes()
            io = psutil.disk_io_counters()
            disk = None if io is None else (io.read_bytes, io.write_bytes)
        values["host.net_rx_bps"] = self._rates.rate("rx", rx, now)
        values["host.net_tx_bps"] = self._rates.rate("tx", tx, now)
        if disk is not None:
            values["host.disk_read_bps"] = self._rates.rate("rd", disk[0], now)
            values["host.disk_write_bps"] = self._rates.rate("wr", disk[1], now)
        return [Reading({k: v for k, v in values.items() if v is not None})] + self._disk_space(now)

    def close(self) -> None:
        pass


def _psutil_net_bytes() -> tuple[int, int]:
    rx = tx = 0
    for name, c in psutil.net_io_counters(pernic=True).items():
        if name != "lo":
            rx += c.bytes_recv
            tx += c.bytes_sent
    return rx, tx


def _percent(used: float, total: float) -> float:
    # psutil's usage_percent(used, total, round_=1): 0 when there is no total (no swap).
    return round(used / total * 100, 1) if total > 0 else 0.0


# The /proc/meminfo fields psutil's virtual_memory().percent and swap_memory().percent use.
_MEMINFO = re.compile(rb"^(MemTotal|MemFree|MemAvailable|Buffers|Cached|SwapTotal|SwapFree):"
                      rb"\s+(\d+)", re.M)


class _ProcReader:
    """Linux: the /proc files psutil would read, each read once per tick."""

    SECTOR = 512                # /proc/diskstats counts 512-byte sectors whatever the device
    KNOWN_MAX = 4096            # names classified (disk or partition), cleared beyond this

    def __init__(self) -> None:
        # name in /proc/diskstats -> is it a whole disk? psutil asks /sys/block/<name> for every
        # line on every call; the answer for a name does not change, so it is asked once, the
        # first time the name is seen (a disk attached later is counted from its first tick).
        self._whole: dict[bytes, bool] = {}

    def _is_whole_disk(self, name: bytes) -> bool:
        known = self._whole.get(name)
        if known is None:
            if len(self._whole) >= self.KNOWN_MAX:
                self._whole.clear()
            # As psutil: "cciss/c0d0" in diskstats is "cciss!c0d0" under /sys/block.
            known = self._whole[name] = os.path.exists(
                b"/sys/block/" + name.replace(b"/", b"!"))
        return known

    @staticmethod
    def usable() -> bool:
        return all(os.access(p, os.R_OK) for p in
                   ("/proc/meminfo", "/proc/net/dev", "/proc/diskstats", "/sys/block"))

    @staticmethod
    def _read(path: str) -> bytes:
        with open(path, "rb", buffering=0) as f:
            return f.read()

    def memory(self) -> tuple[float, float]:
        """(mem %, swap %) as psutil.virtual_memory().percent and swap_memory().percent."""
        kb = {k.decode(): int(v) for k, v in _MEMINFO.findall(self._read("/proc/meminfo"))}
        total = kb.get("MemTotal", 0)
        avail = kb.get("MemAvailable")
        if avail is None:       # kernels before 3.14: psutil's own fallback is close enough
            avail = kb.get("MemFree", 0) + kb.get("Buffers", 0) + kb.get("Cached", 0)
        swap_total = kb.get("SwapTotal", 0)
        return (_percent(total - avail, total),
                _percent(swap_total - kb.get("SwapFree", 0), swap_total))

    def net_bytes(self) -> tuple[int, int]:
        """Bytes received and sent by every interface but loopback since boot."""
        rx = tx = 0
        for line in self._read("/proc/net/dev").splitlines()[2:]:
            name, _, rest = line.partition(b":")
            if name.strip() == b"lo":
                continue
            f = rest.split()
            if len(f) >= 9:
                rx += int(f[0])
                tx += int(f[8])
        return rx, tx

    def disk_bytes(self) -> tuple[int, int] | None:
        """Bytes read and written by whole disks (not partitions) since boot, as psutil sums."""
        rd = wr = 0
        seen = False
        for line in self._read("/proc/diskstats").splitlines():
            f = line.split()
            if len(f) >= 10 and self._is_whole_disk(f[2]):
                rd += int(f[5])
                wr += int(f[9])
                seen = True
        return (rd * self.SECTOR, wr * self.SECTOR) if seen else None
