"""dashboard.example.toml stays loadable, documents every key config.py accepts, and its
defaults are the real ones."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dashboard.collectors.queues import options as queue_options
from dashboard.config import load as config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "dashboard.example.toml"

_HEADER = re.compile(r"^\[\[?([A-Za-z_][A-Za-z0-9_.]*)\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")


def documented() -> dict[str, set[str]]:
    """Section -> keys written as ``key = ...`` (commented out or not) under its header.

    "" is the top level; ``[rules.NAME]`` counts as section "rules.*".
    """
    out: dict[str, set[str]] = {"": set()}
    section = ""
    for raw in EXAMPLE.read_text().splitlines():
        line = raw.strip().lstrip("#").strip()
        m = _HEADER.match(line)
        if m:
            name = m.group(1)
            section = "rules.*" if name.startswith("rules.") else name
            out[""].add(name.split(".")[0])
            out.setdefault(section, set())
            continue
        m = _KEY.match(line)
        if m:
            out.setdefault(section, set()).add(m.group(1))
    return out


def _section_of(prefix: ast.expr, func: ast.FunctionDef | None) -> str | None:
    """The section a ConfigError key prefix names: "mysql." -> mysql, f"queues[{i}]." -> queues."""
    if isinstance(prefix, ast.Name) and func is not None:
        for node in ast.walk(func):
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == prefix.id
                                                     for t in node.targets)):
                prefix = node.value
                break
    text = None
    if isinstance(prefix, ast.Constant) and isinstance(prefix.value, str):
        text = prefix.value
    elif isinstance(prefix, ast.JoinedStr) and isinstance(prefix.values[0], ast.Constant):
        text = prefix.values[0].value
    if text is None:
        return None
    if text.startswith("rules."):
        return "rules.*"
    return re.split(r"[.\[]", text)[0]


def accepted() -> dict[str, set[str]]:
    """Section -> every key config.py reads or allows, from its source: the sets given to
    ``_unknown`` and the literal keys given to ``_str`` / ``_num`` / ``_bool``."""
    tree = ast.parse(Path(config.__file__).read_text())
    consts = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    out: dict[str, set[str]] = {}
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for func in funcs:
        for node in ast.walk(func):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            name, args = node.func.id, node.args
            if name == "_unknown" and len(args) == 3:
                keys = consts.get(args[1].id) if isinstance(args[1], ast.Name) else args[1]
                section = _section_of(args[2], func)
                assert isinstance(keys, ast.Set) and section is not None, ast.dump(node)
                out.setdefault(section, set()).update(k.value for k in keys.elts)
            elif name in ("_str", "_num", "_bool") and len(args) >= 3 \
                    and isinstance(args[1], ast.Constant):
                section = _section_of(args[2], func)
                if section is not None:
                    out.setdefault(section, set()).add(args[1].value)
    out.setdefault("queues", set()).update(queue_options.COMMON)
    for options in queue_options.DEFAULTS.values():
        out["queues"].update(options)
    return out


def test_the_example_configuration_loads_as_it_is():
    s = config.load(EXAMPLE, env={})
    assert s.source_file == str(EXAMPLE)
    assert s.mysql is not None and s.mysql.pool_capacity == 100
    assert s.redis is not None and s.queues[0].options["age_field"] == "created_at"
    assert [n.name for n in s.notify] == ["oncall", "team-mail"]
    assert s.rules["db_pool_utilization"]["warning"] == 80


def test_the_key_reader_finds_what_config_accepts():
    # Guards the AST walk itself: if these go missing, the completeness test proves nothing.
    keys = accepted()
    assert {"interval_s", "metrics_public", "trusted_proxies"} <= keys[""]
    assert {"url", "pool_capacity", "slow_ms"} <= keys["mysql"]
    assert {"url"} <= keys["memcached"] and {"bind"} <= keys["statsd"]
    assert {"url", "max_children"} <= keys["phpfpm"]
    assert {"warning", "for_s", "keep_firing_for_s"} <= keys["rules.*"]
    assert {"consume_from", "statement_timeout_ms", "priority_steps"} <= keys["queues"]
    assert {"name", "interval_s"} <= keys["probes"] and {"secret"} <= keys["notify"]


def test_every_top_level_key_is_in_the_example():
    missing = set(config.TOP_KEYS) - documented()[""]
    assert not missing, f"dashboard.example.toml does not document: {sorted(missing)}"


@pytest.mark.parametrize("section", ["", "mysql", "redis", "memcached", "statsd", "phpfpm", "queues",
                                     "probes", "rules.*", "notify", "smtp", "report", "auth",
                                     "watchdog"])
def test_every_key_of_each_section_is_in_the_example(section):
    keys = accepted()
    assert section in keys, f"config.py has no keys for {section!r} any more?"
    missing = keys[section] - documented().get(section, set())
    assert not missing, f"[{section or 'top level'}] keys not in dashboard.example.toml: {sorted(missing)}"


def test_no_section_config_accepts_is_left_out():
    assert set(accepted()) - set(documented()) == set()


def test_the_defaults_the_example_states_are_the_real_defaults():
    example = config.load(EXAMPLE, env={})
    default = config.from_dict({"mysql": {"url": "mysql://u:p@h/"}, "redis": {"url": "redis://h/0"}})
    for key in ("interval_s", "bind", "timezone", "raw_retention_h", "rollup_retention_d",
                "collector_timeout_s", "metrics_public", "trusted_proxies", "async_mode", "demo",
                "smtp", "auth"):
        assert getattr(example, key) == getattr(default, key), key
    for key in ("connections_per_hour_limit", "slow_ms", "digest_interval_s"):
        assert getattr(example.mysql, key) == getattr(default.mysql, key), key
    assert example.redis.hit_rate_window_s == default.redis.hit_rate_window_s
    assert example.report.send_at == default.report.send_at
    probe = config.parse_probe(0, {"name": "x", "url": "http://x/"})
    assert (example.probes[0].interval_s, example.probes[0].timeout_s) == (probe.interval_s, probe.timeout_s)


def test_the_rule_defaults_listed_in_the_example_are_the_shipped_ones():
    from alerts.rules import default_rules

    text = EXAMPLE.read_text()

    def fmt(v):
        return "-" if v is None else f"{v:g}"
    for rule in default_rules(config.from_dict({})).values():
        line = (f"{rule.name:<24} {rule.direction:<5} warning {fmt(rule.warning):<5} "
                f"critical {fmt(rule.critical):<5} clear {fmt(rule.clear):<5} "
                f"for_s {fmt(rule.for_s):<4} keep_firing_for_s {fmt(rule.keep_firing_for_s)}")
        assert f"#   {line}\n" in text, f"example's defaults line for {rule.name} is out of date:\n{line}"
