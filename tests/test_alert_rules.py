"""Alert rules: the docs' defaults under the contract's names, overrides, and overrides that make
no sense refused at start-up with the key named."""
from __future__ import annotations

import pytest

from alerts.rules import build_rules
from dashboard.config import load as config
from dashboard.config.settings import RULE_NAMES, ConfigError


def rules(**raw):
    return build_rules(config.from_dict(raw))


def test_every_contract_rule_and_every_down_rule_has_a_default():
    r = rules()
    assert set(RULE_NAMES) <= set(r)
    for source in ("host", "db", "cache", "queue", "app"):
        down = r[f"{source}_down"]
        assert (down.metric, down.direction, down.critical) == (f"{source}.up", "below", 1)


@pytest.mark.parametrize("name, metric, direction, warning, critical", [
    ("db_pool_utilization", "db.pool_utilization", "above", 80, 95),
    ("db_avg_query_time", "db.avg_query_ms", "above", 100, 1000),
    ("cache_hit_rate", "cache.hit_rate", "below", 75, 60),
    ("queue_pending", "queue.pending", "above", 50, 200),
    ("queue_oldest_age", "queue.oldest_pending_age_s", "above", 600, 1800),
    ("app_response_time", "app.response_ms", "above", 500, 1000),
    ("app_error_rate", "app.error_rate", "above", 0.1, 1.0),
    ("app_checkout_success", "app.checkout_success_rate", "below", 99, 95),
    ("app_worker_utilization", "app.worker_utilization", "above", 80, 95),
    ("host_disk", "host.disk_percent", "above", 80, 90),
])
def test_defaults_are_the_thresholds_of_the_docs(name, metric, direction, warning, critical):
    r = rules()[name]
    assert (r.metric, r.direction, r.warning, r.critical) == (metric, direction, warning, critical)
    assert r.repeat_s == {"critical": 1800, "warning": 14400}


def test_the_hourly_connection_rule_follows_the_configured_limit():
    r = rules(mysql={"url": "mysql://m:p@127.0.0.1:3306/", "connections_per_hour_limit": 2000})
    assert (r["db_connections_per_hour"].warning, r["db_connections_per_hour"].critical) == (1600, 2000)


def test_labelled_rules_say_which_label_makes_one_alert():
    r = rules()
    assert r["queue_pending"].labels == ("queue",) and r["host_disk"].labels == ("mount",)
    assert r["app_response_time"].labels == ("probe",) and r["queue_pending"].inclusive


def test_an_override_replaces_only_what_it_names():
    r = rules(rules={"db_pool_utilization": {"warning": 70, "for_s": 10, "repeat_s": 600}})
    p = r["db_pool_utilization"]
    assert (p.warning, p.critical, p.for_s, p.repeat_s["critical"]) == (70, 95, 10, 600)
    assert p.clear == 70            # the default clear (75) would be past the new warning level


@pytest.mark.parametrize("raw, key", [
    ({"db_pool_utilization": {"warning": 96}}, "rules.db_pool_utilization.warning"),
    ({"cache_hit_rate": {"critical": 80}}, "rules.cache_hit_rate.critical"),
    ({"db_pool_utilization": {"clear": 85}}, "rules.db_pool_utilization.clear"),
    ({"cache_hit_rate": {"clear": 70}}, "rules.cache_hit_rate.clear"),
    ({"db_pool_utilization": {"repeat_s": 0}}, "rules.db_pool_utilization.repeat_s"),
    ({"db_pool_utilization": {"severity_channels": {"critical": ["nobody"]}}},
     "rules.db_pool_utilization.severity_channels.critical"),
    ({"db_pool_utilization": {"severity_channels": {"fatal": []}}},
     "rules.db_pool_utilization.severity_channels.fatal"),
    ({"db_pool_utilisation": {"warning": 1}}, "rules.db_pool_utilisation"),
    ({"db_pool_utilization": {"threshold": 1}}, "rules.db_pool_utilization.threshold"),
])
def test_an_override_that_makes_no_sense_is_a_config_error_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as e:
        config.from_dict({"rules": raw})
    assert e.value.key == key and str(e.value).startswith(key + ": ")


def test_severity_channels_name_configured_channels():
    r = rules(notify=[{"kind": "webhook", "url": "http://127.0.0.1:9/", "name": "pager"}],
              rules={"db_pool_utilization": {"severity_channels": {"critical": ["pager"]}}})
    assert r["db_pool_utilization"].severity_channels == {"critical": ("pager",)}


def test_storm_control_is_set_per_channel_and_channel_names_are_unique():
    hook = {"kind": "webhook", "url": "http://127.0.0.1:9/", "name": "a"}
    s = config.from_dict({"notify": [{**hook, "group_window_s": 0, "max_per_hour": 5}]})
    assert (s.notify[0].group_window_s, s.notify[0].max_per_hour) == (0, 5)
    with pytest.raises(ConfigError) as e:
        config.from_dict({"notify": [hook, hook]})
    assert e.value.key == "notify[1].name"
    with pytest.raises(ConfigError) as e:
        config.from_dict({"notify": [{**hook, "max_per_hour": 0}]})
    assert e.value.key == "notify[0].max_per_hour"
