"""The collectors' own Redis client (dashboard/collectors/resp.py) against a real redis-server,
and against fake servers for the faults: one that never answers, one that answers garbage."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from dashboard.collectors import resp
from dashboard.collectors.cache import CacheCollector
from dashboard.collectors.queues.collector import QueueCollector
from dashboard.collectors.redisconn import describe_error
from dashboard.config import load as config
from dashboard.demo import services as devservices
from dashboard.model import CollectorError
from dashboard.scheduler import CollectorRunner
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_a_pipeline_is_one_write_with_every_reply_in_its_place(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    r.flushdb()
    r.rpush("q", "first", "second")
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    r.hset("job:1", "enqueued_at", "2026-12-04T10:00:00Z")
    r.sadd("s", "x", "y")
    r.set("plain", "v")
    client = resp.Client(redis_server.url)
    try:
        replies = client.pipeline([("LLEN", "q"), ("LINDEX", "q", 0), ("LINDEX", "q", 5),
                                   ("ZCARD", "z"), ("ZCARD", "missing"), ("HGET", "job:1", "enqueued_at"),
                                   ("TYPE", "q"), ("TYPE", "missing"), ("SMEMBERS", "s"),
                                   ("LLEN", "plain"), ("SCARD", "s")])
        wrongtype = replies[9]
        assert replies[:9] == [2, b"first", None, 3, 0, b"2026-12-04T10:00:00Z", "list", "none",
                               replies[8]] and sorted(replies[8]) == [b"x", b"y"]
        assert isinstance(wrongtype, resp.ResponseError) and "WRONGTYPE" in str(wrongtype)
        assert replies[10] == 2                     # the replies after an error are in place
        with pytest.raises(resp.ResponseError):
            client.execute("LLEN", "plain")
        assert client.execute("LLEN", "q") == 2     # an error reply leaves the connection usable
        names = [c["name"] for c in r.client_list()]
        assert names.count("dashboard") == 1        # CLIENT SETNAME, one connection
    finally:
        client.close()


def test_an_acl_user_with_a_password_and_a_database_number_from_the_url(make_redis):
    server = make_redis()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("dash", enabled=True, passwords=["+dash-pw"], keys=["*"],
                      commands=["+hello", "+client|setname", "+select", "+info", "+llen"])
    # (set after start: the fixture's readiness PING does not authenticate)
    admin.config_set("requirepass", "default-pw")
    admin = redis.Redis(port=server.port, password="default-pw", db=3)
    admin.rpush("in-db-3", "a", "b", "c")
    client = resp.Client(f"redis://dash:dash-pw@127.0.0.1:{server.port}/3")
    plain = resp.Client(f"redis://:default-pw@127.0.0.1:{server.port}/?db=3")
    wrong = resp.Client(f"redis://dash:not-the-pw@127.0.0.1:{server.port}/3")
    try:
        assert client.execute("LLEN", "in-db-3") == 3
        assert plain.execute("LLEN", "in-db-3") == 3
        seen = {c["user"]: (c["name"], c["db"]) for c in admin.client_list()}
        assert seen["dash"] == ("dashboard", "3")
        with pytest.raises(resp.AuthenticationError) as e:
            wrong.execute("LLEN", "in-db-3")
        text = str(describe_error(f"redis://dash:not-the-pw@127.0.0.1:{server.port}/3", e.value))
        assert "authentication failed" in text and "not-the-pw" not in text
    finally:
        for c in (client, plain, wrong):
            c.close()


def test_a_unix_socket_with_a_database_number(make_redis, tmp_path):
    path = tmp_path / "redis.sock"
    server = make_redis(extra_args=["--unixsocket", str(path), "--unixsocketperm", "700"])
    redis.Redis(port=server.port, db=2).rpush("k", "1")
    client = resp.Client(f"unix://{path}?db=2")
    try:
        assert client.execute("LLEN", "k") == 1
        assert client.execute("CLIENT", "GETNAME") == b"dashboard"
    finally:
        client.close()


def _certificates(d: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


def test_rediss_checks_the_servers_certificate_and_reads_over_tls(make_redis, tmp_path):
    ca, cert, key = _certificates(tmp_path)
    tls_port = devservices.free_port()
    server = make_redis(extra_args=["--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                                    "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                                    "--tls-auth-clients", "no"])
    redis.Redis(port=server.port).rpush("k", "a", "b")
    trusted = resp.Client(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}")
    unknown_ca = resp.Client(f"rediss://127.0.0.1:{tls_port}/0")      # the system's CAs only
    try:
        assert trusted.pipeline([("LLEN", "k"), ("CLIENT", "GETNAME")]) == [2, b"dashboard"]
        with pytest.raises(resp.RedisError) as e:     # never a silent unverified connection
            unknown_ca.execute("LLEN", "k")
        assert "certificate" in str(describe_error("rediss://x", e.value)).lower()
        listed = redis.Redis(port=server.port).client_list()
        assert [c for c in listed if c["name"] == "dashboard"]      # the TLS client, named
    finally:
        trusted.close()
        unknown_ca.close()


def _redis5_reply(cmd: list[bytes], state: dict) -> bytes:
    """Redis 5 with requirepass "pw": no HELLO, and an AUTH of one argument only (no users)."""
    name = cmd[0].upper()
    if name == b"HELLO":
        return b"-ERR unknown command 'HELLO'\r\n"
    if name == b"AUTH":
        if len(cmd) != 2:
            return b"-ERR wrong number of arguments for 'auth' command\r\n"
        state["authed"] = cmd[1] == b"pw"
        return b"+OK\r\n" if state["authed"] else b"-ERR invalid password\r\n"
    if not state.get("authed"):
        return b"-NOAUTH Authentication required.\r\n"
    return b"+OK\r\n" if name == b"CLIENT" else b":7\r\n"


def test_a_redis_before_6_gets_auth_with_the_password_alone_when_the_url_names_a_user():
    """redis://default:pw@host (a managed service's usual form) against a server without ACL
    users: AUTH user password is refused for its arity, AUTH password is what it takes."""
    with fake_redis(_redis5_reply) as port:
        client = resp.Client(f"redis://default:pw@127.0.0.1:{port}/0")
        try:
            assert client.execute("LLEN", "q") == 7
        finally:
            client.close()


def test_a_restarted_server_is_reconnected_by_the_one_retry(make_redis):
    server = make_redis()
    client = resp.Client(server.url)
    try:
        assert client.execute("LLEN", "k") == 0
        server.stop()
        with pytest.raises(resp.ConnectionError):
            client.execute("LLEN", "k")
        server.start()
        assert client.execute("LLEN", "k") == 0     # after a failed call: a fresh connection
        server.stop()
        server.start()                              # the client's connection is dead, unknown to it
        assert client.pipeline([("LLEN", "k"), ("ZCARD", "z")]) == [0, 0]
    finally:
        client.close()


def _accept_forever(srv: socket.socket, accepted: Callable[[socket.socket], object]) -> None:
    """Hand every connection ``srv`` accepts to ``accepted``, in a thread, until it is closed."""
    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted(conn)
    threading.Thread(target=accept, daemon=True).start()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers; its redis:// URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    _accept_forever(srv, held.append)
    try:
        yield f"redis://127.0.0.1:{srv.getsockname()[1]}/0"
    finally:
        srv.close()
        for c in held:
            c.close()


HUNG_BESIDE_GOOD = """
import eventlet
eventlet.monkey_patch()                       # as in the worker (wsgi.py)
import json, sys, time
from dashboard.collectors.cache import CacheCollector
hung = CacheCollector(sys.argv[1], timeout_s=4)        # its I/O limit: 2 s
good = CacheCollector(sys.argv[2], timeout_s=4)
result = {}
def run_hung():
    started = time.monotonic()
    try:
        hung.collect()
        result["hung"] = "answered"
    except Exception as e:
        result["hung"] = str(e)
    result["hung_s"] = round(time.monotonic() - started, 2)
