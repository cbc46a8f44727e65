"""A StatsD-compatible UDP listener, so the platform can push its own signals with any client.

Accepted lines (several per packet, newline-separated): ``name:value|c[|@rate]`` (counter;
``value / rate`` is counted), ``name:value|ms[|@rate]`` or ``|h`` (timer), ``name:value|g``
(gauge; ``+n`` / ``-n`` adjust it), ``name:value|s`` (set); DogStatsD ``|#tags`` are accepted
and ignored. Anything else is counted in ``statsd.malformed`` and dropped.

What the dashboard makes of them, each sampling interval, over the last 10 s (a sliding
window: the panels move every second, yet a p95 rests on more than one second's requests):
- ``app.error_rate`` = ``errors`` / ``requests`` counters, in percent;
- ``app.checkout_success_rate`` = ``checkout.success`` / (``checkout.success`` + ``checkout.failure``);
- ``app.response_ms`` (mean, the docs' "average response time"), ``app.response_ms_p50`` and
  ``app.response_ms_p95`` from the ``response_time`` (or ``request_time``) timers;
- a name also matches with any prefix: ``shop.requests`` counts as ``requests``;
- the first 50 other counters and gauges (by name) as ``statsd.count_per_s{name}`` /
  ``statsd.gauge{name}``; ``statsd.names_not_shown`` counts the names left out.

The listener is a thread started by ``Runtime.start`` (``start()``) and stopped by
``close()``. It keeps up with 10,000 packets/s on loopback: a 16 MB receive buffer absorbs
stalls, and the loop does nothing but ``recv_into``, a split and a dict update per line.
When the buffer holds at least ``ALIGN_MIN_S`` of 10,000 packets/s (twice over), the tick's
``take()`` reads what is queued itself and the thread only wakes on the process's beat
(dashboard/beat.py: when the tick wakes it) to empty the buffer in between, as often as the
buffer needs (issue 19: a thread woken for each batch of a trickle woke an idle process ~9 times
a second; on a phase of its own, ~3 times).
"""
from __future__ import annotations

import logging
import math
import random
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from dashboard import beat
from dashboard.collectors.base import capped
from dashboard.model import CollectorError, MetricSpec, Reading

METRICS: Sequence[MetricSpec] = (
    MetricSpec("app.error_rate", "%", "errors / requests counters over the last 10 s"),
    MetricSpec("app.checkout_success_rate", "%", "checkout.success / (success + failure), last 10 s"),
    MetricSpec("app.response_ms", "ms", "Mean of the response_time timers over the last 10 s"),
    MetricSpec("app.response_ms_p50", "ms", "Median response_time over the last 10 s"),
    MetricSpec("app.response_ms_p95", "ms", "95th percentile of response_time over the last 10 s"),
    MetricSpec("app.requests_per_s", "/s", "requests counter per second"),
    MetricSpec("statsd.packets_per_s", "/s", "StatsD packets received per second"),
    MetricSpec("statsd.malformed", "count", "Malformed StatsD lines since start (dropped)"),
    MetricSpec("statsd.malformed_per_s", "/s", "Malformed StatsD lines per second"),
    MetricSpec("statsd.count_per_s", "/s", "Any other StatsD counter per second", ("name",)),
    MetricSpec("statsd.gauge", "count", "Any StatsD gauge, last value", ("name",)),
    MetricSpec("statsd.names_not_shown", "count", "Other counter and gauge names beyond the "
               "first 50, not exposed"),
)

log = logging.getLogger(__name__)

RCVBUF = 16 << 20               # the kernel takes only what arrives: a limit, not an allocation
BATCH_PAUSE_S = 0.2              # at most ~5 wake-ups a second for a trickle of packets
ALIGN_MIN_S = 0.1                # buffer room for this long at 10,000 packets/s: read at the ticks
FLOOD = 1024                     # a batch this big: no pause, read on
MAX_TIMER_VALUES = 5_000         # per name and interval; beyond, a uniform reservoir sample
MAX_NAMES = 50                   # other counters/gauges exposed; the network must not grow the store
MAX_GAUGES = 10_000              # gauges live across intervals: bound what a sender can make us keep
# Python's socket module does not name it. Linux's number where SO_RCVBUF has its generic one
# (8: x86, arm, ...); MIPS, SPARC, PA-RISC and Alpha number their options otherwise.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE",
                         33 if sys.platform.startswith("linux") and socket.SO_RCVBUF == 8 else None)
