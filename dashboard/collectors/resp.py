"""A small Redis client (RESP2) for the collectors' reads: ``INFO`` and pipelines of O(1) reads.

Why not redis-py in the collector process: ``import redis`` alone adds ~8 MB of anonymous memory
to the worker (its command mixins, and ``redis.asyncio`` which its ``__init__`` imports), and its
pipeline was ~7.7 % of the worker's CPU (py-spy, issue 19) for what is one write and N short
replies. The collectors need little of it, and this module gives exactly that:

- URLs as redis-py reads them: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
  (TLS through the ``ssl`` module; ``ssl_cert_reqs`` none/optional/required (default required),
  ``ssl_check_hostname``, ``ssl_ca_certs``, ``ssl_ca_path``, ``ssl_certfile``, ``ssl_keyfile``
  in the query) and ``unix:///path/to/socket?db=N&password=...``; ``db`` in the query wins
  over the path, the URL's user and password over the query's.
- On connect, one write: ``HELLO 2 [AUTH user password] SETNAME dashboard`` and ``SELECT db``
  (when not 0); a server before 6.0 gets ``AUTH`` (the password alone if it refuses a user) and
  ``CLIENT SETNAME`` instead of HELLO. Any
  refusal fails the connection, as with redis-py.
- Connect and I/O time limits (2 s in the collectors): a whole call, however the server trickles
  its answer, ends by its deadline; a server that accepts and never answers is a ``TimeoutError``
  after one limit, not retried (it would only hang again).
- One immediate reconnect-and-retry when a connection used before turns out dead (the server
  restarted: the first write or read on the old socket fails). The commands sent are reads, so
  sending them again is harmless. A fresh connection that fails is not retried.
- ``pipeline``: N commands in one write, N replies read; error replies come back as
  ``ResponseError`` instances in their place. ``execute``: one command; an error reply raises.
- Every reply is validated: its type byte, integer syntax, lengths (bulk strings up to
  ``MAX_BULK``, arrays up to ``MAX_ARRAY`` items, ``MAX_DEPTH`` levels), the CRLF after a bulk
  string, and no bytes beyond the replies asked for. A malformed reply is a ``ProtocolError``
  and the connection is dropped (its stream position is unknown); nothing waits on it.

Sockets come from the plain ``socket`` / ``ssl`` modules, which the eventlet worker has
monkey-patched (wsgi.py), so a wait on Redis yields to the other green threads there, as the
memcached reader and the HTTP probes do. Error texts never quote the URL (it may hold a password).
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BULK = 64 << 20        # one bulk string (a queue item at the consuming end may be large)
MAX_ARRAY = 1 << 20        # items in one array (SMEMBERS of rq:queues)
MAX_DEPTH = 4              # nested arrays; the collectors' commands return flat replies
MAX_LINE = 64 << 10        # a status, error or length line
_RECV = 65536


class RedisError(Exception):
    """Anything that went wrong talking to Redis."""


class ConnectionError(RedisError):  # noqa: A001 - the name redis-py and the error texts use
    """The server could not be reached, or the connection broke."""


class TimeoutError(RedisError):  # noqa: A001 - as above
    """No (complete) answer within the time limit."""


class AuthenticationError(ConnectionError):
    """The server refused the URL's credentials."""


class ProtocolError(RedisError):
    """A reply that is not valid RESP2 (or more bytes than the replies asked for)."""


class ResponseError(RedisError):
    """An error reply (``-ERR ...``, ``-WRONGTYPE ...``)."""


class _Incomplete(Exception):
    """The buffer ends inside a reply: read more."""


class _Dead(Exception):
    """The connection is closed or reset (worth one retry on a reused connection)."""


@dataclass(frozen=True)
class Address:
    host: str | None = None
    port: int = 6379
    path: str | None = None            # unix socket
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0
    ssl: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:         # never the password
        return f"Address({self.path or f'{self.host}:{self.port}'}, db={self.db}, tls={self.tls})"


