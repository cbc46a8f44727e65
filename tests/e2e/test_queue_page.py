"""The queue area in headless Chromium against a real gunicorn and a real Redis: a queue that is
not shrinking reads "not draining", one that drains shows its ETA, and a queue that cannot be
read shows why -- names and errors from the monitored system as text, never markup (issue 4)."""
from __future__ import annotations

import json

import pytest
import redis

from tests.support.auth_helpers import open_logged_in
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def server(tmp_path, make_redis, mariadb):
    r = make_redis()
    cfg = tmp_path / "dashboard.toml"
    cfg.write_text(
        f'[redis]\nurl = "{r.url}"\n'
        f'[mysql]\nurl = "{mariadb.root_url}"\n'
        f'[[queues]]\nname = {json.dumps(EVIL)}\nkind = "redis-list"\nkey = "q:stuck"\n'
        f'[[queues]]\nname = "emails"\nkind = "redis-list"\nkey = "q:emails"\n'
        f'[[queues]]\nname = "orders"\nkind = "sql"\ntable = "no_such_db.jobs"\n')
    client = redis.Redis.from_url(r.url)
    client.rpush("q:stuck", *range(40))
    client.rpush("q:emails", *range(1000))
    s = DashboardServer(tmp_path / "data", config=cfg)
    s.start()
    yield s, client
    s.stop()


def test_queue_area_says_not_draining_shows_the_eta_and_the_read_error_as_text(server):
    s, client = server
    with chromium() as ctx:
        page, events = open_logged_in(ctx, s)
        dialogs = events["dialogs"]
        page.wait_for_selector("#queue-drain-note", state="attached", timeout=15000)

        def worker_takes_jobs_until_an_eta_shows() -> str | None:
            client.lpop("q:emails", 20)
            note = page.text_content("#queue-drain-note")
            eta = [p for p in note.split(" · ") if p.startswith("emails: ")]
            return note if eta and eta[0].endswith((" s", " min", " h")) else None
        note = wait_until(worker_takes_jobs_until_an_eta_shows, timeout=20, interval=0.3)
        assert f"{EVIL}: not draining" in note
        wait_until(lambda: "orders" in (page.text_content("#queue-errors") or ""), timeout=10)
        assert "no_such_db.jobs" in page.text_content("#queue-errors")
        assert page.evaluate("document.querySelectorAll('section[data-area=queue] img').length") == 0
        assert dialogs == []
