"""A real server (gunicorn, eventlet) with store_url: what it reads off the event loop, in an OS
thread (dashboard/offload.py: the daily summary, its statements and alerts), reaches PostgreSQL
on connections of that thread's own, never the loop's (issue 16)."""
from __future__ import annotations

import time

import requests

from dashboard.auth.accounts import Accounts
from dashboard.store import Store
from tests.support.server import DashboardServer


def test_the_daily_summary_is_read_from_postgresql_off_the_event_loop(tmp_path, pg_url) -> None:
    data = tmp_path / "data"
    with DashboardServer(data, env={"DASHBOARD_STORE_URL": pg_url}) as server:
        token = add_token_on(data, pg_url)
        headers = {"Authorization": f"Bearer {token}"}
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        for _ in range(3):                 # again and again: pooled connections come back
            r = requests.get(f"{server.url}/api/reports/daily", params={"date": day},
                             headers=headers, timeout=60)
            assert r.status_code == 200, r.text[:500]
            assert r.json()["date"] == day
        r = requests.get(f"{server.url}/api/alerts", headers=headers, timeout=30)
        assert r.status_code == 200
        assert "Traceback" not in server.log(), server.log()[-3000:]


def add_token_on(data, pg_url: str) -> str:
    store = Store(data, store_url=pg_url)
    try:
        acc = Accounts(store.connect, data_dir=data)
        try:
            return acc.create_token("viewer", "test", created_by="test")[1]
        finally:
            acc.close()
    finally:
        store.close()
