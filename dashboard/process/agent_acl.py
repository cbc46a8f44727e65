"""A Redis user per agent host, allowed to append to that host's stream and nothing else.

The message queue's Redis also holds the collector leader lock, the status ``/healthz`` serves,
the login rate-limit counters and the Socket.IO channel. With the dashboard's own credentials,
whoever owns one app server could stop all collection and alerting, fake the health status and
send events to every browser. ``python -m dashboard agent-credentials HOST`` gives the host a user
``dashboard-agent-HOST`` with the rule ``%W~dashboard:agent:HOST -@all +xadd``: it can append to
(and, through XADD's MAXLEN, trim) its own stream only, so it can neither write as another host
nor retire one. ``python -m dashboard check`` with that URL proves it (``probe``).
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dashboard.process.agent import HOST_NAME, stream_key

USER_PREFIX = "dashboard-agent-"


def user_name(host: str) -> str:
    stream_key(host)                      # raises ValueError on what is no host name
    return USER_PREFIX + host


def host_of(url: str) -> str | None:
    """The host whose agent user ``url`` logs in as, or None (not an agent's URL)."""
    user = urlsplit(url).username or ""
    host = user[len(USER_PREFIX):]
    return host if user.startswith(USER_PREFIX) and HOST_NAME.fullmatch(host) else None


def rules(host: str, db: int) -> list[str]:
    """ACL SETUSER rules after ``reset`` (no password, off, no keys, no channels, -@all)."""
    # redis-py sends CLIENT SETINFO on connect but tolerates its refusal; SELECT it needs.
    return ["resetchannels", f"%W~{stream_key(host)}", "+xadd"] + (["+select"] if db else [])


def with_login(url: str, login: str) -> str:
    """``url`` (host, port, db, TLS options) logging in as ``login`` ("user:password", or ""
    for no credentials) instead of its own user."""
    p = urlsplit(url)
    where = f"[{p.hostname}]" if p.hostname and ":" in p.hostname else p.hostname or "localhost"
    netloc = (f"{login}@" if login else "") + where + (f":{p.port}" if p.port else "")
    query = urlencode([(k, v) for k, v in parse_qsl(p.query) if k not in ("username", "password")])
    return urlunsplit((p.scheme, netloc, p.path, query, ""))


def create(admin, admin_url: str, host: str) -> tuple[str, str, bool]:
    """Create or reset ``host``'s user with a fresh random password. Returns its URL, its rule
    line for an ACL file (hashed password only) and whether ACL SAVE persisted it."""
    import redis

    password = secrets.token_urlsafe(24)
    digest = hashlib.sha256(password.encode()).hexdigest()
    db = admin.connection_pool.connection_kwargs.get("db", 0)
    name = user_name(host)
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", f"#{digest}", *rules(host, db))
    line = next(x for x in admin.acl_list() if x.startswith(f"user {name} "))
    try:
        admin.acl_save()
        saved = True
    except redis.ResponseError:       # no aclfile configured: the user lives until a restart
        saved = False
    return with_login(admin_url, f"{name}:{password}"), line, saved


def probe(url: str, host: str, channel: str, status_key: str,
          leader_key: str) -> Iterator[tuple[bool, str]]:
    """(ok, what) for each thing an agent's user must and must not be able to do. Harmless: each
    attempt is a form that fails after the permission check (ID 0-0, expiry 0, negative MAXLEN,
    a key that does not exist), so even a wrongly allowed one changes nothing."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    own = stream_key(host)
    other = own + "-check"                 # in the agents' namespace, and not its own

    def attempt(*cmd: object) -> str:
        try:
            client.execute_command(*cmd)
            return "done"
        except redis.exceptions.NoPermissionError:
            return "refused"
        except redis.ResponseError:
            return "allowed"               # past the permission check, stopped by the arguments

    try:
        yield attempt("XADD", own, "0-0", "check", "1") == "allowed", f"may XADD {own}"
        for what, cmd in ((f"SET {leader_key}", ("SET", leader_key, "x", "PX", "0")),
                          (f"XADD {other}", ("XADD", other, "0-0", "check", "1")),
                          (f"XTRIM {own}", ("XTRIM", own, "MAXLEN", "-1")),
                          (f"DEL {own}", ("DEL", own + ":check-none")),
                          (f"PUBLISH {channel}", ("PUBLISH", channel, "")),
                          (f"GET {status_key}", ("GET", status_key)),
                          (f"XREAD {other}", ("XREAD", "STREAMS", other, "0"))):
            yield attempt(*cmd) == "refused", f"may not {what}"
    finally:
        client.close()
    anonymous = redis.Redis.from_url(with_login(url, ""), socket_timeout=5, socket_connect_timeout=5)
    try:
        anonymous.ping()
        open_door = True
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError):
        open_door = False
    finally:
        anonymous.close()
    yield not open_door, "Redis refuses a connection without a password (default user)"
