"""Shared fixtures.

Sections:
  1. Services (real servers on 127.0.0.1, started by the tests themselves): MariaDB, Redis,
     memcached, SMTP, webhook receiver. Owned by the set-up/test-infrastructure work.
  2. App fixtures (added by the app's authors) below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.demo import services as devservices
from tests.support import astlock, netns
from tests.support.auth_helpers import add_token, add_user, logged_in_client
from tests.support.receivers import SmtpSink, WebhookReceiver

astlock.install()      # before any test starts a thread: CPython 3.11's AST state is shared

# The private PostgreSQL (tests/support/pg.py): ``pg_cluster`` (session), ``pg_url`` (per test).
pytest_plugins = ("tests.support.pg",)

# =============================================================================================
# 1. Services
#
# Session-scoped servers are shared by all tests. They are made robust against tests that
# disturb them: before every test, a server that a previous test stopped or killed is started
# again (same port, same data), and the SMTP/webhook recorders are emptied and their fault
# programmes cleared. A test that needs a server of its own (different flags, or one it may
# break for good) uses the ``make_mariadb`` / ``make_redis`` / ``make_memcached`` factories,
# whose servers die with the test.

_session_services: list[devservices._Service] = []
_session_recorders: list[SmtpSink | WebhookReceiver] = []


@pytest.fixture(autouse=True)
def _services_fresh_for_each_test() -> None:
    for service in _session_services:
        if not service.running:
            service.start()
    for recorder in _session_recorders:
        recorder.clear()


@pytest.fixture
def test_network() -> Iterator[netns.Network]:
    """Machines on a network of this test's own (tests/support/netns.py), gone afterwards."""
    yield from netns.network()


_SHARED_SCOPE = re.compile(r"""scope\s*=\s*["'](?:module|class|package)["']""")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist with ``--dist loadgroup`` (scripts/test.sh runs the whole suite on
    several workers): the tests of a module that defines a module-, class- or package-scoped
    fixture (a server, a browser, a filled store) run on one worker, so it is set up once; every
    other test is a unit of its own, run by whichever worker is free.

    xdist's own loadgroup reads ``xdist_group`` marks by suffixing ``item._nodeid``, which pytest
    9 no longer has (its ``nodeid`` is ``str(item._id)``): the marks would be ignored."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # lazy: only a run with workers has xdist loaded

    root = Path(config.rootpath)
    shared: dict[str, bool] = {}

    def module_shares_fixtures(path: str) -> bool:
        if path not in shared:
            try:
                shared[path] = bool(_SHARED_SCOPE.search((root / path).read_text()))
            except OSError:
                shared[path] = False
        return shared[path]

    class ByModuleWhereShared(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if module_shares_fixtures(path) else nodeid

    return ByModuleWhereShared(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Namespaces of test runs killed mid-test (their pid is gone); never another live run's.
    if netns.problem() is None:
        netns.sweep_stale()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.MariaDB]:
    """MariaDB with performance_schema ON. ``.root_url``, ``.create_monitor_user(...)``,
    ``.stop()`` / ``.start()`` / ``.kill()``, ``.query(sql)``."""
    db = devservices.start_mariadb(tmp_path_factory.mktemp("mariadb"), performance_schema=True)
    _session_services.append(db)
    try:
        yield db
    finally:
        _session_services.remove(db)
        db.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Redis]:
    """Redis without persistence. ``.url`` is ``redis://127.0.0.1:PORT/0``."""
    server = devservices.start_redis(tmp_path_factory.mktemp("redis"))
    _session_services.append(server)
    try:
        yield server
    finally:
        _session_services.remove(server)
        server.stop()


@pytest.fixture(scope="session")
def memcached_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Memcached]:
    """memcached; ``.address`` is ``("127.0.0.1", PORT)``."""
    server = devservices.start_memcached(tmp_path_factory.mktemp("memcached"))
    _session_services.append(server)
    try:
        yield server
    finally:
        _session_services.remove(server)
        server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    """SMTP on 127.0.0.1:``.port``; ``.messages``, ``.wait_for(count, timeout)``,
    ``.reject_next(n, reply)``. Emptied before each test."""
    sink = SmtpSink().start()
    _session_recorders.append(sink)
    try:
        yield sink
    finally:
        _session_recorders.remove(sink)
        sink.stop()


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """HTTP on ``.url``; ``.requests``, ``.wait_for(count, timeout)``,
    ``.respond_with([503, 503, 200])``. Emptied before each test."""
    receiver = WebhookReceiver().start()
    _session_recorders.append(receiver)
    try:
        yield receiver
    finally:
        _session_recorders.remove(receiver)
        receiver.stop()


def _factory(tmp_path: Path, start: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> Any:
        service = start(tmp_path / f"{start.__name__.removeprefix('start_')}{next(counter)}", **kwargs)
        started.append(service)
        return service

    try:
        yield make
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture
def make_mariadb(tmp_path: Path) -> Iterator[Callable[..., devservices.MariaDB]]:
    """``make_mariadb(performance_schema=False, extra_args=[...])`` -> a MariaDB of this test's own."""
    yield from _factory(tmp_path, devservices.start_mariadb)


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., devservices.Redis]]:
    """``make_redis(extra_args=["--maxmemory", "10mb"])`` -> a Redis of this test's own."""
    yield from _factory(tmp_path, devservices.start_redis)


@pytest.fixture
def make_memcached(tmp_path: Path) -> Iterator[Callable[..., devservices.Memcached]]:
    yield from _factory(tmp_path, devservices.start_memcached)


# =============================================================================================
# 2. App fixtures

# ---- 2a. Authenticated app fixtures (issue 7, security). Helpers: tests/support/auth_helpers.py;
# ---- how-to: /work/notes/auth-fixtures.md. Every route needs a login now.


@pytest.fixture
def app(tmp_path: Path):
    """A dashboard app on a fresh data dir (threading mode, no collectors, not started).

    The API rate limit is raised here so tests that call the API often are not throttled;
    tests of the limits themselves build their own app (tests/test_auth_limits.py)."""
    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime

    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading",
                          "auth": {"api_rate_limit": "100000 per minute"}})
    runtime = Runtime(settings, [])
    application = create_app(settings, runtime, async_mode="threading")
    yield application
    runtime.stop()
    # Sockets a test left connected: forget them, so their logins' re-check task ends at its
    # next wake instead of polling this test's store (on PostgreSQL: a dropped database) for
    # the rest of the run.
    watch = application.extensions.get("dashboard.live_logins")
    if watch is not None:
        for sid in list(watch._held):
            watch.gone(sid)


@pytest.fixture
def client(app):
    """Logged in as an admin (session cookie; sends the CSRF header on POST/PUT/DELETE)."""
    return logged_in_client(app, "admin")


@pytest.fixture
def anon_client(app):
    return app.test_client()


@pytest.fixture
def viewer_client(app):
    return logged_in_client(app, "viewer")


@pytest.fixture
def operator_client(app):
    return logged_in_client(app, "operator")


@pytest.fixture
def make_user(app):
    """``make_user("ann", "operator", password="...")`` -> (User, password)."""
    return lambda name=None, role="viewer", password=None: add_user(app, name, role, password)


@pytest.fixture
def make_token(app):
    """``make_token("viewer")`` -> token text for ``Authorization: Bearer``."""
    return lambda role="viewer", name="": add_token(app, role, name)
