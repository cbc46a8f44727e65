"""Which collectors run, from the settings. Imports are local so an unused collector's
dependencies are never loaded."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dashboard.collectors.base import Collector
from dashboard.config import Settings

if TYPE_CHECKING:
    from dashboard.collectors.mysql_conn import MySQLConnection


def build(settings: Settings) -> list[Collector]:
    from dashboard.collectors.host import HostCollector

    collectors: list[Collector] = [
        HostCollector(interval_s=settings.interval_s,
                      timeout_s=min(settings.collector_timeout_s, max(settings.interval_s * 5, 2.0)))]
    db = None
    if settings.mysql is not None:
        from dashboard.collectors.mysql import MySQLCollector
        db = MySQLCollector(settings.mysql, interval_s=settings.interval_s,
                            timeout_s=settings.collector_timeout_s, tz=settings.tz)
        collectors.append(db)
    # SQL queues on the monitored server use its digests connection: two connections there.
    collectors += _cache_queue_app(settings, db.reader_conn if db is not None else None)
    if settings.message_queue:
        # Per-host agents publish to the message queue's Redis (issue 8).
        import redis

        from dashboard.collectors.agents import AgentsCollector
        client = redis.Redis.from_url(settings.message_queue, socket_timeout=5,
                                      socket_connect_timeout=5)
        collectors.append(AgentsCollector(client, interval_s=settings.interval_s))
    return collectors


def _cache_queue_app(settings: Settings,
                     mysql_conn: MySQLConnection | None = None) -> list[Collector]:
    """Issue 4: cache (Redis/memcached), queues, probes (source app), StatsD, PHP-FPM."""
    out: list[Collector] = []
    short = min(settings.collector_timeout_s, max(settings.interval_s * 5, 5.0))
    redis_url = settings.redis.url if settings.redis else None
    if redis_url or settings.memcached:
        from dashboard.collectors.cache import CacheCollector
        window = settings.redis.hit_rate_window_s if settings.redis else 60.0
        out.append(CacheCollector(redis_url, settings.memcached, window_s=window,
                                  interval_s=settings.interval_s, timeout_s=short))
    if settings.queues:
        from dashboard.collectors.queues import QueueCollector
        out.append(QueueCollector(settings.queues, redis_url, settings.mysql,
                                  interval_s=settings.interval_s, timeout_s=settings.collector_timeout_s,
                                  mysql_conn=mysql_conn))
    if settings.probes:
        from dashboard.collectors.probes import ProbeCollector
        out.append(ProbeCollector(settings.probes, settings.data_dir, settings.tz))
    if settings.statsd_bind:
        from dashboard.collectors.statsd import StatsdCollector, StatsdListener
        out.append(StatsdCollector(StatsdListener(settings.statsd_bind),
                                   interval_s=settings.interval_s, window_s=10.0))
    if settings.phpfpm_url:
        from dashboard.collectors.phpfpm import PhpFpmCollector
        out.append(PhpFpmCollector(settings.phpfpm_url, settings.phpfpm_max_children,
                                   interval_s=settings.interval_s, timeout_s=short))
    return out
