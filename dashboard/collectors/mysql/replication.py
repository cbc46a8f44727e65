"""Replication as a DBA watches it (issue 17): role, lag, the two replica threads, the last error.

The platform docs' next scaling step is primary-replica replication with reads on replicas; a
replica that stopped applying, or applies minutes late, serves stale reads without any error.

One statement per sample: MariaDB ``SHOW ALL SLAVES STATUS`` (every replication source,
multi-source included; needs ``SLAVE MONITOR`` on MariaDB >= 10.5.9), MySQL 8
``SHOW REPLICA STATUS`` (``REPLICATION CLIENT``). No row: the server replicates from nobody, its
role is primary. MySQL 8 renamed the columns (``Replica_IO_Running``,
``Seconds_Behind_Source``); both spellings are read. MySQL 8 is not installable on the test
machine, so its path is this parser, unit-tested on its recorded output
(tests/test_replication_parse.py).

With several sources (MariaDB multi-source), the figures are the worst of them: the largest lag,
a thread counted as running only if it runs for every source, the first error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from dashboard.model import MetricSpec

METRICS: Sequence[MetricSpec] = (
    MetricSpec("db.replica", "bool", "1 when the server is a replica (replicates from a primary), "
               "0 for a primary"),
    MetricSpec("db.replica_lag_s", "s", "How far the replica's applied data is behind its primary "
               "(Seconds_Behind_Master); none while its SQL thread is stopped"),
    MetricSpec("db.replica_io_running", "bool", "The replica's IO thread (fetching the "
               "primary's binary log) is running"),
    MetricSpec("db.replica_sql_running", "bool", "The replica's SQL thread (applying it) is "
               "running"),
    MetricSpec("db.replica_running", "bool", "Both replica threads are running (0: replication "
               "is broken or stopped; db_replica_broken)"),
)

STATUS_SQL = {"mariadb": "SHOW ALL SLAVES STATUS", "mysql": "SHOW REPLICA STATUS"}
_NAMES = {  # our field -> the column, MariaDB/MySQL 5.7 spelling first, then MySQL 8's
    "io": ("Slave_IO_Running", "Replica_IO_Running"),
    "sql": ("Slave_SQL_Running", "Replica_SQL_Running"),
    "lag": ("Seconds_Behind_Master", "Seconds_Behind_Source"),
    "source": ("Master_Host", "Source_Host"),
    "port": ("Master_Port", "Source_Port"),
}


@dataclass(frozen=True)
class ReplicaStatus:
    source: str                   # "host:port" of the primary (the first, with several)
    io_running: bool
    sql_running: bool
    lag_s: float | None           # None while the SQL thread is stopped (the server says NULL)
    last_error: str | None        # the last IO or SQL error text, if any

    def values(self) -> dict[str, float | None]:
        return {"db.replica": 1.0, "db.replica_lag_s": self.lag_s,
                "db.replica_io_running": float(self.io_running),
                "db.replica_sql_running": float(self.sql_running),
                "db.replica_running": float(self.io_running and self.sql_running)}


def _col(row: Mapping[str, Any], field: str) -> Any:
    for name in _NAMES[field]:
        if name in row:
            return row[name]
    return None


def parse(rows: Sequence[Mapping[str, Any]]) -> ReplicaStatus | None:
    """The status rows (column name -> value) as one ``ReplicaStatus``; None for a primary."""
    if not rows:
        return None
    lags = [_col(r, "lag") for r in rows]
    errors = [str(r.get(k) or "").strip() for r in rows
              for k in ("Last_SQL_Error", "Last_IO_Error")]
    first = rows[0]
    return ReplicaStatus(
        source=f"{_col(first, 'source')}:{_col(first, 'port')}",
        io_running=all(str(_col(r, "io")) == "Yes" for r in rows),
        sql_running=all(str(_col(r, "sql")) == "Yes" for r in rows),
        lag_s=None if any(v is None for v in lags) else max(float(v) for v in lags),
        last_error=next((e for e in errors if e), None))


def describe(status: ReplicaStatus | None) -> str:
    """One line for ``check`` and the page: the role, and for a replica its state."""
    if status is None:
        return "role: primary (replicates from no server)"
    threads = (f"IO thread {'running' if status.io_running else 'STOPPED'}, "
               f"SQL thread {'running' if status.sql_running else 'STOPPED'}")
    lag = "unknown" if status.lag_s is None else f"{status.lag_s:g} s"
    text = f"role: replica of {status.source}, lag {lag}, {threads}"
    return text + (f"; last error: {status.last_error}" if status.last_error else "")
