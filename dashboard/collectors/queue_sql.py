"""A jobs table in MySQL/MariaDB as a queue: two indexed statements per tick, each under a
statement time limit.

With the index ``(status, created_at, priority)`` every figure is an index range or an index
end: pending per priority and the processing/failed counts are covering range scans (capped at
``count_limit`` rows, so a runaway backlog cannot make the tick slow), the oldest pending job is
the first entry of the pending range, and jobs added since the previous tick are the primary-key
range above the previous ``MAX(id)`` (counted, not subtracted: auto-increment leaves gaps).
Without that index each statement would scan the table; the time limit (MariaDB ``SET STATEMENT
max_statement_time``, MySQL's ``MAX_EXECUTION_TIME`` hint) stops it on the server, the queue's
sample says which index to add, and the queue is not queried again for ``RETRY_AFTER_S``: a
missing index never becomes a pile of scans on the platform's database.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Sequence

import pymysql

from dashboard.collectors.queues import BackendDown, QueueRead
from dashboard.config import ConfigError, MySQLSettings, QueueSettings, parse_mysql

RETRY_AFTER_S = 60.0
_TIMEOUT_ERRORS = {1969, 3024, 1317, 1028}        # MariaDB / MySQL "statement time limit"
_CONNECTION_ERRORS = {2002, 2003, 2005, 2006, 2013, 2055, 1040, 1045, 1129, 1203, 1226}


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
        self.summary_sql = (
            f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {s} IN ({inn(self.processing)}) "
            f"LIMIT {cap}) a), "
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {s} IN ({inn(self.failed)}) LIMIT {cap}) b), "
            f"(SELECT MIN({c}) FROM {t} WHERE {s} IN ({inn(self.pending)})), "
            f"NOW(6), UNIX_TIMESTAMP(NOW(6)), {max_id}, {added}")
        self.summary_args = [*self.processing, *self.failed, *self.pending]
        self.has_id = bool(pk)
        self.last_id: int | None = None         # MAX(id) at the previous tick
        self.enqueued_total = 0.0               # rows added since we started counting
        prio = o["priority_column"]
        if prio:
            self.pending_sql = (f"SELECT p, COUNT(*) FROM (SELECT {_q(prio)} AS p FROM {t} WHERE {s} "
                                f"IN ({inn(self.pending)}) LIMIT {cap}) x GROUP BY p")
        else:
            self.pending_sql = (f"SELECT NULL, COUNT(*) FROM (SELECT 1 FROM {t} WHERE {s} "
                                f"IN ({inn(self.pending)}) LIMIT {cap}) x")
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
    def __init__(self, url: str, queues: Sequence[QueueSettings], mysql: MySQLSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            self.db = mysql if mysql is not None and mysql.url == url else parse_mysql({"url": url})
        except ConfigError as e:
            raise BackendDown(str(e)) from None
        assert self.db is not None
        self.queues = [SqlQueue(q) for q in queues]
        self._clock = clock
        self._conn: pymysql.connections.Connection | None = None
        self._mariadb = True
        self._notes: dict[str, str] = {}

    def _where(self) -> str:
        return f"mysql {self.db.host}:{self.db.port}"

    def _connect(self) -> pymysql.connections.Connection:
        if self._conn is None:
            db = self.db
            self._conn = pymysql.connect(
                host=db.host, port=db.port, user=db.user, password=db.password,
                database=db.database, unix_socket=db.unix_socket, charset="utf8mb4",
                connect_timeout=db.connect_timeout_s, read_timeout=db.read_timeout_s,
                write_timeout=db.read_timeout_s, autocommit=True)
            with self._conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self._mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
            for q in self.queues:
                self._check_index(q)
        return self._conn

    def _check_index(self, q: SqlQueue) -> None:
        """Say up front, in ``check`` notes, when the table lacks the index the queries need."""
        try:
            with self._conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(f"SHOW INDEX FROM {_q(q.table)}")
                rows = cur.fetchall()
        except pymysql.MySQLError:
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
            self._connect()
        except pymysql.MySQLError as e:
            self.close()
            raise BackendDown(f"{self._where()}: {self._message(e)}") from None
        return [self._read(q, now) for q in self.queues]

    def _read(self, q: SqlQueue, now: float) -> QueueRead:
        if now < q.retry_at and q.last_error:
            return QueueRead(q.name, error=q.last_error, window_s=q.window_s)
        r = QueueRead(q.name, window_s=q.window_s)
        try:
            with self._conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(q.limited(q.pending_sql, self._mariadb), q.pending)
                prio_rows = cur.fetchall()
                # id > NULL matches nothing: the first tick only learns MAX(id)
                args = q.summary_args + ([q.last_id] if q.has_id else [])
                cur.execute(q.limited(q.summary_sql, self._mariadb), args)
                processing, failed, oldest, now_dt, now_epoch, max_id, added = cur.fetchone()
        except pymysql.MySQLError as e:
            code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
            if code in _CONNECTION_ERRORS or isinstance(e, pymysql.err.InterfaceError):
                self.close()
                raise BackendDown(f"{self._where()}: {self._message(e)}") from None
            q.last_error = self._explain(q, code, e)
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

    def _explain(self, q: SqlQueue, code: int, e: BaseException) -> str:
        if code in _TIMEOUT_ERRORS:
            return (f"the statement time limit ({q.timeout_ms} ms) stopped the query on {q.table}: "
                    f"add the index: {q.index_sql}; retrying in {RETRY_AFTER_S:.0f} s")
        if code == 1146:
            return f"table {q.table} does not exist (set the queue's table option)"
        if code == 1054:
            return (f"{self._message(e)} (set the queue's status_column / priority_column / "
                    f"created_column / id_column options)")
        if code in (1142, 1143):
            return f"the monitor user may not read {q.table}: GRANT SELECT ON {q.table} TO it"
        return self._message(e)

    @staticmethod
    def _message(e: BaseException) -> str:
        # PyMySQL's messages carry server text (user@host at most), never the password.
        if len(e.args) >= 2:
            return f"({e.args[0]}) {e.args[1]}"[:300]
        return f"{type(e).__name__}: {e}"[:300]

    def notes(self) -> list[str]:
        return list(self._notes.values())

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None
