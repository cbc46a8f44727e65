from __future__ import annotations

from dashboard.collectors.rates import RateTracker, TrailingCounts, WindowedCounters


def test_first_observation_has_no_rate_and_the_second_is_per_second():
    r = RateTracker()
    assert r.rate("bytes", 1000, ts=10.0) is None
    assert r.rate("bytes", 3000, ts=12.0) == 1000.0


def test_rate_can_be_expressed_per_minute():
    r = RateTracker()
    r.rate("slow", 10, ts=0.0)
    assert r.rate("slow", 13, ts=30.0, per=60) == 6.0


def test_a_counter_reset_yields_no_rate_instead_of_a_negative_one():
    r = RateTracker()
    r.rate("q", 5000, ts=0.0)
    assert r.rate("q", 20, ts=1.0) is None          # server restarted
    assert r.rate("q", 50, ts=2.0) == 30.0          # and counting resumes from the new value


def test_delta_reports_increase_since_last_observation():
    r = RateTracker()
    assert r.delta("refused", 3) is None
    assert r.delta("refused", 7) == 4
    assert r.delta("refused", 1) is None             # reset


def test_windowed_counters_ignore_everything_before_the_window():
    w = WindowedCounters(window_s=60)
    # A long history of 90 % hits, then one minute of 50 %: the window must show only the minute.
    hits = misses = 0
    for t in range(0, 600, 10):
        hits += 90
        misses += 10
        w.observe(t, hits, misses)
    for t in range(600, 661, 10):
        hits += 50
        misses += 50
        got = w.observe(t, hits, misses)
    dh, dm = got
    assert dh / (dh + dm) == 0.5
    assert w.span_s() == 60


def test_windowed_counters_restart_after_a_reset():
    w = WindowedCounters(window_s=60)
    w.observe(0, 1000, 1000)
    w.observe(10, 1100, 1000)
    assert w.observe(20, 5, 5) is None               # counters went down: history dropped
    assert w.observe(30, 15, 5) == (10, 0)


def test_a_trailing_count_holds_one_event_for_the_minute_after_it_then_drops_to_zero():
    c = TrailingCounts(window_s=60)
    assert c.count("slow", 7, ts=0.0) is None
    assert c.count("slow", 8, ts=1.0) == 1            # one event: 1, not a 1 s delta x 60
    for t in range(2, 61):
        assert c.count("slow", 8, ts=float(t)) == 1, t
    assert c.count("slow", 8, ts=62.0) == 0


def test_a_trailing_count_is_not_extrapolated_while_its_window_fills():
    c = TrailingCounts(window_s=60)
    c.count("x", 0, ts=0.0)
    assert c.count("x", 3, ts=10.0) == 3              # 3 in 10 s: 3, not 18 "per minute"
    assert c.count("x", 1, ts=11.0) is None           # a reset restarts the window