g = eventlet.spawn(run_hung)
eventlet.sleep(0.2)
good_meanwhile = 0
while not g.dead:
    good.collect()
    good_meanwhile += 1
    eventlet.sleep(0.05)
print(json.dumps({**result, "good_meanwhile": good_meanwhile}))
"""


def test_a_server_that_never_answers_times_out_and_other_collectors_go_on(silent_server, redis_server):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", HUNG_BESIDE_GOOD, silent_server, redis_server.url],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print("hung collection ended after", result["hung_s"], "s")
    assert "TimeoutError" in result["hung"]
    assert result["good_meanwhile"] >= 2          # green threads: the wait on one blocks no other


HELLO_REPLY = b"*6\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:7\r\n"


def _commands(buf: bytes) -> tuple[list[list[bytes]], bytes]:
    """Whole RESP commands at the start of ``buf`` and the rest (the fake server's side)."""
    out = []
    while buf.startswith(b"*") and b"\r\n" in buf:
        end = buf.index(b"\r\n")
        pos, args = end + 2, []
        for _ in range(int(buf[1:end])):
            e = buf.find(b"\r\n", pos)
            if e < 0:
                return out, buf
            n = int(buf[pos + 1:e])
            if len(buf) < e + 2 + n + 2:
                return out, buf
            args.append(buf[e + 2:e + 2 + n])
            pos = e + 2 + n + 2
        if len(args) < int(buf[1:end]):
            return out, buf
        out.append(args)
        buf = buf[pos:]
    return out, buf


@contextmanager
def fake_redis(reply: Callable[[list[bytes], dict], bytes]) -> Iterator[int]:
    """A fake Redis server on a loopback port (yielded): each whole command read on a connection
    is answered with ``reply(command, that connection's state dict)``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        buf, state = b"", {}
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            cmds, buf = _commands(buf + chunk)
            try:
                conn.sendall(b"".join(reply(c, state) for c in cmds))
            except OSError:
                return

    def accepted(conn: socket.socket) -> None:
        conns.append(conn)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    _accept_forever(srv, accepted)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()
        for c in conns:
            c.close()


@pytest.fixture
def garbage_server() -> Iterator[tuple[str, list[bytes]]]:
    """A fake Redis: HELLO gets a proper answer, every other command the next of ``answers``
    (then the connection stays open, silent). Yields its URL and that list."""
    answers: list[bytes] = []

    def reply(cmd: list[bytes], state: dict) -> bytes:
        if cmd[0].upper() == b"HELLO":
            return HELLO_REPLY
        return answers.pop(0) if answers else b""

    with fake_redis(reply) as port:
        yield f"redis://127.0.0.1:{port}/0", answers


MALFORMED = [
    b"?what\r\n",                               # no RESP type
    b":12a\r\n",                                # no integer
    b": 12\r\n",
    b"$2\r\nabcd\r\n",                          # a bulk string longer than its length
    b"$-7\r\n",                                 # a negative length
    b"$99999999999\r\n",                        # beyond any limit
    b"*-2\r\n",
    b"*3\r\n:1\r\n:2\r\n?\r\n",                 # a bad item inside an array
    b"$4\r\nINFO\r\n+OK\r\n",                   # more replies than asked for
    b"*1\r\n" * 10 + b":1\r\n",                 # nested too deep
    b"+OK\rX\r\n",                              # a stray CR in a status line
]


@pytest.mark.parametrize("answer", MALFORMED, ids=[repr(a)[:24] for a in MALFORMED])
def test_a_malformed_reply_is_an_error_and_the_next_call_starts_afresh(garbage_server, answer):
    url, answers = garbage_server
    answers += [answer, b"$3\r\nabc\r\n"]
    client = resp.Client(url, timeout_s=2)
    try:
        with pytest.raises(resp.ProtocolError) as e:
            client.execute("INFO")
        assert "malformed reply" in str(e.value) and client.malformed == 1
        assert client.execute("GET", "k") == b"abc"     # a new connection, in step again
    finally:
        client.close()


def test_malformed_answers_fail_the_cache_and_queue_ticks_and_spare_the_others(garbage_server, redis_server):
    url, answers = garbage_server
    answers += [b"$5\r\nhello world\r\n", b"*2\r\n:1\r\n?\r\n"] * 5
    settings = config.from_dict({"queues": [{"name": "emails", "kind": "redis-list", "key": "q",
                                             "url": url}]})
    bad_cache = CacheCollector(url, timeout_s=2)
    bad_queues = QueueCollector(settings.queues, None, timeout_s=4)
    good = CacheCollector(redis_server.url, timeout_s=2)
    published: list = []
    runner = CollectorRunner([bad_cache, bad_queues], published.extend)
    runner.start()
    try:
        def plain_samples() -> dict:
            return {s.source: s for s in list(published) if not s.labels}
        plain = wait_until(lambda: (p := plain_samples()).keys() >= {"cache", "queue"} and p,
                           timeout=20, message=lambda: f"published: {published}")
        assert plain["cache"].values["cache.up"] == 0 and "malformed reply" in plain["cache"].error
        assert plain["queue"].values["queue.up"] == 0 and "malformed reply" in plain["queue"].error
        assert runner.status()["cache"]["status"] == runner.status()["queue"]["status"] == "error"
        with pytest.raises(CollectorError):
            bad_cache.collect()
        # The process and the other collectors go on: a real Redis is read as ever.
        assert good.collect()[0].values["cache.clients"] >= 1
    finally:
        runner.stop()
        good.close()
