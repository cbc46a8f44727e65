"""The settings types: what a configuration holds once loaded and checked, the rule names of the
contract and ``ConfigError``. A leaf: it imports nothing of the project but secret masking."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from dashboard.config.secrets import mask_ping_url, mask_url, url_secrets

# Rule names of the contract; alerts.rules holds their defaults (thresholds from the docs).
RULE_NAMES = (
    "db_pool_utilization", "db_connections_per_hour", "db_refused_connections", "db_slow_queries",
    "db_avg_query_time", "cache_hit_rate", "queue_pending", "queue_failed", "queue_oldest_age",
    "app_response_time", "app_error_rate", "app_checkout_success", "app_availability",
    "app_worker_utilization", "host_cpu", "host_memory", "host_disk", "host_load", "store_down",
    "db_replica_lag", "db_replica_broken", "notify_channel_failing",
)
DOWN_RULE_SOURCES = ("host", "db", "cache", "queue", "app", "statsd", "phpfpm")
QUEUE_KINDS = ("redis-list", "rq", "celery", "sql")
NOTIFY_KINDS = ("webhook", "slack", "email", "pagerduty", "teams", "telegram", "ntfy")
# Kinds whose whole URL is a credential (a Teams Workflows URL is signed; an ntfy topic's name is
# its password, as ntfy's docs say): shown as the host only.
SECRET_URL_KINDS = ("teams", "ntfy")
SEVERITIES = ("warning", "critical")
INTERVAL_S_RANGE = (0.05, 3600.0)        # interval_s, here and in an agent's stream entries


class ConfigError(ValueError):
    """Invalid configuration. ``str()`` is one line: ``key: what is wrong``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class MySQLSettings:
    """One monitored server. ``name`` is set for each ``[[mysql]]`` entry (its metrics and alerts
    carry ``{server=NAME}``); a single ``[mysql]`` table has none and keeps unlabelled names."""
    url: str
    host: str
    port: int
    user: str
    password: str
    database: str | None
    unix_socket: str | None
    pool_capacity: int | None = None          # None: the server's max_connections
    connections_per_hour_limit: int = 500
    slow_ms: float = 1000.0
    digest_interval_s: float = 15.0
    connect_timeout_s: float = 5.0            # the platform docs' figures
    read_timeout_s: float = 10.0
    name: str | None = None


@dataclass(frozen=True)
class RedisSettings:
    url: str
    hit_rate_window_s: float = 60.0


@dataclass(frozen=True)
class QueueSettings:
    name: str
    kind: str
    key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeSettings:
    name: str
    url: str
    interval_s: float = 30.0                 # the docs' health-check cadence
    timeout_s: float = 5.0


@dataclass(frozen=True)
class NotifySettings:
    kind: str
    url: str | None = None
    to: tuple[str, ...] = ()
    min_severity: str = "warning"
    rules: tuple[str, ...] = ()              # empty: every rule
    secret: str | None = None                # webhook HMAC key
    name: str = ""
    group_window_s: float = 30.0             # storm control: later changes within it go as one
    max_per_hour: int = 20                   # past this many messages an hour: digests
    routing_key: str | None = None           # pagerduty: the integration's key (a secret)
    bot_token: str | None = None             # telegram: the bot's token (a secret)
    chat_id: str | None = None               # telegram: the chat, group or channel
    token: str | None = None                 # ntfy: an access token (a secret)

    def credentials(self) -> list[str]:
        """This channel's secret values (besides what its URL carries)."""
        return [v for v in (self.secret, self.routing_key, self.bot_token, self.token) if v]


@dataclass(frozen=True)
class SMTPSettings:
    host: str = "127.0.0.1"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "dashboard@localhost"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ReportSettings:
    send_at: str = "07:00"
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthSettings:
    """Logins and rate limits (issue 7). Limits use the ``limits`` notation ("10 per 5 minutes")."""
    session_idle_h: float = 12.0             # a session unused this long must log in again
    session_max_h: float = 168.0             # any session this old must log in again, busy or not
    login_rate_limit: str = "10 per 5 minutes"   # per client IP (docs/thresholds.md row 18)
    login_account_failures: int = 5          # failed logins per name before each one waits
    api_rate_limit: str = "100 per minute"        # per client IP, over all of /api/


@dataclass(frozen=True)
class WatchdogSettings:
    """``[watchdog]``: a healthchecks.io-compatible ping URL (its path is the check's secret),
    pinged every ``every_s`` by the collecting process while its pipeline works."""
    url: str
    every_s: float = 60.0


