"""Replicas (issue 17) on a real primary and replica: two private MariaDB servers on loopback,
the replica replicating the primary (server ids, binary log, CHANGE MASTER TO ... START SLAVE).
Lag appears while the replica's SQL thread waits on a held lock; STOP SLAVE SQL_THREAD pages
db_replica_broken once, START SLAVE resolves it once."""
from __future__ import annotations

import secrets
from typing import Iterator

import pytest

from dashboard.collectors import registry
from dashboard.collectors.mysql.collector import MySQLCollector
from dashboard.collectors.mysql.servers import MySQLServers
from dashboard.config import load as config
from dashboard.demo import services
from dashboard.runtime import Runtime
from tests.support.alert_helpers import FAST, install_alerting
from tests.support.util import mysql_connect, wait_until

GRANTS = ["PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "SELECT ON performance_schema.*",
          "UPDATE ON performance_schema.threads"]


@pytest.fixture
def pair(make_mariadb) -> Iterator[tuple[services.MariaDB, services.MariaDB, str, str]]:
    """(primary, replica, monitor URL on the primary, monitor URL on the replica)."""
    primary = make_mariadb(extra_args=services.primary_args())
    replica = make_mariadb(extra_args=services.replica_args())
    password = secrets.token_urlsafe(12)
    # Each server's monitoring account is made before replication starts: not replicated twice.
    urls = [db.create_monitor_user("dbmon", password, GRANTS) for db in (primary, replica)]
    services.start_replication(primary, replica)
    primary.sql("CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY) ENGINE=InnoDB;")
    wait_until(lambda: replica.query("SHOW TABLES FROM shop") == [["orders"]], timeout=20,
               message="the table did not reach the replica")
    yield primary, replica, urls[0], urls[1]
    replica.sql("STOP SLAVE")


def figures(c: MySQLCollector | MySQLServers) -> dict:
    """Values by server name (MySQLServers) or under "" (one server)."""
    return {r.labels.get("server", ""): dict(r.values) for r in c.collect()}


def servers(primary_url: str, replica_url: str, **rules) -> dict:
    return {"mysql": [{"name": "primary", "url": primary_url},
                      {"name": "replica1", "url": replica_url}], "rules": rules}


def test_each_server_reports_its_role_and_the_replica_its_threads_and_lag(pair, tmp_path):
    primary, replica, primary_url, replica_url = pair
    settings = config.from_dict({"data_dir": str(tmp_path), **servers(primary_url, replica_url)})
    [c] = [x for x in registry.build(settings) if x.source == "db"]
    assert isinstance(c, MySQLServers)
    try:
        v = wait_until(lambda: (lambda f: f if f["replica1"].get("db.replica_lag_s") == 0
                                else None)(figures(c)), timeout=20,
                       message=lambda: repr(figures(c)))
        assert v["primary"]["db.replica"] == 0 and "db.replica_lag_s" not in v["primary"]
        assert v["primary"]["db.up"] == v["replica1"]["db.up"] == 1
        assert v["replica1"]["db.replica"] == 1
        assert v["replica1"]["db.replica_io_running"] == v["replica1"]["db.replica_sql_running"] == 1
        assert any("role: replica of 127.0.0.1:" in n and n.startswith("[replica1]")
                   for n in c.check_notes())

        # A held lock on the replica: its SQL thread waits, the primary's write ages.
        hold = mysql_connect(replica.root_url)
        try:
            hold.cursor().execute("LOCK TABLES shop.orders WRITE")
            with mysql_connect(primary.root_url) as conn, conn.cursor() as cur:
                cur.execute("INSERT INTO shop.orders VALUES (1)")
            lag = wait_until(lambda: (figures(c)["replica1"].get("db.replica_lag_s") or 0) >= 2
                             and figures(c)["replica1"], timeout=20,
                             message=lambda: repr(figures(c)))
            assert lag["db.replica_sql_running"] == 1          # running, just behind
        finally:
            hold.cursor().execute("UNLOCK TABLES")
            hold.close()
        wait_until(lambda: figures(c)["replica1"].get("db.replica_lag_s") == 0, timeout=20,
                   message="the lag did not go back to 0 once the lock was released")

        replica.sql("STOP SLAVE SQL_THREAD")
        v = figures(c)["replica1"]
        assert (v["db.replica_sql_running"], v["db.replica_io_running"], v["db.replica_running"]) \
            == (0, 1, 0)
        assert "db.replica_lag_s" not in v                 # NULL while the SQL thread is stopped

        # A row written on the replica, then on the primary: the SQL thread stops on the
        # duplicate, and the page's notices say so with the server's own error text.
        replica.sql("START SLAVE SQL_THREAD; INSERT INTO shop.orders VALUES (2);")
        with mysql_connect(primary.root_url) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO shop.orders VALUES (2)")
        wait_until(lambda: figures(c)["replica1"]["db.replica_sql_running"] == 0, timeout=20)
        [note] = [n for n in c.book.status()["notices"] if n.startswith("replica1:")]
        assert "SQL thread STOPPED" in note and "Duplicate entry" in note, note
    finally:
        c.close()


def test_a_stopped_sql_thread_pages_once_and_its_restart_resolves_once(
        pair, tmp_path, webhook_receiver):
    primary, replica, primary_url, replica_url = pair
    settings = config.from_dict({
        "data_dir": str(tmp_path / "data"), "interval_s": 0.5, "host_name": "db-host",
        **servers(primary_url, replica_url,
                  db_replica_broken={"for_s": 1, "keep_firing_for_s": 0}),
        "notify": [{"kind": "webhook", "url": webhook_receiver.url, "name": "hook",
                    "rules": ["db_replica_broken"]}],
    })
    rt = Runtime(settings)
    install_alerting(rt, policy=FAST)
    rt.start()
    try:
        wait_until(lambda: any(s.labels.get("server") == "replica1"
                               and s.values.get("db.replica_running") == 1
                               for s in rt.store.latest()), timeout=20)
        replica.sql("STOP SLAVE SQL_THREAD")
        [fired] = webhook_receiver.wait_for(1, timeout=20)
        replica.sql("START SLAVE SQL_THREAD")
        webhook_receiver.wait_for(2, timeout=20)
        wait_until(lambda: all(ch["waiting"] == 0 for ch in rt.alerting.overview()["channels"]),
                   timeout=10)
    finally:
        rt.stop()
    alerts = [a for r in webhook_receiver.requests for a in r.json()["alerts"]]
    assert [(a["event"], a["rule"], a["labels"]) for a in alerts] == [
        ("firing", "db_replica_broken", {"server": "replica1"}),
        ("resolved", "db_replica_broken", {"server": "replica1"})]
    assert alerts[0]["severity"] == "critical"
