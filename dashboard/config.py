"""Configuration: a TOML file (path in DASHBOARD_CONFIG) plus DASHBOARD_* environment variables.

Everything is validated once, at start-up. A bad value raises ``ConfigError`` whose message is a
single line naming the key (``mysql.url: expected mysql://user:pass@host:port/``); the CLI prints
it and exits with status 2. Secrets are kept in the settings but every printable view goes through
``masked()`` / ``mask_url()``.
"""
from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Rule names of the contract; alerts.rules holds their defaults (thresholds from the docs).
RULE_NAMES = (
    "db_pool_utilization", "db_connections_per_hour", "db_refused_connections", "db_slow_queries",
    "db_avg_query_time", "cache_hit_rate", "queue_pending", "queue_failed", "queue_oldest_age",
    "app_response_time", "app_error_rate", "app_checkout_success", "app_availability",
    "app_worker_utilization", "host_cpu", "host_memory", "host_disk", "host_load",
)
DOWN_RULE_SOURCES = ("host", "db", "cache", "queue", "app", "statsd", "phpfpm")
RULE_KEYS = {"warning", "critical", "for_s", "clear", "enabled", "keep_firing_for_s",
             "repeat_s", "severity_channels"}
QUEUE_KINDS = ("redis-list", "rq", "celery", "sql")
NOTIFY_KINDS = ("webhook", "slack", "email")
SEVERITIES = ("warning", "critical")


class ConfigError(ValueError):
    """Invalid configuration. ``str()`` is one line: ``key: what is wrong``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class MySQLSettings:
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
    login_rate_limit: str = "10 per 5 minutes"   # per client IP (THRESHOLDS.md row 18)
    login_account_failures: int = 5          # failed logins per name before each one waits
    api_rate_limit: str = "100 per minute"        # per client IP, over all of /api/


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
    metrics_public: bool = False
    # Reverse proxies in front (nginx: 1) whose X-Forwarded-For/-Proto are believed; 0 = none.
    trusted_proxies: int = 0
    async_mode: str = "eventlet"             # eventlet | gevent | threading
    mysql: MySQLSettings | None = None
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
    demo: bool = False
    # Redis URL joining a collector process and several web instances (Flask-SocketIO's
    # message_queue, the collector leader lock, collector status). None: one process does all.
    message_queue: str | None = None
    source_file: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def has_targets(self) -> bool:
        return bool(self.mysql or self.redis or self.memcached or self.queues or self.probes
                    or self.statsd_bind or self.phpfpm_url)

    def urls(self) -> list[str]:
        """Every URL of the settings that may carry credentials (DSNs, queue, probe, PHP-FPM)."""
        out = [self.mysql.url if self.mysql else None, self.redis.url if self.redis else None,
               self.message_queue, self.phpfpm_url]
        out += [q.options.get("url") for q in self.queues]
        out += [p.url for p in self.probes]
        return [u for u in out if isinstance(u, str) and u]

    def secrets(self) -> list[str]:
        """Every secret value in the settings, for masking and for tests that grep for leaks."""
        out = []
        if self.mysql and self.mysql.password:
            out.append(self.mysql.password)
        for url in self.urls():
            out.extend(url_secrets(url))
        if self.smtp.password:
            out.append(self.smtp.password)
        out.extend(n.secret for n in self.notify if n.secret)
        for n in self.notify:        # a hook URL can be the credential itself (issue 7)
            if n.url:
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
        d = conv(self)
        if self.mysql:
            d["mysql"]["url"] = mask_url(self.mysql.url)
            d["mysql"]["password"] = "***" if self.mysql.password else ""
        if self.redis:
            d["redis"]["url"] = mask_url(self.redis.url)
        if self.message_queue:
            d["message_queue"] = mask_url(self.message_queue)
        if self.phpfpm_url:
            d["phpfpm_url"] = mask_url(self.phpfpm_url)
        for q in d["queues"]:
            if q["options"].get("url"):
                q["options"]["url"] = mask_url(q["options"]["url"])
        for p in d["probes"]:
            p["url"] = mask_url(p["url"])
        if self.smtp.password:
            d["smtp"]["password"] = "***"
        for n in d["notify"]:
            if n.get("secret"):
                n["secret"] = "***"
            if n.get("url"):
                n["url"] = mask_url(n["url"])
        return d


# Query parameters whose values are credentials whatever their length (?token=, ?api_key=...).
_CREDENTIAL_PARAM = re.compile(r"(?i)token|key|secret|pass|pwd|auth|sig|credential|session|jwt")
_TOKEN_LEN = 12        # an unnamed query value this long may be a token (not a path like /run/..)
_FLAG_LEN = 8          # a bare query item shorter than this is a flag (?json, ?full), not a token


def url_secrets(url: str) -> list[str]:
    """The credentials inside ``url``: the userinfo password (or the lone user part of an http
    URL: a token used as the basic-auth name), and query values that are credentials by their
    parameter's name or look like tokens. For the log scrubber, which masks these texts
    wherever they appear, so ordinary short values (``?full=1``, ``?json``) stay out."""
    p = urlsplit(url)
    out = []
    if p.password:
        out.append(unquote(p.password))
    elif p.username and p.scheme in ("http", "https"):
        out.append(unquote(p.username))
    for k, v in parse_qsl(p.query, keep_blank_values=True):
        if v and (_CREDENTIAL_PARAM.search(k) or (len(v) >= _TOKEN_LEN and not v.startswith("/"))):
            out.append(v)
        elif not v and len(k) >= _FLAG_LEN:
            out.append(k)
    return out


def mask_url(url: str) -> str:
    """``mysql://monitor:s3cret@h:3306/`` -> ``mysql://monitor:***@h:3306/``; every query value
    -> ``***`` (names kept: ``?token=***``), as is a bare query item that could be a token."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        cred, host = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        if ":" in cred:
            netloc = f"{user}:***@{host}"
        else:      # http://TOKEN@host: the name is the credential; a DSN's user name is not
            netloc = f"***@{host}" if parts.scheme in ("http", "https") else f"{user}@{host}"
    path = parts.path
    # Slack-style hook URLs carry their secret in the path: keep the host, hide the rest.
    if parts.scheme in ("http", "https") and len(path) > 1 and ("hooks" in parts.netloc or "/services/" in path):
        path = "/***"
    items = []
    for item in parts.query.split("&") if parts.query else []:
        name, eq, value = item.partition("=")
        if eq:
            items.append(f"{name}=***" if value else f"{name}=")
        else:
            items.append(name if len(name) < _FLAG_LEN else "***")
    return f"{parts.scheme}://{netloc}{path}" + (f"?{'&'.join(items)}" if items else "")


