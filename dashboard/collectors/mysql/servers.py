"""Several monitored servers (``[[mysql]]``, issue 17): one ``db`` source, one label per server.

The scheduler runs one collector per source, so the servers of a ``[[mysql]]`` list are one
collector whose readings carry ``{server=NAME}``: every ``db.*`` metric and every alert on it is
per server, and a server that cannot be reached is ``db.up{server} = 0`` with its error while
the others keep reporting. Each server has its own status connection; the top statements
(and their second connection) are the first server's, which SQL queues share by default.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import timezone, tzinfo
from typing import Callable, Sequence

from dashboard.collectors.mysql.collector import MySQLCollector
from dashboard.collectors.mysql.statements import StatementBook
from dashboard.config.settings import MySQLSettings
from dashboard.model import CollectorError, MetricSpec, Reading


class MySQLServers:
    source = "db"
    metrics: Sequence[MetricSpec] = MySQLCollector.metrics

    def __init__(self, servers: Sequence[MySQLSettings], interval_s: float = 1.0,
                 timeout_s: float = 10.0, tz: tzinfo = timezone.utc,
                 clock: Callable[[], float] = time.monotonic, **kw) -> None:
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.servers = [MySQLCollector(s, interval_s=interval_s, timeout_s=timeout_s, tz=tz,
                                       clock=clock, **kw) for s in servers]
        self.first = self.servers[0]
        self.reader_conn = self.first.reader_conn     # SQL queues on the first server share it

    @property
    def book(self) -> StatementBook:
        """The top statements shown: the first server's."""
        return self.first.book

    def jobs(self, store) -> list:
        return self.first.jobs(store)

    def collect(self) -> list[Reading]:
        out = []
        for c in self.servers:
            labels = {"server": str(c.settings.name)}
            try:
                out += [replace(r, values={**r.values, "db.up": 1.0}, labels={**r.labels, **labels})
                        for r in c.collect()]
            except CollectorError as e:
                out.append(Reading({"db.up": 0.0}, labels, error=str(e)))
            self._show_replication_note(c)
        return out

    def _show_replication_note(self, c: MySQLCollector) -> None:
        """Each server's replication state or error among the notices the page shows (the
        first server's book): a replica is rarely the first server."""
        if c is self.first:
            return
        note = c.book.notices.get("replication")
        topic = f"replication:{c.settings.name}"
        if note:
            self.first.book.notices[topic] = f"{c.settings.name}: {note}"
        else:
            self.first.book.notices.pop(topic, None)

    def check_notes(self) -> list[str]:
        return [f"[{c.settings.name}] {n}" for c in self.servers for n in c.check_notes()]

    def close(self) -> None:
        for c in self.servers:
            c.close()
