"""Where the top statements come from, best source first, on the collectors' second connection.

1. ``performance_schema.events_statements_summary_by_digest``: exact per-statement totals. Every
   15 s we read only the rows whose ``LAST_SEEN`` moved since the previous read (a full read of
   all rows every 5 minutes catches anything a clock step hid), without their text; texts are
   fetched once per new digest. The difference from the previous snapshot is what the
   statement did in between (``RateTracker.delta``, so a TRUNCATE or server restart is a reset,
   never a negative count).
2. ``mysql.slow_log`` when ``log_output`` includes TABLE and the slow log is on: statements
   slower than ``long_query_time``, grouped by their normalised text.
3. Sampling the process list (the status collector's "running now" query): statements seen
   running for at least the slow threshold; their durations are lower bounds.

The page says which one is in use and the exact setting that enables the better one.

The dashboard's own statements never count, whatever the grants: with ``UPDATE ON
performance_schema.threads`` the server stops instrumenting our sessions, but only after the
connect's ``SET NAMES``, the statement limit and that ``UPDATE`` itself have been digested, and
without it everything we send is. So a digest whose text has the shape of a statement our
connections sent (``MySQLConnection.shapes``) is left out of the book (issue 17).
"""
from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timedelta
from typing import Callable, Iterable

from dashboard.collectors.mysql.conn import MySQLConnection, QueryError
from dashboard.collectors.mysql.statements import Inc, StatementBook
from dashboard.collectors.mysql.text import normalize_sql, statement_shape
from dashboard.collectors.rates import RateTracker
from dashboard.model import CollectorError

log = logging.getLogger(__name__)

PS, SLOW_LOG, PROCESSLIST = "performance_schema", "slow_log", "processlist"
FULL_READ_EVERY_S = 300.0
PROBE_EVERY_S = 300.0
PS_TO_MS = 1e-9                           # performance_schema timers are in picoseconds
DIGEST_TABLE = "performance_schema.events_statements_summary_by_digest"
LOST_KEY = "(lost)"


def text_key(prefix: str, text: str) -> str:
    return f"{prefix}:{hashlib.md5(text.encode()).hexdigest()[:16]}"


