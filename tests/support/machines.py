"""Test machines A, B and C for the multi-machine tests of issue 16 (tests/support/netns.py).

C runs Redis (the message queue and the leader lock), the monitored MariaDB and, with
``postgresql_on_c``, PostgreSQL (its address only, a data dir of its own); A and B run the
dashboard (``Machine.run``: ``collect``, ``serve --web-only``) each with a data dir of its own
and the same ``DASHBOARD_STORE_URL`` and ``DASHBOARD_MESSAGE_QUEUE``. The test process is the
webhook receiver every machine reaches (the network's gateway address).

Used by tests/test_partition.py and tests/test_two_machines.py.
"""
from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import redis

from dashboard.auth.accounts import Accounts
from dashboard.demo import services as devservices
from dashboard.store import Store
from tests.support import netns
from tests.support.pg import PgCluster
from tests.support.receivers import WebhookReceiver
from tests.support.server import DashboardServer

LOCK_KEY = "dashboard:collector-leader"
STOOD_DOWN = "standing down as collector leader"


class StoreEnv:
    """How a machine gets its store (``env``), and how the test reads it (``open``: a
    ``Store`` of that machine's data dir and the shared store). ``url`` None: SQLite, one data
    dir both machines share (they run on one kernel)."""

    def __init__(self, tmp_path: Path, url: str | None) -> None:
        self.tmp_path, self.url = tmp_path, url

    def data_dir(self, machine: str) -> Path:
        return self.tmp_path / ("data" if self.url is None else f"data-{machine}")

    def env(self, machine: str) -> dict[str, str]:
        out = {"DASHBOARD_DATA_DIR": str(self.data_dir(machine))}
        if self.url is not None:
            out["DASHBOARD_STORE_URL"] = self.url
        return out

    def open(self, machine: str) -> Store:
        self.data_dir(machine).mkdir(parents=True, exist_ok=True)
        return Store(self.data_dir(machine), store_url=self.url)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of the store both machines share (the SQLite file, or PostgreSQL on C)."""
        store = self.open("a")
        try:
            conn = store.connect()
            try:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
            finally:
                conn.close()
        finally:
            store.close()

    def token(self, role: str = "viewer") -> str:
        """An API token (``Authorization: Bearer``) every web instance of this store accepts."""
        store = self.open("a")
        acc = Accounts(store.connect)
        try:
            return acc.create_token(role, "machines", created_by="test")[1]
        finally:
            acc.close()
            store.close()


@dataclass
class Site:
    """The network, C's services and the receiver; ``run`` starts the dashboard on a machine."""

    net: netns.Network
    rds: devservices.Redis
    db: devservices.MariaDB
    receiver: WebhookReceiver
    tmp_path: Path
    servers: list[DashboardServer] = field(default_factory=list)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.rds.url, socket_timeout=5)

    def run(self, machine: str, command: str, config: Path, store: StoreEnv,
            args: tuple[str, ...] = (), wait: bool = False) -> DashboardServer:
        """``python -m dashboard COMMAND`` on ``machine`` (its address, its namespace)."""
        s = DashboardServer(self.tmp_path / f"log-{machine}-{command}{''.join(args)}",
                            command=command, args=args, config=config,
                            host=self.net.addresses[machine],
                            prefix=tuple(self.net.command(machine, [])),
                            env={"DASHBOARD_MESSAGE_QUEUE": self.rds.url, **store.env(machine)})
        self.servers.append(s)
        return s.start(wait=wait)

    def leader(self) -> DashboardServer | None:
        """The process holding the collector lock (among those ``run`` started), if any."""
        pid = pid_of(self.redis().get(LOCK_KEY))
        return next((s for s in self.servers if s.proc and s.proc.pid == pid), None)

    def monitor_users(self) -> tuple[str, str]:
        """(the collector's MariaDB URL, a URL for the test's load connections)."""
        return (self.db.create_monitor_user("alertmon", secrets.token_urlsafe(12),
                                            ["PROCESS", "BINLOG MONITOR"]),
                self.db.create_monitor_user("loader", secrets.token_urlsafe(12), ["USAGE"]))

    def kill_all(self) -> None:
        for s in self.servers:
            s.kill()


@contextlib.contextmanager
def site(net: netns.Network, tmp_path: Path) -> Iterator[Site]:
    """Machines C, A and B; Redis and MariaDB running on C; the receiver on the gateway."""
    for role in ("c", "a", "b"):
        net.host(role)
    # No password on this private test network: Redis answers other hosts only without
    # protected mode.
    rds = net.service("c", devservices.Redis, tmp_path / "redis", 6379,
                      extra_args=("--protected-mode", "no"))
    db = net.service("c", devservices.MariaDB, tmp_path / "mariadb", 3306,
                     performance_schema=False, extra_args=(), start_timeout=180.0)
    receiver: WebhookReceiver | None = None
    made: Site | None = None
    try:
        rds.start()
        db.start()
        receiver = WebhookReceiver(host=net.gateway).start()
        made = Site(net, rds, db, receiver, tmp_path)
        yield made
    finally:
        if made is not None:
            made.kill_all()
        if receiver is not None:
            receiver.stop()
        db.kill()
        rds.kill()


@contextlib.contextmanager
def postgresql_on_c(net: netns.Network) -> Iterator[tuple[PgCluster, str]]:
    """PostgreSQL on machine C (its address only; A and B may log in): the cluster (``stop``,
    ``start`` for outages) and the ``store_url`` of a fresh database on it."""
    cluster = PgCluster(host=net.addresses["c"], port=5432, prefix=net.command("c", []),
                        allow=str(net.subnet))
    try:
        cluster.start()
        yield cluster, cluster.url(cluster.create_database())
    finally:
        cluster.remove()


def events(receiver: WebhookReceiver, rule: str = "db_pool_utilization") -> list[tuple[str, str]]:
    """(event, Idempotency-Key) of each of ``rule``'s alerts the receiver got, in order."""
    return [(a["event"], r.header("Idempotency-Key") or "") for r in receiver.requests
            for a in r.json()["alerts"] if a["rule"] == rule]


def pid_of(holder: bytes | str | None) -> int | None:
    text = holder.decode() if isinstance(holder, bytes) else holder
    return int(text.split(":")[1]) if text else None


def delivered(store: StoreEnv) -> int:
    return int(store.query("SELECT COUNT(*) FROM outbox_messages WHERE state = 'delivered'")[0][0])


def latest_threads(store: StoreEnv, machine: str) -> int | None:
    """The newest ``db.threads_connected`` the store holds (None before the first)."""
    if store.url is None and not (store.data_dir(machine) / "history.sqlite3").exists():
        return None
    s = store.open(machine)
    try:
        v = next((x.values.get("db.threads_connected") for x in s.latest() if x.source == "db"
                  and "db.threads_connected" in x.values), None)
        return int(v) if v is not None else None
    finally:
        s.close()


def gaps(ts: list[float]) -> list[tuple[float, float]]:
    """(from, to) of each gap between consecutive times, longest first."""
    t = sorted(ts)
    return sorted(zip(t, t[1:]), key=lambda p: p[0] - p[1])
