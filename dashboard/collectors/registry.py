"""Which collectors run, from the settings. Imports are local so an unused collector's
dependencies are never loaded."""
from __future__ import annotations

from dashboard.collectors.base import Collector
from dashboard.config import Settings


def build(settings: Settings) -> list[Collector]:
    from dashboard.collectors.host import HostCollector

    collectors: list[Collector] = [
        HostCollector(interval_s=settings.interval_s,
                      timeout_s=min(settings.collector_timeout_s, max(settings.interval_s * 5, 2.0)))]
    if settings.mysql is not None:
        from dashboard.collectors.mysql import MySQLCollector
        collectors.append(MySQLCollector(settings.mysql, interval_s=settings.interval_s,
                                         timeout_s=settings.collector_timeout_s, tz=settings.tz))
    return collectors
