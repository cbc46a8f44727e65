"""Rules tested on history (issue 18, item 4): ``python -m dashboard backtest`` replays the stored
history through the live engine and counts what it would have paged.

The reference is the live path itself: the same flapping series goes through the runtime's
publish (store, alert engine, outbox) to a real webhook receiver, and the backtest over what the
store kept must count the same pages, at the same times."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerts.outbox import Policy
from dashboard.__main__ import main
from dashboard.collectors.host import HostCollector
from dashboard.config import load as config
from dashboard.model import Sample
from dashboard.runtime import Runtime
from dashboard.store import Store
from dashboard.store.rollups import HourBlock
from tests.support.alert_helpers import install_alerting
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parent.parent
INTERVAL_S = 10.0
RULES = {"host_cpu": {"for_s": 60, "keep_firing_for_s": 60}}     # warning 80, critical 95, clear 75
NO_STORM_CONTROL = Policy(retries=3, backoff_s=0.2, group_window_s=0.2, max_per_hour=100_000,
                          digest_every_s=1.0)


def flapping(start: float, ticks: int = 720, seed: int = 18) -> list[tuple[float, float]]:
    """CPU every 10 s (+-1 s of jitter): calm (50) for 50 s to 7 min, then for 20 s to 5 min the
    hysteresis band between clear and warning (76-80), warning (83-87), critical (95-99) or
    warning then critical: short pages (flaps), escalations, and alerts held up by the clear
    level."""
    rng = random.Random(seed)
    out: list[tuple[float, float]] = []
    t = start
    while len(out) < ticks:
        bad = rng.choice([[78.0], [85.0], [85.0], [97.0], [85.0, 97.0]])
        for level in [50.0, *bad]:
            for _ in range(rng.randint(5, 40) if level == 50.0 else rng.randint(2, 30)):
                out.append((t + rng.uniform(-1, 1), level + rng.uniform(-2, 2)))
                t += INTERVAL_S
    return out[:ticks]


def write_config(path: Path, data_dir: Path, rules: dict) -> Path:
    lines = [f'data_dir = "{data_dir}"', f"interval_s = {INTERVAL_S}"]
    for name, body in rules.items():
        lines.append(f"[rules.{name}]")
        lines += [f"{k} = {v}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_backtest(capsys, cfg: Path, *args: str) -> dict:
    capsys.readouterr()
    assert main(["--config", str(cfg), "backtest", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_backtest_of_a_flapping_series_counts_what_the_live_engine_paged(
        tmp_path, webhook_receiver, capsys):
    data = tmp_path / "data"
    settings = config.from_dict({
        "data_dir": str(data), "interval_s": INTERVAL_S, "host_name": "web-1",
        "public_url": "http://127.0.0.1:8050", "rules": RULES,
        "notify": [{"kind": "webhook", "url": webhook_receiver.url, "name": "hook"}]})
    # The collector only tells the engine the host source's interval (its slack for jitter),
    # as in production; it is never started: the samples are the test's.
    rt = Runtime(settings, [HostCollector(interval_s=INTERVAL_S)])
    svc = install_alerting(rt, policy=NO_STORM_CONTROL)
    series = flapping(time.time() - 3 * 3600)
    try:
        svc.reload()
        svc.outbox.start()
        for ts, v in series:
            rt.publish([Sample("host", ts, {"host.cpu_percent": v, "host.mem_percent": 40.0})])
        wait_until(lambda: all(ch["waiting"] == 0 for ch in svc.overview()["channels"]),
                   timeout=60, message=lambda: repr(svc.overview()["channels"]))
    finally:
        svc.outbox.stop()
        svc.close()
        rt.store.close()
    paged = [a for r in webhook_receiver.requests for a in r.json()["alerts"]]
    assert {a["rule"] for a in paged} == {"host_cpu"}
    fired = [a["at"] for a in paged if a["event"] == "firing"]
    resolved = [a["at"] for a in paged if a["event"] == "resolved"]
    escalated = [a["at"] for a in paged if a["event"] == "escalated"]

    doc = run_backtest(capsys, write_config(tmp_path / "d.toml", data, RULES), "--since", "4h")
    assert doc["resolution"] == "raw"
    [cpu] = [r for r in doc["rules"] if r["rule"] == "host_cpu"]
    assert [r["rule"] for r in doc["rules"]] == ["host_cpu"]       # memory at 40 % never fired
    assert cpu["labels"] == {}
    assert (cpu["fired"], cpu["resolved"], cpu["escalated"]) == (
        len(fired), len(resolved), len(escalated))
    assert [e["start"] for e in cpu["episodes"]] == pytest.approx(fired, abs=1e-3)
    assert [e["end"] for e in cpu["episodes"] if e["end"] is not None] == pytest.approx(
        resolved, abs=1e-3)
    # The series really flapped: short pages, escalations, and longer alerts.
    assert cpu["flaps"] >= 2 and len(escalated) >= 1 and len(fired) - cpu["flaps"] >= 1
    assert cpu["flaps"] == sum(1 for s, e in zip(fired, resolved) if e - s < 300)
    assert cpu["firing_s"] == pytest.approx(
        sum(e - s for s, e in zip(fired, resolved)) + (time.time() - fired[-1]
                                                       if len(fired) > len(resolved) else 0),
        abs=60)
    assert {e["severity"] for e in cpu["episodes"]} == {"warning", "critical"}
    assert all(e["peak"] > 80 for e in cpu["episodes"])
    assert set(doc) == {"since", "until", "resolution", "rules"}
    assert set(cpu) == {"rule", "labels", "fired", "resolved", "escalated", "flaps", "firing_s",
                        "episodes"}
    assert set(cpu["episodes"][0]) == {"start", "end", "peak", "severity"}


def minutes(hour: int, first: int, count: int, row: tuple, other: tuple) -> dict:
    """An hour of one-minute rollups: ``row`` (n, sum, min, max) for ``count`` minutes from
    minute ``first``, ``other`` elsewhere."""
    return {hour + 60 * m: (row if first <= m < first + count else other) for m in range(60)}


def test_from_rollups_a_rule_above_a_level_is_fed_the_max_and_one_below_the_min(tmp_path, capsys):
    data = tmp_path / "data"
    hour = (int(time.time()) // 3600 - 5) * 3600
    store = Store(data)
    try:
        # Ten minutes whose mean is calm but whose max (CPU) or min (cache hit rate) is past the
        # levels: a mean would page nothing; the max and the min page once each.
        store.write_rollup_blocks([
            HourBlock("host.cpu_percent", {}, hour,
                      minutes(hour, 10, 10, (6, 300.0, 40.0, 90.0), (6, 240.0, 40.0, 40.0)), {}),
            HourBlock("cache.hit_rate", {}, hour,
                      minutes(hour, 20, 10, (6, 510.0, 50.0, 95.0), (6, 570.0, 95.0, 95.0)), {}),
        ], rolled_until=hour + 3600)
    finally:
        store.close()
    cfg = write_config(tmp_path / "d.toml", data, {})
    doc = run_backtest(capsys, cfg, "--since", "1d")
    assert doc["resolution"] == "1m"
    by_rule = {r["rule"]: r for r in doc["rules"]}
    assert set(by_rule) == {"host_cpu", "cache_hit_rate"}
    cpu, cache = by_rule["host_cpu"], by_rule["cache_hit_rate"]
    # host_cpu holds 300 s: breaching from minute 10, it fires at minute 15 and resolves after
    # 60 s of calm (minute 20, calm since 20: resolved at 21).
    assert [(e["start"], e["end"], e["peak"], e["severity"]) for e in cpu["episodes"]] == [
        (hour + 15 * 60, hour + 21 * 60, 90.0, "warning")]
    # cache_hit_rate holds 120 s, below 60 % is critical: the minute's min, 50 %.
    assert [(e["start"], e["end"], e["peak"], e["severity"]) for e in cache["episodes"]] == [
        (hour + 22 * 60, hour + 31 * 60, 50.0, "critical")]
    assert (cpu["fired"], cpu["resolved"], cache["fired"], cache["resolved"]) == (1, 1, 1, 1)

    # Raw samples after the rollups: the rollups are used up to the first whole raw minute.
    store = Store(data)
    try:
        now = time.time()
        store.append([Sample("host", now - 1800 + i, {"host.cpu_percent": 10.0}) for i in range(5)])
    finally:
        store.close()
    doc = run_backtest(capsys, cfg, "--since", "1d")
    assert doc["resolution"].startswith("1m until ") and doc["resolution"].endswith(", raw after")
    assert len(doc["rules"]) == 2


@pytest.fixture
def flapping_store(tmp_path) -> Path:
    data = tmp_path / "data"
    store = Store(data)
    try:
        for ts, v in flapping(time.time() - 3 * 3600):
            store.append([Sample("host", ts, {"host.cpu_percent": v})])
    finally:
        store.close()
    return data


def test_set_changes_what_the_backtest_would_have_paged(tmp_path, flapping_store, capsys):
    cfg = write_config(tmp_path / "d.toml", flapping_store, RULES)
    base = run_backtest(capsys, cfg, "--since", "4h", "--rule", "host_cpu")
    [before] = base["rules"]
    # A longer hold drops the short breaches; a higher warning level drops the warnings.
    longer = run_backtest(capsys, cfg, "--since", "4h", "--rule", "host_cpu",
                          "--set", "rules.host_cpu.for_s=240")
    [held] = longer["rules"]
    assert held["fired"] < before["fired"]
    higher = run_backtest(capsys, cfg, "--since", "4h", "--rule", "host_cpu",
                          "--set", "rules.host_cpu.warning=90", "--set", "rules.host_cpu.clear=88")
    [high] = higher["rules"]
    assert high["fired"] < before["fired"] and {e["severity"] for e in high["episodes"]} == {
        "critical"}
    # The configuration's overrides are the starting point: without them (the default 300 s
    # hold) it pages less than with the file's 60 s.
    default = run_backtest(capsys, write_config(tmp_path / "e.toml", flapping_store, {}),
                           "--since", "4h", "--rule", "host_cpu")
    assert sum(r["fired"] for r in default["rules"]) < before["fired"]
    # The text output says the same.
    capsys.readouterr()
    assert main(["--config", str(cfg), "backtest", "--since", "4h", "--rule", "host_cpu"]) == 0
    text = capsys.readouterr().out
    assert "resolution: raw" in text
    assert f"host_cpu: fired {before['fired']}, resolved {before['resolved']}" in text
    assert f"{before['flaps']} of them flaps" in text


@pytest.mark.parametrize("assignment, key", [
    ("rules.host_cpu.warning=abc", "rules.host_cpu.warning"),
    ("rules.host_cpu.warning=99", "rules.host_cpu.warning"),        # past critical 95
    ("rules.host_cpu.colour=red", "rules.host_cpu.colour"),
    ("rules.no_such_rule.warning=1", "rules.no_such_rule"),
    ("host_cpu.warning=1", "host_cpu.warning=1"),
    ("rules.host_cpu.for_s=-5", "rules.host_cpu.for_s"),
])
def test_a_bad_set_exits_2_with_one_line_naming_it(tmp_path, capsys, assignment, key):
    cfg = write_config(tmp_path / "d.toml", tmp_path / "data", {})
    capsys.readouterr()
    assert main(["--config", str(cfg), "backtest", "--set", assignment]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    [line] = out.err.splitlines()
    assert line.startswith(f"backtest: --set {key}: ")


def test_the_command_exits_2_on_a_bad_set_as_a_process(tmp_path):
    cfg = write_config(tmp_path / "d.toml", tmp_path / "data", {})
    p = subprocess.run([sys.executable, "-m", "dashboard", "--config", str(cfg), "backtest",
                        "--set", "rules.host_cpu.critical=fast"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == ("backtest: --set rules.host_cpu.critical: expected a number, "
                                "got 'fast'")


def test_the_text_names_each_label_set_without_passing_control_characters_to_the_terminal(
        tmp_path, capsys):
    data = tmp_path / "data"
    hour = (int(time.time()) // 3600 - 3) * 3600
    store = Store(data)
    try:
        store.write_rollup_blocks([HourBlock(
            "host.cpu_percent", {"host": "web\x1b[2J1"}, hour,
            minutes(hour, 0, 30, (6, 540.0, 90.0, 90.0), (6, 60.0, 10.0, 10.0)), {})])
    finally:
        store.close()
    cfg = write_config(tmp_path / "d.toml", data, {})
    capsys.readouterr()
    assert main(["--config", str(cfg), "backtest", "--since", "1d"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text
    assert "host_cpu {host=web?[2J1}: fired 1, resolved 1, escalated 0, flaps 0, firing 26 min" in text
    assert "1 page, 0 of them flaps" in text
    assert "resolution: 1m" in text


def test_an_unknown_or_disabled_rule_exits_2(tmp_path, capsys):
    cfg = write_config(tmp_path / "d.toml", tmp_path / "data", {"host_cpu": {"enabled": "false"}})
    for args, says in ((["--rule", "no_such_rule"], "unknown rule 'no_such_rule'"),
                       (["--rule", "host_cpu"], "host_cpu is disabled"),
                       (["--rule", "notify_channel_failing"], "not from stored history"),
                       (["--since", "forever"], "--since: expected a duration")):
        capsys.readouterr()
        assert main(["--config", str(cfg), "backtest", *args]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert says in line
    # Enabled for the test only: it runs.
    Store(tmp_path / "data").close()
    assert main(["--config", str(cfg), "backtest", "--rule", "host_cpu",
                 "--set", "rules.host_cpu.enabled=true"]) == 0


def test_the_backtest_gives_each_source_the_live_engines_slack_for_jitter(tmp_path, capsys):
    """The live engine takes each source's interval from the collectors that run (its quarter is
    the hold's slack for jitter): StatsD's app metrics have no ``app`` collector (no probes), so
    no slack; ``phpfpm.up`` and ``statsd.up`` have their collectors'. Breaches lasting just short
    of the hold, as collected a few seconds early, must page in the backtest as they paged live."""
    from dashboard.collectors import registry
    from dashboard.demo.services import free_port
    table = {"interval_s": INTERVAL_S, "statsd": {"bind": f"127.0.0.1:{free_port()}"},
             "phpfpm": {"url": f"http://127.0.0.1:{free_port()}/status"},
             "rules": {"app_error_rate": {"for_s": 60, "keep_firing_for_s": 0},
                       "phpfpm_down": {"for_s": 30, "keep_firing_for_s": 0}}}
    # app.error_rate over 1 % for 59 s of a 60 s hold; php-fpm down for 29 s of a 30 s hold.
    start = (time.time() - 3600) // 60 * 60       # raw from a whole minute: no rollup before it
    samples = []
    for episode in range(3):
        t0 = start + episode * 600
        samples += [Sample("statsd", t0 + dt, {"app.error_rate": 5.0}) for dt in (0, 10, 20, 30, 40, 50, 59)]
        samples.append(Sample("statsd", t0 + 69, {"app.error_rate": 0.0}))
        samples += [Sample("phpfpm", t0 + dt, {"phpfpm.up": 0.0}) for dt in (0, 10, 20, 29)]
        samples.append(Sample("phpfpm", t0 + 39, {"phpfpm.up": 1.0}))
    samples.sort(key=lambda s: s.ts)

    live_settings = config.from_dict({**table, "data_dir": str(tmp_path / "live")})
    rt = Runtime(live_settings, registry.build(live_settings))      # never started
    svc = install_alerting(rt)
    try:
        paged = [t for s in samples for t in svc.process([s], s.ts) if t.kind == "firing"]
    finally:
        svc.close()
        rt.store.close()
    live = {rule: sum(1 for t in paged if t.rule == rule) for rule in ("app_error_rate", "phpfpm_down")}
    assert live == {"app_error_rate": 0, "phpfpm_down": 3}

    data = tmp_path / "data"
    store = Store(data)
    try:
        store.append(samples)
    finally:
        store.close()
    cfg = tmp_path / "d.toml"
    cfg.write_text("\n".join([
        f'data_dir = "{data}"', f"interval_s = {INTERVAL_S}",
        "[statsd]", f'bind = "{table["statsd"]["bind"]}"',
        "[phpfpm]", f'url = "{table["phpfpm"]["url"]}"',
        "[rules.app_error_rate]", "for_s = 60", "keep_firing_for_s = 0",
        "[rules.phpfpm_down]", "for_s = 30", "keep_firing_for_s = 0"]) + "\n")
    doc = run_backtest(capsys, cfg, "--since", "2h")
    fired = {rule: sum(r["fired"] for r in doc["rules"] if r["rule"] == rule)
             for rule in ("app_error_rate", "phpfpm_down")}
    assert fired == live
