"""Private MariaDB / Redis / memcached instances on loopback, for tests and the demo mode.

Standard library only, and no imports of other ``dashboard`` modules, so that tests, the demo
mode and ad-hoc scripts can all use it without pulling in the app.

Every server runs in its own process group (its own session), writes its output to a log file
in its base directory (never to our stdout), listens on 127.0.0.1 only, and is registered so
that :func:`stop_all` -- also run at interpreter exit -- stops it. When started from the main
thread, the child is additionally asked to die with its parent (``PR_SET_PDEATHSIG`` through
util-linux's ``setpriv``), so a test run killed by a timeout leaves nothing behind.

Typical use::

    db = start_mariadb(Path("/tmp/x/mariadb"))
    url = db.create_monitor_user("monitor", "s3cret", ["PROCESS", "BINLOG MONITOR",
                                                        "SELECT ON performance_schema.*"])
    db.stop(); db.start()          # same datadir and port
    stop_all()
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

__all__ = [
    "DevServiceError",
    "MariaDB",
    "Memcached",
    "Redis",
    "free_port",
    "start_mariadb",
    "start_memcached",
    "start_redis",
    "stop_all",
]

LOOPBACK = "127.0.0.1"


class DevServiceError(RuntimeError):
    """A private service could not be started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path})"
    return "\n".join(text.splitlines()[-lines:])


def _which(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate) or shutil.which(candidate, path="/usr/sbin:/sbin")
        if found:
            return found
    raise DevServiceError(f"{name} not found on PATH (run scripts/setup.sh to install it)")


# --------------------------------------------------------------------------------------------
# process registry

_registry: list[_Service] = []
_registry_lock = threading.Lock()


def _register(service: _Service) -> None:
    with _registry_lock:
        if service not in _registry:
            _registry.append(service)


def stop_all(timeout: float = 30.0) -> None:
    """Stop every service started by this process, newest first."""
    with _registry_lock:
        services = list(reversed(_registry))
    for service in services:
        try:
            service.stop(timeout=timeout)
        except Exception:  # noqa: BLE001 - best effort at shutdown; fall back to SIGKILL
            try:
                service.kill()
            except Exception:  # noqa: BLE001
                pass


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------
# one supervised server process


@dataclass(eq=False)
class _Service:
    """A server process that we start, wait for, stop and restart."""

    name: str
    base_dir: Path
    port: int
    host: str = LOOPBACK
    start_timeout: float = 60.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # --- to override -----------------------------------------------------------------------
    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _failure_details(self) -> str:
        return _tail(self.log_path)

    # --- public ----------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.base_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (same port, same data) and wait until it answers."""
        with self._lock:
            if self.running:
                return
            self.base_dir.mkdir(parents=True, exist_ok=True)
            self._before_start()
            argv = self._argv()
            if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
                # Die with us even if we are SIGKILLed (pdeathsig is per parent *thread*, so
                # only when the main thread starts it: a worker thread may end before we do).
                argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
            with open(self.log_path, "ab") as log:
                log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {argv}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    start_new_session=True,  # own process group: signals reach the whole tree
                    close_fds=True,
                )
            _register(self)
            try:
                self._wait_ready()
                self._after_start()
            except BaseException:
                self._signal_group(signal.SIGKILL)
                self._reap(10)
                raise

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM), waiting for the exit; SIGKILL after ``timeout`` seconds."""
        with self._lock:
            if self._proc is None:
                return
            if self._proc.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
            self._reap(10)
            self._after_stop()

    def kill(self) -> None:
        """SIGKILL the server (a crash, as far as it can tell) and reap it."""
        with self._lock:
            if self._proc is None:
                return
            self._signal_group(signal.SIGKILL)
            self._reap(10)
            self._after_stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> _Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------
    def _before_start(self) -> None:
        pass

    def _after_start(self) -> None:
        pass

    def _after_stop(self) -> None:
        pass

    def _signal_group(self, sig: int) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            # Reaped (or reapable): the group leader is gone. Its children, if any, were in the
            # same group; try the group anyway -- ESRCH just means nothing is left.
            if proc is not None:
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise DevServiceError(f"{self.name} (pid {proc.pid}) did not exit") from exc

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise DevServiceError(
                    f"{self.name} exited with code {code} while starting "
                    f"(port {self.port}); last lines of its log:\n{self._failure_details()}"
                )
            try:
                if self._ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DevServiceError(
                    f"{self.name} did not answer on {self.host}:{self.port} within "
                    f"{self.start_timeout:.0f} s; last lines of its log:\n{self._failure_details()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _exchange(self, payload: bytes, expect: bytes, timeout: float = 1.0) -> bool:
        """Send ``payload`` over TCP and check that the answer starts with ``expect``."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            if payload:
                s.sendall(payload)
            data = b""
            while len(data) < len(expect):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(expect)