_TYPES = {b"c", b"ms", b"h", b"g", b"s"}
# Names become labels on the page: the usual StatsD charset only, so a sender cannot put markup there.
_NAME = re.compile(rb"[A-Za-z0-9_.\-/]{1,200}")


@dataclass
class Interval:
    """What arrived since the previous ``take()``."""

    counters: dict[str, float] = field(default_factory=dict)
    timers: dict[str, list[float]] = field(default_factory=dict)
    timer_seen: dict[str, float] = field(default_factory=dict)
    sets: dict[str, set] = field(default_factory=dict)
    packets: int = 0
    malformed: int = 0


class StatsdListener:
    def __init__(self, bind: str = "127.0.0.1:8125", rcvbuf: int = RCVBUF) -> None:
        host, _, port = bind.rpartition(":")
        self.requested = (host or "127.0.0.1", int(port))
        self.rcvbuf = rcvbuf
        self.address: tuple[str, int] | None = None
        self.error: str | None = None
        self.malformed_total = 0
        self.packets_total = 0
        self.gauges: dict[str, float] = {}
        self._cur = Interval()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._aligned = False            # take() reads the socket; the thread follows the ticks
        self._wake = threading.Event()
        self._take_buf = bytearray(65536)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:   # root (or CAP_NET_ADMIN) may exceed net.core.rmem_max; others get the cap
                if SO_RCVBUFFORCE is None:
                    raise OSError
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind(self.requested)
        except OSError as e:
            self.error = (f"statsd: cannot listen on udp {self.requested[0]}:{self.requested[1]}: "
                          f"{e.strerror or e}")
            raise CollectorError(self.error) from None
        self.error = None
        self._sock, self.address, self._stopping = sock, sock.getsockname(), False
        self._wake.clear()
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2    # Linux reports 2x
        if got < self.rcvbuf:
            log.warning("statsd: the receive buffer is %.1f MB of the %.0f MB asked for "
                        "(net.core.rmem_max): the listener wakes more often to empty it; "
                        "deploy/sysctl.d/60-dashboard-statsd.conf raises the cap",
                        got / 2**20, self.rcvbuf / 2**20)
        self._aligned = self._pause_s(sock, ALIGN_MIN_S * 10) >= ALIGN_MIN_S
        if self._aligned:
            sock.settimeout(0.0)         # nobody blocks on it: every read takes what is queued
        self._thread = threading.Thread(target=self._loop, name="statsd-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        sock, address, self._stopping = self._sock, self.address, True
        if sock is None or address is None:
            return
        self._wake.set()
        try:   # wake the blocking recv with an empty datagram, then let the loop end
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"", address)
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(2.0)
        sock.close()
        self._sock, self._thread = None, None

    def take(self) -> Interval:
        sock = self._sock
        if self._aligned and sock is not None and not self._stopping:
            # What arrived up to this tick counts in it; under a flood, at most FLOOD packets
            # here (the listener's thread reads on): the queue never empties while the flood
            # lasts, and the tick's reading must not wait for it to end.
            self._drain(sock, self._take_buf, FLOOD)
        with self._lock:
            cur, self._cur = self._cur, Interval()
        return cur

    def _loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = bytearray(65536)
        if self._aligned:
            self._aligned_loop(sock, buf)
            return
        # Packets are taken in batches: after the first of a batch, a pause lets the kernel's
        # receive buffer gather what follows, then everything queued is read without waiting.
        # A thread woken for each packet (60 packets/s from a small app) cost more CPU than
        # all the parsing (each wake-up of an idle process costs ~0.1 ms on a VM). The pause is
        # short enough for the buffer we got to hold 10,000 packets/s; under a flood (a batch of
        # FLOOD packets or more) it is skipped, so the loop just keeps reading.
        pause = steady = self._pause_s(sock)
        while not self._stopping:
            try:
                sock.settimeout(None)
                n = sock.recv_into(buf)
            except OSError:
                if self._stopping:
                    break
                continue
            if n:
                self._ingest(bytes(buf[:n]))
            if pause:
                time.sleep(pause)
            pause = 0.0 if self._drain(sock, buf) >= FLOOD else steady

    def _aligned_loop(self, sock: socket.socket, buf: bytearray) -> None:
        """Read what is queued, then sleep as long as the buffer holds 10,000 packets/s twice
        over, up to the last beat within that span: woken with the tick, whose ``take()`` reads
        too, not on a phase of its own."""
        longest = self._pause_s(sock, 10.0)
        while not self._stopping:
            if self._drain(sock, buf) >= FLOOD:
                continue                  # a flood: read on
            self._wake.wait(beat.sleep_within(longest))

    def _drain(self, sock: socket.socket, buf: bytearray, limit: int | None = None) -> int:
        """Read what is queued without waiting (at most ``limit`` packets); the number read."""
        got = 0
        if not self._aligned:
            sock.settimeout(0.0)
        while not self._stopping and (limit is None or got < limit):
            try:
                n = sock.recv_into(buf)
            except OSError:                   # nothing queued (BlockingIOError), or closed
                break
            got += 1
            if n:
                self._ingest(bytes(buf[:n]))
            if got % 256 == 0:
                time.sleep(0)     # lets green threads (eventlet/gevent) run under a flood
        return got

    def _pause_s(self, sock: socket.socket, cap: float = BATCH_PAUSE_S) -> float:
        # ~830 bytes of the buffer per small datagram on loopback (the kernel's accounting,
        # measured: rcvbuf / packets held unread); 1,200 for a margin. The pause must leave
        # room for 10,000 packets/s twice over.
        room = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) / 1200
        return max(0.0, min(cap, room / 10_000 / 2))

    def _ingest(self, data: bytes) -> None:
        bad = 0
        with self._lock:
            cur = self._cur
            cur.packets += 1
            self.packets_total += 1
            for line in data.split(b"\n"):
                if not line:
                    continue
                name, sep, rest = line.partition(b":")
                parts = rest.split(b"|")
                if not sep or len(parts) < 2 or parts[1] not in _TYPES or not _NAME.fullmatch(name):
                    bad += 1
                    continue
                kind, raw = parts[1], parts[0]
                rate = 1.0
                try:
                    if kind != b"s":
                        value = float(raw)
                        if not math.isfinite(value):
                            raise ValueError
                    for extra in parts[2:]:
                        if extra[:1] == b"@":
                            rate = float(extra[1:])
                            if not 0 < rate <= 1:
                                raise ValueError
                        elif extra[:1] != b"#":
                            raise ValueError
                    key = name.decode("ascii")
                except ValueError:
                    bad += 1
                    continue
                if kind == b"c":
                    cur.counters[key] = cur.counters.get(key, 0.0) + value / rate
                elif kind == b"ms" or kind == b"h":
                    seen = cur.timer_seen.get(key, 0.0) + 1 / rate
                    cur.timer_seen[key] = seen
                    vals = cur.timers.setdefault(key, [])
                    if len(vals) < MAX_TIMER_VALUES:
                        vals.append(value)
                    else:       # reservoir: every value had the same chance to be kept
                        j = random.randrange(int(seen))
                        if j < MAX_TIMER_VALUES:
                            vals[j] = value
                elif kind == b"g":
                    if raw[:1] in (b"+", b"-") and key in self.gauges:
                        self.gauges[key] += value
                    elif key in self.gauges or len(self.gauges) < MAX_GAUGES:
                        self.gauges[key] = value
                else:
                    cur.sets.setdefault(key, set()).add(raw)
            cur.malformed += bad
            self.malformed_total += bad


