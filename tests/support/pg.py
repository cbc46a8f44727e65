"""A private PostgreSQL for the tests: Debian's server in a temporary directory, on loopback.

``PgCluster`` makes a cluster with ``initdb`` and runs ``postgres`` on a free 127.0.0.1 port, its
unix socket in the same directory (or, for the network-namespace tests, on one test machine's
address: ``host``, ``port``, ``prefix`` the command that runs it there, ``allow`` the network
whose hosts may log in). PostgreSQL refuses to run as root (CI runs the tests as
root), so then both run as ``nobody`` (``PG_TEST_USER`` names another) and the directory is
theirs; otherwise as the caller. The superuser (``postgres``, a password of the run) only
creates the databases; the dashboard connects as ``dashboard``, a role with a password that may
log in and owns its database, nothing more (no superuser, no CREATEDB, no CREATEROLE).

Fixtures (registered by tests/conftest.py):
* ``pg_cluster`` (session): the running cluster; ``.stop()`` / ``.start()`` for outage tests
  (the next test finds it running again).
* ``pg_url`` (each test): a fresh, empty database of its own (dropped afterwards):
  ``postgresql://dashboard:PASS@127.0.0.1:PORT/db_N``.
* ``store_backend`` (each test, twice): "sqlite", then "postgresql". A module runs its tests on
  both with ``pytestmark = pytest.mark.usefixtures("store_backend")``: under "postgresql" every
  ``Store`` the test builds without a ``store_url`` of its own (the app's, the alert service's,
  the CLI's in-process ones) is given the test's fresh database, as ``store_url`` in the
  settings would (and so is a ``ProbeDaysRepo``); servers and commands it starts get
  ``DASHBOARD_STORE_URL``. ``other_store_url``: a second installation's (None on SQLite).
"""
from __future__ import annotations

import atexit
import grp
import itertools
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pg8000.native
import pytest

from dashboard.demo.services import free_port
from dashboard.store import probe_days
from dashboard.store.history import Store

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_ROLE = "dashboard"
START_TIMEOUT_S = 60.0


class PgError(RuntimeError):
    """The private cluster could not be made, started or stopped."""


