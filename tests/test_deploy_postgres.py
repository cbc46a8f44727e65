"""deploy/postgresql/ for real: the role script and the pg_hba.conf lines on a private cluster.

The cluster is one of tests/support/pg.py's, of this module's own (its pg_hba.conf, log settings
and TLS are changed here), run as an unprivileged user. Machine A is 127.0.0.1 and machine B
127.0.0.12 (the snippet's 192.0.2.11 and 192.0.2.12); 127.0.0.13 is some other host.
"""
from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pg8000.native
import pytest

from dashboard.store.history import Store
from tests.support.pg import PgCluster, start_cluster

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "postgresql" / "create-dashboard-db.sh"
HBA = ROOT / "deploy" / "postgresql" / "pg_hba-dashboard.conf"
MACHINE_A, MACHINE_B, ELSEWHERE = "127.0.0.1", "127.0.0.12", "127.0.0.13"


class Deployed:
    def __init__(self, cluster: PgCluster, tmp: Path) -> None:
        self.cluster = cluster
        self.tmp = tmp
        self.password = ""

    def run_script(self, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        """create-dashboard-db.sh as the superuser over TCP, the password from a file (mode 600)."""
        password = password or "pw-" + secrets.token_urlsafe(18)
        pwfile = self.tmp / "role.pw"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password + "\n")
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.cluster.port),
               "PGUSER": "postgres", "PGPASSWORD": self.cluster.superuser_password}
        result = subprocess.run(["bash", str(SCRIPT), "--password-file", str(pwfile), *args], env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        self.password = password
        return result

    def as_role(self, database: str = "dashboard", source: str = MACHINE_A,
                password: str | None = None) -> pg8000.native.Connection:
        return pg8000.native.Connection("dashboard", password=password or self.password,
                                        host="127.0.0.1", port=self.cluster.port, database=database,
                                        source_address=(source, 0), timeout=30)

    def admin_run(self, sql: str, database: str = "postgres", **params: Any) -> Any:
        conn = self.cluster.admin(database)
        try:
            return conn.run(sql, **params)
        finally:
            conn.close()


def _tls_on(cluster: PgCluster) -> None:
    """ssl = on with a throw-away self-signed certificate (the snippet's lines are hostssl)."""
    key, crt = cluster.dir / "server.key", cluster.dir / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=dashboard-test-pg", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=120)
    key.chmod(0o600)
    if os.geteuid() == 0:                      # the server runs as another user: its files
        owner = pwd.getpwnam(os.environ.get("PG_TEST_USER", "nobody"))
        for f in (key, crt):
            os.chown(f, owner.pw_uid, owner.pw_gid)
    conn = cluster.admin()
    try:
        conn.run(f"ALTER SYSTEM SET ssl_cert_file = {pg8000.native.literal(str(crt))}")
        conn.run(f"ALTER SYSTEM SET ssl_key_file = {pg8000.native.literal(str(key))}")
        conn.run("ALTER SYSTEM SET ssl = on")
        conn.run("ALTER SYSTEM SET log_statement = 'all'")       # so a leaked password would show
        conn.run("SELECT pg_reload_conf()")
    finally:
        conn.close()


def _install_hba(cluster: PgCluster) -> None:
    """The snippet first (addresses of the test machines), then a broad rule an administrator
    might have further down, then initdb's own lines (the superuser's from 127.0.0.1)."""
    snippet = HBA.read_text()
    assert snippet.count("192.0.2.11/32") == 1 and snippet.count("192.0.2.12/32") == 1
    snippet = snippet.replace("192.0.2.11/32", f"{MACHINE_A}/32").replace("192.0.2.12/32",
                                                                          f"{MACHINE_B}/32")
    hba = cluster.data / "pg_hba.conf"
    hba.write_text(snippet + "\nhost all all 127.0.0.0/8 scram-sha-256\n" + hba.read_text())
    _admin_rows(cluster, "SELECT pg_reload_conf()")


def _admin_rows(cluster: PgCluster, sql: str) -> Any:
    conn = cluster.admin()
    try:
        return conn.run(sql)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    cluster = start_cluster()
    try:
        _tls_on(cluster)
        d = Deployed(cluster, tmp_path_factory.mktemp("pg-deploy"))
        d.run_script()
        _install_hba(cluster)
        yield d
    finally:
        cluster.remove()


def _refused(conn: pg8000.native.Connection, sql: str) -> str:
    """The SQLSTATE a statement fails with (the test fails if it succeeds)."""
    with pytest.raises(pg8000.native.DatabaseError) as e:
        conn.run(sql)
    return str(e.value.args[0]["C"])


def _login_refused(connect: Any) -> str:
    with pytest.raises(pg8000.native.DatabaseError) as e:
        connect().close()
    return str(e.value.args[0]["C"])


def test_the_role_can_log_in_and_nothing_more(deployed):
    row = deployed.admin_run("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
                             " rolbypassrls, rolconnlimit FROM pg_roles WHERE rolname = 'dashboard'")
    assert row == [[True, False, False, False, False, False, 130]]
    assert deployed.admin_run("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
                              " WHERE r.rolname = 'dashboard'") == [[0]]
    # The database is not the role's (it cannot drop it or make schemas in it).
    assert deployed.admin_run("SELECT pg_get_userbyid(datdba) FROM pg_database"
                              " WHERE datname = 'dashboard'") == [["postgres"]]


def test_the_role_cannot_make_databases_roles_or_schemas_nor_touch_other_schemas(deployed):
    deployed.admin_run("CREATE SCHEMA IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.orders (id int);"
                       " CREATE TABLE IF NOT EXISTS public.legacy (id int)", database="dashboard")
    conn = deployed.as_role()
    try:
        assert _refused(conn, "CREATE DATABASE dashboard_two") == "42501"
        assert _refused(conn, "CREATE ROLE intruder LOGIN") == "42501"
        assert _refused(conn, "CREATE SCHEMA elsewhere") == "42501"
        assert _refused(conn, "CREATE TABLE public.mine (id int)") == "42501"
        assert _refused(conn, "SELECT * FROM public.legacy") == "42501"
        assert _refused(conn, "SELECT * FROM shop.orders") == "42501"
        assert _refused(conn, "CREATE TABLE shop.mine (id int)") == "42501"
        assert _refused(conn, "ALTER ROLE dashboard CREATEDB") == "42501"
        assert _refused(conn, "ALTER DATABASE dashboard SET search_path = public") == "42501"
        assert _refused(conn, "CREATE TEMPORARY TABLE scratch (id int)") == "42501"
    finally:
        conn.close()


def test_the_dashboard_creates_and_migrates_its_tables_in_the_role_schema_over_tls(deployed, tmp_path):
    conn = deployed.as_role()
    try:
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
        # What the fencing token will be made of (a sequence) works too.
        conn.run("CREATE SEQUENCE IF NOT EXISTS deploy_probe_seq")
        assert conn.run("SELECT nextval('deploy_probe_seq') < nextval('deploy_probe_seq')") == [[True]]
        conn.run("DROP SEQUENCE deploy_probe_seq")
    finally:
        conn.close()
    url = f"postgresql://dashboard:{deployed.password}@127.0.0.1:{deployed.cluster.port}/dashboard"
    store = Store(tmp_path / "data", store_url=url, pool_size=2)
    try:
        with store.connect() as c:
            c.execute("SELECT 1")
    finally:
        store.close()
    tables = deployed.admin_run("SELECT schemaname, tablename FROM pg_tables WHERE tableowner = 'dashboard'",
                                database="dashboard")
    assert {s for s, _ in tables} == {"dashboard"}, tables
    names = {t for _, t in tables}
    assert "schema_version" in names and len(names) >= 8, names


def test_running_it_again_resets_extra_privileges_sets_the_new_password_and_the_limit(deployed):
    deployed.admin_run("ALTER ROLE dashboard CREATEDB; GRANT pg_read_all_data TO dashboard")
    old = deployed.password
    deployed.run_script("--connection-limit", "2")
    try:
        assert deployed.admin_run("SELECT rolcreatedb, rolconnlimit FROM pg_roles"
                                  " WHERE rolname = 'dashboard'") == [[False, 2]]
        assert deployed.admin_run("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r"
                                  " ON r.oid = m.member WHERE r.rolname = 'dashboard'") == [[0]]
        assert _login_refused(lambda: deployed.as_role(password=old)) == "28P01"
        held = [deployed.as_role(), deployed.as_role()]
        try:
            assert _login_refused(deployed.as_role) == "53300"      # too many connections for role
        finally:
            for c in held:
                c.close()
    finally:
        deployed.run_script()                    # as the other tests expect it (130)


def test_the_password_never_reaches_the_server_log(deployed):
    marker = "deploy-log-probe-" + secrets.token_hex(4)
    deployed.admin_run(f"SELECT '{marker}'")        # log_statement = 'all' is on
    password = deployed.password
    deployed.run_script(password=password)
    log = deployed.cluster.log.read_text(errors="replace")
    assert marker in log
    assert password not in log
    assert "PASSWORD '" not in log.upper()             # no ALTER ROLE ... PASSWORD '...' at all


def test_pg_hba_lets_the_role_in_from_the_two_machines_only_and_into_its_database_only(deployed):
    assert _admin_rows(deployed.cluster, "SELECT line_number, error FROM pg_hba_file_rules"
                                         " WHERE error IS NOT NULL") == []
    for machine in (MACHINE_A, MACHINE_B):
        deployed.as_role(source=machine).close()
    # From another host: refused, though a broader rule further down would let it in.
    assert _login_refused(lambda: deployed.as_role(source=ELSEWHERE)) == "28000"
    # From machine A, into another database: refused.
    assert _login_refused(lambda: deployed.as_role(database="postgres")) == "28000"
    # Without TLS: refused (hostssl).
    with pytest.raises(pg8000.native.DatabaseError) as e:
        pg8000.native.Connection("dashboard", password=deployed.password, host="127.0.0.1",
                                 port=deployed.cluster.port, database="dashboard", ssl_context=False,
                                 timeout=30).close()
    assert e.value.args[0]["C"] == "28000"
    # The superuser's own lines further down still work.
    assert _admin_rows(deployed.cluster, "SELECT 1") == [[1]]
