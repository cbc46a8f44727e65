"""MySQL / MariaDB: connection-pool usage, load, slow statements running now.

Each second: one ``SHOW GLOBAL STATUS WHERE Variable_name IN (...)`` and, only while another
session is running a statement, one process-list query for statements running at least the
slow threshold; the replication status (``replication``) each second on a replica, every 10 s
on a primary. InnoDB figures come from the same status read (``innodb``).
Every 5 minutes (and after a reconnect): server variables and ``SHOW GRANTS``.
The top-statements job (``mysql_digests``) runs every ``digest_interval_s`` on a second
connection; that is all the dashboard ever opens (≤ 2 connections, ≈ 1–2 statements/s).

Counters become rates through ``dashboard.collectors.rates``; every ``..._per_min`` figure is the
count over the trailing 60 s (``TrailingCounts``); ``db.connections_per_hour`` is the increase
of ``Connections`` over the last hour, extrapolated while that hour fills (from 60 s on).
A missing grant degrades one view with a message saying what to grant; it never fails the tick.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone, tzinfo
from typing import Callable, Sequence

import psutil

from dashboard.collectors.mysql import innodb, replication
from dashboard.collectors.mysql.conn import Grants, MySQLConnection, QueryError
from dashboard.collectors.mysql.digests import PROCESSLIST, ProcesslistSampler, StatementReader
from dashboard.collectors.mysql.statements import StatementBook
from dashboard.collectors.mysql.text import normalize_sql
from dashboard.collectors.rates import RateTracker, TrailingCounts, WindowedCounters
from dashboard.config.settings import MySQLSettings
from dashboard.model import CollectorError, MetricSpec, Reading
from dashboard.store.statements import StatementsRepo

METRICS: Sequence[MetricSpec] = (
    MetricSpec("db.up", "bool", "The database answered"),
    MetricSpec("db.threads_connected", "count", "Open connections (Threads_connected, ours included)"),
    MetricSpec("db.threads_running", "count", "Connections running a statement, not counting ours"),
    MetricSpec("db.pool_capacity", "count", "Configured pool capacity, else the server's max_connections"),
    MetricSpec("db.pool_utilization", "%", "Open connections as a share of the pool capacity"),
    MetricSpec("db.max_used_connections", "count",
               "Most connections open at once since the server started"),
    MetricSpec("db.refused_connections", "count",
               "Connections refused by a connection limit since the previous sample"),
    MetricSpec("db.aborted_connects_per_min", "/min",
               "Failed connection attempts over the last 60 s (Aborted_connects)"),
    MetricSpec("db.queries_per_s", "/s", "Statements from clients per second (the dashboard's own excluded)"),
    MetricSpec("db.connections_per_hour", "/h",
               "New connections over the last hour (extrapolated during the first hour)"),
    MetricSpec("db.connections_per_hour_limit", "/h", "The hosting limit of new connections per hour"),
    MetricSpec("db.slow_queries_per_min", "/min",
               "Statements slower than long_query_time over the last 60 s (Slow_queries)"),
    MetricSpec("db.avg_query_ms", "ms",
               "Average statement time over the last minute (performance_schema digests)"),
    MetricSpec("db.long_running", "count", "Statements running for at least the slow threshold now"),
    *innodb.METRICS,
    *replication.METRICS,
)

STATUS_VARS = ("Threads_connected", "Threads_running", "Max_used_connections",
               "Connection_errors_max_connections", "Aborted_connects", "Aborted_connects_preauth",
               "Access_denied_errors", "Questions", "Connections", "Slow_queries",
               "Performance_schema_digest_lost", *innodb.STATUS_VARS)
INFO_EVERY_S = 300.0
PRIMARY_RECHECK_S = 10.0     # a server found to be no replica: replication status read again
_SYSTEM_COMMANDS = ("Sleep", "Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO",
                    "Slave_SQL", "Slave_worker", "Register Slave")
GRANT_NOTES = (
    ("process", "PROCESS", "the 'running now' list and db.long_running (other sessions' "
                           "statements in the process list)"),
    ("binlog_monitor", "BINLOG MONITOR", "binary-log status (SHOW BINLOG STATUS); called "
                                         "REPLICATION CLIENT on MySQL; no panel needs it yet"),
    ("performance_schema", "SELECT ON performance_schema.*",
     "exact top statements and db.avg_query_ms from statement digests"),
    ("replica_monitor", "SLAVE MONITOR", "replication status: role, db.replica_lag_s and the "
                                         "replica threads (SHOW ALL SLAVES STATUS)"),
)


class MySQLCollector:
    source = "db"
    metrics = METRICS

    def __init__(self, settings: MySQLSettings, interval_s: float = 1.0, timeout_s: float = 10.0,
                 tz: tzinfo = timezone.utc, backoff_max_s: float = 30.0,
                 min_hour_span_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock, self._wall = clock, wall
        limit = settings.read_timeout_s / 2       # the server gives up before our read timeout
        self.conn = MySQLConnection(settings, "status", limit, backoff_max_s=backoff_max_s, clock=clock)
        self.reader_conn = MySQLConnection(settings, "digests", limit, backoff_max_s=backoff_max_s,
                                           clock=clock)
        self.book = StatementBook(settings.slow_ms, tz, clock=wall)
        self.reader = StatementReader(self.reader_conn, self.book, self.account, clock=wall,
                                      monotonic=clock, own_shapes=self._own_shapes)
        self.sampler = ProcesslistSampler(self.book)
        self._tz = tz
        self._rates = RateTracker()
        self._per_min = TrailingCounts(60.0)
        self._per_hour = WindowedCounters(3600.0)
        self._innodb = innodb.InnoDBFigures()
        self._min_hour_span_s = min_hour_span_s
        self._info_at = float("-inf")
        self._info_connects = -1
        self.grants: Grants | None = None
        self.grant_lines_account: str | None = None
        self.variables: dict[str, float] = {}   # server variables read at connect, as numbers
        self.replica: replication.ReplicaStatus | None = None   # None: a primary (or unknown)
        self._primary_until = float("-inf")   # until then, known to be no replica

    # --- wiring ---------------------------------------------------------------------------------

    def jobs(self, store) -> list[tuple[Callable[[], None], dict]]:
        """Side jobs for the runtime: the top-statements reader, persisted in the store's file."""
        self.book = StatementBook(self.settings.slow_ms, self._tz, StatementsRepo(store.connect),
                                  clock=self._wall)
        self.reader = StatementReader(self.reader_conn, self.book, self.account, clock=self._wall,
                                      monotonic=self._clock, own_shapes=self._own_shapes)
        self.sampler = ProcesslistSampler(self.book)
        return [(self.reader.run, {"trigger": "interval", "seconds": self.settings.digest_interval_s,
                                   "next_run_time": datetime.now()}),
                (self.book.prune, {"trigger": "interval", "seconds": 3600})]

    def _own_shapes(self) -> set[str]:
        return self.conn.shapes | self.reader_conn.shapes

    def account(self) -> str:
        return self.grant_lines_account or f"'{self.settings.user}'@'%'"

    # --- collection -----------------------------------------------------------------------------

    def _refresh_info(self, now: float) -> None:
        if now - self._info_at < INFO_EVERY_S and self._info_connects == self.conn.connects:
            return
        (mc, lqt, bp, ps), = self.conn.query(
            "SELECT @@max_connections, @@GLOBAL.long_query_time, @@innodb_buffer_pool_size, "
            "@@performance_schema")
        self.variables = {"max_connections": int(mc), "long_query_time": float(lqt),
                          "innodb_buffer_pool_size": int(bp), "performance_schema": int(ps or 0)}
        lines = [r[0] for r in self.conn.query("SHOW GRANTS")]
        self.grants = Grants.parse(lines)
        for line in lines:
            tail = line.split(" TO ", 1)
            if len(tail) == 2:
                self.grant_lines_account = tail[1].split(" ", 1)[0].replace("`", "'")
                break
        self._info_at, self._info_connects = now, self.conn.connects
        advice, follows = self._buffer_pool_advice()
        for topic, note in (("long_query_time", self._long_query_time_note()),
                            ("buffer_pool", None if follows else advice)):
            if note:
                self.book.notices[topic] = note
            else:
                self.book.notices.pop(topic, None)

    def _long_query_time_note(self) -> str | None:
        lqt = float(self.variables.get("long_query_time", 10.0))
        if abs(lqt * 1000 - self.settings.slow_ms) <= 1:
            return None
        return (f"long_query_time is {lqt:g} s but the slow threshold is {self.settings.slow_ms:g} ms: "
                f"the slow-queries panel counts statements of {lqt:g} s or more. To align them: "
                f"SET GLOBAL long_query_time = {self.settings.slow_ms / 1000:g};")

    def collect(self) -> list[Reading]:
        try:
            return self._collect()
        except CollectorError as e:
            self.book.set_now([], f"Database unreachable: {e}")
            raise

    def _collect(self) -> list[Reading]:
        now, wall = self._clock(), self._wall()
        self._refresh_info(now)
        status = {name: float(v) for name, v in self.conn.query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % ", ".join(f"'{v}'" for v in STATUS_VARS))}
        ours = self.conn.statements + self.reader_conn.statements
        connected = status.get("Threads_connected", 0.0)
        running = status.get("Threads_running", 1.0)
        capacity = float(self.settings.pool_capacity or self.variables.get("max_connections") or 0)
        v: dict[str, float | None] = {
            "db.threads_connected": connected,
            "db.threads_running": max(running - 1, 0.0),       # our own SHOW STATUS runs too
            "db.pool_capacity": capacity or None,
            "db.pool_utilization": 100.0 * connected / capacity if capacity else None,
            "db.max_used_connections": status.get("Max_used_connections"),
            "db.aborted_connects_per_min": self._last_minute("Aborted_connects", status, now),
            "db.slow_queries_per_min": self._last_minute("Slow_queries", status, now),
            "db.connections_per_hour_limit": float(self.settings.connections_per_hour_limit),
            "db.avg_query_ms": self.book.avg_query_ms(),
        }
        if self.conn.flavor == "mysql" and innodb.missing_from(status):
            status.update(self._innodb_metrics())
        v.update(self._innodb.values(status, now))
        v["db.refused_connections"] = self._refused(status)
        if "Questions" in status:
            # Questions counts our statements too; subtract them so an idle server shows 0.
            qps = self._rates.rate("questions", status["Questions"] - ours, now)
            v["db.queries_per_s"] = None if qps is None else max(qps, 0.0)
        if "Connections" in status:
            inc = self._per_hour.observe(now, status["Connections"])
            span = self._per_hour.span_s()
            if inc is not None and span >= self._min_hour_span_s:
                v["db.connections_per_hour"] = inc[0] if span >= 3600 - self.interval_s \
                    else inc[0] * 3600.0 / span
        lost = status.get("Performance_schema_digest_lost")
        if lost is not None and self._rates.delta(("lost", "digests"), lost):
            self.book.notices["digest_lost"] = (
                "performance_schema's digest table is full: "
                f"since {datetime.fromtimestamp(wall, self._tz):%H:%M} "
                "statements are folded into one '(lost)' row. Raise performance_schema_digests_size "
                "in the server configuration and restart the server.")
        v["db.long_running"] = self._running_now(wall, running)
        v.update(self._replication(now))
        return [Reading({k: x for k, x in v.items() if x is not None})]

    def _replication(self, now: float) -> dict[str, float | None]:
        """Role and replica state; nothing (and the grant to give, on the page) without the grant.

        A replica is read every tick (its lag moves each second); a primary only every
        ``PRIMARY_RECHECK_S``, so replica monitoring costs a primary 0.1 statement a second,
        not one (bench/db_collector.py: the target is <= 3 statements a second in all)."""
        if now < self._primary_until:
            return {"db.replica": 0.0}
        self._primary_until = float("-inf")
        try:
            if self.grants is not None and not self.grants.replica_monitor:
                raise QueryError("the account may not read it")     # no failing statement a second
            rows = self.conn.query_named(replication.STATUS_SQL[self.conn.flavor])
        except QueryError as e:
            self.replica = None
            self.book.notices["replication"] = (
                f"Replication status unavailable: {e}. " + self._grant_advice("replica_monitor"))
            return {}
        self.replica = replication.parse(rows)
        if self.replica is None:
            self._primary_until = now + PRIMARY_RECHECK_S
        if self.replica is not None and self.replica.last_error:
            self.book.notices["replication"] = replication.describe(self.replica)
        else:
            self.book.notices.pop("replication", None)
        return self.replica.values() if self.replica else {"db.replica": 0.0}

    def _innodb_metrics(self) -> dict[str, float]:
        """MySQL's deadlock and history-list counters (``innodb.MYSQL_METRICS``); none without
        the PROCESS grant INNODB_METRICS needs (check says what PROCESS unlocks)."""
        try:
            return innodb.from_metrics(self.conn.query(innodb.MYSQL_METRICS_SQL))
        except QueryError:
            return {}

    def _refused(self, status: dict[str, float]) -> float | None:
        """Connections refused since the previous sample.

        MySQL counts every refusal at max_connections in Connection_errors_max_connections.
        MariaDB (seen on 10.11) counts there only the refusals once even the reserved admin
        slot is taken; an ordinary user turned away at max_connections -- the case that
        matters -- only shows in Aborted_connects. So on MariaDB a refusal is an aborted
        connect that got past the handshake (not Aborted_connects_preauth) and was not a
        wrong password (Access_denied_errors): max_connections, max_user_connections or a
        per-hour limit. The counters are read in one statement, so the difference is exact
        but for a denied *statement* in the same second, which makes it undercount (never
        over), floored by Connection_errors_max_connections.
        """
        d = {k: self._rates.delta(("refused", k), status[k]) for k in (
            "Connection_errors_max_connections", "Aborted_connects", "Aborted_connects_preauth",
            "Access_denied_errors") if k in status}
        errors = d.get("Connection_errors_max_connections")
        aborted, preauth, denied = (d.get(k) for k in (
            "Aborted_connects", "Aborted_connects_preauth", "Access_denied_errors"))
        if self.conn.flavor != "mariadb" or aborted is None or preauth is None or denied is None:
            return errors
        after_auth = aborted - preauth - denied
        return max(after_auth, errors or 0.0, 0.0)

    def _last_minute(self, name: str, status: dict[str, float], now: float) -> float | None:
        return self._per_min.count(name, status[name], now) if name in status else None

    def _running_now(self, wall: float, threads_running: float) -> float | None:
        """Statements running ≥ slow_ms, for the "now" list. None when we cannot see them all."""
        if self.grants is not None and not self.grants.process:
            self.book.set_now([], "The 'running now' list needs the PROCESS privilege (without it "
                                  "the server shows this account only its own sessions): "
                                  f"GRANT PROCESS ON *.* TO {self.account()};")
            return None
        rows: list[dict] = []
        if threads_running > 1:      # someone besides us is running a statement
            slow_s = self.settings.slow_ms / 1000.0
            if self.conn.flavor == "mariadb":
                time_col, cond = "TIME_MS / 1000", "TIME_MS >= %s"
                arg = self.settings.slow_ms
            else:
                time_col, cond, arg = "TIME", "TIME >= %s", slow_s
            try:
                result = self.conn.query(
                    f"SELECT ID, USER, HOST, DB, {time_col}, STATE, LEFT(INFO, 2000)"
                    " FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
                    f" AND INFO IS NOT NULL AND COMMAND NOT IN ({', '.join(['%s'] * len(_SYSTEM_COMMANDS))})"
                    f" AND {cond} ORDER BY 5 DESC LIMIT 200", (*_SYSTEM_COMMANDS, arg))
            except QueryError as e:
                self.book.set_now([], f"Reading the process list failed: {e}")
                return None
            rows = [{"id": int(i), "user": u, "host": h, "schema": d, "seconds": round(float(t), 1),
                     "state": s or "", "statement": normalize_sql(info or "")}
                    for i, u, h, d, t, s, info in result]
        self.book.set_now(rows, None)
        if self.book.source == PROCESSLIST:
            self.sampler.observe(wall, rows)
        return float(len(rows))

    # --- `python -m dashboard check` -------------------------------------------------------------

    def check_notes(self) -> list[str]:
        notes: list[str] = []
        if self.grants is None:
            return [f"not connected: {self.conn.last_error or 'no reading yet'}"]
        notes.append(f"server {self.conn.version} ({self.conn.flavor}) at {self.conn.where}, "
                     f"account {self.account()}")
        cap = self.settings.pool_capacity
        notes.append(f"pool capacity {cap} (mysql.pool_capacity)" if cap else
                     f"pool capacity {self.variables.get('max_connections')} (the server's "
                     "max_connections; set mysql.pool_capacity to your application's pool size)")
        for attr, grant, unlocks in GRANT_NOTES:
            if getattr(self.grants, attr):
                notes.append(f"grant ok: {self._grant_name(attr, grant)} ({unlocks})")
            else:
                notes.append(f"grant MISSING: {self._grant_name(attr, grant)} -- unlocks "
                             f"{unlocks}: {self._grant_advice(attr)}")
        if self.grants.replica_monitor:
            notes.append(replication.describe(self.replica))
        if self.conn.hides_own_statements:
            notes.append("grant ok: UPDATE ON performance_schema.threads (the server does not "
                         "digest the dashboard's own statements)")
        else:
            notes.append("grant MISSING: UPDATE ON performance_schema.threads -- without it the "
                         "server digests the dashboard's own statements too (left out of the top "
                         "statements, but they take room in its digest table): "
                         f"GRANT UPDATE ON performance_schema.threads TO {self.account()};")
        if self.book.source == "starting":
            self.reader.run()
        notes.append(f"top statements from: {self.book.source}"
                     + (f" -- {self.book.source_note}" if self.book.source_note else ""))
        notes.extend(self.book.notices.values())
        notes.append(self._buffer_pool_advice()[0])
        return notes

    def _grant_name(self, attr: str, grant: str) -> str:
        """MySQL calls BINLOG MONITOR and SLAVE MONITOR both REPLICATION CLIENT."""
        mysql = self.conn.flavor != "mariadb" and attr in ("binlog_monitor", "replica_monitor")
        return "REPLICATION CLIENT" if mysql else grant

    def _grant_advice(self, attr: str) -> str:
        name = self._grant_name(attr, next(g for a, g, _ in GRANT_NOTES if a == attr))
        target = "" if " ON " in name else " ON *.*"
        return f"GRANT {name}{target} TO {self.account()};"

    def _buffer_pool_advice(self) -> tuple[str, bool]:
        """docs/thresholds.md row 17, against this host's memory when the server runs here."""
        local = self.settings.host in ("127.0.0.1", "localhost", "::1") or self.settings.unix_socket
        return innodb.buffer_pool_advice(float(self.variables.get("innodb_buffer_pool_size", 0)),
                                         psutil.virtual_memory().total if local else None,
                                         "this host's")

    def close(self) -> None:
        self.conn.close()
        self.reader_conn.close()
