"""Many queues on the live page, in headless Chromium against a real gunicorn and a real Redis
(issue 9): the queue panels draw only the busiest queues, a note says how many of how many, and
a table lists every queue; a queue's name in that table opens the page drawing that queue.
A queue that cannot be read keeps its reason on the page, and queue names such as __proto__ or
constructor are names like any other."""
from __future__ import annotations

import json

import pytest
import redis
import requests

from dashboard.demo import services as devservices
from tests.support.auth_helpers import add_token, browser_login, open_logged_in
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

EVIL = "<img src=x onerror=alert(1)>"
BROKEN = "broken"          # its key holds a string: every read is WRONGTYPE, the queue's reason
# 30 queues: q01 holds 1 job, q02 holds 2 ... q30 holds 30; the evil name holds none; names
# that are Object.prototype's own ("__proto__" busy, "constructor" empty) are queues like any other.
DEPTHS = {f"q{i:02d}": i for i in range(1, 31)}
DEPTHS[EVIL] = 0
DEPTHS["__proto__"] = 40
DEPTHS["constructor"] = 0
DEPTHS[BROKEN] = -1
N = len(DEPTHS)                                                   # 34
# The unreadable queue first (so its reason is in view), then by jobs pending.
BUSIEST = [BROKEN] + sorted(DEPTHS, key=lambda q: -DEPTHS[q])[:9]   # __proto__, q30 ... q23

TRACE_NAMES = """() => {
  const d = document.getElementById('chart-queue-pending');
  return d && d.data ? d.data.map(t => t.name) : null;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One Redis and one dashboard for the module's tests (they only read): each costs seconds.
    tmp_path = tmp_path_factory.mktemp("queues")
    r = devservices.start_redis(tmp_path / "redis")
    client = redis.Redis.from_url(r.url)
    cfg = tmp_path / "dashboard.toml"
    text = f'[redis]\nurl = "{r.url}"\n'
    for i, (name, depth) in enumerate(DEPTHS.items()):
        text += f'[[queues]]\nname = {json.dumps(name)}\nkind = "redis-list"\nkey = "q:{i}"\n'
        if depth > 0:
            client.rpush(f"q:{i}", *range(depth))
        elif depth < 0:
            client.set(f"q:{i}", "not a list")
    cfg.write_text(text)
    s = DashboardServer(tmp_path / "data", config=cfg)
    try:
        s.start()
    except BaseException:
        r.stop()
        raise
    token = add_token(s.data_dir, "viewer")

    def queues_stored() -> bool:
        r = requests.get(s.url + "/api/latest", headers={"Authorization": f"Bearer {token}"},
                         timeout=5)
        names = {x["labels"].get("queue") for x in r.json().get("samples", [])
                 if x["source"] == "queue" and ("queue.pending" in x["values"] or x.get("error"))}
        return len(names) == N
    # The busiest are those of the newest stored tick: open the page once one is stored.
    try:
        wait_until(queues_stored, timeout=20, interval=0.3, message=lambda: s.log()[-2000:])
        yield s
    finally:
        s.stop()
        r.stop()


def reasons(page) -> list[str]:
    return page.eval_on_selector_all("#queue-errors p.notice", "ps => ps.map(p => p.textContent)")


def test_of_34_queues_only_the_10_busiest_are_drawn_and_the_rest_are_listed(server):
    with chromium() as ctx:
        page, events = open_logged_in(ctx, server)
        dialogs = events["dialogs"]
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)

        pending = sorted(BUSIEST[1:])                      # the unreadable queue has no depth
        assert sorted(page.evaluate(TRACE_NAMES)) == pending
        # Live samples of the other 24 queues (constructor among them) add no trace.
        seq = page.evaluate("() => window.dashboardLive.state.lastSeq")
        wait_until(lambda: page.evaluate("() => window.dashboardLive.state.lastSeq") > seq + 70,
                   timeout=15, message="no live queue samples")
        assert sorted(page.evaluate(TRACE_NAMES)) == pending

        note = page.locator("#queue-shown")
        assert note.is_visible()
        assert "Drawing the 10 busiest of 34 queues" in note.text_content()
        assert "24 more queues" in note.text_content()

        # Why the unreadable queue is unreadable is said above the panels, not just "unreadable".
        wait_until(lambda: reasons(page), timeout=10, message="no queue error shown")
        assert len(reasons(page)) == 1 and reasons(page)[0].startswith(BROKEN + ": ")
        assert "WRONGTYPE" in reasons(page)[0]
        assert page.locator("#queue-errors").is_visible()

        page.click("#queue-table summary")
        rows = page.locator("#queue-table tbody tr")
        wait_until(lambda: rows.count() == N, timeout=10, message=lambda: f"{rows.count()} rows")
        names = [rows.nth(i).get_attribute("data-queue") for i in range(N)]
        assert names[:10] == BUSIEST                       # unreadable, then busiest first
        assert names[-2:] == [EVIL, "constructor"]         # the empty ones, by name
        assert rows.nth(N - 2).locator("a").text_content() == EVIL   # shown as text, not markup
        assert page.evaluate("document.querySelectorAll('section[data-area=queue] img').length") == 0
        drawn = [rows.nth(i).locator("td").last.text_content() for i in range(N)]
        assert drawn == ["yes"] * 10 + [""] * (N - 10)
        assert rows.nth(0).locator("td").nth(1).text_content() == "unreadable"
        assert rows.nth(1).locator("td").nth(1).text_content() == "40"     # __proto__
        # "__proto__" was kept as a queue, not written onto every object's prototype.
        assert page.evaluate("() => ({}).pending === undefined && ({}).error === undefined")

        # A queue that is not drawn: its name opens the page drawing that queue.
        page.locator('#queue-table tr[data-queue="q11"] a').click()
        page.wait_for_url(lambda url: url.endswith("/?queue=q11"))
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)
        assert page.evaluate(TRACE_NAMES) == ["q11"]
        assert "Drawing 1 chosen of 34 queues" in page.text_content("#queue-shown")
        assert dialogs == []


def test_a_chosen_queue_keeps_the_pages_other_parameters_and_every_unreadable_queues_reason(server):
    with chromium() as ctx:
        page = ctx.new_page()
        browser_login(page, server)
        page.goto(server.url + "/?host=app1&queue=q11")
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)
        assert page.evaluate(TRACE_NAMES) == ["q11"]

        # The unreadable queue is not drawn now; its reason is still above the panels.
        wait_until(lambda: reasons(page), timeout=10, message="no queue error shown")
        assert reasons(page)[0].startswith(BROKEN + ": ") and "WRONGTYPE" in reasons(page)[0]

        assert page.get_attribute("#queue-shown a", "href") == "/?host=app1"
        page.click("#queue-table summary")
        link = page.locator('#queue-table tr[data-queue="q12"] a')
        link.wait_for(timeout=10000)
        assert link.get_attribute("href") == "/?host=app1&queue=q12"
        assert (page.locator('#queue-table tr[data-queue="__proto__"] a').get_attribute("href")
                == "/?host=app1&queue=__proto__")
        link.click()
        page.wait_for_url(lambda url: url.endswith("/?host=app1&queue=q12"))
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=20000)
        assert page.evaluate(TRACE_NAMES) == ["q12"]
