"""GET /metrics: what Prometheus (and Grafana behind it) reads from the dashboard."""
from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard.collectors.catalog import all_metrics
from dashboard.model import Sample
from tests.support.auth_helpers import add_token

# The contract's metric names (docs/design.md), with the labels each one carries.
CONTRACT = {
    "host.cpu_percent": (), "host.load1": (), "host.mem_percent": (), "host.swap_percent": (),
    "host.disk_percent": ("mount",), "host.net_rx_bps": (), "host.net_tx_bps": (),
    "host.disk_read_bps": (), "host.disk_write_bps": (),
    "db.up": (), "db.threads_connected": (), "db.threads_running": (), "db.pool_capacity": (),
    "db.pool_utilization": (), "db.max_used_connections": (), "db.connections_per_hour": (),
    "db.refused_connections": (), "db.aborted_connects_per_min": (), "db.queries_per_s": (),
    "db.slow_queries_per_min": (), "db.avg_query_ms": (), "db.long_running": (),
    "cache.up": (), "cache.hit_rate": (), "cache.hits_per_s": (), "cache.misses_per_s": (),
    "cache.evicted_per_s": (), "cache.memory_percent": (), "cache.clients": (),
    "queue.up": (), "queue.pending": ("queue",), "queue.failed": ("queue",),
    "queue.oldest_pending_age_s": ("queue",), "queue.drain_eta_s": ("queue",),
    "app.up": ("probe",), "app.response_ms": ("probe",), "app.error_rate": (),
    "app.checkout_success_rate": (), "app.worker_utilization": (),
}

NASTY_QUEUE = 'emails "priority"\nline2 \\ end'


def platform_samples(now: float) -> list[Sample]:
    """One tick of a busy platform, as the collectors write it (source, labels, values)."""
    return [
        Sample("host", now, {"host.cpu_percent": 37.5, "host.load1": 1.25, "host.load_per_core": 0.62,
                             "host.mem_percent": 61.0, "host.swap_percent": 0.0,
                             "host.net_rx_bps": 125000.0, "host.net_tx_bps": 98000.0,
                             "host.disk_read_bps": 4096.0, "host.disk_write_bps": 81920.0,
                             "host.up": 1.0}),
        Sample("host", now, {"host.disk_percent": 71.3}, {"mount": "/"}),
        Sample("host", now, {"host.disk_percent": 12.0}, {"mount": "/var/lib/mysql"}),
        Sample("db", now, {"db.up": 1.0, "db.threads_connected": 86.0, "db.threads_running": 7.0,
                           "db.pool_capacity": 100.0, "db.pool_utilization": 86.0,
                           "db.max_used_connections": 91.0, "db.connections_per_hour": 420.0,
                           "db.refused_connections": 0.0, "db.aborted_connects_per_min": 0.5,
                           "db.queries_per_s": 1520.0, "db.slow_queries_per_min": 3.0,
                           "db.avg_query_ms": 4.2, "db.long_running": 1.0}),
        Sample("cache", now, {"cache.up": 1.0, "cache.hit_rate": 57.5, "cache.hits_per_s": 2300.0,
                              "cache.misses_per_s": 1700.0, "cache.evicted_per_s": 12.0,
                              "cache.memory_percent": 83.0, "cache.clients": 42.0}),
        Sample("queue", now, {"queue.up": 1.0}),
        Sample("queue", now, {"queue.pending": 63.0, "queue.failed": 2.0,
                              "queue.oldest_pending_age_s": 310.0, "queue.drain_eta_s": 126.0},
               {"queue": "emails"}),
        Sample("queue", now, {"queue.pending": 4.0, "queue.failed": 0.0,
                              "queue.oldest_pending_age_s": 2.0, "queue.drain_eta_s": 8.0},
               {"queue": NASTY_QUEUE}),
        Sample("app", now, {"app.up": 1.0}),
        Sample("app", now, {"app.up": 1.0, "app.response_ms": 212.0}, {"probe": "home"}),
        Sample("app", now, {"app.up": 0.0, "app.response_ms": 5000.0}, {"probe": "checkout"}),
        Sample("statsd", now, {"statsd.up": 1.0, "app.error_rate": 0.8,
                               "app.checkout_success_rate": 97.5}),
        Sample("phpfpm", now, {"phpfpm.up": 1.0, "app.worker_utilization": 72.0}),
    ]