class StatementReader:
    """The digest job: one ``run()`` every ``digest_interval_s`` on its own connection."""

    def __init__(self, conn: MySQLConnection, book: StatementBook, account: Callable[[], str],
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 own_shapes: Callable[[], set[str]] | None = None) -> None:
        self.conn = conn
        self._own_shapes = own_shapes or (lambda: conn.shapes)
        self._own: set[str] = set()           # digest keys of our own statements
        self.book = book
        self._account = account              # "'monitor'@'%'" for the GRANT advice
        self._clock = clock
        self._mono = monotonic
        self._probed_at = float("-inf")
        self._full_at = float("-inf")
        self._cursor: datetime | None = None  # newest LAST_SEEN read (server time)
        self._counters = {f: RateTracker() for f in ("calls", "time", "rex", "rsent")}
        self._max: dict[str, int] = {}
        self._baseline_done = False
        # Continue the slow log where the previous process stopped, unless that was long ago
        # (rows are counted when read: a day-old backlog would land in today's totals).
        saved_at = float(book.meta("slow_log_cursor_at") or 0)
        self._slow_cursor = book.meta("slow_log_cursor") if clock() - saved_at < 3600 else None

    # --- choosing the source ---------------------------------------------------------------

    def _probe(self) -> None:
        (ps, log_output, slow_on), = self.conn.query(
            "SELECT @@performance_schema, @@GLOBAL.log_output, @@GLOBAL.slow_query_log")
        acct = self._account()
        if int(ps or 0):
            try:
                rows = self.conn.query("SELECT ENABLED FROM performance_schema.setup_consumers"
                                       " WHERE NAME = 'statements_digest'")
                if rows and str(rows[0][0]).upper() == "YES":
                    self._use(PS, "")
                    return
                why = ("performance_schema is on but its statements_digest consumer is off: "
                       "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' "
                       "WHERE NAME = 'statements_digest' (or performance-schema-consumer-"
                       "statements-digest = ON in the server configuration).")
            except QueryError as e:
                if not e.is_privilege:
                    raise
                why = (f"performance_schema is on but this account may not read it: "
                       f"GRANT SELECT ON performance_schema.* TO {acct};")
        else:
            why = ("Exact per-statement totals need performance_schema: set performance_schema = ON "
                   "in the [mysqld] section of the server configuration and restart the server "
                   "(it cannot be switched on at run time), then "
                   f"GRANT SELECT ON performance_schema.* TO {acct};")
        if "TABLE" in str(log_output).upper() and int(slow_on or 0):
            try:
                self.conn.query("SELECT 1 FROM mysql.slow_log LIMIT 0")
                self._use(SLOW_LOG, "Using mysql.slow_log (statements slower than long_query_time"
                                    " only). " + why)
                return
            except QueryError as e:
                if not e.is_privilege:
                    raise
                why += f" Meanwhile the slow log table needs GRANT SELECT ON mysql.slow_log TO {acct};"
        else:
            # The second-best source can be switched on at run time.
            why += (" Meanwhile, without a restart: SET GLOBAL slow_query_log = ON; SET GLOBAL "
                    f"log_output = 'FILE,TABLE'; GRANT SELECT ON mysql.slow_log TO {acct};")
        self._use(PROCESSLIST, "Sampling the process list each second: only statements seen "
                               "running for at least the slow threshold, durations are lower "
                               "bounds. " + why)

    def _use(self, source: str, note: str) -> None:
        if source != self.book.source:
            log.info("mysql statements: using %s", source)
            self._cursor, self._full_at, self._baseline_done = None, float("-inf"), False
            self._counters = {f: RateTracker() for f in self._counters}
            self._max.clear()
        self.book.source, self.book.source_note = source, note

    # --- the job ---------------------------------------------------------------------------

    def run(self) -> None:
        """Read once. Never raises: an error is shown on the page, the next run retries."""
        try:
            now = self._mono()
            if self.book.source not in (PS,) or now - self._probed_at >= PROBE_EVERY_S:
                self._probe()
                self._probed_at = now
            if self.book.source == PS:
                self._read_digests()
            elif self.book.source == SLOW_LOG:
                self._read_slow_log()
            self.book.notices.pop("reader", None)
        except QueryError as e:
            self._probed_at = float("-inf")          # a grant or setting changed: look again
            self.book.notices["reader"] = f"Reading top statements failed: {e}"
        except CollectorError as e:
            self.book.notices["reader"] = f"Top statements unavailable: {e}"
        except Exception as e:  # noqa: BLE001 - a job must never die
            log.exception("mysql statements reader")
            self.book.notices["reader"] = f"Top statements unavailable: {type(e).__name__}: {e}"

    def _read_digests(self) -> None:
        now_mono, ts = self._mono(), self._clock()
        cursor = self._cursor
        full = cursor is None or now_mono - self._full_at >= FULL_READ_EVERY_S
        sql = ("SELECT SCHEMA_NAME, DIGEST, COUNT_STAR, SUM_TIMER_WAIT, MAX_TIMER_WAIT,"
               " SUM_ROWS_EXAMINED, SUM_ROWS_SENT, LAST_SEEN FROM " + DIGEST_TABLE)
        if full or cursor is None:
            rows = self.conn.query(sql)
            self._full_at = now_mono
        else:
            # LAST_SEEN is set when a statement ends; one second of overlap covers the read's
            # own second (re-reading an unchanged row gives a zero increment).
            rows = self.conn.query(sql + " WHERE LAST_SEEN >= %s",
                                   (cursor - timedelta(seconds=1),))
        incs: dict[str, Inc] = {}
        unknown: list[str] = []
        present: set[str] = set()
        for schema, digest, calls, timer, mx, rex, rsent, last_seen in rows:
            key = f"{digest}@{schema or ''}" if digest else LOST_KEY
            present.add(key)
            if self._cursor is None or (last_seen is not None and last_seen > self._cursor):
                self._cursor = last_seen
            known = key in self._max
            deltas = [self._counters[f].delta(key, v)
                      for f, v in (("calls", calls), ("time", timer), ("rex", rex), ("rsent", rsent))]
            prev_max = self._max.get(key, 0)
            self._max[key] = mx
            if not self._baseline_done:
                if not self.book.knows(key):
                    unknown.append(key)
                continue
            # No delta: a digest new since the last read, or counters reset (TRUNCATE, server
            # restart) within the interval; either way they started from zero in between.
            d_calls, d_time, d_rex, d_rsent = (v if d is None else d for d, v in
                                               zip(deltas, (calls, timer, rex, rsent)))
            if not d_calls:
                continue
            if not known:
                prev_max = 0
            # The digest table keeps only a since-boot maximum: a new record set in this
            # interval is exact, otherwise the interval's own average is the best lower bound.
            interval_max = mx if mx > prev_max else d_time / d_calls
            incs[key] = Inc(d_calls, d_time * PS_TO_MS, interval_max * PS_TO_MS,
                            d_rex or 0, d_rsent or 0)
            # Only a statement that ran needs its text: one the book pruned (not called for a
            # month) is not fetched again while it merely sits in the digest table.
            if not self.book.knows(key):
                unknown.append(key)
        if full:
            # Digests the server no longer holds (TRUNCATE, a restart) are forgotten: if one
            # comes back its counters started from zero, which the None-delta path above
            # counts right. So these dicts never outgrow the server's digest table.
            for key in self._max.keys() - present:
                del self._max[key]
                for tracker in self._counters.values():
                    tracker.forget(key)
        texts = self._digest_texts(unknown) if unknown else []
        stored = [] if self._baseline_done else [k for k in present if self.book.knows(k)]
        self._mark_own([(k, t) for k, _, t in texts] + list(self.book.texts(stored).items()))
        incs = {k: i for k, i in incs.items() if k not in self._own}
        texts = [t for t in texts if t[0] not in self._own]
        self.book.add(ts, incs, texts, baseline=not self._baseline_done and not self.book.has_history())
        self._baseline_done = True

    def _mark_own(self, texts: Iterable[tuple[str, str]]) -> None:
        """Remember which digests are our connections' statements (their texts are read once)."""
        own = self._own_shapes()
        self._own.update(k for k, text in texts if statement_shape(text) in own)

    def _digest_texts(self, keys: list[str]) -> list[tuple[str, str | None, str]]:
        out: list[tuple[str, str | None, str]] = []
        if LOST_KEY in keys:
            out.append((LOST_KEY, None, "(statements the full digest table could not hold)"))
        digests = sorted({k.split("@", 1)[0] for k in keys if k != LOST_KEY})
        if not digests:
            return out
        base = f"SELECT SCHEMA_NAME, DIGEST, LEFT(DIGEST_TEXT, 1024) FROM {DIGEST_TABLE}"
        if len(digests) > 200:
            rows = self.conn.query(base + " WHERE DIGEST IS NOT NULL")   # first run: one read
        else:
            rows = self.conn.query(base + f" WHERE DIGEST IN ({','.join(['%s'] * len(digests))})",
                                   digests)
        wanted = set(keys)
        for schema, digest, text in rows:
            key = f"{digest}@{schema or ''}"
            if key in wanted:
                out.append((key, schema, text or ""))
        return out

    def _read_slow_log(self) -> None:
        ts = self._clock()
        if self._slow_cursor is None:
            (newest,), = self.conn.query("SELECT MAX(start_time) FROM mysql.slow_log")
            self._slow_cursor = str(newest or "1970-01-01 00:00:01")
            self._save_slow_cursor(ts)
            self.book.start(ts)
            return
        rows = self.conn.query(
            "SELECT start_time, query_time, rows_sent, rows_examined, db, LEFT(sql_text, 2000)"
            " FROM mysql.slow_log WHERE start_time > %s ORDER BY start_time LIMIT 5000",
            (self._slow_cursor,))
        incs: dict[str, Inc] = {}
        texts = []
        for start, qtime, rsent, rex, db, sql in rows:
            if isinstance(sql, bytes):
                sql = sql.decode("utf-8", "replace")
            text = normalize_sql(sql or "", 1024)
            key = text_key("slowlog", f"{db}\0{text}")
            ms = qtime.total_seconds() * 1000 if isinstance(qtime, timedelta) else float(qtime) * 1000
            i = incs.get(key)
            if i is None:
                incs[key] = Inc(1, ms, ms, rex or 0, rsent or 0)
                texts.append((key, db, text))
            else:
                i.calls += 1; i.total_ms += ms; i.max_ms = max(i.max_ms, ms)
                i.rows_examined += rex or 0; i.rows_sent += rsent or 0
            self._slow_cursor = str(start)
        self.book.add(ts, incs, texts)
        self._save_slow_cursor(ts)

    def _save_slow_cursor(self, ts: float) -> None:
        assert self._slow_cursor is not None
        self.book.set_meta("slow_log_cursor", self._slow_cursor)
        self.book.set_meta("slow_log_cursor_at", repr(ts))