_SSL_KEYS = ("ssl_cert_reqs", "ssl_check_hostname", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile",
             "ssl_keyfile", "ssl_password")


def parse_url(url: str) -> Address:
    """The parts of a Redis URL; ValueError (without the URL) when it is not one."""
    p = urlsplit(url)
    if p.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    query = {k: v[0] for k, v in parse_qs(p.query).items() if v}
    username = unquote(p.username) if p.username else query.get("username")
    password = unquote(p.password) if p.password else query.get("password")
    db = 0
    if "db" in query:
        db = _db(query["db"])
    elif p.scheme != "unix" and p.path.strip("/"):
        try:
            db = int(unquote(p.path).replace("/", ""))     # as redis-py: a non-number is ignored
        except ValueError:
            pass
    if db < 0:
        raise ValueError("the database number is negative")
    ssl_opts = {k: v for k, v in query.items() if k in _SSL_KEYS}
    if p.scheme == "unix":
        if not p.path:
            raise ValueError("unix:// needs the socket's path")
        return Address(path=unquote(p.path), username=username, password=password, db=db)
    if not p.hostname:
        raise ValueError("the URL has no host")
    return Address(host=unquote(p.hostname), port=p.port or 6379, tls=p.scheme == "rediss",
                   username=username, password=password, db=db, ssl=ssl_opts)