def _matching(d: dict, name: str) -> list:
    suffix = "." + name
    return [v for k, v in d.items() if k == name or k.endswith(suffix)]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


KNOWN_COUNTERS = ("requests", "errors", "checkout.success", "checkout.failure")
RESPONSE_TIMERS = ("response_time", "request_time")


@dataclass
class _Slice:
    """One collection interval, reduced to what the window needs."""

    start: float
    end: float
    counters: dict[str, float]
    timings: list[float]            # response timers, sorted
    packets: int
    malformed: int


class StatsdCollector:
    source = "statsd"
    metrics = METRICS

    def __init__(self, listener: StatsdListener, interval_s: float = 1.0, window_s: float = 10.0,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.listener = listener
        self.interval_s = interval_s
        self.window_s = max(window_s, interval_s)
        self.timeout_s = timeout_s
        self._clock = clock
        self._last: float | None = None
        self._slices: deque[_Slice] = deque()
        self._started = False

    def start(self) -> None:
        """Bind and listen (Runtime.on_start); a bind error shows on every tick afterwards."""
        self._started = True
        try:
            self.listener.start()
        except CollectorError:
            pass
        self._last = self._clock()

    def _slide(self) -> tuple[float, list[_Slice]]:
        """Add what arrived since the last tick; return the window's span and slices."""
        now = self._clock()
        iv = self.listener.take()
        timings = sorted(v for name in RESPONSE_TIMERS for vals in _matching(iv.timers, name)
                         for v in vals)
        self._slices.append(_Slice(self._last if self._last is not None else now, now,
                                   iv.counters, timings, iv.packets, iv.malformed))
        self._last = now
        while self._slices and self._slices[0].end <= now - self.window_s + 1e-6:
            self._slices.popleft()
        slices = list(self._slices)
        return max(now - slices[0].start, 1e-6), slices

    def collect(self) -> list[Reading]:
        if not self._started:
            return []          # `check`: the listener only runs inside serve/collect
        if self.listener.error or not self.listener.running:
            raise CollectorError(self.listener.error or "statsd: the listener thread stopped")
        span, slices = self._slide()
        counters: dict[str, float] = {}
        for sl in slices:
            for k, v in sl.counters.items():
                counters[k] = counters.get(k, 0.0) + v
        values: dict[str, float] = {
            "statsd.packets_per_s": sum(sl.packets for sl in slices) / span,
            "statsd.malformed_per_s": sum(sl.malformed for sl in slices) / span,
            "statsd.malformed": float(self.listener.malformed_total)}
        c = {name: sum(_matching(counters, name)) for name in KNOWN_COUNTERS}
        if c["requests"] > 0:
            values["app.error_rate"] = c["errors"] / c["requests"] * 100.0
        values["app.requests_per_s"] = c["requests"] / span
        done = c["checkout.success"] + c["checkout.failure"]
        if done > 0:
            values["app.checkout_success_rate"] = c["checkout.success"] / done * 100.0
        # sorted() finds the already-sorted runs of each slice: a merge, not a full sort
        timings = sorted(v for sl in slices for v in sl.timings)
        if timings:
            values["app.response_ms"] = sum(timings) / len(timings)
            values["app.response_ms_p50"] = percentile(timings, 0.50)
            values["app.response_ms_p95"] = percentile(timings, 0.95)
        known = {k for k in counters for name in KNOWN_COUNTERS if k == name or k.endswith("." + name)}
        others, more_counters = capped((k for k in counters if k not in known), MAX_NAMES)
        gauges = dict(self.listener.gauges)
        shown_gauges, more_gauges = capped(gauges, MAX_NAMES)
        values["statsd.names_not_shown"] = float(more_counters + more_gauges)
        out = [Reading(values)]
        out += [Reading({"statsd.count_per_s": counters[k] / span}, {"name": k}) for k in others]
        out += [Reading({"statsd.gauge": gauges[k]}, {"name": k}) for k in shown_gauges]
        return out

    def check_notes(self) -> list[str]:
        where = self.listener.address or self.listener.requested
        return [f"statsd: udp {where[0]}:{where[1]}, figures over the last {self.window_s:g} s, "
                f"every {self.interval_s:g} s (the listener runs inside serve/collect)"]

    def stop(self) -> None:
        """Runtime.on_stop: stop listening (``close`` does the same at shutdown)."""
        self.listener.stop()

    def close(self) -> None:
        self.listener.stop()
