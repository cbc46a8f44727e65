"""The options of each queue kind, validated at start-up (``config.parse_queue`` calls this).

Every key of a ``[[queues]]`` table other than name/kind/key lands in ``QueueSettings.options``;
here each kind says which keys it takes, their defaults and types, and a wrong one stops
start-up with ``queues[i].<key>: what is wrong``. Standard library only (config imports it).

    redis-list  key = the list; age_field ("created_at" or "meta.enqueued_at": a JSON field of
                the item at the consuming end, epoch seconds/ms or ISO 8601), consume_from
                ("left" | "right", default "left" = RPUSH/LPOP), failed_key, processing_key
    rq          key = one RQ queue name (default: every queue in rq:queues), prefix ("rq")
    celery      key = the queue (default "celery"), priority_steps ([0, 3, 6, 9], kombu's
                default), separator ("\\x06\\x16"), age_field (celery messages carry no
                enqueue time unless the app adds one, e.g. "headers.sent_at")
    sql         table (default: key, else "jobs"), status_column, priority_column ("" = none),
                created_column, id_column (auto-increment: enqueue rate from MAX(id)),
                pending_values, processing_values, failed_values, statement_timeout_ms (500),
                count_limit (100000), server (a [[mysql]] name; default the first server),
                url (default: that server's url)
    every kind  url (default redis.url / mysql.url), window_s (60: rates and new failures)
"""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit

from dashboard.config.settings import ConfigError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")

COMMON: dict[str, Any] = {"url": None, "window_s": 60.0}
DEFAULTS: dict[str, dict[str, Any]] = {
    "redis-list": {"age_field": None, "consume_from": "left", "failed_key": None,
                   "processing_key": None},
    "rq": {"prefix": "rq"},
    "celery": {"priority_steps": [0, 3, 6, 9], "separator": "\x06\x16", "age_field": None},
    "sql": {"table": None, "status_column": "status", "priority_column": "priority",
            "created_column": "created_at", "id_column": "id", "pending_values": ["pending"],
            "processing_values": ["processing"], "failed_values": ["failed"],
            "statement_timeout_ms": 500, "count_limit": 100_000, "server": None},
}


def _fail(i: int, key: str, problem: str) -> ConfigError:
    return ConfigError(f"queues[{i}].{key}", problem)


def _text(i: int, key: str, v: Any, allow_empty: bool = False) -> str:
    if not isinstance(v, str) or (not v and not allow_empty):
        raise _fail(i, key, f"expected a string, got {v!r}")
    return v


def _ident(i: int, key: str, v: Any, allow_empty: bool = False, dotted: bool = False) -> str:
    v = _text(i, key, v, allow_empty)
    if v == "" and allow_empty:
        return v
    parts = v.split(".") if dotted else [v]
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise _fail(i, key, f"expected a plain SQL name (letters, digits, _), got {v!r}")
    return v


def _strings(i: int, key: str, v: Any) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, (str, int)) for x in v):
        raise _fail(i, key, "expected a non-empty list of values")
    return [str(x) for x in v]


def _number(i: int, key: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise _fail(i, key, f"expected a number between {lo:g} and {hi:g}, got {v!r}")
    return v


def validate(i: int, kind: str, key: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with defaults filled in; raises ConfigError naming ``queues[i].<key>``."""
    allowed = {**COMMON, **DEFAULTS[kind]}
    for k in options:
        if k not in allowed:
            raise _fail(i, k, f"unknown option for kind {kind} (allowed: {', '.join(sorted(allowed))})")
    o = {**allowed, **options}
    if o["url"] is not None:
        url = _text(i, "url", o["url"])
        schemes = ("mysql", "mariadb") if kind == "sql" else ("redis", "rediss", "unix")
        if urlsplit(url).scheme not in schemes:
            raise _fail(i, "url", f"expected a {schemes[0]}:// URL")
    o["window_s"] = _number(i, "window_s", o["window_s"], 5, 86400)
    if kind in ("redis-list", "celery") and o["age_field"] is not None:
        _text(i, "age_field", o["age_field"])
    if kind == "redis-list":
        if o["consume_from"] not in ("left", "right"):
            raise _fail(i, "consume_from", f"must be left or right, got {o['consume_from']!r}")
        for k in ("failed_key", "processing_key"):
            if o[k] is not None:
                _text(i, k, o[k])
    elif kind == "rq":
        if not re.fullmatch(r"[A-Za-z0-9_.:{}-]+", _text(i, "prefix", o["prefix"])):
            raise _fail(i, "prefix", "letters, digits and _ . : - { } only (as RQ_KEY_PREFIX)")
    elif kind == "celery":
        steps = o["priority_steps"]
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                  and 0 <= s <= 255 for s in steps):
            raise _fail(i, "priority_steps", "expected a list of whole numbers 0-255")
        o["priority_steps"] = sorted(set(steps)) or [0]
        _text(i, "separator", o["separator"])
    elif kind == "sql":
        o["table"] = _ident(i, "table", o["table"] or key or "jobs", dotted=True)
        for k in ("status_column", "created_column", "id_column"):
            o[k] = _ident(i, k, o[k], allow_empty=(k == "id_column"))
        o["priority_column"] = _ident(i, "priority_column", o["priority_column"] or "",
                                      allow_empty=True)
        for k in ("pending_values", "processing_values", "failed_values"):
            o[k] = _strings(i, k, o[k])
        o["statement_timeout_ms"] = _number(i, "statement_timeout_ms", o["statement_timeout_ms"],
                                            10, 60_000)
        o["count_limit"] = int(_number(i, "count_limit", o["count_limit"], 100, 100_000_000))
        if o["server"] is not None:
            _text(i, "server", o["server"])
    return o
