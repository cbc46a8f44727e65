"""``python -m dashboard migrate-store --to postgresql://…``: a SQLite data dir's users, sessions,
tokens, alerts, silences, outbox, link uses, probe days, statements and report deliveries,
copied into PostgreSQL; run again, it goes on and copies nothing twice (issue 16)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from alerts.outbox import Policy
from dashboard import alerting
from dashboard.auth.accounts import Accounts
from dashboard.config import load as config
from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.alerts import AlertStateRepo
from dashboard.store.link_uses import LinkUsesRepo
from dashboard.store.pg import ConnParams, PgConnection
from dashboard.store.probe_days import ProbeDaysRepo
from dashboard.store.reports import ReportsRepo
from dashboard.store.rollups import HourBlock
from dashboard.store.statements import StatementsRepo
from tests.support.alert_helpers import Clock, drain, pool
from tests.support.v1_store import V1Writer

ROOT = Path(__file__).resolve().parent.parent
PW = "correct horse battery"


def migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DASHBOARD_CONFIG": "", "DASHBOARD_DATA_DIR": str(data_dir)}
    env.pop("DASHBOARD_STORE_URL", None)
    return subprocess.run([sys.executable, "-m", "dashboard", "migrate-store", "--to", url],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def fill_sqlite(data_dir: Path, receiver_url: str) -> dict[str, object]:
    """A data dir as a running dashboard leaves it: what each area keeps."""
    settings = config.from_dict({"data_dir": str(data_dir), "notify": [
        {"kind": "webhook", "name": "hook", "url": receiver_url}],
        "rules": {"db_pool_utilization": {"for_s": 0}}})
    store = Store(data_dir)
    acc = Accounts(store.connect, data_dir=data_dir)
    ann = acc.create_user("ann", "admin", PW)
    tok, token = acc.create_token("viewer", "grafana", created_by="ann")
    session = acc.start_session(ann.id)
    clock = Clock()
    svc = alerting.build(settings, store, {}, policy=Policy(group_window_s=0), clock=clock)
    [fired] = svc.process([pool(99.0, clock.now)], clock.now)
    drain(svc, clock)
    silence = svc.state.add_silence("host_cpu", {"host": "web-1"}, clock.now, clock.now + 3600,
                                    "ann", "maintenance", clock.now)
    svc.close()
    LinkUsesRepo(store.connect).use("nonce-1", "ack", clock.now, clock.now + 60, 0)
    days = ProbeDaysRepo(data_dir)
    days.save([("2026-12-04", "home", 10, 12)])
    days.close()
    StatementsRepo(store.connect).add("2026-12-04", 500_000, [("k1", "shop", "SELECT 1", None)],
                                      [("k1", 3.0, 30.0, 12.0, 9.0, 3.0)])
    reports = ReportsRepo(store.connect)
    reports.claim_delivery("2026-12-03", clock.now, "ops@example.com", 600)
    reports.delivery_sent("2026-12-03", clock.now)
    reports.close()
    acc.close()
    store.close()
    return {"ann": ann.id, "token": token, "token_id": tok.id, "session": session,
            "alert": fired.alert_id, "silence": silence}


def test_an_sqlite_data_dir_moves_to_postgresql_and_a_second_run_copies_nothing_twice(
        tmp_path, pg_url: str, webhook_receiver) -> None:
    data = tmp_path / "data"
    made = fill_sqlite(data, webhook_receiver.url)
    r = migrate(data, pg_url)
    assert r.returncode == 0, r.stderr
    assert urlsplit(pg_url).password not in r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert "migrate-store: auth_users: 1 rows, 1 new" in lines
    assert "migrate-store: alert_events: 1 rows, 1 new" in lines

    # The dashboard on PostgreSQL (another data dir: nothing read from the file) sees it all.
    store = Store(tmp_path / "elsewhere", store_url=pg_url)
    try:
        acc = Accounts(store.connect, data_dir=tmp_path / "elsewhere")
        assert acc.authenticate("ann", PW) is not None
        assert acc.verify_token(made["token"]) is not None
        assert acc.session_user(made["session"]) == made["ann"]
        newcomer = acc.create_user("bob", "viewer", PW)            # ids go on past the copied
        assert newcomer.id > made["ann"]
        acc.close()
        conn = store.connect()
        try:
            repo = AlertStateRepo(conn)
            assert repo.episode(made["alert"])["status"] == "firing"
            assert [e["kind"] for e in repo.events(made["alert"])] == ["firing"]
            assert repo.silence(made["silence"])["reason"] == "maintenance"
            assert conn.execute("SELECT state FROM outbox_messages").fetchall() == [("delivered",)]
        finally:
            conn.close()
        assert not LinkUsesRepo(store.connect).use("nonce-1", "ack", 1, 2, 0)  # used already
        assert StatementsRepo(store.connect).day("2026-12-04") == {"k1": (3.0, 30.0, 12.0, 9.0, 3.0)}
        reports = ReportsRepo(store.connect, store.history_connect)
        assert reports.claim_delivery("2026-12-03", 0, "x", 600) == "already sent"
        reports.close()
        days = ProbeDaysRepo(tmp_path / "elsewhere", pg_url)
        assert days.counts("2026-12-04", "home") == (10, 12)
        days.close()
    finally:
        store.close()

    again = migrate(data, pg_url)
    assert again.returncode == 0, again.stderr
    assert "migrate-store: auth_users: 1 rows, 0 new" in again.stderr.splitlines()
    assert "migrate-store: done: 0 rows copied" in again.stderr
    c = PgConnection(ConnParams.from_url(pg_url))
    assert c.execute("SELECT count(*) FROM auth_users").fetchone() == (2,)   # ann and bob
    c.close()


def test_a_run_cut_short_goes_on_where_it_stopped(tmp_path, pg_url: str, webhook_receiver) -> None:
    data = tmp_path / "data"
    fill_sqlite(data, webhook_receiver.url)
    # As if a first run had copied the users and died: that row is there, nothing else is.
    Store(tmp_path / "x", store_url=pg_url).close()
    c = PgConnection(ConnParams.from_url(pg_url))
    src = sqlite3.connect(str(data / "history.sqlite3"))
    row = src.execute("SELECT id, name, role, pw_hash, created, last_login FROM auth_users").fetchone()
    src.close()
    c.execute("INSERT INTO auth_users (id, name, role, pw_hash, created, last_login)"
              " VALUES (?, ?, ?, ?, ?, ?)", row)
    c.close()
    r = migrate(data, pg_url)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "migrate-store: auth_users: 1 rows, 0 new" in lines
    assert "migrate-store: auth_tokens: 1 rows, 1 new" in lines


def test_a_bad_target_stops_with_one_line_and_status_2(tmp_path) -> None:
    r = migrate(tmp_path, "mysql://u:topsecret@h:3306/db")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "migrate-store: --to: expected postgresql://user:pass@host:port/db,"
        " got 'mysql://u:***@h:3306/db'"]


def history_of(store: Store) -> tuple[object, ...]:
    """What a user sees of a history: every raw sample, the rollups, the newest samples."""
    raw = [(s.seq, s.source, s.ts, s.values, s.labels, s.error) for s in store.after(0)]
    rolled = store.rollups("host.cpu_percent", 0, 2e9)
    latest = [(s.seq, s.source, s.labels) for s in store.latest(within_s=1e12)]
    return raw, rolled, latest, store.last_seq()


def test_the_history_moves_with_its_sequence_numbers_and_a_second_run_copies_nothing_twice(
        tmp_path, pg_url: str) -> None:
    data = tmp_path / "data"
    store = Store(data)
    t0 = 1_800_000_000.0
    for i in range(300):                         # 5 minutes at 1 s; queues come and go
        store.append([Sample("host", t0 + i, {"host.cpu_percent": float(i % 50)})]
                     + [Sample("queue", t0 + i, {"queue.pending": float(q)}, {"queue": f"q{q}"})
                        for q in range(3 if i % 7 else 1)]
                     + ([Sample("queue", t0 + i, {"queue.up": 0.0}, {"queue": "x"}, "down")]
                        if i == 250 else []))
    store.rollup(now=t0 + 300)
    store.write_rollup_blocks([HourBlock("host.cpu_percent", {"host": "old"}, 1_799_996_400,
                                         {1_799_996_400: (2, 3.0, 1.0, 2.0)}, {})])
    before = history_of(store)
    store.close()

    r = migrate(data, pg_url)
    assert r.returncode == 0, r.stderr
    assert "migrate-store: history ticks: 300 rows, 300 new" in r.stderr.splitlines()
    moved = Store(tmp_path / "elsewhere", store_url=pg_url)
    try:
        assert history_of(moved) == before
        # Numbering and names go on past the copied ones.
        [s] = moved.append([Sample("db", t0 + 400, {"db.new_metric": 1.0}, {"db": "main"})])
        assert s.seq == before[3] + 1      # type: ignore[operator]
        assert moved.series("db.new_metric", 0) == {'db.new_metric{db="main"}': [(t0 + 400, 1.0)]}
    finally:
        moved.close()
    again = migrate(data, pg_url)
    assert again.returncode == 0, again.stderr
    assert "migrate-store: history ticks: nothing (more) to copy" in again.stderr.splitlines()
    assert "migrate-store: history rollups: 5 rows, 0 new" in again.stderr.splitlines()


def test_a_target_with_a_history_of_its_own_is_refused_in_one_line(tmp_path, pg_url: str) -> None:
    data = tmp_path / "data"
    store = Store(data)
    store.append([Sample("host", 1.0, {"host.cpu_percent": 1.0})])
    store.close()
    other = Store(tmp_path / "other", store_url=pg_url)
    other.append([Sample("queue", 1.0, {"queue.pending": 1.0}, {"queue": "q"})])
    other.close()
    r = migrate(data, pg_url)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        "migrate-store: the target already holds a history of its own")


def test_a_data_dir_of_the_version_1_layout_is_converted_then_moved(tmp_path, pg_url: str) -> None:
    data = tmp_path / "data"
    v1 = V1Writer(data)
    now = time.time()
    seqs = [v1.sample(now - 60 + i, "host", {"host.cpu_percent": float(i)}) for i in range(5)]
    v1.minute("host.cpu_percent", {}, int(now // 60) * 60 - 7200, [1.0, 3.0])
    v1.conn.close()
    r = migrate(data, pg_url)
    assert r.returncode == 0, r.stderr
    assert "migrate-store: history: converting the file to the time-series layout first" in r.stderr
    moved = Store(tmp_path / "elsewhere", store_url=pg_url)
    try:
        assert [(s.seq, s.values) for s in moved.after(0)] == [
            (seq, {"host.cpu_percent": float(i)}) for i, seq in enumerate(seqs)]
        [rows] = moved.rollups("host.cpu_percent", now - 7300, now).values()
        assert [(m["n"], m["min"], m["max"]) for m in rows][0] == (2, 1.0, 3.0)
    finally:
        moved.close()