def scrape(client, **headers) -> dict[str, dict]:
    """name -> {"help": ..., "type": ..., "samples": {frozenset(labels): value}}."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for fam in text_string_to_metric_families(r.get_data(as_text=True)):
        out[fam.name] = {"help": fam.documentation, "type": fam.type,
                         "samples": {frozenset(s.labels.items()): s.value for s in fam.samples}}
    return out


def prom(dotted: str) -> str:
    return "dashboard_" + dotted.replace(".", "_")


def test_every_contract_metric_in_the_store_is_on_the_metrics_page_with_its_value(app, client):
    app.extensions["dashboard"].store.append(platform_samples(time.time()))
    families = scrape(client)

    for dotted, labels in CONTRACT.items():
        fam = families.get(prom(dotted))
        assert fam is not None, f"{prom(dotted)} missing from /metrics"
        assert fam["type"] == "gauge"
        assert all_metrics()[dotted].description.split(";")[0] in fam["help"], fam["help"]
        assert any(set(labels) <= {k for k, _ in key} for key in fam["samples"]), (dotted, fam)
    m = families
    assert m["dashboard_host_disk_percent"]["samples"][frozenset({("mount", "/")})] == 71.3
    assert m["dashboard_host_disk_percent"]["samples"][frozenset({("mount", "/var/lib/mysql")})] == 12.0
    assert m["dashboard_db_pool_utilization"]["samples"][frozenset()] == 86.0
    assert m["dashboard_cache_hit_rate"]["samples"][frozenset()] == 57.5
    assert m["dashboard_queue_pending"]["samples"][frozenset({("queue", "emails")})] == 63.0
    assert m["dashboard_app_up"]["samples"][frozenset({("probe", "checkout")})] == 0.0
    assert m["dashboard_app_response_ms"]["samples"][frozenset({("probe", "home")})] == 212.0
    assert m["dashboard_app_worker_utilization"]["samples"][frozenset()] == 72.0
    for source in ("host", "db", "cache", "queue", "app", "statsd", "phpfpm"):
        assert m["dashboard_collector_up"]["samples"][frozenset({("source", source)})] == 1.0
        assert 0 <= m["dashboard_sample_age_seconds"]["samples"][frozenset({("source", source)})] < 3


def test_label_values_with_quotes_backslashes_and_newlines_are_escaped(app, client):
    app.extensions["dashboard"].store.append(platform_samples(time.time()))
    text = client.get("/metrics").get_data(as_text=True)
    # One line per sample: the newline inside the queue name is written as \n, quotes as \".
    line = next(x for x in text.splitlines()
                if x.startswith("dashboard_queue_pending{") and "priority" in x)
    assert line == 'dashboard_queue_pending{queue="emails \\"priority\\"\\nline2 \\\\ end"} 4.0'
    pending = scrape(client)["dashboard_queue_pending"]["samples"]
    assert pending[frozenset({("queue", NASTY_QUEUE)})] == 4.0


def test_a_source_silent_for_three_intervals_drops_out_and_reads_as_down(app, client):
    now = time.time()
    store = app.extensions["dashboard"].store
    store.append([Sample("db", now - 30, {"db.up": 1.0, "db.pool_utilization": 55.0})])
    store.append([Sample("host", now, {"host.cpu_percent": 12.0, "host.up": 1.0})])
    # 6 s at a 1 s interval: late, but within the slack /healthz allows before "stale".
    store.append([Sample("cache", now - 6, {"cache.hit_rate": 91.0, "cache.up": 1.0})])
    m = scrape(client)
    assert m["dashboard_cache_hit_rate"]["samples"][frozenset()] == 91.0
    assert "dashboard_db_pool_utilization" not in m      # not current: Prometheus sees it go stale
    assert "dashboard_db_up" not in m
    assert m["dashboard_host_cpu_percent"]["samples"][frozenset()] == 12.0
    assert m["dashboard_sample_age_seconds"]["samples"][frozenset({("source", "db")})] >= 30
    assert m["dashboard_collector_up"]["samples"][frozenset({("source", "db")})] == 0.0
    assert m["dashboard_collector_up"]["samples"][frozenset({("source", "host")})] == 1.0


def test_a_collector_that_cannot_reach_its_target_reads_as_down(app, client):
    store = app.extensions["dashboard"].store
    store.append([Sample("db", time.time() - 2, {"db.up": 1.0, "db.pool_utilization": 40.0})])
    store.append([Sample("db", time.time(), {"db.up": 0.0}, {}, "db: connection refused")])
    m = scrape(client)
    assert m["dashboard_db_up"]["samples"][frozenset()] == 0.0
    assert "dashboard_db_pool_utilization" not in m       # the newest tick has no such value
    assert m["dashboard_collector_up"]["samples"][frozenset({("source", "db")})] == 0.0


def test_firing_alerts_appear_with_rule_severity_and_labels_and_go_when_resolved(tmp_path):
    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import token_client

    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading",
                          "rules": {"queue_pending": {"for_s": 0, "keep_firing_for_s": 0}}})
    runtime = Runtime(settings, [])
    app = create_app(settings, runtime, async_mode="threading")
    client = token_client(app, "viewer")
    runtime.publish([Sample("queue", time.time(), {"queue.up": 1.0}),
                     Sample("queue", time.time(), {"queue.pending": 480.0}, {"queue": "emails"})])
    states = scrape(client)["dashboard_alert_state"]["samples"]
    assert states == {frozenset({("rule", "queue_pending"), ("severity", "critical"),
                                 ("queue", "emails")}): 1.0}

    runtime.publish([Sample("queue", time.time() + 1, {"queue.pending": 3.0}, {"queue": "emails"})])
    assert scrape(client).get("dashboard_alert_state", {"samples": {}})["samples"] == {}
    runtime.stop()


def test_metrics_need_a_login_or_a_bearer_token(app, anon_client):
    r = anon_client.get("/metrics")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert anon_client.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    token = add_token(app, "viewer")
    scrape(anon_client, Authorization=f"Bearer {token}")


def test_metrics_public_opens_the_page_without_a_login(tmp_path):
    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime

    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading",
                          "metrics_public": True})
    app = create_app(settings, Runtime(settings, []), async_mode="threading")
    app.extensions["dashboard"].store.append([Sample("host", time.time(), {"host.load1": 0.5})])
    assert scrape(app.test_client())["dashboard_host_load1"]["samples"][frozenset()] == 0.5
    assert app.test_client().get("/api/latest").status_code == 401    # only /metrics opens


@pytest.mark.parametrize("dotted", sorted(CONTRACT))
def test_every_contract_metric_has_a_description_for_help(dotted):
    spec = all_metrics().get(dotted)
    assert spec is not None and spec.description.strip(), dotted


def test_hosts_reported_by_agents_are_told_apart_by_a_host_label(app, client):
    now = time.time()
    app.extensions["dashboard"].store.append([
        Sample("host", now, {"host.cpu_percent": 20.0, "host.up": 1.0}),
        Sample("agents", now, {"agents.hosts": 1.0, "agents.up": 1.0}),
        Sample("agents", now - 1, {"host.cpu_percent": 75.0, "host.up": 1.0}, {"host": "app2"}),
        Sample("agents", now - 1, {"host.disk_percent": 64.0}, {"host": "app2", "mount": "/"}),
    ])
    m = scrape(client)
    assert m["dashboard_host_cpu_percent"]["samples"] == {frozenset(): 20.0,
                                                          frozenset({("host", "app2")}): 75.0}
    assert m["dashboard_host_disk_percent"]["samples"][frozenset({("host", "app2"), ("mount", "/")})] == 64.0
    assert m["dashboard_collector_up"]["samples"][frozenset({("source", "agents")})] == 1.0
