"""Top statements from snapshot increments: windows, shares, flags (pure, explicit times)."""
from __future__ import annotations

from datetime import timezone

from dashboard.collectors.mysql_statements import Inc, StatementBook
from dashboard.collectors.mysql_text import normalize_sql

T0 = 1_800_000_000.0


def book_at(clock: list[float]) -> StatementBook:
    return StatementBook(slow_ms=1000, tz=timezone.utc, clock=lambda: clock[0])


def test_windows_sum_only_the_increments_inside_them():
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


def test_a_statement_new_since_monitoring_began_and_slow_is_flagged_but_an_old_one_only_slow():
    now = [T0]
    b = book_at(now)
    b.add(T0, {}, [("old", None, "SELECT old")], baseline=True)
    b.add(T0 + 15, {"old": Inc(1, 2000, 2000), "new": Inc(1, 1500, 1500)}, [("new", None, "SELECT new")])
    now[0] = T0 + 20
    flags = {r["id"]: r["flags"] for r in b.top("5m")["rows"]}
    assert flags == {"old": ["slow"], "new": ["new_and_slow"]}


def test_a_statement_twice_as_slow_as_over_the_previous_day_is_flagged_regressed():
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


def test_statements_from_the_process_list_lose_their_values_and_are_cut():
    sql = ("SELECT * FROM users /* admin */ WHERE email = 'ann@example.com' AND id IN (1, 2, 3)"
           " AND token = \"s3cr'et\" AND x = 0x1F -- trailing\n LIMIT 10")
    assert normalize_sql(sql) == "SELECT * FROM users WHERE email = ? AND id IN (...) AND token = ? AND x = ? LIMIT ?"
    assert normalize_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')") == "INSERT INTO t VALUES (...)"
    assert normalize_sql("SELECT t1.c2 FROM `t 3`") == "SELECT t1.c2 FROM `t 3`"
    assert normalize_sql("SELECT 'unterminated because the server cut it") == "SELECT ?"
    long = normalize_sql("SELECT " + ", ".join(f"col{i}" for i in range(200)))
    assert len(long) == 500 and long.endswith("…")
