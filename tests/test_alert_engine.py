"""The alert engine with explicit times: hold, hysteresis, keep-firing, repeat, escalation,
de-escalation, resolve and missing data. No clock, no sleeping: every sample carries its time."""
from __future__ import annotations

import dataclasses

import pytest

from alerts.engine import Engine
from alerts.rules import build_rules
from dashboard.config import load as config
from dashboard.model import Sample

T0 = 1_700_000_000.0


def rules(**overrides):
    return build_rules(config.from_dict({"rules": overrides}))


def pool(ts: float, value: float) -> Sample:
    return Sample("db", ts, {"db.pool_utilization": value})


def run(engine: Engine, points, metric_sample=pool):
    """Feed (seconds after T0, value) points one by one; return every transition."""
    out = []
    for dt, v in points:
        out += engine.evaluate([metric_sample(T0 + dt, v)])
    return out


def kinds(transitions):
    return [(t.kind, t.severity) for t in transitions]


def test_pool_alert_fires_only_after_the_hold_time():
    e = Engine(rules(db_pool_utilization={"for_s": 60}))
    assert run(e, [(0, 85), (30, 86), (59, 87)]) == []
    assert e.pending()[0].pending_since == T0
    fired = run(e, [(60, 88)])
    assert kinds(fired) == [("firing", "warning")]
    t = fired[0]
    assert (t.rule, t.value, t.threshold, t.since, t.at) == ("db_pool_utilization", 88, 80, T0, T0 + 60)


def test_sampling_jitter_does_not_add_an_interval_to_the_hold():
    e = Engine(rules(db_pool_utilization={"for_s": 2}), source_intervals={"db": 1.0}, started_at=T0)
    assert run(e, [(0, 85), (1.01, 85)]) == []
    assert kinds(run(e, [(1.98, 85)])) == [("firing", "warning")]   # not at 2.98


def test_a_breach_shorter_than_the_hold_never_fires():
    e = Engine(rules(db_pool_utilization={"for_s": 60}))
    assert run(e, [(0, 90), (30, 90), (50, 70), (70, 90), (120, 90)]) == []
    assert kinds(run(e, [(130, 90)])) == [("firing", "warning")]   # 60 s after the second breach


def test_hysteresis_keeps_the_alert_until_the_clear_level():
    e = Engine(rules(db_pool_utilization={"for_s": 0, "keep_firing_for_s": 0}))  # clear 75
    assert kinds(run(e, [(0, 85)])) == [("firing", "warning")]
    assert run(e, [(1, 79), (2, 76), (3, 75.5)]) == []              # under 80 but above 75
    resolved = run(e, [(4, 74)])
    assert kinds(resolved) == [("resolved", "warning")]
    assert resolved[0].threshold == 75 and resolved[0].since == T0


def test_keep_firing_for_waits_before_resolving():
    e = Engine(rules(db_pool_utilization={"for_s": 0, "keep_firing_for_s": 120}))
    run(e, [(0, 90)])
    assert run(e, [(10, 50), (100, 50)]) == []
    assert run(e, [(110, 85), (120, 50), (200, 50)]) == []          # the breach reset the clock
    assert kinds(run(e, [(240, 50)])) == [("resolved", "warning")]


def test_it_escalates_and_de_escalates_with_their_own_levels():
    e = Engine(rules(db_pool_utilization={"for_s": 10, "keep_firing_for_s": 0}))  # crit clear 90
    assert kinds(run(e, [(0, 85), (10, 85)])) == [("firing", "warning")]
    assert run(e, [(20, 97), (25, 97)]) == []                        # critical not yet held 10 s
    esc = run(e, [(30, 97)])
    assert kinds(esc) == [("escalated", "critical")] and esc[0].previous == "warning"
    assert run(e, [(40, 92)]) == []                                  # under 95 but above 90
    de = run(e, [(50, 89)])
    assert kinds(de) == [("deescalated", "warning")] and de[0].previous == "critical"
    assert kinds(run(e, [(60, 70)])) == [("resolved", "warning")]


