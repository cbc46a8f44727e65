"""Top statements from snapshot increments: windows, shares, flags (pure, explicit times)."""
from __future__ import annotations

from datetime import timezone
from typing import Callable, Iterator

import pytest

from dashboard.collectors.mysql.statements import Inc, StatementBook
from dashboard.collectors.mysql.text import normalize_sql
from dashboard.store import Store
from dashboard.store.statements import StatementsRepo

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

T0 = 1_800_000_000.0


@pytest.fixture
def book_at(tmp_path) -> Iterator[Callable[[list[float]], StatementBook]]:
    """A book on the store's tables (as the MySQL collector gives it), its clock ``clock[0]``."""
    store = Store(tmp_path)
    repo = StatementsRepo(store.connect)
    yield lambda clock: StatementBook(slow_ms=1000, tz=timezone.utc, repo=repo,
                                      clock=lambda: clock[0])
    store.close()


def test_windows_sum_only_the_increments_inside_them(book_at):
    now = [T0]
    b = book_at(now)
    b.add(T0, {}, [("a", "shop", "SELECT a"), ("b", "shop", "SELECT b")], baseline=True)
    b.add(T0 + 60, {"a": Inc(10, 50.0, 9.0, 100, 10)})
    b.add(T0 + 3000, {"a": Inc(2, 10.0, 6.0), "b": Inc(1, 30.0, 30.0)})
    now[0] = T0 + 3010
    five = {r["id"]: r for r in b.top("5m")["rows"]}
    assert five["a"]["calls"] == 2 and five["a"]["total_ms"] == 10 and five["a"]["max_ms"] == 6
    assert five["b"]["share_pct"] == 75.0
    hour = {r["id"]: r for r in b.top("1h")["rows"]}
    assert hour["a"]["calls"] == 12 and hour["a"]["avg_ms"] == 5.0 and hour["a"]["max_ms"] == 9
    assert hour["a"]["rows_examined"] == 100 and hour["a"]["text"] == "SELECT a"
    now[0] = T0 + 3700                             # the first increment left the hour
    b.add(T0 + 3700, {})
    assert {r["id"]: r["calls"] for r in b.top("1h")["rows"]} == {"a": 2, "b": 1}
    assert b.top("1h", sort="avg_ms")["rows"][0]["id"] == "b"


def test_a_statement_new_since_monitoring_began_and_slow_is_flagged_but_an_old_one_only_slow(book_at):
    now = [T0]
    b = book_at(now)
    b.add(T0, {}, [("old", None, "SELECT old")], baseline=True)
    b.add(T0 + 15, {"old": Inc(1, 2000, 2000), "new": Inc(1, 1500, 1500)}, [("new", None, "SELECT new")])
    now[0] = T0 + 20
    flags = {r["id"]: r["flags"] for r in b.top("5m")["rows"]}
    assert flags == {"old": ["slow"], "new": ["new_and_slow"]}


def test_a_statement_twice_as_slow_as_over_the_previous_day_is_flagged_regressed(book_at):
    now = [T0 - 20 * 3600]
    b = book_at(now)
    b.add(now[0], {}, [("q", None, "SELECT q"), ("steady", None, "SELECT s")], baseline=True)
    for h in range(20, 2, -1):                     # yesterday to two hours ago: 10 ms each
        b.add(T0 - h * 3600, {"q": Inc(100, 1000, 20), "steady": Inc(100, 1000, 20)})
    now[0] = T0
    b.add(T0 - 60, {"q": Inc(50, 1250, 40), "steady": Inc(50, 600, 20)})
    rows = {r["id"]: r for r in b.top("1h")["rows"]}
    assert rows["q"]["flags"] == ["regressed"] and rows["q"]["baseline_avg_ms"] == 10
    assert rows["steady"]["flags"] == []


def test_statements_from_the_process_list_lose_their_values_and_are_cut(book_at):
    sql = ("SELECT * FROM users /* admin */ WHERE email = 'ann@example.com' AND id IN (1, 2, 3)"
           " AND token = \"s3cr'et\" AND x = 0x1F -- trailing\n LIMIT 10")
    assert normalize_sql(sql) == ("SELECT * FROM users WHERE email = ? AND id IN (...) AND token = ? "
                                  "AND x = ? LIMIT ?")
    assert normalize_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')") == "INSERT INTO t VALUES (...)"
    assert normalize_sql("SELECT t1.c2 FROM `t 3`") == "SELECT t1.c2 FROM `t 3`"
    assert normalize_sql("SELECT 'unterminated because the server cut it") == "SELECT ?"
    long = normalize_sql("SELECT " + ", ".join(f"col{i}" for i in range(200)))
    assert len(long) == 500 and long.endswith("…")


def test_texts_of_statements_not_called_for_a_month_are_pruned_and_memory_stays_bounded(book_at):
    """An application with varying SQL: 3,000 digests over 40 days, 75 new ones a day, each
    called once, plus one statement called every day and 500 there before monitoring began."""
    day = 86400.0
    now = [T0]
    b = book_at(now)
    b.add(T0, {}, [(f"base{i}", "shop", f"SELECT {i}") for i in range(500)], baseline=True)
    for d in range(40):
        now[0] = ts = T0 + d * day + 3600
        fresh = {f"d{d}-{i}": Inc(1, 2.0, 2.0) for i in range(75)}
        b.add(ts, {**fresh, "steady": Inc(10, 5.0, 1.0)},
              [(k, "shop", f"SELECT x IN ({k})") for k in [*fresh, "steady"]])
        b.prune(ts)                                  # the hourly job, once a day is enough here
        if d == 10:                                  # a fresh install keeps its baseline texts
            assert b.knows("base0") and b.knows("d0-0")
    # The day totals go back to the date 31 days ago (days 8..39); so do the texts.
    assert b.knows("steady") and b.knows("d39-74") and b.knows("d8-0")
    assert not b.knows("base0") and not b.knows("d7-74")
    texts = b._repo._db.execute("SELECT COUNT(*) FROM db_statement_texts").fetchone()[0]
    assert texts == len(b._known) == 32 * 75 + 1
    assert b.top("today", limit=1)["rows"][0]["text"].startswith("SELECT x IN")
    # A month-old statement that runs again gets its text back (from the next read).
    b.add(now[0] + 60, {"d0-0": Inc(1, 1.0, 1.0)}, [("d0-0", "shop", "SELECT x IN (d0-0)")])
    assert b.knows("d0-0")
    # The 5-minute and 1-hour windows forget what has not changed for an hour.
    now[0] += 2 * 3600
    b.add(now[0], {})
    assert b.top("1h")["rows"] == [] and b._hour == {} and len(b._intervals) == 0
