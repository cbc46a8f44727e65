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
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.rules import build_rules
from dashboard.collectors.queues import options as queue_options  # each kind's options
from dashboard.config.secrets import mask_url
from dashboard.config.settings import (
    DOWN_RULE_SOURCES,
    INTERVAL_S_RANGE,
    NOTIFY_KINDS,
    QUEUE_KINDS,
    RULE_NAMES,
    SECRET_URL_KINDS,
    SEVERITIES,
    AuthSettings,
    ConfigError,
    MySQLSettings,
    NotifySettings,
    ProbeSettings,
    QueueSettings,
    RedisSettings,
    ReportSettings,
    Settings,
    SMTPSettings,
    WatchdogSettings,
)
from dashboard.store.pg import ConnParams  # the URL's parser: the one the store connects with

# The keys a [rules.NAME] table may set.
RULE_KEYS = {"warning", "critical", "for_s", "clear", "enabled", "keep_firing_for_s",
             "repeat_s", "severity_channels"}


def _num(d: Mapping[str, Any], key: str, prefix: str, default: float | None, lo: float, hi: float,
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


def _positive(d: Mapping[str, Any], key: str, prefix: str, default: float, hi: float) -> float:
    v = float(_num(d, key, prefix, default, 0, hi))
    if not v > 0:
        raise ConfigError(f"{prefix}{key}", f"must be a positive number, got {v!r}")
    return v


def _str(d: Mapping[str, Any], key: str, prefix: str, default: str | None = None,
         required: bool = False) -> Any:
    name = f"{prefix}{key}"
    if key not in d:
        if required:
            raise ConfigError(name, "is required")
        return default
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(name, f"expected a non-empty string, got {v!r}")
    return v


def _bool(d: Mapping[str, Any], key: str, prefix: str, default: bool) -> bool:
    if key not in d:
        return default
    v = d[key]
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.lower() in ("1", "true", "yes", "on")
    if not isinstance(v, bool):
        raise ConfigError(f"{prefix}{key}", f"expected true or false, got {v!r}")
    return v


def _unknown(d: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{prefix}{k}", "unknown key (see dashboard.example.toml)")


def _table(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, Mapping):
        raise ConfigError(key, "expected a table")
    return v


def _array_of_tables(d: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
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


_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_mysql(d: Mapping[str, Any]) -> MySQLSettings | None:
    """One server: the ``[mysql]`` table, or one ``[[mysql]]`` entry (see parse_mysql_servers)."""
    if not d:
        return None
    _unknown(d, {"url", "pool_capacity", "connections_per_hour_limit", "slow_ms",
                 "digest_interval_s", "name"}, "mysql.")
    name = _str(d, "name", "mysql.")
    if name is not None and not _SERVER_NAME.match(name):
        raise ConfigError("mysql.name", f"letters, digits, '.', '_' and '-' only, got {name!r}")
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
        name=name,
    )


def parse_mysql_servers(raw: Any) -> tuple[MySQLSettings, ...]:
    """``[mysql]``: one server, unlabelled unless it has a ``name``. ``[[mysql]]``: several, each
    with a ``name`` (their metrics and alerts carry ``{server=NAME}``)."""
    if not isinstance(raw, list):
        one = parse_mysql(_table({"mysql": raw or {}}, "mysql"))
        return (one,) if one else ()
    servers: list[MySQLSettings] = []
    for i, d in enumerate(_array_of_tables({"mysql": raw}, "mysql")):
        pre = f"mysql[{i}]."
        try:
            m = parse_mysql(d) if d else None
        except ConfigError as e:             # the entry's own key: mysql[1].url, not mysql.url
            raise ConfigError(pre + e.key.removeprefix("mysql."),
                              str(e).split(": ", 1)[1]) from None
        if m is None or m.name is None:
            raise ConfigError(pre + "name", "is required for each [[mysql]] server")
        if m.name in [s.name for s in servers]:
            raise ConfigError(pre + "name", f"server name {m.name!r} is used twice")
        servers.append(m)
    return tuple(servers)


def _queue_server(i: int, q: QueueSettings, servers: tuple[MySQLSettings, ...]) -> QueueSettings:
    """A SQL queue's ``server = NAME`` becomes that server's URL (default: the first server)."""
    name = q.options.get("server")
    if name is None or q.options.get("url"):
        return q
    match = [m for m in servers if m.name == name]
    if not match:
        raise ConfigError(f"queues[{i}].server", f"no [[mysql]] server is named {name!r}")
    return replace(q, options={**q.options, "url": match[0].url})


def _redis_url(url: str | None, key: str) -> str | None:
    if url is None:
        return None
    p = urlsplit(url)
    if p.scheme not in ("redis", "rediss", "unix") or (p.scheme != "unix" and not p.hostname):
        raise ConfigError(key, "expected redis://host:port/db")
    try:
        _ = p.port                     # urlsplit raises ValueError on reading a port that is no number
    except ValueError:
        raise ConfigError(key, "the port is not a number") from None
    return url


def _store_url(url: Any) -> str | None:
    """PostgreSQL's URL, or None (absent or empty: SQLite under data_dir)."""
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        raise ConfigError("store_url", f"expected postgresql://user:pass@host:port/db, got {url!r}")
    try:
        ConnParams.from_url(url)
    except ValueError as e:
        raise ConfigError("store_url", f"{e}, got {mask_url(url)!r}") from None
    return url


def parse_redis(d: Mapping[str, Any]) -> RedisSettings | None:
    if not d:
        return None
    _unknown(d, {"url", "hit_rate_window_s"}, "redis.")
    url = _redis_url(_str(d, "url", "redis.", required=True), "redis.url")
    assert url is not None                   # required=True: a missing url raised above
    return RedisSettings(url=url, hit_rate_window_s=_num(d, "hit_rate_window_s", "redis.", 60.0, 5, 86400))


def parse_queue(i: int, d: Mapping[str, Any]) -> QueueSettings:
    pre = f"queues[{i}]."
    name = _str(d, "name", pre, required=True)
    kind = _str(d, "kind", pre, required=True)
    if kind not in QUEUE_KINDS:
        raise ConfigError(pre + "kind", f"must be one of {', '.join(QUEUE_KINDS)}, got {kind!r}")
    key = _str(d, "key", pre)
    if kind in ("redis-list", "sql") and key is None and kind == "redis-list":
        raise ConfigError(pre + "key", "is required for kind redis-list (the list's key)")
    options = {k: v for k, v in d.items() if k not in ("name", "kind", "key")}
    return QueueSettings(name=name, kind=kind, key=key, options=queue_options.validate(i, kind, key, options))


def parse_probe(i: int, d: Mapping[str, Any]) -> ProbeSettings:
    pre = f"probes[{i}]."
    _unknown(d, {"name", "url", "interval_s", "timeout_s"}, pre)
    return ProbeSettings(
        name=_str(d, "name", pre, required=True),
        url=_http_url(_str(d, "url", pre, required=True), pre + "url"),
        interval_s=_num(d, "interval_s", pre, 30.0, 1, 86400),
        timeout_s=_num(d, "timeout_s", pre, 5.0, 0.1, 300),
    )


# Each notify kind's own keys: (required, optional), beside the common ones.
NOTIFY_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "webhook": ({"url"}, {"secret"}),
    "slack": ({"url"}, set()),
    "email": ({"to"}, set()),
    "pagerduty": ({"routing_key"}, {"url"}),
    "teams": ({"url"}, set()),
    "telegram": ({"bot_token", "chat_id"}, {"url"}),
    "ntfy": ({"url"}, {"token"}),
}
NOTIFY_COMMON = {"kind", "min_severity", "rules", "name", "group_window_s", "max_per_hour"}
NOTIFY_ALLOWED = {"kind", "min_severity", "rules", "name", "group_window_s", "max_per_hour", "url",
                  "to", "secret", "routing_key", "bot_token", "chat_id", "token"}
TELEGRAM_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]{20,}")     # <bot id>:<secret>, as BotFather gives
TELEGRAM_CHAT = re.compile(r"-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{4,}")  # a chat id, or @channelusername


