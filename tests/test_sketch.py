from __future__ import annotations

import random

from dashboard.store import sketch


def exact_quantile(values, q):
    s = sorted(values)
    return s[int(q * (len(s) - 1))]


def test_p95_of_merged_minute_sketches_is_within_two_percent_of_the_exact_value():
    rng = random.Random(7)
    minutes = [[rng.lognormvariate(3, 1) for _ in range(60)] for _ in range(120)]
    merged = sketch.merge(sketch.decode(sketch.encode(sketch.build(m))) for m in minutes)
    everything = [v for m in minutes for v in m]
    exact = exact_quantile(everything, 0.95)
    assert abs(sketch.quantile(merged, 0.95) - exact) / exact < 0.02


def test_zero_and_negative_values_keep_their_order():
    s = sketch.build([-5.0, 0.0, 0.0, 3.0, 10.0])
    assert sketch.quantile(s, 0.0) < 0
    assert sketch.quantile(s, 0.5) == 0.0
    assert abs(sketch.quantile(s, 1.0) - 10.0) / 10 < 0.02


def test_an_empty_sketch_has_no_quantile():
    assert sketch.quantile({}, 0.95) is None


def test_the_datas_min_and_max_narrow_the_quantile_to_values_that_occurred():
    flat = sketch.build([42.0] * 500)                 # a series that never moved
    assert sketch.quantile(flat, 0.95) != 42.0        # a bucket midpoint, within 1 %
    assert abs(sketch.quantile(flat, 0.95) - 42.0) / 42 < 0.01
    assert sketch.quantile(flat, 0.95, 42.0, 42.0) == 42.0
    values = [float(v) for v in range(1, 101)]
    s = sketch.build(values)
    top = sketch.quantile(s, 1.0, 1.0, 100.0)
    assert top <= 100.0 and abs(top - 100.0) / 100 < 0.01
    assert sketch.quantile(s, 0.0, 1.0, 100.0) >= 1.0
    # min/max from other rows that miss the bucket: the answer still stays inside them
    assert sketch.quantile(s, 0.5, 70.0, 80.0) == 70.0
    assert sketch.quantile(s, 0.5, hi=10.0) == 10.0
