"""The tests' private PostgreSQL: a cluster of its own, run unprivileged, a database per test."""
from __future__ import annotations

import os
import pwd
from urllib.parse import urlsplit

import pg8000.native
import pytest

from tests.support.pg import PgCluster


def _connect(url: str) -> pg8000.native.Connection:
    p = urlsplit(url)
    return pg8000.native.Connection(p.username or "", password=p.password, host=p.hostname,
                                    port=p.port, database=p.path.lstrip("/"))


def test_the_server_runs_as_an_unprivileged_user(pg_cluster: PgCluster) -> None:
    pid = int((pg_cluster.data / "postmaster.pid").read_text().split()[0])
    uid = os.stat(f"/proc/{pid}").st_uid
    assert uid != 0
    assert pwd.getpwuid(uid).pw_name == (os.environ.get("PG_TEST_USER", "nobody")
                                         if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)


def test_the_dashboard_role_owns_its_database_and_nothing_more(pg_url: str) -> None:
    conn = _connect(pg_url)
    try:
        conn.run("CREATE TABLE t (x INTEGER)")          # owns its database: may make tables
        conn.run("INSERT INTO t VALUES (1)")
        assert conn.run("SELECT x FROM t") == [[1]]
        assert conn.run("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
                        " WHERE rolname = current_user") == [[False, False, False]]
        with pytest.raises(pg8000.native.DatabaseError):
            conn.run("CREATE DATABASE other")
    finally:
        conn.close()


def test_each_test_gets_an_empty_database(pg_url: str) -> None:
    conn = _connect(pg_url)
    try:
        assert conn.run("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [[0]]
    finally:
        conn.close()


def test_a_password_is_needed(pg_url: str) -> None:
    p = urlsplit(pg_url)
    with pytest.raises(pg8000.native.DatabaseError):
        pg8000.native.Connection(p.username or "", password="wrong", host=p.hostname, port=p.port,
                                 database=p.path.lstrip("/")).close()


def test_a_stopped_cluster_starts_again_on_its_port(pg_cluster: PgCluster) -> None:
    port = pg_cluster.port
    pg_cluster.stop()
    assert not pg_cluster.running
    pg_cluster.start()
    assert pg_cluster.port == port
    pg_cluster.admin().close()