class ProcesslistSampler:
    """Top statements from the process list when nothing better is available.

    An execution is one (thread id, statement) seen running; it counts once, when it is no
    longer running, with the longest time it was seen running.
    """

    def __init__(self, book: StatementBook) -> None:
        self.book = book
        self._running: dict[int, tuple[str, str | None, str, float]] = {}

    def observe(self, ts: float, rows: list[dict]) -> None:
        seen: dict[int, tuple[str, str | None, str, float]] = {}
        for r in rows:
            key = text_key("sampled", f"{r['schema']}\0{r['statement']}")
            prev = self._running.get(r["id"])
            if prev is not None and prev[0] == key and r["seconds"] * 1000 >= prev[3] - 1:
                seen[r["id"]] = (key, r["schema"], r["statement"], max(prev[3], r["seconds"] * 1000))
            else:
                seen[r["id"]] = (key, r["schema"], r["statement"], r["seconds"] * 1000)
        done = [v for tid, v in self._running.items() if seen.get(tid, (None,))[0] != v[0]
                or seen[tid][3] < v[3] - 1]
        self._running = seen
        if not done:
            return
        incs: dict[str, Inc] = {}
        texts = []
        for key, schema, text, ms in done:
            i = incs.get(key)
            if i is None:
                incs[key] = Inc(1, ms, ms)
                texts.append((key, schema, text))
            else:
                i.calls += 1; i.total_ms += ms; i.max_ms = max(i.max_ms, ms)
        self.book.add(ts, incs, texts)
