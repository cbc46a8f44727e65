"""The alerts page's backtest (issue 18, item 4): ``GET /api/alerts/backtest`` replays one rule
with proposed settings over the stored history. Viewers may ask; it is a heavy read (at most
two at once per login); bad input is a 4xx JSON error naming the field."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from alerts import backtest
from dashboard.model import Sample
from tests.support.util import wait_until
from tests.test_backtest import flapping

URL = "/api/alerts/backtest"


@pytest.fixture
def stored(app):
    store = app.extensions["dashboard"].store
    for ts, v in flapping(time.time() - 3 * 3600, ticks=360):
        store.append([Sample("host", ts, {"host.cpu_percent": v})])
    return app


def pages(doc: dict) -> int:
    return sum(r["fired"] for r in doc["rules"])


def test_a_viewer_tests_proposed_settings_of_one_rule_over_the_history(stored, viewer_client):
    r = viewer_client.get(f"{URL}?rule=host_cpu&since=1d&for_s=60&keep_firing_for_s=60")
    assert r.status_code == 200, r.get_data(as_text=True)
    doc = r.get_json()
    assert set(doc) == {"since", "until", "resolution", "rules"}
    assert doc["until"] - doc["since"] == pytest.approx(86400)
    assert doc["resolution"] == "raw"
    [cpu] = doc["rules"]
    assert cpu["rule"] == "host_cpu" and cpu["fired"] >= 3 and cpu["flaps"] >= 1
    assert len(cpu["episodes"]) == cpu["fired"]
    # The configured settings (a 300 s hold) page less; a warning at 90 pages only criticals.
    assert pages(viewer_client.get(f"{URL}?rule=host_cpu&since=1d").get_json()) < cpu["fired"]
    high = viewer_client.get(f"{URL}?rule=host_cpu&since=1d&for_s=60&warning=90&clear=88")
    assert {e["severity"] for r in high.get_json()["rules"] for e in r["episodes"]} == {"critical"}


@pytest.mark.parametrize("query, field", [
    ("", "rule"),
    ("rule=no_such_rule", "rule"),
    ("rule=store_down", "rule"),
    ("rule=notify_channel_failing", "rule"),          # judged live from the outbox, never stored
    ("rule=host_cpu&since=forever", "since"),
    ("rule=host_cpu&since=90d", "since"),
    ("rule=host_cpu&warning=abc", "warning"),
    ("rule=host_cpu&for_s=nan", "for_s"),
    ("rule=host_cpu&warning=99", "warning"),           # past the critical level (95)
    ("rule=host_cpu&clear=85", "clear"),               # on the wrong side of the warning level
    ("rule=host_cpu&for_s=-1", "for_s"),
])
def test_bad_input_is_a_400_naming_the_field(viewer_client, query, field):
    r = viewer_client.get(f"{URL}?{query}")
    assert r.status_code == 400
    assert r.get_json()["error"].startswith(f"{field}")


def test_it_needs_a_login(anon_client):
    r = anon_client.get(f"{URL}?rule=host_cpu")
    assert r.status_code == 401 and "error" in r.get_json()


def test_a_third_backtest_of_one_login_at_once_gets_a_429(app, make_token, monkeypatch):
    """Counted as a heavy read: two run, the third is refused. The two are held inside the
    replay (fault injection: a gate) so that the three overlap for sure."""
    monkeypatch.setenv("DASHBOARD_HEAVY_READ_WAIT_S", "0.01")
    gate, inside = threading.Event(), threading.Semaphore(0)
    real = backtest.backtest

    def held(*args, **kwargs):
        inside.release()
        gate.wait(30)
        return real(*args, **kwargs)
    monkeypatch.setattr(backtest, "backtest", held)
    token = make_token("viewer")

    def ask():
        c = app.test_client()
        return c.get(f"{URL}?rule=host_cpu", headers={"Authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(ask), pool.submit(ask)]
        try:
            for _ in range(2):
                assert inside.acquire(timeout=30)
            third = ask()
            assert third.status_code == 429
            assert third.headers["Retry-After"] and "at a time" in third.get_json()["error"]
            # Another login is not held up by this one's reads.
            monkeypatch.setattr(backtest, "backtest", real)
            other = app.test_client().get(
                f"{URL}?rule=host_cpu", headers={"Authorization": f"Bearer {make_token('viewer')}"})
            assert other.status_code == 200
        finally:
            gate.set()
        assert [f.result().status_code for f in running] == [200, 200]
    wait_until(lambda: not app.extensions["dashboard.heavy_reads"]._held, timeout=10)
    assert ask().status_code == 200