def _run_as() -> tuple[str, str] | None:
    """(user, group) to run PostgreSQL as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("PG_TEST_USER", "nobody")
    entry = pwd.getpwnam(user)
    return user, grp.getgrgid(entry.pw_gid).gr_name


class PgCluster:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, prefix: Sequence[str] = (),
                 allow: str | None = None) -> None:
        self.host = host
        self.prefix = tuple(prefix)
        self.dir = Path(tempfile.mkdtemp(prefix="dashboard-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.superuser_password = secrets.token_hex(12)
        self.app_password = secrets.token_hex(12)
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._as = _run_as()
        self._dbs = itertools.count(1)
        if self._as is not None:
            entry = pwd.getpwnam(self._as[0])
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._initdb()
        if allow is not None:        # initdb lets in loopback only
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {allow} scram-sha-256\n")

    # --- processes -----------------------------------------------------------------------------

    def _popen(self, argv: list[str], on_host: bool = False, **kw: object) -> subprocess.Popen[bytes]:
        """``on_host``: run through ``prefix`` (entering a namespace needs root: then the user
        is dropped inside it, by ``setpriv``)."""
        extra: dict[str, object] = {}
        if on_host and self.prefix:
            if self._as is not None:
                entry = pwd.getpwnam(self._as[0])
                argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                        "--clear-groups", *argv]
            argv = [*self.prefix, *argv]
        elif self._as is not None:
            extra = {"user": self._as[0], "group": self._as[1], "extra_groups": []}
        return subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                start_new_session=True, **extra, **kw)  # type: ignore[call-overload]

    def _initdb(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if self._as is not None:
            entry = pwd.getpwnam(self._as[0])
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        proc = self._popen([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                            f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
                            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                            "--no-sync"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=120)
        pwfile.unlink()
        if proc.returncode != 0:
            raise PgError(f"initdb failed ({proc.returncode}): {out.decode(errors='replace')[-2000:]}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (on the port it had, if it ran before) and wait until it answers."""
        if self.running:
            return
        for attempt in range(5):
            port = self.port or free_port()
            log = open(self.log, "ab")
            if self._as is not None:
                entry = pwd.getpwnam(self._as[0])
                os.chown(self.log, entry.pw_uid, entry.pw_gid)
            # fsync off: a test cluster's durability across a power cut does not matter, and
            # CREATE DATABASE per test is 10x faster without it.
            self._proc = self._popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(port),
                 "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.dir}",
                 "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
                 "-c", "shared_buffers=32MB"], on_host=True, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                self._wait_ready(port)
                self.port = port
                break
            except PgError:
                self.stop()
                if attempt == 4 or "already in use" not in self.log.read_text(errors="replace")[-2000:]:
                    raise
                self.port = 0
        self._ensure_role()

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise PgError(f"postgres exited ({self._proc.returncode}): "
                              + self.log.read_text(errors="replace")[-2000:])
            try:
                pg8000.native.Connection("postgres", password=self.superuser_password,
                                         host=self.host, port=port, database="postgres",
                                         timeout=2).close()
                return
            except Exception:      # noqa: BLE001 - not up yet (refused, starting up)
                time.sleep(0.1)
        raise PgError(f"postgres did not answer within {START_TIMEOUT_S} s: "
                      + self.log.read_text(errors="replace")[-2000:])

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: sessions ended, then a clean stop); SIGKILL after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- databases -----------------------------------------------------------------------------

    def admin(self, database: str = "postgres") -> pg8000.native.Connection:
        return pg8000.native.Connection("postgres", password=self.superuser_password,
                                        host=self.host, port=self.port, database=database,
                                        timeout=30)

    def _ensure_role(self) -> None:
        conn = self.admin()
        try:
            if not conn.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=APP_ROLE):
                conn.run(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                         f"PASSWORD {pg8000.native.literal(self.app_password)}")
        finally:
            conn.close()

    def create_database(self) -> str:
        """A new empty database owned by the dashboard's role; its name."""
        name = f"db_{os.getpid()}_{next(self._dbs)}"
        conn = self.admin()
        try:
            conn.run(f"CREATE DATABASE {name} OWNER {APP_ROLE} TEMPLATE template0")
        finally:
            conn.close()
        return name

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for the block (the cluster started again if a test stopped it): its
        URL; dropped afterwards, unless the cluster is down by then."""
        self.start()
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            if self.running:
                self.drop_database(name)

    def drop_database(self, name: str) -> None:
        conn = self.admin()
        try:
            conn.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            conn.close()

    def url(self, database: str) -> str:
        return f"postgresql://{APP_ROLE}:{self.app_password}@{self.host}:{self.port}/{database}"


def start_cluster() -> PgCluster:
    """A running private cluster; removed at exit if its owner forgets (or fails first)."""
    cluster = PgCluster()
    atexit.register(cluster.remove)
    try:
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database of this test's own on the session's cluster (started again if a test
    before stopped it)."""
    with pg_cluster.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        store_init = Store.__init__
        days_init = probe_days.ProbeDaysRepo.__init__

        def on_pg(self: Store, data_dir: Path | str, raw_retention_h: float = 48.0,
                  rollup_retention_d: float = 400.0, store_url: str | None = None,
                  pool_size: int = 20) -> None:
            store_init(self, data_dir, raw_retention_h, rollup_retention_d, store_url or url,
                       pool_size)

        def days_on_pg(self: probe_days.ProbeDaysRepo, data_dir: Path | str,
                       store_url: str | None = None) -> None:
            days_init(self, data_dir, store_url or url)

        monkeypatch.setattr(Store, "__init__", on_pg)
        monkeypatch.setenv("DASHBOARD_STORE_URL", url)     # servers and CLIs the test starts
        monkeypatch.setattr(probe_days.ProbeDaysRepo, "__init__", days_on_pg)
    return str(request.param)


@pytest.fixture
def other_store_url(store_backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For a second, unrelated installation in the same test: None on SQLite (its own data dir
    is its own store), another fresh database on PostgreSQL."""
    if store_backend != "postgresql":
        yield None
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    with cluster.database() as url:
        yield url