def test_a_value_past_critical_from_the_start_fires_critical_once():
    e = Engine(rules(db_pool_utilization={"for_s": 5}))
    assert kinds(run(e, [(0, 99), (3, 99), (5, 99), (6, 99)])) == [("firing", "critical")]


def test_it_repeats_while_firing_and_unacknowledged():
    e = Engine(rules(db_pool_utilization={"for_s": 0, "keep_firing_for_s": 0}))
    run(e, [(0, 97)])                                                # critical: every 30 min
    assert e.tick(T0 + 1799) == []
    rep = e.tick(T0 + 1800)
    assert kinds(rep) == [("repeat", "critical")] and rep[0].seq == 2
    assert e.tick(T0 + 1801) == []
    e.acknowledge(rep[0].alert_id)
    assert e.tick(T0 + 7200) == []                                  # acknowledged: quiet
    resolved = run(e, [(7300, 10)])
    assert kinds(resolved) == [("resolved", "critical")] and resolved[0].acknowledged


def test_warning_repeats_every_four_hours_and_an_expired_ack_resumes_repeats():
    e = Engine(rules(db_pool_utilization={"for_s": 0}))
    first = run(e, [(0, 85)])
    e.acknowledge(first[0].alert_id, until=T0 + 3600)
    assert e.tick(T0 + 3599) == []
    assert e.tick(T0 + 4 * 3600 - 1) == []
    assert kinds(e.tick(T0 + 4 * 3600)) == [("repeat", "warning")]


def test_a_silent_source_counts_as_down_never_as_ok():
    e = Engine(rules(db_down={"for_s": 5, "keep_firing_for_s": 0}), source_intervals={"db": 1.0},
               started_at=T0)
    run(e, [(0, 50)])
    assert e.tick(T0 + 3) == []                                      # 3 intervals: not yet
    assert e.tick(T0 + 3.5) == []                                    # down, pending for 5 s
    down = e.tick(T0 + 8.5)
    assert kinds(down) == [("firing", "critical")] and down[0].rule == "db_down"
    # the collector comes back: the runner's db.up = 1 sample resolves it
    back = e.evaluate([Sample("db", T0 + 9, {"db.up": 1.0, "db.pool_utilization": 50})])
    assert kinds(back) == [("resolved", "critical")]


def test_samples_never_judge_time_only_the_tick_does():
    """One owner for missing data and repeats: the scheduled tick. Samples of another source
    arriving while db is silent do not page db_down, nor does a due repeat go out with them."""
    e = Engine(rules(db_pool_utilization={"for_s": 0}, db_down={"for_s": 0}),
               source_intervals={"db": 1.0, "host": 1.0}, started_at=T0)
    run(e, [(0, 97)])                                                # critical: repeats at 30 min
    host = Sample("host", T0 + 1800, {"host.cpu_percent": 5.0})
    assert e.evaluate([host]) == []                                  # db silent, repeat due: not here
    out = e.tick(T0 + 1800)
    assert sorted((t.rule, t.kind) for t in out) == [("db_down", "firing"),
                                                     ("db_pool_utilization", "repeat")]
    assert e.tick(T0 + 1800) == []                                   # judged once per moment


def test_a_source_that_never_sent_anything_is_down():
    e = Engine(rules(cache_down={"for_s": 0}), source_intervals={"cache": 2.0}, started_at=T0)
    assert e.tick(T0 + 6) == []
    assert [t.rule for t in e.tick(T0 + 6.1)] == ["cache_down"]


def test_missing_data_does_not_resolve_a_firing_alert():
    e = Engine(rules(db_pool_utilization={"for_s": 0}), source_intervals={"db": 1.0}, started_at=T0)
    run(e, [(0, 90)])
    assert e.tick(T0 + 600) == []                                    # db_down pending (30 s hold)
    assert [t.rule for t in e.tick(T0 + 630)] == ["db_down"]
    assert [s.rule for s in e.firing()] == ["db_pool_utilization", "db_down"]


