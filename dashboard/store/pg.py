"""The PostgreSQL backend's connections: what the repositories see instead of ``sqlite3``.

``store_url = "postgresql://user:pass@host:port/db"`` puts the store's tables in PostgreSQL. A
repository is written once, against the small part of ``sqlite3.Connection`` it uses
(``execute``, ``executemany``, ``executescript``, ``close``, ``in_transaction``; cursors with
``fetchone``, ``fetchall``, iteration and ``rowcount``); ``PgConnection`` offers the same on a
PostgreSQL server, so both backends run the same SQL text:

* ``?`` parameters, as in SQLite (translated to ``$1, $2 ...`` once per statement text, outside
  quotes and comments, and the statement kept prepared on its connection: one round trip per call);
* the connection is in autocommit, as the store's SQLite connections are (``isolation_level=None``);
  ``txn.immediate()`` maps to a transaction that takes the store's write lock first (below);
* errors keep ``sqlite3``'s classes (``PgIntegrityError`` is a ``sqlite3.IntegrityError``, an
  unreachable or failing server a ``sqlite3.OperationalError``), so the code that already tells a
  taken key from a full disk (``txn.Duplicate``, ``spool.py``, the live page) does the same here.

The driver is pg8000, pure Python: its sockets are the standard library's, which eventlet and
gevent patch, so a call waits without holding the event loop (``bench/pg_driver.py`` measures it
against psycopg). A connection lost (server restarted, network cut) is opened again on its next
use outside a transaction; the failed call raised ``PgUnavailable``.

``Pool`` bounds the connections one process opens (``store_pool_size``): ``connect()`` waits for a
free one (``PgUnavailable`` after ``timeout_s``), ``close()`` gives it back.
"""
from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from struct import error as struct_error  # pg8000 raises it on a message cut short
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, cast
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    import pg8000.native

SCHEMES = ("postgresql", "postgres")
STATEMENT_CACHE = 256            # prepared statements kept per connection (the store has ~150)
# The key of the advisory lock every ``immediate()`` transaction takes: one writer's
# check-then-write at a time, as SQLite's BEGIN IMMEDIATE gives (a random constant: the lock
# space is shared with anything else in the database).
WRITE_LOCK_KEY = 0x64617368     # "dash"


class _NotLoaded(Exception):
    """Stands for pg8000's error classes until the first connection imports the driver."""


# pg8000 is imported by the first PostgreSQL connection (``_driver``), not with this module: the
# store on SQLite, and every process importing ``PgUnavailable`` or ``ConnParams`` from here, never
# loads it (with its converters' dateutil and scramp's asn1crypto: 4.1 MB of a worker's anonymous
# memory, issue 19). No pg8000 error can be raised before that, so the stand-ins never match.
_DatabaseError: type[Exception] = _NotLoaded
_InterfaceError: type[Exception] = _NotLoaded
_make_params: Any = None
_convert_paramstyle: Any = None


def _driver() -> Any:
    """``pg8000.native``, importing the driver the first time."""
    global _DatabaseError, _InterfaceError, _make_params, _convert_paramstyle
    import pg8000.native
    from pg8000.converters import make_params
    from pg8000.dbapi import convert_paramstyle
    from pg8000.exceptions import DatabaseError, InterfaceError
    _DatabaseError, _InterfaceError = DatabaseError, InterfaceError
    _make_params, _convert_paramstyle = make_params, convert_paramstyle
    return pg8000.native


class PgIntegrityError(sqlite3.IntegrityError):
    """A unique, foreign-key, not-null or check violation (SQLSTATE class 23)."""


