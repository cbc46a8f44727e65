"""The running dashboard: settings, store, collectors, runner and the sinks fed by each tick.

Data flows one way: collector -> runner -> ``publish`` -> store.append -> every sink (alert
engine, Socket.IO relay, ...). Nothing starts when this object is built; ``start()`` is called
after gunicorn forks (gunicorn.conf.py) or by the CLI, never at import time.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from alerts.rules import Rule, build_rules
from dashboard.collectors import registry
from dashboard.collectors.base import Collector
from dashboard.config import redact
from dashboard.config.settings import Settings
from dashboard.model import Sample
from dashboard.scheduler import CollectorRunner
from dashboard.store import Store
from dashboard.store.spool import Spool

if TYPE_CHECKING:
    from alerts.service import AlertService
    from dashboard.process.cluster import LeaderLock
    from dashboard.report.mailer import DailyMailer

log = logging.getLogger(__name__)

Sink = Callable[[list[Sample]], None]


@dataclass
class Parts:
    """What an area adds to the runtime: sinks fed by each stored tick, jobs on the runner
    (function, APScheduler trigger arguments), hooks run at start and stop. Areas describe their
    parts; ``dashboard.app.create_app`` adds them (``Runtime.add``)."""

    sinks: list[Sink] = field(default_factory=list)
    jobs: list[tuple[Callable[[], Any], dict[str, Any]]] = field(default_factory=list)
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)


class Runtime:
    def __init__(self, settings: Settings, collectors: Sequence[Collector] | None = None,
                 store: Store | None = None) -> None:
        self.settings = settings
        redact.register(settings.secrets())      # scrub them from every log record (issue 7)
        # The effective alert rules: the one source of every level the page, the fleet view,
        # the daily summary and the alert engine use.
        self.rules: dict[str, Rule] = build_rules(settings)
        self.store = store or Store(settings.data_dir, settings.raw_retention_h,
                                    settings.rollup_retention_d, settings.store_url,
                                    settings.store_pool_size)
        # Ticks the store cannot write (a full disk) still reach every sink, numbered on.
        self.spool = Spool(self.store, settings.store_buffer_s)
        if collectors is None:
            collectors = registry.build(settings)
        self.sinks: list[Sink] = [self._relay]
        self._publish_lock = threading.Lock()
        # Where Socket.IO events go: the web process's own server, or (collector process) an
        # external emitter writing to the Redis message queue. Set by whoever hosts us.
        self.emitter: Callable[..., Any] | None = None
        self.on_start: list[Callable[[], None]] = []
        self.on_stop: list[Callable[[], None]] = []
        # Ticks of collectors that finish within 50 ms (a tenth of a short interval) of each
        # other go out as one: the per-tick cost (store, alerts, Socket.IO) is paid once.
        self.runner = CollectorRunner(collectors, self.publish,
                                      gather_s=min(0.05, settings.interval_s / 10))
        def writable() -> bool:          # rollup and prune wait while the store cannot write;
            return self.spool.up         # rollups catch up afterwards

        self.runner.add_job(self.store.rollup, trigger="interval", seconds=60, when=writable)
        self.runner.add_job(self.store.prune, trigger="interval", seconds=self.store.prune_every_s,
                            when=writable)
        # Collectors with a background part (the StatsD listener) start and stop with us.
        for c in self.runner.collectors:
            start, stop = getattr(c, "start", None), getattr(c, "stop", None)
            if callable(start):
                self.on_start.append(start)
            if callable(stop):
                self.on_stop.append(stop)
        # A collector may declare side jobs that keep their own tables in the store's file (the
        # MySQL collector's top-statements reader, every 15 s on its second connection).
        for c in self.runner.collectors:
            for func, trigger in (c.jobs(self.store) if hasattr(c, "jobs") else ()):
                self.runner.add_job(func, **trigger)
        self._started = False
        self._lock = threading.Lock()
        # Set by whoever hosts us, never invented elsewhere:
        self.status_reader: Callable[[], dict] | None = None   # web-only: the leader's status
                                                               # (process.cluster)
        self.leader_lock: LeaderLock | None = None             # when collecting under a message queue
        self.alerting: AlertService | None = None              # create_app: the alert service
        self.report_mailer: DailyMailer | None = None          # create_app: the morning e-mail

    def add(self, parts: Parts) -> None:
        """Add an area's sinks, jobs and hooks (before ``start``)."""
        self.sinks.extend(parts.sinks)
        for func, trigger in parts.jobs:
            self.runner.add_job(func, **trigger)
        self.on_start.extend(parts.on_start)
        self.on_stop.extend(parts.on_stop)

    def emit(self, event: str, data: Any, namespace: str = "/live") -> None:
        if self.emitter is not None:
            self.emitter(event, data, namespace=namespace)

    def _relay(self, samples: list[Sample]) -> None:
        # Serialised once per tick; the Socket.IO server encodes one packet for all clients.
        if samples:
            self.emit("samples", [s.to_wire() for s in samples])

    def publish(self, samples: list[Sample]) -> list[Sample]:
        # One tick at a time, so sinks (and browsers) see samples in sequence order. A tick the
        # store cannot write goes on all the same, numbered in memory (store/spool.py).
        with self._publish_lock:
            stored = self.spool.append(samples)
            for sink in self.sinks:
                try:
                    sink(stored)
                except Exception:  # noqa: BLE001 - one sink failing never stops the others
                    log.exception("sink %r failed", sink)
        return stored

    def store_status(self) -> dict[str, Any]:
        """The store's health for /healthz and the rule ``store_down``: the spool's (ticks the
        store cannot write: a full disk), and with ``store_url`` the PostgreSQL server's (down:
        ``error`` however the history writes go)."""
        st = self.spool.status()
        server = self.store.health()
        if server["status"] != "ok" and st["status"] == "ok":
            st = {**st, "status": "error", "error": server["error"], "since": server["since"]}
        return st

    def collector_status(self) -> dict[str, dict]:
        """Collector status for /healthz: ours when we collect, else the leader's (cluster)."""
        if not self._started and self.status_reader is not None:
            return self.status_reader()
        return self.runner.status()

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        # Catch up on minutes a previous process did not roll up (crash, restart).
        try:
            self.store.rollup()
        except Exception:  # noqa: BLE001
            log.exception("catch-up rollup failed")
        for hook in self.on_start:
            hook()
        self.runner.start()
        log.info("collecting: %s", ", ".join(c.source for c in self.runner.collectors))

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
        self.runner.stop()
        for hook in self.on_stop:
            try:
                hook()
            except Exception:  # noqa: BLE001
                log.exception("stop hook failed")