def test_one_alert_per_label_set():
    e = Engine(rules(queue_pending={"for_s": 0}))
    out = e.evaluate([Sample("queue", T0, {"queue.pending": 60}, {"queue": "emails"}),
                      Sample("queue", T0, {"queue.pending": 50}, {"queue": "reports"}),
                      Sample("queue", T0, {"queue.pending": 49}, {"queue": "thumbs"})])
    assert sorted(t.labels["queue"] for t in out) == ["emails", "reports"]   # >= 50 is inclusive
    assert len({t.alert_id for t in out}) == 2


def test_a_below_rule_fires_when_the_value_drops():
    e = Engine(rules(cache_hit_rate={"for_s": 0, "keep_firing_for_s": 0}))   # 75 / 60, clear 78
    hit = lambda ts, v: Sample("cache", ts, {"cache.hit_rate": v})  # noqa: E731
    assert kinds(run(e, [(0, 70)], hit)) == [("firing", "warning")]
    assert kinds(run(e, [(1, 55)], hit)) == [("escalated", "critical")]
    assert run(e, [(2, 62)], hit) == []                              # above 60 but under 63
    assert kinds(run(e, [(3, 76)], hit)) == [("deescalated", "warning")]
    assert run(e, [(4, 77)], hit) == []                              # above 75 but under 78
    assert kinds(run(e, [(5, 80)], hit)) == [("resolved", "warning")]


def test_a_value_flapping_around_the_threshold_for_five_minutes_pages_once():
    # 50 s over the warning level, 10 s under the clear level, for 5 minutes, then calm.
    e = Engine(rules(db_pool_utilization={"for_s": 10}))             # keep firing 60 s (default)
    points = [(s, 85 if s % 60 < 50 else 72) for s in range(0, 300)]
    points += [(300 + s, 60) for s in range(0, 70)]
    assert kinds(run(e, points)) == [("firing", "warning"), ("resolved", "warning")]
    # Noise around the line, crossing warning and clear levels every few seconds.
    import random
    rnd = random.Random(5)
    e = Engine(rules(db_pool_utilization={"for_s": 10}))
    noisy = [(s, 80 + rnd.uniform(-8, 8) + (3 if s % 40 < 30 else -3)) for s in range(0, 300)]
    out = run(e, noisy + [(300 + s, 60) for s in range(0, 70)])
    assert [k for k, _ in kinds(out)].count("firing") <= 1
    assert [k for k, _ in kinds(out)].count("resolved") <= 1
    assert not e.firing()


def test_the_next_episode_gets_a_new_id_and_the_state_survives_export_and_load():
    rs = rules(db_pool_utilization={"for_s": 0, "keep_firing_for_s": 0})
    e = Engine(rs)
    first = run(e, [(0, 90)])[0]
    saved = {k: v for k, v in e.export().items() if v}
    e2 = Engine(rs)
    e2.load(saved)
    assert run(e2, [(1, 91)]) == []                                  # no second page after a restart
    assert kinds(run(e2, [(2, 10)])) == [("resolved", "warning")]
    again = run(e2, [(3, 90)])[0]
    assert again.alert_id != first.alert_id


def test_availability_is_judged_over_its_window_once_an_hour_of_data_exists():
    e = Engine(rules())
    up = lambda ts, v: Sample("app", ts, {"app.up": v}, {"probe": "home"})  # noqa: E731
    points = [(s, 0.0 if s < 120 else 1.0) for s in range(0, 3600, 30)]
    assert [t for t in run(e, points, up) if t.rule == "app_availability"] == []
    out = [t for t in run(e, [(3600, 1.0)], up) if t.rule == "app_availability"]
    assert kinds(out) == [("firing", "critical")] and out[0].value == pytest.approx(96.7, abs=0.1)