def parse_notify(i: int, d: Mapping[str, Any]) -> NotifySettings:
    pre = f"notify[{i}]."
    _unknown(d, NOTIFY_ALLOWED, pre)
    kind = _str(d, "kind", pre, required=True)
    if kind not in NOTIFY_KINDS:
        raise ConfigError(pre + "kind", f"must be one of {', '.join(NOTIFY_KINDS)}, got {kind!r}")
    required, optional = NOTIFY_KEYS[kind]
    for key in d:
        if key not in NOTIFY_COMMON | required | optional:
            raise ConfigError(pre + key, f"is not a key of kind {kind}")
    for key in sorted(required - {"to", "chat_id"}):
        _str(d, key, pre, required=True)
    url = _str(d, "url", pre)
    if url is not None and kind in SECRET_URL_KINDS:
        _secret_url(url, pre + "url")
    elif url is not None:
        _http_url(url, pre + "url")
    if kind == "ntfy" and url is not None and not urlsplit(url).path.strip("/"):
        raise ConfigError(pre + "url", "expected the topic's URL (https://ntfy.sh/TOPIC)")
    routing_key = _str(d, "routing_key", pre)
    if routing_key is not None and not re.fullmatch(r"[A-Za-z0-9]{32}", routing_key):
        raise ConfigError(pre + "routing_key", "expected the integration's 32-character key "
                                               "(PagerDuty: Events API v2 integration key)")
    bot_token = _str(d, "bot_token", pre)
    if bot_token is not None and not TELEGRAM_TOKEN.fullmatch(bot_token):
        raise ConfigError(pre + "bot_token", "expected the token BotFather gave (123456:ABC...)")
    chat_id = d.get("chat_id")
    if kind == "telegram":
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat_id = str(chat_id)
        if not isinstance(chat_id, str) or not TELEGRAM_CHAT.fullmatch(chat_id):
            raise ConfigError(pre + "chat_id", "expected a chat id (a number, -100... for a "
                                               f"group) or @channelname, got {chat_id!r}")
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
                          max_per_hour=_num(d, "max_per_hour", pre, 20, 1, 100_000, integer=True),
                          routing_key=routing_key, bot_token=bot_token,
                          chat_id=chat_id if kind == "telegram" else None,
                          token=_str(d, "token", pre))