# --- parsing helpers: each raises ConfigError naming the key -----------------------------------

def _num(d: Mapping, key: str, prefix: str, default: float | None, lo: float, hi: float,
         integer: bool = False) -> Any:
    name = f"{prefix}{key}"
    if key not in d:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise ConfigError(name, f"expected a number, got {v!r}") from None
        else:
            raise ConfigError(name, f"expected a number, got {type(v).__name__}")
    if integer:
        if float(v) != int(v):
            raise ConfigError(name, f"expected a whole number, got {v!r}")
        v = int(v)
    if not lo <= v <= hi:
        raise ConfigError(name, f"must be between {lo:g} and {hi:g}, got {v!r}")
    return v


def _positive(d: Mapping, key: str, prefix: str, default: float, hi: float) -> float:
    v = _num(d, key, prefix, default, 0, hi)
    if not v > 0:
        raise ConfigError(f"{prefix}{key}", f"must be a positive number, got {v!r}")
    return v


def _str(d: Mapping, key: str, prefix: str, default: str | None = None, required: bool = False) -> Any:
    name = f"{prefix}{key}"
    if key not in d:
        if required:
            raise ConfigError(name, "is required")
        return default
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(name, f"expected a non-empty string, got {v!r}")
    return v


def _bool(d: Mapping, key: str, prefix: str, default: bool) -> bool:
    if key not in d:
        return default
    v = d[key]
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.lower() in ("1", "true", "yes", "on")
    if not isinstance(v, bool):
        raise ConfigError(f"{prefix}{key}", f"expected true or false, got {v!r}")
    return v


