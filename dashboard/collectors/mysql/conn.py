"""One persistent PyMySQL connection to the monitored server, re-opened with backoff.

The database collectors hold at most two of these (status every second, statement digests every
15 s), so the dashboard never takes more than two of the server's connection slots and never
opens a connection per sample (mysqld_exporter does, and it shows in ``Connections``).

* Timeouts are the platform docs' figures: connect 5 s, read 10 s. On top of that each session
  gets a server-side statement limit (MariaDB ``max_statement_time``, MySQL
  ``MAX_EXECUTION_TIME``) so that a monitoring query on a struggling server is killed by the
  server itself instead of piling up behind the application's queries.
* A failed connection is retried after 1, 2, 4 ... seconds (capped), never in a tight loop; the
  collector meanwhile reports the outage (``db.up = 0``) with the last error.
* Error texts never contain the password (PyMySQL's do not; we scrub them anyway).
* TLS as PyMySQL does it without TLS options ("preferred": used when the server offers it, the
  certificate not verified), but on one shared context without the system's CA store: PyMySQL
  loads it for every connection (``ssl.create_default_context``) and never uses it, since nothing
  is verified. That was ~0.75 MB of OpenSSL certificate objects per connection, 1.5 MB of the
  worker's resident memory for the two connections (issue 19).
"""
from __future__ import annotations

import re
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pymysql

from dashboard.collectors.mysql.text import statement_shape
from dashboard.config.settings import MySQLSettings
from dashboard.model import CollectorError

# What PyMySQL itself sends on every connect, before any statement of ours.
DRIVER_STATEMENTS = ("SET NAMES utf8mb4", "SET AUTOCOMMIT = 1")
# MariaDB error 1969 / MySQL 3024: our own statement limit fired.
STATEMENT_TIMEOUT_CODES = {1969, 3024}
# Permission problems: the connection is fine, one view is degraded.
PRIVILEGE_CODES = {1044, 1142, 1143, 1227, 1370}


class QueryError(CollectorError):
    """A statement failed but the connection is still good (missing grant, timeout, ...)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def is_privilege(self) -> bool:
        return self.code in PRIVILEGE_CODES


@dataclass(frozen=True)
class Grants:
    """What the monitoring account may do, from ``SHOW GRANTS`` (privilege names only)."""

    process: bool
    binlog_monitor: bool             # REPLICATION CLIENT on MySQL / MariaDB < 10.5
    performance_schema: bool
    slow_log: bool
    replica_monitor: bool = False    # SLAVE/REPLICA MONITOR (MariaDB >= 10.5.9), else as binlog

    @classmethod
    def parse(cls, lines: Sequence[str]) -> "Grants":
        glob: set[str] = set()
        per_db: dict[str, set[str]] = {}
        for line in lines:
            # "GRANT PROCESS, BINLOG MONITOR ON *.* TO `mon`@`%` IDENTIFIED BY PASSWORD '*..'":
            # only the part between GRANT and TO is read (the rest may carry a password hash).
            m = re.match(r"(?is)^\s*GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s", line)
            if not m:
                continue
            privs = {p.strip().upper() for p in re.sub(r"\(.*?\)", "", m.group(1)).split(",")}
            target = m.group(2).replace("`", "").lower()
            if target == "*.*":
                glob |= privs
            else:
                per_db.setdefault(target, set()).update(privs)

        def has(priv: str, *targets: str) -> bool:
            if "ALL PRIVILEGES" in glob or "ALL" in glob or priv in glob:
                return True
            return any(priv in per_db.get(t, ()) or "ALL PRIVILEGES" in per_db.get(t, ())
                       for t in targets)

        return cls(process=has("PROCESS"),
                   binlog_monitor=has("BINLOG MONITOR") or has("REPLICATION CLIENT")
                   or has("SUPER"),
                   performance_schema=has("SELECT", "performance_schema.*",
                                          "performance_schema.events_statements_summary_by_digest"),
                   slow_log=has("SELECT", "mysql.*", "mysql.slow_log"),
                   replica_monitor=has("SLAVE MONITOR") or has("REPLICA MONITOR") or has("SUPER")
                   or has("REPLICATION CLIENT"))


_tls: ssl.SSLContext | None = None


def preferred_tls() -> ssl.SSLContext:
    """PyMySQL's context for "preferred" TLS (``Connection._create_ssl_ctx({})``) minus the CA
    store it loads and never consults: no verification, no hostname check. Made at the first
    connect, after the worker's monkey-patching (a green context under eventlet/gevent)."""
    global _tls
    if _tls is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        ctx.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
        _tls = ctx
    return _tls


def connect(**kwargs: Any) -> Any:
    """``pymysql.connect`` in its default TLS mode ("preferred") on ``preferred_tls()``; with
    TLS options of its own (``ssl``, ``ssl_ca`` ...), PyMySQL's as they are."""
    if any(k.startswith("ssl") for k in kwargs):
        return pymysql.connect(**kwargs)
    conn = pymysql.connect(ssl_disabled=True, defer_connect=True, **kwargs)
    # What PyMySQL's __init__ sets for "preferred": try TLS if the server offers it, else plain.
    conn.ssl, conn.ctx = True, preferred_tls()
    conn.connect()
    return conn


