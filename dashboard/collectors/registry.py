"""Every collector, in one table, and which of them run, from the settings."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from dashboard.collectors.base import Collector
from dashboard.config.settings import Settings

if TYPE_CHECKING:
    from dashboard.collectors.mysql.conn import MySQLConnection


# Every collector class as a dotted path, imported when used: ``build`` imports only the
# configured ones (an unused collector's client library, pymysql or redis, is never loaded in a
# worker), and ``dashboard.collectors.catalog`` reads each class's ``metrics`` when /metrics is first
# scraped. A new collector is a new line here. In name order: the catalog merges two
# collectors' descriptions of one metric (app.response_ms: probes, StatsD timers) in this order.
COLLECTORS: Mapping[str, str] = {
    "agents": "dashboard.collectors.agents.collector.AgentsCollector",
    "cache": "dashboard.collectors.cache.CacheCollector",
    "host": "dashboard.collectors.host.HostCollector",
    "mysql": "dashboard.collectors.mysql.collector.MySQLCollector",
    "mysql_servers": "dashboard.collectors.mysql.servers.MySQLServers",
    "phpfpm": "dashboard.collectors.phpfpm.PhpFpmCollector",
    "probes": "dashboard.collectors.probes.ProbeCollector",
    "queues": "dashboard.collectors.queues.collector.QueueCollector",
    "statsd": "dashboard.collectors.statsd.StatsdCollector",
}


def collector_class(name: str) -> Any:
    """The class of ``COLLECTORS[name]``, its module imported now."""
    module, _, cls = COLLECTORS[name].rpartition(".")
    return getattr(importlib.import_module(module), cls)


def build(settings: Settings) -> list[Collector]:
    collectors: list[Collector] = [
        collector_class("host")(
            interval_s=settings.interval_s,
            timeout_s=min(settings.collector_timeout_s, max(settings.interval_s * 5, 2.0)))]
    db = None
    if settings.mysql is not None:
        # [[mysql]] (servers with names): one collector labelling each server's readings.
        named = settings.mysql.name is not None
        db = collector_class("mysql_servers" if named else "mysql")(
            settings.mysql_servers if named else settings.mysql, interval_s=settings.interval_s,
            timeout_s=settings.collector_timeout_s, tz=settings.tz)
        collectors.append(db)
    # SQL queues on the monitored server use its digests connection: two connections there.
    collectors += _cache_queue_app(settings, db.reader_conn if db is not None else None)
    if settings.message_queue:
        # Per-host agents publish to the message queue's Redis (issue 8).
        import redis

        client = redis.Redis.from_url(settings.message_queue, socket_timeout=5,
                                      socket_connect_timeout=5)
        collectors.append(collector_class("agents")(client, interval_s=settings.interval_s))
    return collectors


def _cache_queue_app(settings: Settings,
                     mysql_conn: MySQLConnection | None = None) -> list[Collector]:
    """Issue 4: cache (Redis/memcached), queues, probes (source app), StatsD, PHP-FPM."""
    out: list[Collector] = []
    short = min(settings.collector_timeout_s, max(settings.interval_s * 5, 5.0))
    redis_url = settings.redis.url if settings.redis else None
    if redis_url or settings.memcached:
        window = settings.redis.hit_rate_window_s if settings.redis else 60.0
        out.append(collector_class("cache")(redis_url, settings.memcached, window_s=window,
                                            interval_s=settings.interval_s, timeout_s=short))
    if settings.queues:
        out.append(collector_class("queues")(
            settings.queues, redis_url, settings.mysql, interval_s=settings.interval_s,
            timeout_s=settings.collector_timeout_s, mysql_conn=mysql_conn))
    if settings.probes:
        out.append(collector_class("probes")(settings.probes, settings.data_dir, settings.tz,
                                             store_url=settings.store_url))
    if settings.statsd_bind:
        # lazy: like COLLECTORS, loaded only where configured
        from dashboard.collectors.statsd import StatsdListener
        out.append(collector_class("statsd")(StatsdListener(settings.statsd_bind),
                                             interval_s=settings.interval_s, window_s=10.0))
    if settings.phpfpm_url:
        out.append(collector_class("phpfpm")(settings.phpfpm_url, settings.phpfpm_max_children,
                                             interval_s=settings.interval_s, timeout_s=short))
    return out