def _secret_url(v: str, name: str) -> str:
    """An http(s) URL that is itself a credential: errors name only its host."""
    p = urlsplit(v)
    try:
        port = p.port
    except ValueError:
        port = -1
    if p.scheme not in ("http", "https") or not p.hostname or (port is not None
                                                              and not 0 < port < 65536):
        raise ConfigError(name, "expected an http:// or https:// URL (the value is not shown: it "
                                "is a secret)")
    return v


def _check_rule_name(name: str, key: str) -> None:
    if name in RULE_NAMES or (name.endswith("_down") and name[:-5] in DOWN_RULE_SOURCES):
        return
    raise ConfigError(key, f"unknown rule {name!r}")


def parse_rules(d: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
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


def parse_smtp(d: Mapping[str, Any]) -> SMTPSettings:
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


def _rate_limit(d: Mapping[str, Any], key: str, default: str) -> str:
    v: str = _str(d, key, "auth.", default)
    from limits import parse_many
    try:
        parse_many(v)
    except ValueError:
        raise ConfigError(f"auth.{key}", f"expected a rate such as '10 per 5 minutes', got {v!r}") from None
    return v


def parse_auth(d: Mapping[str, Any]) -> AuthSettings:
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


def parse_report(d: Mapping[str, Any]) -> ReportSettings:
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


def parse_watchdog(d: Mapping[str, Any]) -> WatchdogSettings | None:
    """``[watchdog]``: ``url`` (required when the table is there) and ``every_s``."""
    if not d:
        return None
    _unknown(d, {"url", "every_s"}, "watchdog.")
    url = _http_url(_str(d, "url", "watchdog.", required=True), "watchdog.url")
    if urlsplit(url).query or urlsplit(url).fragment:
        # "/fail" is appended to the path: a query would end up before it.
        raise ConfigError("watchdog.url", "expected a ping URL without ?query or #fragment")
    return WatchdogSettings(url=url.rstrip("/"),
                            every_s=float(_num(d, "every_s", "watchdog.", 60.0, 1, 86400)))


TOP_KEYS = {"interval_s", "data_dir", "public_url", "bind", "timezone", "host_name",
            "raw_retention_h", "rollup_retention_d", "collector_timeout_s", "metrics_public",
            "trusted_proxies", "store_buffer_s", "leader_ttl_s",
            "async_mode", "demo", "mysql", "redis", "memcached", "statsd", "phpfpm", "queues",
            "probes", "rules", "notify", "smtp", "report", "auth", "message_queue", "watchdog",
            "store_url", "store_pool_size"}

# Environment variables that override keys of the file: DASHBOARD_<KEY> for the top-level
# scalars, plus the two connection URLs of the contract.
ENV_KEYS = {
    "DASHBOARD_INTERVAL_S": ("interval_s",), "DASHBOARD_DATA_DIR": ("data_dir",),
    "DASHBOARD_PUBLIC_URL": ("public_url",), "DASHBOARD_BIND": ("bind",),
    "DASHBOARD_TIMEZONE": ("timezone",), "DASHBOARD_HOST_NAME": ("host_name",),
    "DASHBOARD_RAW_RETENTION_H": ("raw_retention_h",),
    "DASHBOARD_COLLECTOR_TIMEOUT_S": ("collector_timeout_s",),
    "DASHBOARD_STORE_BUFFER_S": ("store_buffer_s",),
    "DASHBOARD_LEADER_TTL_S": ("leader_ttl_s",),
    "DASHBOARD_METRICS_PUBLIC": ("metrics_public",), "DASHBOARD_ASYNC_MODE": ("async_mode",),
    "DASHBOARD_TRUSTED_PROXIES": ("trusted_proxies",),
    "DASHBOARD_DEMO": ("demo",),
    "DASHBOARD_MYSQL_URL": ("mysql", "url"), "DASHBOARD_REDIS_URL": ("redis", "url"),
    "DASHBOARD_MESSAGE_QUEUE": ("message_queue",),
    "DASHBOARD_STORE_URL": ("store_url",), "DASHBOARD_STORE_POOL_SIZE": ("store_pool_size",),
}


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
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
                if not isinstance(target, dict):     # [[mysql]]: each server has its own url
                    raise ConfigError(var, f"[[{k}]] lists several; set each one's url in the file")
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
    servers = parse_mysql_servers(raw.get("mysql"))
    s = Settings(
        interval_s=_num(raw, "interval_s", "", 1.0, *INTERVAL_S_RANGE),
        data_dir=Path(_str(raw, "data_dir", "", "data")),
        public_url=public_url,
        bind=bind,
        timezone=tz,
        host_name=_str(raw, "host_name", "", socket.gethostname()),
        raw_retention_h=_num(raw, "raw_retention_h", "", 48.0, 0.01, 24 * 365),
        rollup_retention_d=_num(raw, "rollup_retention_d", "", 400.0, 1, 3650),
        collector_timeout_s=_num(raw, "collector_timeout_s", "", 10.0, 0.1, 600),
        # 0: nothing kept (a tick the store cannot write still reaches the page, then is gone).
        store_buffer_s=float(_num(raw, "store_buffer_s", "", 300.0, 0, 86400)),
        leader_ttl_s=float(_num(raw, "leader_ttl_s", "", 5.0, 1, 60)),
        metrics_public=_bool(raw, "metrics_public", "", False),
        trusted_proxies=_num(raw, "trusted_proxies", "", 0, 0, 5, integer=True),
        async_mode=async_mode,
        mysql=servers[0] if servers else None,
        mysql_servers=servers,
        redis=parse_redis(_table(raw, "redis")),
        memcached=(_host_port(_str(memcached, "url", "memcached."), "memcached.url")
                   if memcached else None),
        statsd_bind=(_host_port(_str(statsd, "bind", "statsd.", "127.0.0.1:8125"), "statsd.bind")
                     if statsd else None),
        phpfpm_url=(_http_url(_str(phpfpm, "url", "phpfpm.", required=True), "phpfpm.url")
                    if phpfpm else None),
        phpfpm_max_children=_num(phpfpm, "max_children", "phpfpm.", None, 1, 1_000_000, integer=True),
        queues=tuple(_queue_server(i, parse_queue(i, q), servers)
                     for i, q in enumerate(_array_of_tables(raw, "queues"))),
        probes=tuple(parse_probe(i, p) for i, p in enumerate(_array_of_tables(raw, "probes"))),
        rules=parse_rules(_table(raw, "rules")),
        notify=tuple(parse_notify(i, n) for i, n in enumerate(_array_of_tables(raw, "notify"))),
        smtp=parse_smtp(_table(raw, "smtp")),
        report=parse_report(_table(raw, "report")),
        auth=parse_auth(_table(raw, "auth")),
        watchdog=parse_watchdog(_table(raw, "watchdog")),
        demo=_bool(raw, "demo", "", False),
        message_queue=_redis_url(_str(raw, "message_queue", ""), "message_queue"),
        store_url=_store_url(raw.get("store_url")),
        store_pool_size=_num(raw, "store_pool_size", "", 20, 2, 1000, integer=True),
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
    build_rules(s)
    return s
