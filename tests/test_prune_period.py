"""Retention is enforced often enough to bound the raw table: every 10 minutes, or six times per
raw retention when that is shorter (a 15-minute retention pruned every 10 minutes would hold up
to 25 minutes of samples; pruned every 150 s it holds at most 17.5)."""
from __future__ import annotations

import pytest

from dashboard.config import load as config
from dashboard.runtime import Runtime
from dashboard.store import prune_period_s

# Each test on SQLite, then on PostgreSQL (tests/support/pg.py).
pytestmark = pytest.mark.usefixtures("store_backend")


def test_a_short_raw_retention_is_pruned_six_times_per_retention_period():
    assert prune_period_s(48 * 3600) == 600          # the default retention: every 10 min
    assert prune_period_s(900) == 150                # 15 min (the soak's): every 2.5 min
    assert prune_period_s(36) == 10                  # the configuration's minimum, 0.01 h


def test_the_runtime_schedules_pruning_at_the_store_s_period(tmp_path):
    settings = config.from_dict({"data_dir": str(tmp_path), "raw_retention_h": 0.25})
    rt = Runtime(settings, collectors=[])
    periods = {func: trigger.get("seconds") for func, trigger in rt.runner._extra_jobs}
    assert periods[rt.store.prune] == 150
    rt.store.close()
