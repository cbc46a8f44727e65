"""The database area in headless Chromium against a real gunicorn and a real MariaDB: the pool
gauge moves, a slow statement appears in "running now" and then in the top statements pushed
over Socket.IO, and statement text that looks like HTML is shown as text (issue 3)."""
from __future__ import annotations

import secrets
import threading

import pytest

from tests.support.auth_helpers import open_logged_in
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

EVIL = "<img src=x onerror=alert(1)>"
# The alias is part of the statement digest: this run's own, so the statement is "new" here even
# when another test ran a SLEEP with the same hostile alias on the session's MariaDB before.
RUN = secrets.token_hex(4)

CELLS = """sel => Array.from(document.querySelectorAll(sel)).map(e => e.textContent)"""


@pytest.fixture
def server(tmp_path, mariadb):
    url = mariadb.create_monitor_user("dbmon_page", secrets.token_urlsafe(12),
                                      ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"])
    cfg = tmp_path / "dashboard.toml"
    cfg.write_text(f'[mysql]\nurl = "{url}"\ndigest_interval_s = 1\n')
    s = DashboardServer(tmp_path / "data", config=cfg)
    s.start()
    yield s
    s.stop()


def test_slow_statements_show_live_as_text_even_when_they_contain_markup(server, mariadb):
    with chromium() as ctx:
        page, events = open_logged_in(ctx, server)
        dialogs = events["dialogs"]
        page.locator("#db-extras").scroll_into_view_if_needed()     # drawn while in view
        page.wait_for_selector('#db-source[data-source="performance_schema"]', timeout=30000)
        wait_until(lambda: "connections open" in page.text_content("#db-gauge-text"), timeout=20)

        def run() -> None:
            with mysql_connect(mariadb.root_url) as conn, conn.cursor() as cur:
                cur.execute(f"SELECT SLEEP(4) AS `{EVIL} {RUN}`")
        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_until(lambda: any(EVIL in c for c in page.evaluate(CELLS, "#db-now-table td")),
                   timeout=20, message="the running statement never showed in 'running now'")
        t.join(10)

        page.click('[data-db-window="5m"]')
        wait_until(lambda: any(EVIL in c for c in page.evaluate(CELLS, "#db-top-table code")),
                   timeout=30, message="the statement never reached the top-statements table")
        page.click('[data-sort="avg_ms"]')
        first = page.evaluate(CELLS, "#db-top-table tbody tr:first-child code")
        assert first and EVIL in first[0]
        assert "new & slow" in page.text_content("#db-top-table tbody tr:first-child")
        assert page.evaluate("document.querySelectorAll('#db-extras img').length") == 0
        assert dialogs == []


PUSH_TWICE = """() => {
  const socket = window.dashboardLive.socket;
  socket.disconnect();                       // only the pushes below reach the lists now
  const push = socket.listeners('db_statements')[0];
  const row = (text, calls) => ({text: text, flags: [], schema: 'shop', calls: calls,
    total_ms: calls * 2, share_pct: 50, avg_ms: 2, max_ms: 3, rows_examined: 10, rows_sent: 1});
  const top = rows => ({top: {'1h': {rows: rows, calls: 30, total_ms: 60, avg_ms: 2, span_s: 3600}}});
  const body = () => document.querySelector('#db-top-table tbody');
  push(top([row('SELECT kept FROM a', 20), row('SELECT moved FROM b', 10)]));
  const before = Array.from(body().rows);
  const code = before[0].querySelector('code');
  getSelection().selectAllChildren(code);    // the user selects a statement to copy it
  push(top([row('SELECT kept FROM a', 20), row('SELECT moved FROM b', 11)]));
  const after = Array.from(body().rows);
  return {kept: after[0] === before[0] && before[0].isConnected, replaced: after[1] !== before[1],
          selected: getSelection().toString(), calls: after[1].cells[1].textContent,
          rows: after.length};
}"""


def test_a_push_leaves_unchanged_statement_rows_and_the_users_selection_alone(server):
    """The top-statements list is pushed every second while the workload runs. A row whose data
    did not change stays the same element: a statement the user selected to copy stays selected,
    and the page restyles only the rows that changed (issue 19). Before, every push rebuilt the
    table and dropped the selection."""
    with chromium() as ctx:
        page, events = open_logged_in(ctx, server)
        page.locator("#db-extras").scroll_into_view_if_needed()     # drawn while in view
        page.wait_for_selector('#db-source[data-source="performance_schema"]', timeout=30000)
        wait_until(lambda: "connections open" in page.text_content("#db-gauge-text"), timeout=20)
        got = page.evaluate(PUSH_TWICE)
        assert got["rows"] == 2
        assert got["kept"], "an unchanged row was rebuilt"
        assert got["selected"] == "SELECT kept FROM a"
        assert got["replaced"] and got["calls"] == "11"
        assert events["dialogs"] == []


def test_the_lists_below_the_fold_are_drawn_as_they_come_into_view(server):
    """Out of view, the database area keeps what is pushed without drawing it (at 1080p it is
    below the fold, and its lists changed the page every second, issue 19); scrolled to, it shows
    the newest at once."""
    with chromium(viewport=(1600, 600)) as ctx:
        page, _ = open_logged_in(ctx, server)
        page.wait_for_selector("body[data-charts-drawn]", timeout=30000)
        top = page.evaluate("document.getElementById('db-extras').getBoundingClientRect().top")
        assert top > 600, "the database area is not below the fold in this test's window"
        # The database's samples arrive every second while the area is out of view: not drawn.
        page.evaluate("""() => { window.__dbSamples = 0;
          window.dashboardLive.socket.on('samples', b => b.forEach(s => {
            if (s.source === 'db') window.__dbSamples++; })); }""")
        wait_until(lambda: page.evaluate("window.__dbSamples") >= 2, timeout=20)
        assert page.text_content("#db-gauge-text") == "waiting for the first sample…"
        page.locator("#db-extras").scroll_into_view_if_needed()
        wait_until(lambda: "connections open" in page.text_content("#db-gauge-text"), timeout=10,
                   message="the gauge was not drawn as the area came into view")
