"""The demo's platform: a private MariaDB and Redis on loopback (``dashboard.devservices``),
the shop's schema and account, and the dashboard's least-privilege monitoring account made by
the same ``deploy/mysql-grants.sql`` an operator runs.

Everything lives under the demo data dir (``mariadb/``, ``redis/``), so a second run starts
quickly on the same data. Passwords are random at every start and only written to the demo's
own config file (mode 600).
"""
from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.demo import services as devservices

ROOT = Path(__file__).resolve().parents[2]
GRANTS_SQL = ROOT / "deploy" / "mysql-grants.sql"
MONITOR_GRANTS = ("PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "SELECT ON performance_schema.*",
                  "SELECT ON mysql.slow_log")

SHOP_SCHEMA = """
CREATE DATABASE IF NOT EXISTS shop;
USE shop;
CREATE TABLE IF NOT EXISTS products (
  id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, category VARCHAR(30) NOT NULL,
  price DECIMAL(8,2) NOT NULL, description TEXT NOT NULL);
INSERT IGNORE INTO products
  SELECT seq, CONCAT('Product ', seq), ELT(1 + seq % 5, 'books', 'garden', 'toys', 'kitchen', 'music'),
         5 + (seq * 37 % 9500) / 100,
         REPEAT(CONCAT('a ', ELT(1 + seq % 4, 'blue', 'red', 'green', 'small'), ' thing '), 20)
  FROM seq_1_to_1000;
CREATE TABLE IF NOT EXISTS orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, product_id INT NOT NULL, qty INT NOT NULL,
  total DECIMAL(10,2) NOT NULL, created_at DATETIME(3) NOT NULL, KEY (created_at));
DELETE FROM orders WHERE created_at < NOW() - INTERVAL 1 DAY;
"""


def _sql_str(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass
class Platform:
    base: Path
    mariadb: devservices.MariaDB | None = None
    redis: devservices.Redis | None = None
    monitor_password: str = ""
    shop_password: str = ""

    @property
    def _ready_marker(self) -> Path:
        return self.base / "mariadb" / "demo-ready"

    def start_mariadb(self) -> None:
        if not self._ready_marker.exists():
            # A first start stopped half-way (Ctrl-C reaches mariadb-install-db too) leaves a
            # datadir that would not start: begin again.
            shutil.rmtree(self.base / "mariadb" / "data", ignore_errors=True)
        # long_query_time = the dashboard's slow threshold (1 s), so SLEEP(1.5) counts as slow
        self.mariadb = devservices.start_mariadb(self.base / "mariadb",
                                                 extra_args=["--long-query-time=1"])

    def start_redis(self) -> None:
        # A cache with a memory limit; only keys with a TTL (the cache's) may be evicted, never
        # the queue's lists.
        self.redis = devservices.start_redis(self.base / "redis", extra_args=[
            "--maxmemory", "24mb", "--maxmemory-policy", "volatile-lru"])

    def prepare(self) -> None:
        """Schema, the shop's account and the monitoring account (fresh passwords)."""
        db = self.mariadb
        assert db is not None
        self.shop_password = secrets.token_urlsafe(18)
        self.monitor_password = secrets.token_urlsafe(18)
        db.sql(SHOP_SCHEMA)
        shop = "'shop'@'127.0.0.1'"
        db.sql(f"CREATE USER IF NOT EXISTS {shop} IDENTIFIED BY {_sql_str(self.shop_password)};"
               f"ALTER USER {shop} IDENTIFIED BY {_sql_str(self.shop_password)};"
               f"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO {shop};")
        if GRANTS_SQL.exists():
            # The deployment's own grants script, as an operator would run it.
            db.sql(GRANTS_SQL.read_text().replace("CHANGE-ME-PASSWORD", self.monitor_password))
            db.sql(f"ALTER USER 'monitor'@'127.0.0.1' IDENTIFIED BY {_sql_str(self.monitor_password)};")
        else:
            db.create_monitor_user("monitor", self.monitor_password, MONITOR_GRANTS)
        self._ready_marker.touch()

    @property
    def monitor_url(self) -> str:
        assert self.mariadb is not None
        return self.mariadb.url_for("monitor", self.monitor_password)

    @property
    def shop_db(self) -> dict[str, Any]:
        """pymysql.connect() arguments for the shop's account."""
        assert self.mariadb is not None
        return {"host": self.mariadb.host, "port": self.mariadb.port, "user": "shop",
                "password": self.shop_password}

    def ports(self) -> dict[str, int]:
        out = {}
        if self.mariadb is not None:
            out["mariadb"] = self.mariadb.port
        if self.redis is not None:
            out["redis"] = self.redis.port
        return out

    def stop(self, hurry: bool = False) -> None:
        """Redis, then MariaDB (graceful unless in a hurry; SIGKILL after the timeout)."""
        for service in (self.redis, self.mariadb):
            if service is None:
                continue
            try:
                if hurry:
                    service.kill()
                else:
                    service.stop(timeout=20)
            except devservices.DevServiceError:
                service.kill()