def test_disabled_rules_are_not_judged():
    e = Engine(rules(db_pool_utilization={"for_s": 0, "enabled": False}))
    assert run(e, [(0, 99)]) == []


def test_rules_are_frozen_dataclasses():
    r = rules()["db_pool_utilization"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.warning = 1  # type: ignore[misc]


def slow(ts: float, value: float) -> Sample:
    return Sample("db", ts, {"db.slow_queries_per_min": value})


def test_one_isolated_slow_statement_does_not_page_but_slow_statements_in_consecutive_minutes_do():
    """Issue 17: db.slow_queries_per_min is a trailing-60 s count, so one slow statement holds
    it at 1 for a minute; the default hold is longer than that minute."""
    e = Engine(rules())
    # Held up to 61 s: the window is 60 s and a tick may come a second late.
    isolated = [(t, 1) for t in range(0, 62)] + [(t, 0) for t in range(62, 400)]
    assert run(e, isolated, slow) == []
    e = Engine(rules())
    # One slow statement at 0 s and one at 50 s (minute 1 and minute 2): above 0 for 110 s.
    two = [(t, 1 if t <= 60 else 2 if t <= 61 else 1) for t in range(1, 111)]
    assert kinds(run(e, two, slow)) == [("firing", "warning")]


def _reference(engine: Engine, samples) -> list:
    """What ``evaluate`` is defined as: every rule of every metric of every sample observed."""
    out = []
    for s in samples:
        engine.last_seen[s.source] = max(engine.last_seen.get(s.source, s.ts), s.ts)
        for metric, value in s.values.items():
            for rule in engine._by_metric.get(metric, ()):
                out.extend(engine._observe(rule, s.labels, float(value), s.ts))
    return out


def test_skipping_quiet_series_changes_no_transition_and_no_state():
    """Issue 19: ``evaluate`` skips quiet series of rules with nothing in memory. Fed the same
    random ticks, every rule's metric (above and below, inclusive levels, scaled, windowed)
    moving around and exactly onto its levels, it pages exactly as observing every one."""
    import random

    rs = build_rules(config.from_dict({"rules": {}, "probes": [
        {"name": "home", "url": "http://127.0.0.1:1/"}]}))
    # No shipped "below" rule counts its level as a breach: one made so, beside the others.
    rs["cache_hit_rate_at"] = dataclasses.replace(rs["cache_hit_rate"], name="cache_hit_rate_at",
                                                  inclusive=True)
    levels: dict[str, list[float]] = {}
    good: dict[str, float] = {}
    for r in rs.values():
        lv = [x / r.scale for x in (r.warning, r.critical, r.clear) if x is not None]
        levels.setdefault(r.metric, []).extend(lv)
        good[r.metric] = min(lv) - 1 if r.direction == "above" else max(lv) + 1
    rnd = random.Random(19)
    fast, slow = Engine(rs, {"db": 1.0}, T0), Engine(rs, {"db": 1.0}, T0)
    kinds_seen = set()
    for i in range(3000):
        samples = []
        for metric, lv in levels.items():
            # A few label sets, sometimes one twice in a tick; mostly quiet, often exactly on
            # a level (inclusive or not), sometimes anywhere around them.
            for _ in range(3):
                x = rnd.random()
                v = good[metric] if x < 0.6 else rnd.choice(lv) if x < 0.85 else \
                    rnd.uniform(min(lv) - 5, max(lv) + 5)
                labels = {"queue": rnd.choice("ab"), "probe": "home", "server": "r1"}
                samples.append(Sample(metric.split(".")[0], T0 + i * 7.0, {metric: v}, labels))
        got, want = fast.evaluate(samples), _reference(slow, samples)
        assert got == want
        assert fast.export() == slow.export() and fast.last_seen == slow.last_seen
        kinds_seen.update(t.kind for t in got)
    assert {"firing", "resolved"} <= kinds_seen      # the stream did page
