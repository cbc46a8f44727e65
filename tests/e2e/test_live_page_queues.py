"""Many queues on the live page, in headless Chromium against a real gunicorn and a real Redis
(issue 9): the queue panels draw only the busiest queues, a note says how many of how many, and
a table lists every queue; a queue's name in that table opens the page drawing that queue."""
from __future__ import annotations

import json

import pytest
import redis
import requests

from tests.auth_helpers import add_token, browser_login
from tests.browser import chromium
from tests.server import DashboardServer
from tests.util import wait_until

EVIL = "<img src=x onerror=alert(1)>"
# 30 queues: q01 holds 1 job, q02 holds 2 ... q30 holds 30; the evil name holds none.
DEPTHS = {f"q{i:02d}": i for i in range(1, 31)}
DEPTHS[EVIL] = 0
BUSIEST = sorted(DEPTHS, key=lambda q: -DEPTHS[q])[:10]          # q30 ... q21

TRACE_NAMES = """() => {
  const d = document.getElementById('chart-queue-pending');
  return d && d.data ? d.data.map(t => t.name) : null;
}"""


@pytest.fixture
def server(tmp_path, make_redis):
    r = make_redis()
    client = redis.Redis.from_url(r.url)
    cfg = tmp_path / "dashboard.toml"
    text = f'[redis]\nurl = "{r.url}"\n'
    for i, (name, depth) in enumerate(DEPTHS.items()):
        text += f'[[queues]]\nname = {json.dumps(name)}\nkind = "redis-list"\nkey = "q:{i}"\n'
        if depth:
            client.rpush(f"q:{i}", *range(depth))
    cfg.write_text(text)
    s = DashboardServer(tmp_path / "data", config=cfg)
    s.start()
    token = add_token(s.data_dir, "viewer")

    def queues_stored() -> bool:
        r = requests.get(s.url + "/api/latest", headers={"Authorization": f"Bearer {token}"},
                         timeout=5)
        names = {x["labels"].get("queue") for x in r.json().get("samples", [])
                 if x["source"] == "queue" and "queue.pending" in x["values"]}
        return len(names) == len(DEPTHS)
    # The busiest are those of the newest stored tick: open the page once one is stored.
    wait_until(queues_stored, timeout=20, interval=0.3, message=lambda: s.log()[-2000:])
    yield s
    s.stop()


def test_of_31_queues_only_the_10_busiest_are_drawn_and_the_rest_are_listed(server):
    with chromium() as ctx:
        page = ctx.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        browser_login(page, server)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)

        assert sorted(page.evaluate(TRACE_NAMES)) == sorted(BUSIEST)
        # Live samples of the other 21 queues add no trace.
        seq = page.evaluate("() => window.dashboardLive.state.lastSeq")
        wait_until(lambda: page.evaluate("() => window.dashboardLive.state.lastSeq") > seq + 60,
                   timeout=15, message="no live queue samples")
        assert sorted(page.evaluate(TRACE_NAMES)) == sorted(BUSIEST)

        note = page.locator("#queue-shown")
        assert note.is_visible()
        assert "Drawing the 10 busiest of 31 queues" in note.text_content()
        assert "21 more queues" in note.text_content()

        page.click("#queue-table summary")
        rows = page.locator("#queue-table tbody tr")
        wait_until(lambda: rows.count() == 31, timeout=10, message=lambda: f"{rows.count()} rows")
        names = [rows.nth(i).get_attribute("data-queue") for i in range(31)]
        assert names[:10] == BUSIEST                       # busiest first
        assert names[-1] == EVIL                           # shown as text, not markup
        assert page.locator("#queue-table tbody tr").last.locator("a").text_content() == EVIL
        assert page.evaluate("document.querySelectorAll('section[data-area=queue] img').length") == 0
        drawn = [rows.nth(i).locator("td").last.text_content() for i in range(31)]
        assert drawn == ["yes"] * 10 + [""] * 21

        # A queue that is not drawn: its name opens the page drawing that queue.
        page.locator('#queue-table tr[data-queue="q11"] a').click()
        page.wait_for_url(lambda url: url.endswith("/?queue=q11"))
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)
        assert page.evaluate(TRACE_NAMES) == ["q11"]
        assert "Drawing 1 chosen of 31 queues" in page.text_content("#queue-shown")
        assert dialogs == []