def _db(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("db in the URL is not a number") from None


def encode(args: Sequence[Any]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, int) and not isinstance(a, bool):
            b = b"%d" % a
        elif isinstance(a, float):
            b = repr(a).encode()
        else:
            raise TypeError(f"cannot send a {type(a).__name__} to Redis")
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


def _int(line: bytes | bytearray) -> int:
    digits = line[1:] if line[:1] == b"-" else line
    if not digits.isdigit() or len(digits) > 19:
        raise ProtocolError(f"malformed reply: {bytes(line[:40])!r} is no integer")
    return int(line)


def parse(buf: bytes | bytearray, pos: int, depth: int = 0) -> tuple[Any, int]:
    """One reply starting at ``buf[pos]``: (value, position after it); _Incomplete if cut short.

    Simple strings are str, bulk strings bytes (None for the null bulk string), integers int,
    arrays lists (None for the null array), error replies ``ResponseError`` instances.
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > MAX_LINE:
            raise ProtocolError("malformed reply: a line without CRLF")
        raise _Incomplete
    marker = buf[pos]
    line = buf[pos + 1:end]
    if marker == 0x24:                                  # $ bulk string
        n = _int(line)
        if n == -1:
            return None, end + 2
        if n < 0 or n > MAX_BULK:
            raise ProtocolError(f"malformed reply: bulk string length {n}")
        start = end + 2
        stop = start + n
        if len(buf) < stop + 2:
            raise _Incomplete
        if buf[stop:stop + 2] != b"\r\n":
            raise ProtocolError("malformed reply: a bulk string longer than its length")
        value = buf[start:stop]
        return (value if type(value) is bytes else bytes(value)), stop + 2
    if marker == 0x3a:                                  # : integer
        return _int(line), end + 2
    if marker == 0x2b or marker == 0x2d:                # + simple string, - error
        if b"\r" in line or b"\n" in line:
            raise ProtocolError("malformed reply: a stray CR or LF in a status line")
        text = line.decode("utf-8", "replace")
        return (text if marker == 0x2b else ResponseError(text)), end + 2
    if marker == 0x2a:                                  # * array
        n = _int(line)
        if n == -1:
            return None, end + 2
        if n < 0 or n > MAX_ARRAY:
            raise ProtocolError(f"malformed reply: array length {n}")
        if depth >= MAX_DEPTH:
            raise ProtocolError("malformed reply: arrays nested too deep")
        items = []
        pos = end + 2
        for _ in range(n):
            item, pos = parse(buf, pos, depth + 1)
            items.append(item)
        return items, pos
    raise ProtocolError(f"malformed reply: type byte {bytes([marker])!r}")


class Client:
    """One connection to one Redis server, opened on first use, reopened after a failure.

    Thread-safe (one call at a time); the collectors each keep their own client.
    """

    def __init__(self, url: str, timeout_s: float = 2.0, connect_timeout_s: float | None = None,
                 name: str = "dashboard") -> None:
        self.address = parse_url(url)
        self.timeout_s = timeout_s
        self.connect_timeout_s = timeout_s if connect_timeout_s is None else connect_timeout_s
        self.name = name
        self.malformed = 0             # replies that were not RESP2, since start
        self._sock: Any = None
        self._lock = threading.Lock()
        self._encoded: dict[tuple, bytes] = {}

    # --- the calls -----------------------------------------------------------------------------

    def execute(self, *args: Any) -> Any:
        """One command's reply; an error reply raises ResponseError."""
        reply = self._roundtrip(self._encode(args), 1)[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The replies of ``commands``, sent in one write; error replies as ResponseError values."""
        if not commands:
            return []
        return self._roundtrip(b"".join(self._encode(c) for c in commands), len(commands))

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- the wire ------------------------------------------------------------------------------

    def _encode(self, args: Sequence[Any]) -> bytes:
        # The collectors send the same commands each tick: keep their bytes (bounded).
        key = tuple(args)
        data = self._encoded.get(key)
        if data is None:
            data = encode(args)
            if len(self._encoded) >= 4096:
                self._encoded.clear()
            self._encoded[key] = data
        return data

    def _roundtrip(self, payload: bytes, n: int) -> list[Any]:
        with self._lock:
            for attempt in (0, 1):
                fresh = self._sock is None
                try:
                    if fresh:
                        self._sock = self._connect()
                    deadline = time.monotonic() + self.timeout_s
                    self._send(payload)
                    return self._read(n, deadline)
                except _Dead as e:
                    self._drop()
                    if fresh or attempt:
                        raise ConnectionError(str(e)) from None
                except ProtocolError:
                    self.malformed += 1
                    self._drop()
                    raise
                except BaseException:
                    self._drop()        # a timeout, or a green thread killed mid-reply
                    raise
        raise AssertionError("unreachable")

    def _send(self, payload: bytes) -> None:
        try:
            self._sock.sendall(payload)
        except socket.timeout:
            raise TimeoutError("timed out writing to the server") from None
        except OSError as e:
            raise _Dead(f"connection lost while writing ({_reason(e)})") from None

    def _read(self, n: int, deadline: float) -> list[Any]:
        """Exactly ``n`` replies, and nothing after them."""
        sock = self._sock
        buf: bytes | bytearray = b""
        replies: list[Any] = []
        pos = 0
        shortened = False
        try:
            while True:
                try:
                    while len(replies) < n:
                        reply, pos = parse(buf, pos)
                        replies.append(reply)
                    if pos != len(buf):
                        raise ProtocolError("malformed reply: more bytes than the replies asked for")
                    return replies
                except _Incomplete:
                    pass
                if buf:     # an answer in pieces: the rest within what is left of the time limit
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("timed out reading the reply")
                    sock.settimeout(left)
                    shortened = True
                try:
                    chunk = sock.recv(_RECV)
                except socket.timeout:
                    raise TimeoutError("timed out reading the reply") from None
                except OSError as e:
                    raise _Dead(f"connection lost while reading ({_reason(e)})") from None
                if not chunk:
                    raise _Dead("connection closed by the server")
                if not buf:
                    buf = chunk             # the usual case: the whole answer in one piece
                else:
                    if isinstance(buf, bytes):
                        buf = bytearray(buf)
                    del buf[:pos]
                    buf += chunk
                pos = 0
        finally:
            if shortened and self._sock is sock:
                sock.settimeout(self.timeout_s)

    def _connect(self) -> Any:
        a = self.address
        try:
            if a.path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.connect_timeout_s)
                    sock.connect(a.path)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((a.host, a.port), timeout=self.connect_timeout_s)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if a.tls:
                    try:
                        sock = _tls_context(a).wrap_socket(sock, server_hostname=a.host)
                    except BaseException:
                        sock.close()
                        raise
        except socket.timeout:
            raise TimeoutError("timed out connecting") from None
        except OSError as e:
            raise ConnectionError(f"cannot connect ({_reason(e)})") from None
        sock.settimeout(self.timeout_s)
        self._sock = sock
        try:
            self._handshake()
        except _Dead as e:
            raise ConnectionError(str(e)) from None
        except BaseException:
            self._drop()
            raise
        return sock

    def _handshake(self) -> None:
        """``HELLO 2 [AUTH user password] SETNAME name`` and ``SELECT db``, in one write.

        HELLO (Redis >= 6) does what AUTH and CLIENT SETNAME do in one command; a server that
        does not know it gets ``AUTH`` and ``CLIENT SETNAME`` instead.
        """
        a = self.address
        hello: tuple = ("HELLO", 2)
        if a.password:
            hello += ("AUTH", a.username or "default", a.password)
        steps: list[tuple[str, tuple]] = [("HELLO", hello + ("SETNAME", self.name))]
        if a.db:
            steps.append(("SELECT", ("SELECT", a.db)))
        replies = self._exchange(steps)
        first = replies[0]
        if isinstance(first, ResponseError) and str(first).lower().startswith("err unknown command"):
            steps[:1] = [("CLIENT SETNAME", ("CLIENT", "SETNAME", self.name))]
            if a.password:
                steps.insert(0, ("AUTH", ("AUTH", a.username, a.password) if a.username
                                 else ("AUTH", a.password)))
            replies = self._exchange(steps)
            if (a.username and a.password and isinstance(replies[0], ResponseError)
                    and "wrong number of arguments" in str(replies[0]).lower()):
                # A server without ACL users (Redis < 6) takes the password alone, whatever
                # user the URL names ("default" from a managed service): as redis-py retries.
                steps[0] = ("AUTH", ("AUTH", a.password))
                replies = self._exchange(steps)
        for (what, _), reply in zip(steps, replies):
            if isinstance(reply, ResponseError):
                if what == "AUTH" or str(reply).startswith(("NOAUTH", "WRONGPASS")):
                    raise AuthenticationError(f"authentication failed: {reply}")
                raise ConnectionError(f"{what} refused: {reply}")
            if what == "HELLO":
                if not isinstance(reply, list) or len(reply) % 2:
                    raise ProtocolError("malformed reply: HELLO answered no map")
                if dict(zip(reply[::2], reply[1::2])).get(b"proto") != 2:
                    raise ProtocolError("malformed reply: HELLO 2 did not switch to RESP2")
            elif reply != "OK":
                raise ProtocolError(f"malformed reply: {what} answered {str(reply)[:40]!r}")

    def _exchange(self, steps: list[tuple[str, tuple]]) -> list[Any]:
        self._send(b"".join(encode(cmd) for _, cmd in steps))
        return self._read(len(steps), time.monotonic() + self.timeout_s)

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _tls_context(a: Address) -> Any:
    o = a.ssl
    ctx = ssl.create_default_context(cafile=o.get("ssl_ca_certs"), capath=o.get("ssl_ca_path"))
    reqs = o.get("ssl_cert_reqs", "required").lower()
    if reqs not in ("none", "optional", "required"):
        raise ConnectionError("ssl_cert_reqs in the URL must be none, optional or required")
    check = o.get("ssl_check_hostname", "true").lower() not in ("0", "false", "no", "n", "f", "off")
    ctx.check_hostname = check and reqs != "none"
    ctx.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                       "required": ssl.CERT_REQUIRED}[reqs]
    if o.get("ssl_certfile"):
        ctx.load_cert_chain(o["ssl_certfile"], o.get("ssl_keyfile"), o.get("ssl_password"))
    return ctx