@dataclass(frozen=True)
class Settings:
    interval_s: float = 1.0
    data_dir: Path = Path("data")
    public_url: str = "http://127.0.0.1:8050"
    bind: str = "127.0.0.1:8050"
    timezone: str = "UTC"
    host_name: str = field(default_factory=socket.gethostname)
    raw_retention_h: float = 48.0
    rollup_retention_d: float = 400.0
    collector_timeout_s: float = 10.0
    store_buffer_s: float = 300.0            # ticks kept in memory while the store cannot write
    leader_ttl_s: float = 5.0                # collector leader lock's lifetime (process/cluster.py)
    metrics_public: bool = False
    # Reverse proxies in front (nginx: 1) whose X-Forwarded-For/-Proto are believed; 0 = none.
    trusted_proxies: int = 0
    async_mode: str = "eventlet"             # eventlet | gevent | threading
    mysql: MySQLSettings | None = None       # the first server: SQL queues' default, limits
    mysql_servers: tuple[MySQLSettings, ...] = ()   # every server, the first one included
    redis: RedisSettings | None = None
    memcached: str | None = None             # "host:port"
    statsd_bind: str | None = None           # "127.0.0.1:8125"
    phpfpm_url: str | None = None
    phpfpm_max_children: int | None = None   # pm.max_children: the status page does not say it
    queues: tuple[QueueSettings, ...] = ()
    probes: tuple[ProbeSettings, ...] = ()
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notify: tuple[NotifySettings, ...] = ()
    smtp: SMTPSettings = field(default_factory=SMTPSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    watchdog: WatchdogSettings | None = None
    demo: bool = False
    # Redis URL joining a collector process and several web instances (Flask-SocketIO's
    # message_queue, the collector leader lock, collector status). None: one process does all.
    message_queue: str | None = None
    # postgresql://user:pass@host:port/db: the store's tables in PostgreSQL (issue 16). None:
    # SQLite under data_dir. store_pool_size: connections of one process to it, at most.
    store_url: str | None = None
    store_pool_size: int = 20
    source_file: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def has_targets(self) -> bool:
        return bool(self.mysql or self.redis or self.memcached or self.queues or self.probes
                    or self.statsd_bind or self.phpfpm_url)

    def urls(self) -> list[str]:
        """Every URL of the settings that may carry credentials (DSNs, queue, probe, PHP-FPM)."""
        out: list[str | None] = [m.url for m in self.mysql_servers]
        out += [self.mysql.url if self.mysql else None, self.redis.url if self.redis else None,
               self.message_queue, self.phpfpm_url, self.store_url]
        out += [q.options.get("url") for q in self.queues]
        out += [p.url for p in self.probes]
        out += [self.watchdog.url if self.watchdog else None]
        return [u for u in out if isinstance(u, str) and u]

    def secrets(self) -> list[str]:
        """Every secret value in the settings, for masking and for tests that grep for leaks."""
        out: list[str] = []
        out.extend(m.password for m in (self.mysql, *self.mysql_servers) if m and m.password)
        for url in self.urls():
            out.extend(url_secrets(url))
        if self.smtp.password:
            out.append(self.smtp.password)
        if self.watchdog:            # a ping URL's path is the check's credential (hc-ping.com/<uuid>)
            path = urlsplit(self.watchdog.url).path.strip("/")
            if len(path) >= 8:
                out.append(path)
        for n in self.notify:        # a hook URL can be the credential itself (issue 7)
            out.extend(n.credentials())
            if n.url:                # ?token=VALUE, ?sig=VALUE, user:password@: each value alone
                out.extend(url_secrets(n.url))
            if n.url and n.kind in SECRET_URL_KINDS:
                p = urlsplit(n.url)
                out.extend(x for x in (p.path, p.query, unquote(p.password or "")) if len(x) > 1)
            elif n.url:
                p, shown = urlsplit(n.url), urlsplit(mask_url(n.url))
                if p.password:
                    out.append(unquote(p.password))
                if shown.path == "/***":
                    out.append(p.path)
                if p.query:
                    out.append(p.query)
        return out

    def masked(self) -> dict[str, Any]:
        """The effective settings as a plain dict, every secret replaced by ``***``."""
        def conv(v: Any) -> Any:
            if hasattr(v, "__dataclass_fields__"):
                return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, Mapping):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, Path):
                return str(v)
            return v
        d: dict[str, Any] = conv(self)
        for shown, m in ((d["mysql"], self.mysql), *zip(d["mysql_servers"], self.mysql_servers)):
            if m is not None:
                shown["url"] = mask_url(m.url)
                shown["password"] = "***" if m.password else ""
        if self.redis:
            d["redis"]["url"] = mask_url(self.redis.url)
        if self.message_queue:
            d["message_queue"] = mask_url(self.message_queue)
        if self.store_url:
            d["store_url"] = mask_url(self.store_url)
        if self.phpfpm_url:
            d["phpfpm_url"] = mask_url(self.phpfpm_url)
        for q in d["queues"]:
            if q["options"].get("url"):
                q["options"]["url"] = mask_url(q["options"]["url"])
        for p in d["probes"]:
            p["url"] = mask_url(p["url"])
        if self.watchdog:
            d["watchdog"]["url"] = mask_ping_url(self.watchdog.url)
        if self.smtp.password:
            d["smtp"]["password"] = "***"
        for n in d["notify"]:
            for key in ("secret", "routing_key", "bot_token", "token"):
                if n.get(key):
                    n[key] = "***"
            if n.get("url"):
                n["url"] = mask_url(n["url"], whole=n["kind"] in SECRET_URL_KINDS)
        return d


# Query parameters whose values are credentials whatever their length (?token=, ?api_key=...).