class PgOperationalError(sqlite3.OperationalError):
    """An error the server reported (other than an integrity violation): its SQLSTATE in ``code``."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class PgUnavailable(PgOperationalError):
    """No answer from the server: refused, cut, timed out, shut down, or no pooled connection
    free in time. The store degrades as with a full disk."""


@dataclass(frozen=True)
class ConnParams:
    user: str
    password: str | None
    host: str
    port: int
    database: str
    timeout_s: float = 30.0
    application_name: str = "dashboard"

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 30.0) -> "ConnParams":
        """``postgresql://user:pass@host:port/db``; ValueError naming what is wrong (never the
        password)."""
        p = urlsplit(url)
        if p.scheme not in SCHEMES:
            raise ValueError("expected postgresql://user:pass@host:port/db")
        if not p.hostname:
            raise ValueError("the URL has no host")
        try:
            port = p.port or 5432
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        database = unquote(p.path.lstrip("/"))
        if not database or "/" in database:
            raise ValueError("expected one database name after the host: …/db")
        if not p.username:
            raise ValueError("the URL has no user name")
        unknown = [k for k, _ in parse_qsl(p.query) if k != "application_name"]
        if unknown:
            raise ValueError(f"unknown URL parameter {unknown[0]!r}")
        app = dict(parse_qsl(p.query)).get("application_name", "dashboard")
        return cls(unquote(p.username), unquote(p.password) if p.password is not None else None,
                   p.hostname, port, database, timeout_s, app)


def _sqlstate(e: Exception) -> tuple[str, str]:
    info = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
    return str(info.get("C", "")), str(info.get("M", e))


# SQLSTATE classes meaning the server (not the statement) failed: connection exceptions,
# insufficient resources (disk full), operator intervention (shutdown), system errors.
_UNAVAILABLE = ("08", "53", "57P", "58")


def _translated(e: Exception) -> sqlite3.Error:
    if isinstance(e, _DatabaseError):
        code, message = _sqlstate(e)
        if code.startswith("23"):
            return PgIntegrityError(f"{message} ({code})")
        if code.startswith(_UNAVAILABLE):
            return PgUnavailable(f"PostgreSQL: {message} ({code})", code)
        return PgOperationalError(f"{message} ({code})", code)
    return PgUnavailable(f"PostgreSQL unreachable: {e}")


class PgCursor:
    """The rows of one statement, as a ``sqlite3.Cursor`` gives them (tuples)."""

    def __init__(self, rows: list[list[Any]] | None, rowcount: int) -> None:
        self._rows = [tuple(r) for r in rows] if rows is not None else []
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = None          # use INSERT ... RETURNING id: both backends have it

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._next < len(self._rows):
            self._next += 1
            yield self._rows[self._next - 1]


_translations: dict[str, str] = {}
_RETRY_SAFE = ("SELECT", "BEGIN")     # statements tried again on a connection found dead

# Parameter types sent with a statement, from the Python value: SQLite compares a float with an
# INTEGER column, and so does PostgreSQL once it knows the parameter is a float (left to infer it,
# it would take the column's type and refuse "12.5"). 0: let the server infer (text, NULL).
_OIDS = {bool: 16, int: 20, float: 701, bytes: 17}
_INT8 = range(-(2 ** 63), 2 ** 63)


def _oid(value: Any) -> int:
    oid = _OIDS.get(type(value), 0)
    return 1700 if oid == 20 and value not in _INT8 else oid       # beyond int8: numeric


def _numbered(sql: str) -> str:
    """``?`` -> ``$n`` (pg8000's scanner, which skips quotes, comments and $$ strings), cached:
    the store's statement texts are few and fixed."""
    out = _translations.get(sql)
    if out is None:
        if _convert_paramstyle is None:
            _driver()
        out, _ = _convert_paramstyle("qmark", sql, ())
        if len(_translations) < 4096:
            _translations[sql] = out
    return out


class PgConnection:
    """One server connection with ``sqlite3.Connection``'s surface (module docstring). Not for
    two threads at once (as the store's SQLite connections: their owners serialise)."""

    dialect = "postgresql"
    yields_to_loop = True        # after each answer (execute); False on an OS thread's own

    def __init__(self, params: ConnParams, pool: "Pool | None" = None, lazy: bool = False) -> None:
        """``lazy``: a server that does not answer now is asked again at the first call (a pooled
        connection taken during an outage: its holder, a sender thread, must not die of it)."""
        self._params = params
        self._pool = pool
        self._raw: pg8000.native.Connection | None = None
        self._prepared: OrderedDict[tuple[str, tuple[int, ...]], tuple[bytes, Any, Any]] = OrderedDict()
        try:
            self._open()
        except PgUnavailable:
            if not lazy:
                raise

    def _socket(self) -> socket.socket:
        """The connection's TCP socket (this process's ``socket`` module: a green one under
        eventlet or gevent, which is what the event loop's connections need)."""
        p = self._params
        return socket.create_connection((p.host, p.port), p.timeout_s)

    def _open(self) -> None:
        p = self._params
        try:
            sock = self._socket()
        except OSError as e:
            err = _translated(e)
            self._tell_pool(err)
            raise err from None
        try:
            # pg8000 leaves Nagle on: a message written in two sends (a bind with a blob past
            # the buffer, 8 KiB) then waits for the server's delayed ACK, 40 ms a statement
            # (a 305-sample tick took 48 ms instead of ~1; bench/pg_history.py).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self._raw = _driver().Connection(
                p.user, database=p.database, password=p.password, timeout=p.timeout_s,
                application_name=p.application_name, sock=sock)
        except (_DatabaseError, _InterfaceError, OSError) as e:
            sock.close()
            err = _translated(e)
            self._tell_pool(err)
            raise err from None
        self._prepared.clear()

    def _live(self) -> pg8000.native.Connection:
        if self._raw is None:
            self._open()
        assert self._raw is not None
        return self._raw

    def _lost(self) -> None:
        """The connection broke: drop it; the next call outside a transaction opens another."""
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.close()
            except Exception:       # noqa: BLE001 - already dead; nothing to tell
                pass

    @property
    def params(self) -> ConnParams:
        return self._params

    @property
    def in_transaction(self) -> bool:
        raw = self._raw
        return raw is not None and raw._transaction_status not in (None, b"I")

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            out = fn(*args)
        except _DatabaseError as e:
            err = _translated(e)
            if isinstance(err, PgUnavailable):
                self._lost()
                self._tell_pool(err)
            raise err from None
        except (_InterfaceError, OSError, ValueError, struct_error) as e:
            # a cut or timed-out socket, or a message cut short: the connection is unusable
            self._lost()
            err = _translated(e)
            self._tell_pool(err)
            raise err from None
        if self._pool is not None:
            self._pool.answered()
        return out

    def _tell_pool(self, err: Exception) -> None:
        if self._pool is not None:
            self._pool.failed(err)

    def _statement(self, raw: pg8000.native.Connection, sql: str,
                   oids: tuple[int, ...]) -> tuple[bytes, Any, Any]:
        key = (sql, oids)
        got = self._prepared.get(key)
        if got is not None:
            self._prepared.move_to_end(key)
            return got
        got = cast("tuple[bytes, Any, Any]",
                   self._call(raw.prepare_statement, _numbered(sql), oids))
        self._prepared[key] = got
        if len(self._prepared) > STATEMENT_CACHE:
            _, (name, _c, _f) = self._prepared.popitem(last=False)
            self._call(raw.close_prepared_statement, name)
        return got

    def execute(self, sql: str, args: Sequence[Any] = ()) -> PgCursor:
        """One statement. A connection found dead (the server restarted since its last use) is
        opened again and the statement tried once more when that cannot repeat a write: a
        read or a BEGIN outside a transaction (else ``PgUnavailable``; the next call reconnects)."""
        was_open = self._raw is not None and not self.in_transaction
        try:
            return self._execute(sql, args)
        except PgUnavailable:
            if not (was_open and self._raw is None and sql.lstrip()[:6].upper() in _RETRY_SAFE):
                raise
        return self._execute(sql, args)

    def _execute(self, sql: str, args: Sequence[Any]) -> PgCursor:
        raw = self._live()
        if not args:             # BEGIN, COMMIT, a constant query: one simple round trip
            ctx = self._call(raw.execute_simple, sql)
            return PgCursor(ctx.rows, ctx.row_count)
        name, columns, funcs = self._statement(raw, sql, tuple(_oid(a) for a in args))
        ctx = self._call(raw.execute_named, name, _make_params(raw.py_types, args), columns,
                         funcs, sql)
        # A green socket only yields when it must wait; when the server answered before the
        # driver read, a run of calls decodes one answer after another without letting the
        # event loop in (bench/pg_driver.py: 170 ms for 2,000-row answers). Let it in after
        # each one (a plain thread switch hint without a hub).
        if self.yields_to_loop:
            time.sleep(0)
        return PgCursor(ctx.rows, ctx.row_count)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        total = 0
        for args in rows:
            total += max(self.execute(sql, args).rowcount, 0)
        return PgCursor(None, total)

    def executescript(self, sql: str) -> None:
        """Several statements without parameters, in one message (DDL, migrations)."""
        raw = self._live()
        self._call(raw.execute_simple, sql)

    def begin_immediate(self) -> None:
        """A transaction that first takes the store's write lock (released at its end)."""
        self.execute("BEGIN")
        self.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        """Back to the pool it came from (rolled back if a transaction was left open), else
        closed."""
        if self._pool is not None:
            self._pool.give_back(self)
        else:
            self.discard()

    def discard(self) -> None:
        self._lost()

    def __enter__(self) -> "PgConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pool:
    """At most ``size`` connections of this process to one database (``store_pool_size``)."""

    def __init__(self, params: ConnParams, size: int, timeout_s: float = 30.0) -> None:
        self.params = params
        self.size = size
        self.timeout_s = timeout_s
        self._idle: list[PgConnection] = []
        self._out = 0
        self._cond = threading.Condition()
        self._closed = False
        # The server's health, from every call of the pool's connections (and ``health``'s probe).
        self.down_since: float | None = None
        self.error: str | None = None
        self._answered_at = float("-inf")       # monotonic time of the last answer
        self._probe: PgConnection | None = None
        self._probe_lock = threading.Lock()

    def failed(self, err: Exception) -> None:
        """A connection lost the server (``PgUnavailable``)."""
        if self.down_since is None:
            self.down_since = time.time()
        self.error = str(err)

    def answered(self) -> None:
        self._answered_at = time.monotonic()
        if self.down_since is not None:
            self.down_since = None
            self.error = None

    def health(self, quiet_s: float = 5.0) -> dict[str, Any]:
        """``status`` ok | error, with the ``error`` and ``since`` when down (the store's health
        for /healthz and the rule ``store_down``). When no call was answered for ``quiet_s``, or
        the server was down, a ``SELECT 1`` on a connection of its own (outside the pool's
        count, so a pool whose connections are all out still gets an answer) asks again."""
        if self.down_since is not None or time.monotonic() - self._answered_at > quiet_s:
            with self._probe_lock:
                try:
                    if self._probe is None:
                        self._probe = PgConnection(self.params, None)
                    self._probe.execute("SELECT 1")
                    self.answered()
                except PgUnavailable as e:
                    self.failed(e)
        since, error = self.down_since, self.error
        if since is None:
            return {"status": "ok"}
        return {"status": "error", "error": error, "since": since}

    def connect(self) -> PgConnection:
        """An idle connection, or a new one while fewer than ``size`` are out; else wait for one
        to come back (``PgUnavailable`` after ``timeout_s``). A server that is down does not
        fail this: the connection's calls do, until it answers again."""
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while not self._idle and self._out + len(self._idle) >= self.size:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise PgUnavailable(f"no store connection free within {self.timeout_s:g} s "
                                        f"(store_pool_size = {self.size}, all in use)")
                self._cond.wait(left)
            self._out += 1
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            return conn
        try:
            return PgConnection(self.params, self, lazy=True)
        except BaseException:
            with self._cond:
                self._out -= 1
                self._cond.notify()
            raise

    def give_back(self, conn: PgConnection) -> None:
        try:
            conn.rollback()
        except sqlite3.Error:
            conn.discard()
        with self._cond:
            self._out -= 1
            if conn._raw is not None and not self._closed:
                self._idle.append(conn)
            self._cond.notify()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for conn in idle:
            conn.discard()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.discard()
