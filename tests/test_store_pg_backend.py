"""The PostgreSQL backend's foundation: connections with SQLite's surface, the write
transaction, errors in sqlite3's classes, a bounded pool, versioned migrations (issue 16)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from dashboard.demo.services import free_port
from dashboard.store import Store, alerts, migrations
from dashboard.store.migrations import SchemaTooNew, check_not_newer, migrate, stored_versions
from dashboard.store.pg import ConnParams, PgConnection, PgUnavailable, Pool
from dashboard.store.txn import immediate, is_pg
from tests.support.pg import PgCluster


def _conn(url: str) -> PgConnection:
    return PgConnection(ConnParams.from_url(url))


def test_statements_take_question_mark_parameters_as_in_sqlite(pg_url: str) -> None:
    c = _conn(pg_url)
    try:
        c.executescript("CREATE TABLE t (k TEXT PRIMARY KEY, v DOUBLE PRECISION, n BIGINT)")
        c.executemany("INSERT INTO t VALUES (?, ?, ?)", [("a", 1.5, 1), ("b?", None, 2)])
        assert c.execute("SELECT k, v, n FROM t WHERE k = ? OR n = ? ORDER BY k",
                         ("a", 2)).fetchall() == [("a", 1.5, 1), ("b?", None, 2)]
        # a ? inside a quoted text is text, not a parameter
        assert c.execute("SELECT count(*) FROM t WHERE k = 'b?' AND n = ?", (2,)).fetchone() == (2 - 1,)
        assert c.execute("UPDATE t SET n = n + 1 WHERE n >= ?", (1,)).rowcount == 2
        assert [r for r in c.execute("SELECT n FROM t ORDER BY n")] == [(2,), (3,)]
        assert c.execute("INSERT INTO t VALUES (?, ?, ?) RETURNING n", ("c", 0.0, 7)).fetchone() == (7,)
    finally:
        c.close()


def test_a_unique_violation_is_an_integrity_error_and_leaves_the_connection_usable(pg_url: str) -> None:
    c = _conn(pg_url)
    try:
        c.executescript("CREATE TABLE u (name TEXT UNIQUE)")
        c.execute("INSERT INTO u VALUES (?)", ("x",))
        with pytest.raises(sqlite3.IntegrityError):
            c.execute("INSERT INTO u VALUES (?)", ("x",))
        c.execute("INSERT INTO u VALUES (?)", ("y",))
        assert c.execute("SELECT count(*) FROM u").fetchone() == (2,)
    finally:
        c.close()


def test_immediate_commits_at_the_end_and_rolls_back_on_an_exception(pg_url: str) -> None:
    c, other = _conn(pg_url), _conn(pg_url)
    try:
        assert is_pg(c)
        c.executescript("CREATE TABLE t (x INTEGER)")
        with immediate(c):
            c.execute("INSERT INTO t VALUES (?)", (1,))
            assert c.in_transaction
            assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)   # not yet visible
        assert not c.in_transaction
        with pytest.raises(RuntimeError):
            with immediate(c):
                c.execute("INSERT INTO t VALUES (?)", (2,))
                raise RuntimeError("boom")
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        c.close()
        other.close()


def test_immediate_makes_check_then_write_one_writer_at_a_time(pg_url: str) -> None:
    # Two processes' "create the first admin when there is none": exactly one row, as SQLite's
    # BEGIN IMMEDIATE gives; PostgreSQL's default isolation alone would let both insert.
    setup = _conn(pg_url)
    setup.executescript("CREATE TABLE admins (name TEXT)")
    setup.close()
    barrier = threading.Barrier(4)
    made: list[bool] = []

    def first_admin(name: str) -> None:
        c = _conn(pg_url)
        try:
            barrier.wait()
            with immediate(c):
                if c.execute("SELECT count(*) FROM admins").fetchone()[0] == 0:
                    time.sleep(0.05)              # the window a second writer would use
                    c.execute("INSERT INTO admins VALUES (?)", (name,))
                    made.append(True)
        finally:
            c.close()

    threads = [threading.Thread(target=first_admin, args=(f"a{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    check = _conn(pg_url)
    assert check.execute("SELECT count(*) FROM admins").fetchone() == (1,)
    assert made == [True]
    check.close()


def test_a_lost_server_raises_unavailable_and_the_connection_comes_back_with_it(
        pg_cluster: PgCluster, pg_url: str) -> None:
    c = _conn(pg_url)
    c.executescript("CREATE TABLE t (x INTEGER)")
    pg_cluster.stop()
    with pytest.raises(PgUnavailable) as e:
        c.execute("INSERT INTO t VALUES (?)", (1,))
    assert isinstance(e.value, sqlite3.OperationalError)       # as a full disk is, to the spool
    with pytest.raises(PgUnavailable):
        c.execute("SELECT 1")                                   # still down: refused again
    pg_cluster.start()
    c.execute("INSERT INTO t VALUES (?)", (1,))                 # reconnected on its own
    assert c.execute("SELECT count(*) FROM t").fetchone() == (1,)
    c.close()


def test_the_pool_never_opens_more_than_its_size(pg_url: str) -> None:
    pool = Pool(ConnParams.from_url(pg_url), size=2, timeout_s=0.5)
    try:
        a, b = pool.connect(), pool.connect()
        with pytest.raises(PgUnavailable) as e:
            pool.connect()
        assert "store_pool_size = 2" in str(e.value)
        got: list[PgConnection] = []
        waiter = threading.Thread(target=lambda: got.append(pool.connect()))
        pool.timeout_s = 30
        waiter.start()
        time.sleep(0.1)
        assert not got                       # waits for one to come back
        a.close()
        waiter.join(30)
        assert got and got[0] is a           # the same server connection, reused
        sessions = _conn(pg_url)
        assert sessions.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                " current_database() AND application_name = 'dashboard'"
                                " AND pid <> pg_backend_pid()").fetchone() == (2,)
        sessions.close()
        got[0].close()
        b.close()
    finally:
        pool.close()


def test_a_connection_given_back_inside_a_transaction_is_rolled_back(pg_url: str) -> None:
    pool = Pool(ConnParams.from_url(pg_url), size=1)
    try:
        c = pool.connect()
        c.executescript("CREATE TABLE t (x INTEGER)")
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (?)", (1,))
        c.close()
        c2 = pool.connect()
        assert not c2.in_transaction
        assert c2.execute("SELECT count(*) FROM t").fetchone() == (0,)
        c2.close()
    finally:
        pool.close()


STEPS = ["CREATE TABLE widgets (id BIGINT PRIMARY KEY)",
         "ALTER TABLE widgets ADD COLUMN name TEXT"]


def test_migrations_apply_once_each_and_record_the_version(pg_url: str) -> None:
    c = _conn(pg_url)
    try:
        assert migrate(c, "widgets", STEPS[:1]) == 0
        assert stored_versions(c) == {"widgets": 1}
        c.execute("INSERT INTO widgets VALUES (?)", (1,))
        assert migrate(c, "widgets", STEPS) == 1                 # only the new step runs
        assert stored_versions(c) == {"widgets": 2}
        assert c.execute("SELECT id, name FROM widgets").fetchall() == [(1, None)]
    finally:
        c.close()


def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        c = _conn(pg_url)
        try:
            barrier.wait()
            migrations._done.clear()           # a fresh process remembers nothing
            migrate(c, "widgets", STEPS)
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    c = _conn(pg_url)
    assert stored_versions(c) == {"widgets": 2}
    c.close()


def test_a_database_of_a_newer_schema_is_refused_in_one_line(pg_url: str, tmp_path) -> None:
    c = _conn(pg_url)
    migrate(c, "widgets", STEPS)
    c.execute("UPDATE schema_version SET version = 3 WHERE area = 'widgets'")
    with pytest.raises(SchemaTooNew) as e:
        check_not_newer(c, {"widgets": 2})
    assert "'widgets' is at version 3" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SchemaTooNew) as e:
        Store(tmp_path, store_url=pg_url)           # an area this code does not know
    assert "'widgets'" in str(e.value) and "\n" not in str(e.value)
    assert "store_url" in str(e.value)
    c.close()


def test_store_hands_out_pooled_postgresql_connections_when_store_url_is_set(
        pg_url: str, tmp_path) -> None:
    store = Store(tmp_path, store_url=pg_url, pool_size=3)
    try:
        assert store.backend == "postgresql"
        c = store.connect()
        assert is_pg(c)
        assert c.execute("SELECT current_user").fetchone() == ("dashboard",)
        c.close()
        assert store.pool is not None and store.pool.in_use == 1      # the history's writer's
    finally:
        store.close()
    local = Store(tmp_path / "local")
    try:
        assert local.backend == "sqlite" and isinstance(local.connect(), sqlite3.Connection)
    finally:
        local.close()


def test_a_store_url_nobody_answers_fails_at_start_without_showing_the_password(tmp_path) -> None:
    url = f"postgresql://dashboard:Sekr1tPw@127.0.0.1:{free_port()}/db"
    with pytest.raises(PgUnavailable) as e:
        Store(tmp_path, store_url=url)
    assert "Sekr1tPw" not in str(e.value)


def test_commands_refuse_a_database_of_a_newer_schema_in_one_line_with_status_2(
        pg_url: str, tmp_path) -> None:
    Store(tmp_path / "a", store_url=pg_url).close()          # migrated by this dashboard
    known = len(alerts.PG_MIGRATIONS)
    c = _conn(pg_url)
    c.execute("UPDATE schema_version SET version = version + 1 WHERE area = 'alerts'")
    c.close()
    env = {**os.environ, "DASHBOARD_CONFIG": "", "DASHBOARD_DATA_DIR": str(tmp_path / "b"),
           "DASHBOARD_STORE_URL": pg_url}
    for command in (["create-token", "--role", "viewer"], ["report"]):
        r = subprocess.run([sys.executable, "-m", "dashboard", *command], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [
            f"store error: store_url: schema area 'alerts' is at version {known + 1}, written by a"
            f" newer dashboard (this one knows up to {known}): upgrade this one, or point"
            " store_url elsewhere"]
        assert urlsplit(pg_url).password not in r.stdout + r.stderr