_S = TypeVar("_S", bound=_Service)


def _start_with_port_retry(make: type[_S], port: int | None, **kwargs: Any) -> _S:
    """Start a service; when we picked the port ourselves, retry if someone raced us to it."""
    attempts = 1 if port is not None else 3
    last: Exception | None = None
    for _ in range(attempts):
        service = make(port=port if port is not None else free_port(), **kwargs)
        try:
            service.start()
            return service
        except DevServiceError as exc:
            last = exc
            if "in use" not in str(exc).lower():
                raise
    assert last is not None
    raise last


# --------------------------------------------------------------------------------------------
# MariaDB

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(eq=False)
class MariaDB(_Service):
    """A private ``mariadbd`` with its own datadir, unix socket and loopback TCP port.

    ``root_url`` is ``mysql://root:<password>@127.0.0.1:<port>/``; the root password is random,
    kept in ``<base_dir>/root_password`` so that a restart (or a later run re-using the
    datadir) keeps working.
    """

    performance_schema: bool = True
    extra_args: Sequence[str] = ()
    root_password: str = ""
    _short_dir: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._fresh = False
        pw_file = self.base_dir / "root_password"
        if not self.root_password:
            if pw_file.exists():
                self.root_password = pw_file.read_text().strip()
            else:
                self.root_password = secrets.token_urlsafe(18)

    # --- paths and URLs ----------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mariadbd.pid"

    @property
    def socket_path(self) -> Path:
        sock = self.base_dir / "mysqld.sock"
        if len(str(sock)) < 100:  # sun_path is 108 bytes
            return sock
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="mdb-"))
        return self._short_dir / "mysqld.sock"

    @property
    def root_url(self) -> str:
        return self.url_for("root", self.root_password)

    def url_for(self, user: str, password: str, database: str = "") -> str:
        return (
            f"mysql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
        )

    # --- SQL through the command-line client (stdlib only) ---------------------------------
    def _client_argv(self, *args: str, user: str = "root") -> list[str]:
        return [
            _which("mariadb", "mysql"),
            "--no-defaults",
            f"--socket={self.socket_path}",
            f"--user={user}",
            "--batch",
            "--skip-column-names",
            "--raw",
            *args,
        ]

    def _client_env(self, password: str | None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MYSQL_HOST", None)
        env.pop("MYSQL_TCP_PORT", None)
        env.pop("MYSQL_UNIX_PORT", None)
        if password:
            env["MYSQL_PWD"] = password
        else:
            env.pop("MYSQL_PWD", None)
        return env

    def sql(self, statements: str, *, password: str | None = None, timeout: float = 60.0) -> str:
        """Run SQL as root over the unix socket; return the client's tab-separated output."""
        pw = self.root_password if password is None else password
        result = subprocess.run(
            self._client_argv("--execute", statements),
            env=self._client_env(pw),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise DevServiceError(
                f"SQL failed on {self.name} (exit {result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}\n  in: {statements[:500]}"
            )
        return result.stdout.decode(errors="replace")

    def query(self, statement: str, *, password: str | None = None) -> list[list[str]]:
        """Rows of a query as lists of strings (``NULL`` stays the string ``NULL``)."""
        out = self.sql(statement, password=password)
        return [line.split("\t") for line in out.splitlines()]

    def create_monitor_user(self, name: str, password: str, grants: Sequence[str]) -> str:
        """Create (or re-create) ``name`` with exactly ``grants``; return its mysql:// URL.

        Each grant is either global privileges (``"PROCESS"``, ``"BINLOG MONITOR"``) or
        privileges on an object (``"SELECT ON performance_schema.*"``).
        """
        if not _SAFE_NAME.match(name):
            raise ValueError(f"user name must match {_SAFE_NAME.pattern}: {name!r}")
        account = f"{_sql_str(name)}@'%'"
        statements = [
            f"DROP USER IF EXISTS {account}",
            f"CREATE USER {account} IDENTIFIED BY {_sql_str(password)}",
        ]
        for grant in grants:
            privs, target = _split_grant(grant)
            statements.append(f"GRANT {privs} ON {target} TO {account}")
        self.sql(";\n".join(statements) + ";")
        return self.url_for(name, password)

    # --- lifecycle ---------------------------------------------------------------------------
    def _argv(self) -> list[str]:
        argv = [
            _which("mariadbd", "mysqld"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--tmpdir={self.base_dir / 'tmp'}",    # not the shared /tmp (see _install_db)
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--tmpdir={self.base_dir / 'tmp'}",
            f"--performance-schema={'ON' if self.performance_schema else 'OFF'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--max-connections=100",
            # small and quick: this is a test/demo server on a 2-core box
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--innodb-log-buffer-size=4M",
            "--innodb-flush-log-at-trx-commit=2",
            "--key-buffer-size=4M",
            "--aria-pagecache-buffer-size=8M",
            "--table-open-cache=400",
            "--table-definition-cache=400",
            "--thread-cache-size=8",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--skip-feedback",
        ]
        if _is_root():
            argv.append("--user=root")  # mariadbd refuses to run as root without it
        argv.extend(self.extra_args)
        return argv

    def _install_db(self) -> None:
        log = self.base_dir / "install-db.log"
        argv = [
            _which("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            # Its own tmpdir: bootstraps of several instances at once otherwise collide over
            # temporary tables in the shared /tmp ("Could not remove temporary table").
            f"--tmpdir={self.base_dir / 'tmp'}",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
        ]
        if _is_root():
            argv.append("--user=root")
        with open(log, "wb") as out:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                timeout=300,
                check=False,
            )
        if result.returncode != 0:
            raise DevServiceError(
                f"mariadb-install-db failed (exit {result.returncode}):\n{_tail(log)}"
            )

    def _before_start(self) -> None:
        (self.base_dir / "tmp").mkdir(exist_ok=True)
        self._fresh = not (self.datadir / "mysql").is_dir()
        if self._fresh:
            if self.datadir.exists():
                shutil.rmtree(self.datadir)  # a half-made datadir from an interrupted run
            self._install_db()
        # a leftover socket file from a killed server makes mariadbd refuse to start
        self.socket_path.unlink(missing_ok=True)

    def _ready(self) -> bool:
        # Wait for the socket file (cheap), then ping with the right credentials: a probe that
        # connects and hangs up unauthenticated would count in Aborted_connects, which the
        # dashboard monitors and tests assert on.
        if not self.socket_path.exists():
            return False
        pw_file = self.base_dir / "root_password"
        password = self.root_password if (pw_file.exists() and not self._fresh) else ""
        result = subprocess.run(
            [
                _which("mariadb-admin", "mysqladmin"),
                "--no-defaults",
                f"--socket={self.socket_path}",
                "--user=root",
                "--connect-timeout=2",
                "ping",
            ],
            env=self._client_env(password),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0 and b"alive" in result.stdout

    def _after_start(self) -> None:
        pw_file = self.base_dir / "root_password"
        if self._fresh or not pw_file.exists():
            # Fresh datadir: root has no password (install-db's "normal" method). Give every
            # root account the password, and drop accounts that only produce warnings under
            # --skip-name-resolve (root@<hostname>) or that nobody should have (anonymous).
            users = self.query("SELECT User, Host FROM mysql.user", password="")
            keep_hosts = {"localhost", "127.0.0.1", "::1"}
            stmts: list[str] = []
            for user, host in users:
                account = f"{_sql_str(user)}@{_sql_str(host)}"
                if user == "" or (user == "root" and host not in keep_hosts):
                    stmts.append(f"DROP USER IF EXISTS {account}")
            stmts.append(
                f"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY "
                f"{_sql_str(self.root_password)}"
            )
            stmts.append("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            for host in sorted(keep_hosts):
                if ["root", host] in users or host == "127.0.0.1":
                    stmts.append(
                        f"ALTER USER 'root'@{_sql_str(host)} IDENTIFIED BY "
                        f"{_sql_str(self.root_password)}"
                    )
            stmts.append("FLUSH PRIVILEGES")
            self.sql(";\n".join(stmts) + ";", password="")
            pw_file.write_text(self.root_password + "\n")
            pw_file.chmod(0o600)

    def _after_stop(self) -> None:
        self.socket_path.unlink(missing_ok=True)

    def _failure_details(self) -> str:
        parts = [_tail(self.error_log)]
        log = _tail(self.log_path, 10)
        if log.strip():
            parts.append(f"(output) {log}")
        if "Address already in use" in parts[0] or "Do you already have another" in parts[0]:
            parts.append("port in use")
        return "\n".join(parts)


def _split_grant(grant: str) -> tuple[str, str]:
    """``"SELECT ON performance_schema.*"`` -> ("SELECT", "performance_schema.*");
    ``"PROCESS"`` -> ("PROCESS", "*.*")."""
    m = re.match(r"(?is)^\s*(.+?)\s+ON\s+(.+?)\s*$", grant)
    if m:
        return m.group(1), m.group(2)
    return grant.strip(), "*.*"


def start_mariadb(
    base_dir: Path,
    *,
    port: int | None = None,
    performance_schema: bool = True,
    extra_args: Sequence[str] = (),
    start_timeout: float = 60.0,
) -> MariaDB:
    """Initialise ``base_dir/data`` if new, start ``mariadbd`` and wait until it answers."""
    base_dir = Path(base_dir).resolve()
    return _start_with_port_retry(
        MariaDB,
        port,
        name="mariadbd",
        base_dir=base_dir,
        performance_schema=performance_schema,
        extra_args=tuple(extra_args),
        start_timeout=start_timeout,
    )


def primary_args(server_id: int = 1) -> list[str]:
    """``extra_args`` of a replication primary: a server id and a binary log (later arguments
    win over the ``--skip-log-bin`` every private server starts with)."""
    return [f"--server-id={server_id}", "--log-bin=mariadb-bin", "--binlog-format=ROW"]


def replica_args(server_id: int = 2) -> list[str]:
    """``extra_args`` of a replica: its own server id and relay log."""
    return [f"--server-id={server_id}", "--relay-log=relay-bin", "--skip-slave-start"]


def start_replication(primary: MariaDB, replica: MariaDB) -> None:
    """Make ``replica`` replicate ``primary`` from the primary's current position (both started
    with ``primary_args`` / ``replica_args``): a replication account on the primary, then
    ``CHANGE MASTER TO ...; START SLAVE`` on the replica."""
    password = secrets.token_urlsafe(12)
    primary.sql("DROP USER IF EXISTS 'repl'@'127.0.0.1';"
                f" CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY {_sql_str(password)};"
                " GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';")
    [[log_file, position, *_]] = primary.query("SHOW MASTER STATUS")
    replica.sql("STOP SLAVE; RESET SLAVE ALL;"
                f" CHANGE MASTER TO MASTER_HOST = {_sql_str(primary.host)},"
                f" MASTER_PORT = {int(primary.port)}, MASTER_USER = 'repl',"
                f" MASTER_PASSWORD = {_sql_str(password)}, MASTER_LOG_FILE = {_sql_str(log_file)},"
                f" MASTER_LOG_POS = {int(position)}, MASTER_CONNECT_RETRY = 1;"
                " START SLAVE;")


# --------------------------------------------------------------------------------------------
# Redis


@dataclass(eq=False)
class Redis(_Service):
    """A private ``redis-server`` without persistence."""

    extra_args: Sequence[str] = ()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _argv(self) -> list[str]:
        return [
            _which("redis-server"),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.base_dir),
            "--daemonize", "no",
            "--logfile", "",  # to stdout, i.e. our log file
            *self.extra_args,
        ]  # fmt: skip

    def _ready(self) -> bool:
        return self._exchange(b"PING\r\n", b"+PONG")

    def _failure_details(self) -> str:
        text = _tail(self.log_path)
        if "Address already in use" in text:
            text += "\nport in use"
        return text


def start_redis(
    base_dir: Path, *, port: int | None = None, extra_args: Sequence[str] = ()
) -> Redis:
    base_dir = Path(base_dir).resolve()
    return _start_with_port_retry(
        Redis, port, name="redis-server", base_dir=base_dir, extra_args=tuple(extra_args)
    )


# --------------------------------------------------------------------------------------------
# memcached


@dataclass(eq=False)
class Memcached(_Service):
    """A private ``memcached`` (TCP only, 64 MB)."""

    memory_mb: int = 64

    @property
    def url(self) -> str:
        return f"memcached://{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def _argv(self) -> list[str]:
        argv = [_which("memcached")]
        if _is_root():
            argv += ["-u", "root"]  # memcached refuses to run as root without it
        argv += ["-l", self.host, "-p", str(self.port), "-U", "0", "-m", str(self.memory_mb)]
        return argv

    def _ready(self) -> bool:
        return self._exchange(b"version\r\n", b"VERSION")

    def _failure_details(self) -> str:
        text = _tail(self.log_path)
        if "Address already in use" in text or "bind()" in text:
            text += "\nport in use"
        return text


def start_memcached(base_dir: Path | None = None, *, port: int | None = None) -> Memcached:
    """Start memcached; its log goes to ``base_dir`` (a new temporary directory if None)."""
    if base_dir is None:
        base_dir = Path(tempfile.mkdtemp(prefix="memcached-"))
    base_dir = Path(base_dir).resolve()
    return _start_with_port_retry(Memcached, port, name="memcached", base_dir=base_dir)
