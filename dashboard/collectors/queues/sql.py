"""A jobs table in MySQL/MariaDB as a queue: one statement per tick (two indexed reads joined,
one round trip: issue 19), under a statement time limit.

With the index ``(status, created_at, priority)`` every figure is an index range or an index
end: pending per priority and the processing/failed counts are covering range scans (capped at
``count_limit`` rows, so a runaway backlog cannot make the tick slow), the oldest pending job is
the first entry of the pending range, and jobs added since the previous tick are the primary-key
range above the previous ``MAX(id)`` (counted, not subtracted: auto-increment leaves gaps).
Without that index each statement would scan the table; the time limit (MariaDB ``SET STATEMENT
max_statement_time``, MySQL's ``MAX_EXECUTION_TIME`` hint) stops it on the server, the queue's
sample says which index to add, and the queue is not queried again for ``RETRY_AFTER_S``: a
missing index never becomes a pile of scans on the platform's database.

The connection is mysql_conn's (see ``SqlQueues``): one per distinct server URL, and on the
monitored server (url = mysql.url) the MySQL collector's own second connection.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Sequence

from dashboard.collectors.mysql.conn import MySQLConnection, QueryError
from dashboard.collectors.queues.base import BackendDown, QueueRead
from dashboard.config.load import parse_mysql
from dashboard.config.settings import ConfigError, MySQLSettings, QueueSettings
from dashboard.model import CollectorError

RETRY_AFTER_S = 60.0
_TIMEOUT_ERRORS = {1969, 3024, 1317, 1028}        # MariaDB / MySQL "statement time limit"


def _q(name: str) -> str:
    """Backtick-quote a validated identifier (``db.table`` too)."""
    return ".".join(f"`{p}`" for p in name.split("."))


class SqlQueue:
    """The statements of one configured table, built once from its options."""

    def __init__(self, q: QueueSettings) -> None:
        o = q.options
        self.name, self.window_s = q.name, float(o.get("window_s", 60.0))
        self.table = o["table"]
        self.timeout_ms = int(o["statement_timeout_ms"])
        t, s, c = _q(o["table"]), _q(o["status_column"]), _q(o["created_column"])
        cap = int(o["count_limit"])
        self.count_limit = cap
        self.pending, self.processing, self.failed = (
            o["pending_values"], o["processing_values"], o["failed_values"])
        inn = lambda vals: ", ".join(["%s"] * len(vals))  # noqa: E731
        pk = _q(o["id_column"]) if o["id_column"] else None
        max_id = f"(SELECT MAX({pk}) FROM {t})" if pk else "NULL"
        added = (f"(SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {pk} > %s LIMIT {cap}) n)"
                 if pk else "NULL")
        summary = (
            f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {s} IN ({inn(self.processing)}) "
            f"LIMIT {cap}) a) AS processing, "
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {s} IN ({inn(self.failed)}) LIMIT {cap}) b)"
            f" AS failed, (SELECT MIN({c}) FROM {t} WHERE {s} IN ({inn(self.pending)})) AS oldest, "
            f"NOW(6) AS now_dt, UNIX_TIMESTAMP(NOW(6)) AS now_epoch, {max_id} AS max_id, {added} AS added")
        self.has_id = bool(pk)
        self.last_id: int | None = None         # MAX(id) at the previous tick
        self.enqueued_total = 0.0               # rows added since we started counting
        prio = o["priority_column"]
        if prio:
            pending = (f"SELECT p, COUNT(*) AS n FROM (SELECT {_q(prio)} AS p FROM {t} WHERE {s} "
                       f"IN ({inn(self.pending)}) LIMIT {cap}) x GROUP BY p")
        else:
            pending = (f"SELECT NULL AS p, COUNT(*) AS n FROM (SELECT 1 FROM {t} WHERE {s} "
                       f"IN ({inn(self.pending)}) LIMIT {cap}) x")
        # One row per pending priority, the summary's columns repeated on each; one row with
        # p and n NULL when nothing is pending (with a priority column).
        self.read_sql = (f"SELECT s.*, g.p, g.n FROM ({summary}) s LEFT JOIN ({pending}) g ON 1 = 1")
        self.summary_args = [*self.processing, *self.failed, *self.pending]
        cols = [o["status_column"], o["created_column"]] + ([prio] if prio else [])
        base = o["table"].split(".")[-1]
        self.index_sql = (f"CREATE INDEX {_q(base + '_queue_idx')} ON {t} "
                          f"({', '.join(_q(x) for x in cols)})")
        self.index_columns = cols[:2]
        self.retry_at = 0.0
        self.last_error: str | None = None

    def limited(self, sql: str, mariadb: bool) -> str:
        if mariadb:
            return f"SET STATEMENT max_statement_time={self.timeout_ms / 1000:.3f} FOR {sql}"
        return sql.replace("SELECT ", f"SELECT /*+ MAX_EXECUTION_TIME({self.timeout_ms}) */ ", 1)


class SqlQueues:
    """The SQL queues of one server, read on one ``MySQLConnection`` (mysql_conn.py): reconnect
    backoff (1, 2, 4 ... 30 s, not a 5 s connect attempt every tick while the server is down),
    error texts scrubbed of the password, a session statement limit.

    ``shared``: the MySQL collector's digests connection, given when the queues live on the
    monitored server (the queue's url is mysql.url). DESIGN: the dashboard holds at most two
    connections there (status + digests); the digests one is idle between its 15 s reads, and
    its lock serialises the two users. It stays the collector's: ``close`` leaves it open.
    """

    def __init__(self, url: str, queues: Sequence[QueueSettings], mysql: MySQLSettings | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 shared: MySQLConnection | None = None) -> None:
        self.queues = [SqlQueue(q) for q in queues]
        self._clock = clock
        self._owned = shared is None
        if shared is not None:
            self.conn = shared
        else:
            try:
                db = mysql if mysql is not None and mysql.url == url else parse_mysql({"url": url})
            except ConfigError as e:
                raise BackendDown(str(e)) from None
            assert db is not None
            # Each statement carries its queue's own limit; the session's is the backstop.
            limit = max(q.timeout_ms for q in self.queues) / 1000
            self.conn = MySQLConnection(db, "queue", limit, clock=clock)
        self._checked = -1               # conn.connects when the indexes were last checked
        self._notes: dict[str, str] = {}

    def _check_index(self, q: SqlQueue) -> None:
        """Say up front, in ``check`` notes, when the table lacks the index the queries need."""
        try:
            rows = self.conn.query(f"SHOW INDEX FROM {_q(q.table)}")
        except QueryError:
            return          # the tick itself reports a missing table or privilege
        by_index: dict[str, list[tuple[int, str]]] = {}
        for row in rows:    # Table, Non_unique, Key_name, Seq_in_index, Column_name, ...
            by_index.setdefault(row[2], []).append((int(row[3]), str(row[4]).lower()))
        wanted = [c.lower() for c in q.index_columns]
        if any([c for _, c in sorted(cols)][:2] == wanted for cols in by_index.values()):
            self._notes.pop(q.name, None)
        else:
            self._notes[q.name] = (f"queue {q.name}: table {q.table} has no index on "
                                   f"({', '.join(q.index_columns)}); add it: {q.index_sql}")

    def read(self) -> list[QueueRead]:
        now = self._clock()
        try:
            self.conn.ensure_open()
            if self.conn.connects != self._checked:     # (re)connected: look at the tables again
                self._checked = self.conn.connects
                for q in self.queues:
                    self._check_index(q)
            return [self._read(q, now) for q in self.queues]
        except CollectorError as e:          # unreachable or lost (_read keeps QueryErrors)
            # "MySQL at host:port unreachable: ... (next attempt in 4 s)" -> "mysql host:port ..."
            raise BackendDown("mysql " + str(e).removeprefix("MySQL at ")) from None

    def _read(self, q: SqlQueue, now: float) -> QueueRead:
        if now < q.retry_at and q.last_error:
            return QueueRead(q.name, error=q.last_error, window_s=q.window_s)
        r = QueueRead(q.name, window_s=q.window_s)
        mariadb = self.conn.flavor == "mariadb"
        try:
            # id > NULL matches nothing: the first tick only learns MAX(id)
            args = q.summary_args + ([q.last_id] if q.has_id else []) + q.pending
            rows = self.conn.query(q.limited(q.read_sql, mariadb), args)
            processing, failed, oldest, now_dt, now_epoch, max_id, added = rows[0][:7]
            prio_rows = [(p, n) for *_, p, n in rows if n is not None]
        except QueryError as e:          # the connection is fine: this queue's statement is not
            q.last_error = self._explain(q, e)
            q.retry_at = now + RETRY_AFTER_S
            return QueueRead(q.name, error=q.last_error, window_s=q.window_s)
        q.last_error, q.retry_at = None, 0.0
        r.pending = float(sum(n for _, n in prio_rows))
        if len(prio_rows) > 1 or (prio_rows and prio_rows[0][0] is not None):
            r.by_priority = {str(p): float(n) for p, n in prio_rows}
        r.failed = float(failed)
        r.extra["queue.processing"] = float(processing)
        if q.has_id:
            q.enqueued_total += float(added or 0)
            q.last_id = int(max_id) if max_id is not None else q.last_id
            r.enqueued_total = q.enqueued_total
        if oldest is not None:
            if isinstance(oldest, datetime):
                r.oldest_age_s = (now_dt - oldest).total_seconds()
            else:
                v = float(oldest)
                r.oldest_age_s = float(now_epoch) - (v / 1000.0 if v > 1e11 else v)
        if r.pending >= q.count_limit:
            self._notes[q.name + ":cap"] = (f"queue {q.name}: at least {q.count_limit} pending; "
                                            f"counts stop there (count_limit)")
        return r

    @staticmethod
    def _explain(q: SqlQueue, e: QueryError) -> str:
        text = str(e)[:300]                # scrubbed by MySQLConnection: "message (error N)"
        if e.code in _TIMEOUT_ERRORS:
            return (f"the statement time limit ({q.timeout_ms} ms) stopped the query on {q.table}: "
                    f"add the index: {q.index_sql}; retrying in {RETRY_AFTER_S:.0f} s")
        if e.code == 1146:
            return f"table {q.table} does not exist (set the queue's table option)"
        if e.code == 1054:
            return (f"{text} (set the queue's status_column / priority_column / "
                    f"created_column / id_column options)")
        if e.code in (1142, 1143):
            return f"the monitor user may not read {q.table}: GRANT SELECT ON {q.table} TO it"
        return text

    def notes(self) -> list[str]:
        return list(self._notes.values())

    def not_shown(self) -> None:
        return None                    # SQL queues are configured one by one, never discovered

    def close(self) -> None:
        if self._owned:
            self.conn.close()