def _unknown(d: Mapping, allowed: set[str], prefix: str) -> None:
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{prefix}{k}", "unknown key (see dashboard.example.toml)")


def _table(d: Mapping, key: str) -> Mapping:
    v = d.get(key, {})
    if not isinstance(v, Mapping):
        raise ConfigError(key, "expected a table")
    return v


def _array_of_tables(d: Mapping, key: str) -> list[Mapping]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
        raise ConfigError(key, f"expected an array of tables ([[{key}]])")
    return v


def _http_url(v: str, name: str) -> str:
    p = urlsplit(v)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ConfigError(name, f"expected an http:// or https:// URL, got {mask_url(v)!r}")
    try:
        port = p.port              # urlsplit checks the port only when asked
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ConfigError(name, f"the port in {mask_url(v)!r} is not a number from 1 to 65535")
    return v


def _digits(s: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²" and others that int() refuses."""
    return re.fullmatch(r"[0-9]+", s) is not None


def _host_port(v: str, name: str) -> str:
    host, _, port = v.rpartition(":")
    if not host or not _digits(port) or not 0 < int(port) < 65536:
        raise ConfigError(name, f"expected host:port, got {v!r}")
    return v


def parse_mysql(d: Mapping) -> MySQLSettings | None:
    if not d:
        return None
    _unknown(d, {"url", "pool_capacity", "connections_per_hour_limit", "slow_ms",
                 "digest_interval_s"}, "mysql.")
    url = _str(d, "url", "mysql.", required=True)
    p = urlsplit(url)
    if p.scheme not in ("mysql", "mariadb") or not (p.hostname or "unix_socket" in p.query):
        raise ConfigError("mysql.url", "expected mysql://user:pass@host:port/")
    try:
        port = p.port or 3306
    except ValueError:
        raise ConfigError("mysql.url", "the port is not a number") from None
    q = parse_qs(p.query)
    return MySQLSettings(
        url=url, host=p.hostname or "localhost", port=port,
        user=unquote(p.username or "root"), password=unquote(p.password or ""),
        database=p.path.strip("/") or None,
        unix_socket=q.get("unix_socket", [None])[0],
        pool_capacity=_num(d, "pool_capacity", "mysql.", None, 1, 1_000_000, integer=True),
        connections_per_hour_limit=_num(d, "connections_per_hour_limit", "mysql.", 500, 1,
                                        100_000_000, integer=True),
        slow_ms=_num(d, "slow_ms", "mysql.", 1000.0, 1, 3_600_000),
        digest_interval_s=_num(d, "digest_interval_s", "mysql.", 15.0, 1, 3600),
    )


def _redis_url(url: str | None, key: str) -> str | None:
    if url is None:
        return None
    p = urlsplit(url)
    if p.scheme not in ("redis", "rediss", "unix") or (p.scheme != "unix" and not p.hostname):
        raise ConfigError(key, "expected redis://host:port/db")
    try:
        p.port
    except ValueError:
        raise ConfigError(key, "the port is not a number") from None
    return url


def parse_redis(d: Mapping) -> RedisSettings | None:
    if not d:
        return None
    _unknown(d, {"url", "hit_rate_window_s"}, "redis.")
    url = _redis_url(_str(d, "url", "redis.", required=True), "redis.url")
    return RedisSettings(url=url, hit_rate_window_s=_num(d, "hit_rate_window_s", "redis.", 60.0, 5, 86400))


def parse_queue(i: int, d: Mapping) -> QueueSettings:
    pre = f"queues[{i}]."
    name = _str(d, "name", pre, required=True)
    kind = _str(d, "kind", pre, required=True)
    if kind not in QUEUE_KINDS:
        raise ConfigError(pre + "kind", f"must be one of {', '.join(QUEUE_KINDS)}, got {kind!r}")
    key = _str(d, "key", pre)
    if kind in ("redis-list", "sql") and key is None and kind == "redis-list":
        raise ConfigError(pre + "key", "is required for kind redis-list (the list's key)")
    options = {k: v for k, v in d.items() if k not in ("name", "kind", "key")}
    from dashboard.collectors.queue_options import validate  # each kind's options, with defaults
    return QueueSettings(name=name, kind=kind, key=key, options=validate(i, kind, key, options))


def parse_probe(i: int, d: Mapping) -> ProbeSettings:
    pre = f"probes[{i}]."
    _unknown(d, {"name", "url", "interval_s", "timeout_s"}, pre)
    return ProbeSettings(
        name=_str(d, "name", pre, required=True),
        url=_http_url(_str(d, "url", pre, required=True), pre + "url"),
        interval_s=_num(d, "interval_s", pre, 30.0, 1, 86400),
        timeout_s=_num(d, "timeout_s", pre, 5.0, 0.1, 300),
    )


def parse_notify(i: int, d: Mapping) -> NotifySettings:
    pre = f"notify[{i}]."
    _unknown(d, {"kind", "url", "to", "min_severity", "rules", "secret", "name",
                 "group_window_s", "max_per_hour"}, pre)
    kind = _str(d, "kind", pre, required=True)
    if kind not in NOTIFY_KINDS:
        raise ConfigError(pre + "kind", f"must be one of {', '.join(NOTIFY_KINDS)}, got {kind!r}")
    url = _str(d, "url", pre)
    if kind in ("webhook", "slack"):
        if url is None:
            raise ConfigError(pre + "url", f"is required for kind {kind}")
        _http_url(url, pre + "url")
    to = d.get("to", [])
    if isinstance(to, str):
        to = [to]
    if kind == "email" and (not to or not all(isinstance(x, str) and "@" in x for x in to)):
        raise ConfigError(pre + "to", "expected a list of email addresses")
    sev = _str(d, "min_severity", pre, "warning")
    if sev not in SEVERITIES:
        raise ConfigError(pre + "min_severity", f"must be warning or critical, got {sev!r}")
    rules = d.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ConfigError(pre + "rules", "expected a list of rule names")
    for r in rules:
        _check_rule_name(r, pre + "rules")
    return NotifySettings(kind=kind, url=url, to=tuple(to), min_severity=sev, rules=tuple(rules),
                          secret=_str(d, "secret", pre), name=_str(d, "name", pre, f"{kind}-{i}"),
                          group_window_s=_num(d, "group_window_s", pre, 30.0, 0, 3600),
                          max_per_hour=_num(d, "max_per_hour", pre, 20, 1, 100_000, integer=True))


def _check_rule_name(name: str, key: str) -> None:
    if name in RULE_NAMES or (name.endswith("_down") and name[:-5] in DOWN_RULE_SOURCES):
        return
    raise ConfigError(key, f"unknown rule {name!r}")


def parse_rules(d: Mapping) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, body in d.items():
        _check_rule_name(name, f"rules.{name}")
        if not isinstance(body, Mapping):
            raise ConfigError(f"rules.{name}", "expected a table")
        pre = f"rules.{name}."
        _unknown(body, RULE_KEYS, pre)
        r: dict[str, Any] = {}
        for k in ("warning", "critical", "clear"):
            if k in body:
                r[k] = _num(body, k, pre, None, -1e18, 1e18)
        for k in ("for_s", "keep_firing_for_s", "repeat_s"):
            if k in body:
                r[k] = _num(body, k, pre, None, 0, 365 * 86400)
        if "enabled" in body:
            r["enabled"] = _bool(body, "enabled", pre, True)
        if "severity_channels" in body:
            r["severity_channels"] = body["severity_channels"]   # checked by alerts.rules
        out[name] = r
    return out


def parse_smtp(d: Mapping) -> SMTPSettings:
    if not d:
        return SMTPSettings()
    _unknown(d, {"host", "port", "user", "password", "starttls", "sender", "timeout_s"}, "smtp.")
    return SMTPSettings(
        host=_str(d, "host", "smtp.", "127.0.0.1"),
        port=_num(d, "port", "smtp.", 25, 1, 65535, integer=True),
        user=_str(d, "user", "smtp."), password=_str(d, "password", "smtp."),
        starttls=_bool(d, "starttls", "smtp.", False),
        sender=_str(d, "sender", "smtp.", "dashboard@localhost"),
        timeout_s=_num(d, "timeout_s", "smtp.", 10.0, 0.5, 300),
    )


def _rate_limit(d: Mapping, key: str, default: str) -> str:
    v = _str(d, key, "auth.", default)
    from limits import parse_many
    try:
        parse_many(v)
    except ValueError:
        raise ConfigError(f"auth.{key}", f"expected a rate such as '10 per 5 minutes', got {v!r}") from None
    return v


def parse_auth(d: Mapping) -> AuthSettings:
    _unknown(d, {"session_idle_h", "session_max_h", "login_rate_limit", "api_rate_limit",
                 "login_account_failures"}, "auth.")
    return AuthSettings(
        session_idle_h=_num(d, "session_idle_h", "auth.", 12.0, 0.01, 24 * 90),
        # Fractions of an hour are allowed (tests use seconds); 0 would end every session at once.
        session_max_h=_positive(d, "session_max_h", "auth.", 168.0, 24 * 365),
        login_account_failures=_num(d, "login_account_failures", "auth.", 5, 1, 1000,
                                    integer=True),
        login_rate_limit=_rate_limit(d, "login_rate_limit", "10 per 5 minutes"),
        api_rate_limit=_rate_limit(d, "api_rate_limit", "100 per minute"),
    )


def parse_report(d: Mapping) -> ReportSettings:
    if not d:
        return ReportSettings()
    _unknown(d, {"send_at", "recipients"}, "report.")
    at = _str(d, "send_at", "report.", "07:00")
    hh, _, mm = at.partition(":")
    if not (_digits(hh) and _digits(mm) and int(hh) < 24 and int(mm) < 60):
        raise ConfigError("report.send_at", f"expected HH:MM, got {at!r}")
    rec = d.get("recipients", [])
    if not isinstance(rec, list) or not all(isinstance(x, str) and "@" in x for x in rec):
        raise ConfigError("report.recipients", "expected a list of email addresses")
    return ReportSettings(send_at=at, recipients=tuple(rec))


TOP_KEYS = {"interval_s", "data_dir", "public_url", "bind", "timezone", "host_name",
            "raw_retention_h", "rollup_retention_d", "collector_timeout_s", "metrics_public",
            "trusted_proxies",
            "async_mode", "demo", "mysql", "redis", "memcached", "statsd", "phpfpm", "queues",
            "probes", "rules", "notify", "smtp", "report", "auth", "message_queue"}

# Environment variables that override keys of the file: DASHBOARD_<KEY> for the top-level
# scalars, plus the two connection URLs of the contract.
ENV_KEYS = {
    "DASHBOARD_INTERVAL_S": ("interval_s",), "DASHBOARD_DATA_DIR": ("data_dir",),
    "DASHBOARD_PUBLIC_URL": ("public_url",), "DASHBOARD_BIND": ("bind",),
    "DASHBOARD_TIMEZONE": ("timezone",), "DASHBOARD_HOST_NAME": ("host_name",),
    "DASHBOARD_RAW_RETENTION_H": ("raw_retention_h",),
    "DASHBOARD_COLLECTOR_TIMEOUT_S": ("collector_timeout_s",),
    "DASHBOARD_METRICS_PUBLIC": ("metrics_public",), "DASHBOARD_ASYNC_MODE": ("async_mode",),
    "DASHBOARD_TRUSTED_PROXIES": ("trusted_proxies",),
    "DASHBOARD_DEMO": ("demo",),
    "DASHBOARD_MYSQL_URL": ("mysql", "url"), "DASHBOARD_REDIS_URL": ("redis", "url"),
    "DASHBOARD_MESSAGE_QUEUE": ("message_queue",),
}


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the file named by ``path`` (or ``$DASHBOARD_CONFIG``), apply the environment, validate."""
    env = os.environ if env is None else env
    path = path or env.get("DASHBOARD_CONFIG") or None
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError("DASHBOARD_CONFIG", f"no such file: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("DASHBOARD_CONFIG", f"{path} is not valid TOML ({e})") from None
    for var, keypath in ENV_KEYS.items():
        if env.get(var, "") != "":
            target = raw
            for k in keypath[:-1]:
                target = target.setdefault(k, {})
            target[keypath[-1]] = env[var]
    return from_dict(raw, source_file=str(path) if path else None)


def from_dict(raw: Mapping[str, Any], source_file: str | None = None) -> Settings:
    _unknown(raw, TOP_KEYS, "")
    tz = _str(raw, "timezone", "", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown time zone {tz!r}") from None
    bind = _host_port(_str(raw, "bind", "", "127.0.0.1:8050"), "bind")
    # Without a public URL, links point at the address the dashboard listens on.
    public_url = _http_url(_str(raw, "public_url", "", f"http://{bind}"), "public_url").rstrip("/")
    async_mode = _str(raw, "async_mode", "", "eventlet")
    if async_mode not in ("eventlet", "gevent", "threading"):
        raise ConfigError("async_mode", f"must be eventlet, gevent or threading, got {async_mode!r}")
    statsd = _table(raw, "statsd")
    phpfpm = _table(raw, "phpfpm")
    memcached = _table(raw, "memcached")
    s = Settings(
        interval_s=_num(raw, "interval_s", "", 1.0, 0.05, 3600),
        data_dir=Path(_str(raw, "data_dir", "", "data")),
        public_url=public_url,
        bind=bind,
        timezone=tz,
        host_name=_str(raw, "host_name", "", socket.gethostname()),
        raw_retention_h=_num(raw, "raw_retention_h", "", 48.0, 0.01, 24 * 365),
        rollup_retention_d=_num(raw, "rollup_retention_d", "", 400.0, 1, 3650),
        collector_timeout_s=_num(raw, "collector_timeout_s", "", 10.0, 0.1, 600),
        metrics_public=_bool(raw, "metrics_public", "", False),
        trusted_proxies=_num(raw, "trusted_proxies", "", 0, 0, 5, integer=True),
        async_mode=async_mode,
        mysql=parse_mysql(_table(raw, "mysql")),
        redis=parse_redis(_table(raw, "redis")),
        memcached=_host_port(_str(memcached, "url", "memcached."), "memcached.url") if memcached else None,
        statsd_bind=_host_port(_str(statsd, "bind", "statsd.", "127.0.0.1:8125"), "statsd.bind") if statsd else None,
        phpfpm_url=_http_url(_str(phpfpm, "url", "phpfpm.", required=True), "phpfpm.url") if phpfpm else None,
        phpfpm_max_children=_num(phpfpm, "max_children", "phpfpm.", None, 1, 1_000_000, integer=True),
        queues=tuple(parse_queue(i, q) for i, q in enumerate(_array_of_tables(raw, "queues"))),
        probes=tuple(parse_probe(i, p) for i, p in enumerate(_array_of_tables(raw, "probes"))),
        rules=parse_rules(_table(raw, "rules")),
        notify=tuple(parse_notify(i, n) for i, n in enumerate(_array_of_tables(raw, "notify"))),
        smtp=parse_smtp(_table(raw, "smtp")),
        report=parse_report(_table(raw, "report")),
        auth=parse_auth(_table(raw, "auth")),
        demo=_bool(raw, "demo", "", False),
        message_queue=_redis_url(_str(raw, "message_queue", ""), "message_queue"),
        source_file=source_file,
    )
    names = [q.name for q in s.queues]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError("queues", f"queue name {n!r} is used twice")
    for i, q in enumerate(s.queues):   # each queue needs a server to read it from
        need = "mysql" if q.kind == "sql" else "redis"
        if not q.options.get("url") and getattr(s, need) is None:
            raise ConfigError(f"queues[{i}].url", f"kind {q.kind} needs [{need}] url or this queue's url")
    channels = [n.name for n in s.notify]
    for i, n in enumerate(channels):
        if n in channels[:i]:
            raise ConfigError(f"notify[{i}].name", f"channel name {n!r} is used twice")
    # Rule overrides that contradict each other (warning past critical...) stop start-up too.
    from alerts.rules import build_rules
    build_rules(s)
    return s
