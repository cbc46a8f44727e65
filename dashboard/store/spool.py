"""Ticks the store could not write (a full disk), kept in memory and written back later.

A tick that ``Store.append`` cannot write still goes on to the page and the alert engine: its
samples are numbered in memory from the last sequence number, so the live page and ``resume``
see no difference. The tick waits here for ``store_buffer_s`` and is written, with those same
numbers (``Store.append(first_seq=...)``), as soon as a write succeeds again: before any newer
tick, so no number is given twice. Ticks older than that are dropped and counted; a ``resume``
that asks for them then skips them (the page shows the gap, never a made-up line).

While the store cannot write, every tick tries once (the oldest waiting tick first): a disk
with space again is noticed at the next tick, without a restart. The log says so once a minute,
not a traceback per tick.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

from dashboard.model import Sample
from dashboard.store.history import Store

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0


class Spool:
    """``append`` in place of ``Store.append`` (never raises for a store that cannot write),
    ``after`` in place of ``Store.after`` (store plus memory), ``status`` for /healthz."""

    def __init__(self, store: Store, keep_s: float, clock: Callable[[], float] = time.time) -> None:
        self.store, self.keep_s, self._clock = store, keep_s, clock
        self._ticks: deque[tuple[float, list[Sample]]] = deque()   # (kept at, numbered samples)
        self._lock = threading.Lock()             # _ticks: the writer against resume readers
        self._last_seq: int | None = None         # of the newest tick handed out
        self.down_since: float | None = None
        self.error: str | None = None
        self.dropped_samples = 0                  # buffered longer than keep_s: never stored
        self.last_write: float | None = None
        self._logged_at = -math.inf

    # --- writing (one caller at a time: Runtime.publish holds its lock) ---------------------------

    def append(self, samples: Sequence[Sample]) -> list[Sample]:
        """Store the tick, or number it in memory and keep it; the samples with their numbers.
        Empty when it could not even be numbered (the store unreadable too: counted dropped)."""
        if not self._ticks:
            try:
                stored = self.store.append(samples)
            except sqlite3.Error as e:
                self._failed(e)
            else:
                self._wrote(stored)
                return stored
        tick = self._number(samples)
        if tick:
            with self._lock:
                self._ticks.append((self._clock(), tick))
        self._expire()
        self._write_back()
        return tick

    def _number(self, samples: Sequence[Sample]) -> list[Sample]:
        if not self._ticks:
            # Numbered on from the file's newest (another process may have written since this
            # one did) or from the newest this process handed out, whichever is later.
            try:
                self._last_seq = max(self.store.last_seq(), self._last_seq or 0)
            except sqlite3.Error as e:
                self._failed(e)
        if self._last_seq is None:          # nothing to number from: dropped, counted
            self.dropped_samples += len(samples)
            return []
        tick = self.store.as_stored(samples, self._last_seq + 1)
        if tick:
            self._last_seq = tick[-1].seq
        return tick

    def _write_back(self) -> None:
        """The waiting ticks, oldest first, until one fails (the disk is still full)."""
        while self._ticks:
            _, tick = self._ticks[0]
            try:
                self.store.append(tick, first_seq=tick[0].seq)
            except sqlite3.IntegrityError:
                # Its numbers are taken (another process wrote meanwhile): never a second copy.
                self.dropped_samples += len(tick)
            except sqlite3.Error as e:
                self._failed(e)
                return
            with self._lock:
                self._ticks.popleft()
        self._wrote([])

    def _expire(self) -> None:
        cut = self._clock() - self.keep_s
        with self._lock:
            while self._ticks and self._ticks[0][0] < cut:
                self.dropped_samples += len(self._ticks.popleft()[1])

    def _failed(self, e: sqlite3.Error) -> None:
        now = self._clock()
        if self.down_since is None:
            self.down_since = now
        self.error = f"{type(e).__name__}: {e}"
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning("store cannot write since %.0f s (%s): %d ticks kept in memory (up to "
                        "%g s), %d samples dropped so far", now - self.down_since, self.error,
                        len(self._ticks), self.keep_s, self.dropped_samples)

    def _wrote(self, stored: list[Sample]) -> None:
        now = self._clock()
        if stored:
            self._last_seq = stored[-1].seq
        self.last_write = now
        if self.down_since is not None:
            log.warning("store writes again after %.0f s; %d samples of the outage were dropped "
                        "(older than store_buffer_s %g s)", now - self.down_since,
                        self.dropped_samples, self.keep_s)
            self.down_since, self.error, self._logged_at = None, None, -math.inf

    # --- reading ------------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.down_since is None

    def after(self, after_seq: int, since_ts: float | None = None,
              limit: int = 50_000) -> list[Sample]:
        """``Store.after`` with the ticks still in memory: samples with ``seq > after_seq`` (and
        ``ts >= since_ts``), oldest first."""
        kept = self.kept_after(after_seq, since_ts, limit)   # first: a tick written meanwhile
        try:                                                  # is in both, never in neither
            stored = self.store.after(after_seq, since_ts=since_ts, limit=limit)
        except sqlite3.Error:
            stored = []
        return merge(stored, kept, limit)

    def kept_after(self, after_seq: int, since_ts: float | None = None,
                   limit: int = 50_000) -> list[Sample]:
        """The samples still in memory with ``seq > after_seq`` (and ``ts >= since_ts``)."""
        kept: list[Sample] = []
        with self._lock:
            for _, tick in self._ticks:
                if (tick[-1].seq or 0) <= after_seq:
                    continue
                kept.extend(s for s in tick if (s.seq or 0) > after_seq
                            and (since_ts is None or s.ts >= since_ts))
                if len(kept) >= limit:
                    break
        return kept

    def status(self) -> dict[str, Any]:
        """For /healthz: ``status`` (ok | error) and ``age_s`` (since the last write), and why."""
        now = self._clock()
        with self._lock:
            oldest = self._ticks[0][0] if self._ticks else None
            ticks = len(self._ticks)
        return {"status": "ok" if self.up else "error",
                "age_s": None if self.last_write is None else round(now - self.last_write, 3),
                "error": self.error, "since": self.down_since, "buffered_ticks": ticks,
                "buffered_s": 0.0 if oldest is None else round(now - oldest, 3),
                "buffer_s": self.keep_s, "dropped_samples": self.dropped_samples}


def merge(stored: list[Sample], kept: list[Sample], limit: int) -> list[Sample]:
    """Samples read from the store and those still in memory, each once, oldest first."""
    seqs = {s.seq for s in stored}
    merged = stored + [s for s in kept if s.seq not in seqs]
    return sorted(merged, key=lambda s: s.seq or 0)[:limit]