class MySQLConnection:
    """A lazily (re)connected session; ``query`` raises ``CollectorError`` when it cannot."""

    def __init__(self, settings: MySQLSettings, role: str, statement_limit_s: float = 5.0,
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 connect: Callable[..., Any] = connect) -> None:
        self.settings = settings
        self.role = role
        self.statement_limit_s = statement_limit_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._connect = connect
        self._conn: Any = None
        self._lock = threading.Lock()
        self._backoff = 0.0
        self._next_attempt = float("-inf")
        self.last_error: str | None = None
        self.statements = 0          # every statement we sent, for the "our own load" figures
        # The shape (text.statement_shape) of every statement this session sent, the driver's
        # included: the top statements leave these out whatever the grants (issue 17).
        self.shapes: set[str] = {statement_shape(s) for s in DRIVER_STATEMENTS}
        self.connects = 0
        self.flavor = "mariadb"      # or "mysql", from the handshake's version string
        self.version = ""
        self.hides_own_statements = False   # see _stop_own_instrumentation

    @property
    def where(self) -> str:
        s = self.settings
        return s.unix_socket or f"{s.host}:{s.port}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.open

    def _scrub(self, text: str) -> str:
        pw = self.settings.password
        return text.replace(pw, "***") if pw else text

    def _error_text(self, e: BaseException) -> str:
        if isinstance(e, pymysql.err.MySQLError) and len(e.args) >= 2:
            return self._scrub(f"{e.args[1]} (error {e.args[0]})")
        return self._scrub(f"{type(e).__name__}: {e}")

    def _open(self) -> None:
        now = self._clock()
        if now < self._next_attempt:
            raise CollectorError(f"MySQL at {self.where} unreachable: {self.last_error} "
                                 f"(next attempt in {self._next_attempt - now:.0f} s)")
        s = self.settings
        try:
            conn = self._connect(
                host=s.host, port=s.port, user=s.user, password=s.password,
                database=s.database, unix_socket=s.unix_socket,
                connect_timeout=s.connect_timeout_s, read_timeout=s.read_timeout_s,
                write_timeout=s.read_timeout_s, autocommit=True, charset="utf8mb4",
                program_name=f"dashboard-{self.role}")
        except Exception as e:  # noqa: BLE001 - every failure to connect is an outage
            self._failed(e)
            raise CollectorError(f"MySQL at {self.where} unreachable: {self.last_error}") from None
        self.connects += 1
        # MariaDB prefixes "5.5.5-" to its version for old clients.
        self.version = (conn.get_server_info() or "").removeprefix("5.5.5-")
        self.flavor = "mariadb" if "mariadb" in self.version.lower() else "mysql"
        limit = ("SET SESSION max_statement_time = %s" % round(self.statement_limit_s, 3)
                 if self.flavor == "mariadb" else
                 "SET SESSION MAX_EXECUTION_TIME = %d" % int(self.statement_limit_s * 1000))
        try:
            with conn.cursor() as cur:
                self._count(limit)
                cur.execute(limit)
                self.hides_own_statements = self._stop_own_instrumentation(cur)
        except Exception as e:  # noqa: BLE001
            conn.close()
            self._failed(e)
            raise CollectorError(f"MySQL at {self.where}: {self.last_error}") from None
        self._conn = conn
        self._backoff = 0.0
        self._next_attempt = float("-inf")
        self.last_error = None

    def _stop_own_instrumentation(self, cur: Any) -> bool:
        """Keep the dashboard's own statements out of the top statements it shows.

        Needs ``GRANT UPDATE ON performance_schema.threads`` (deploy/mysql-grants.sql); without
        it (error 1142) the monitoring statements are counted like the application's.
        """
        sql = ("UPDATE performance_schema.threads SET INSTRUMENTED = 'NO' "
               "WHERE PROCESSLIST_ID = CONNECTION_ID()")
        try:
            self._count(sql)
            cur.execute(sql)
            return True
        except pymysql.MySQLError:
            return False

    def _count(self, sql: str) -> None:
        self.statements += 1
        self.shapes.add(statement_shape(sql))

    def _failed(self, e: BaseException) -> None:
        self.last_error = self._error_text(e)
        self._backoff = min(self.backoff_max_s,
                            self._backoff * 2 if self._backoff else self.backoff_initial_s)
        self._next_attempt = self._clock() + self._backoff

    def ensure_open(self) -> None:
        """Connect now unless connected, with ``query``'s backoff and errors: for a caller that
        needs ``flavor`` (or to know it reconnected, ``connects``) before its statements."""
        with self._lock:
            if not self.connected:
                self._close()
                self._open()

    def query(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple]:
        """Run one statement and return its rows. Connects first if needed.

        Raises ``QueryError`` when the statement failed on a healthy connection (missing grant,
        statement limit) and ``CollectorError`` when the server cannot be reached.
        """
        return self._execute(sql, args)[1]

    def query_named(self, sql: str) -> list[dict[str, Any]]:
        """``query``, each row as column name -> value (for SHOW statements whose columns
        differ between servers and versions)."""
        columns, rows = self._execute(sql, None)
        return [dict(zip(columns, r)) for r in rows]

    def _execute(self, sql: str, args: Sequence[Any] | None) -> tuple[list[str], list[tuple]]:
        with self._lock:
            if not self.connected:
                self._close()
                self._open()
            conn = self._conn
            try:
                with conn.cursor() as cur:
                    self._count(sql)
                    cur.execute(sql, args)
                    return [d[0] for d in cur.description or ()], list(cur.fetchall())
            except pymysql.err.MySQLError as e:
                text = self._error_text(e)
                if conn.open:
                    raise QueryError(text, e.args[0] if e.args else None) from None
                self._close()
                self._failed(e)
                raise CollectorError(f"MySQL at {self.where}: connection lost: {text}") from None

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()
