"""A windowed counter's memory does not grow with the sampling rate (issue 9, bench/soak.py):
the MySQL collector's one-hour connections window held 36,000 snapshots an hour at 0.1 s."""
from __future__ import annotations

from dashboard.collectors.rates import WindowedCounters


def test_an_hour_window_fed_ten_times_a_second_keeps_about_600_snapshots_and_stays_exact():
    w = WindowedCounters(window_s=3600)
    got = None
    for i in range(2 * 36_000):                      # two hours at 0.1 s, 10 connections a second
        ts = i / 10
        got = w.observe(ts, ts * 10)
    assert len(w._snaps) <= WindowedCounters.MAX_SNAPSHOTS * 1.05   # not 36,000
    # The window spans one hour plus at most one step (6 s): 36,000 to 36,060 connections.
    assert 3600 <= w.span_s() <= 3606
    assert 36_000 <= got[0] <= 36_060


def test_a_short_window_at_one_sample_a_second_is_as_exact_as_before():
    w = WindowedCounters(window_s=60)
    for t in range(0, 600):
        got = w.observe(t, t * 3)
    assert w.span_s() == 60 and got == (180,)


def test_a_reset_still_drops_the_history_with_snapshots_merged():
    w = WindowedCounters(window_s=3600)
    for i in range(100):                              # all within one 6 s step
        w.observe(i / 100, 1000 + i)
    assert w.observe(2.0, 5) is None                 # went down: history dropped
    assert w.observe(2.1, 7) == (2,)
