"""Issue 17: every collector's figures documented from one table, the MetricSpecs. The README's
metric reference is generated from them, so a new metric cannot ship undocumented."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dashboard.collectors import catalog
from dashboard.model import MetricSpec

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_metric_table_is_the_one_generated_from_the_metric_specs():
    text = README.read_text()
    assert text.count(catalog.BEGIN) == 1 and text.count(catalog.END) == 1
    assert catalog.with_table(text) == text, (
        "README.md's metric table is out of date: python -m dashboard.collectors.catalog "
        "--write README.md")


def test_a_new_metric_changes_the_table_and_every_metric_is_in_it(monkeypatch):
    table = catalog.reference_table()
    for name, spec in catalog.all_metrics().items():
        labels = "{" + ",".join(spec.labels) + "}" if spec.labels else ""
        assert f"| `{name}{labels}` | {spec.unit} |" in table, name
    for name in ("db.replica_lag_s", "db.deadlocks_per_min", "db.innodb_buffer_pool_hit_rate"):
        assert f"`{name}`" in table
    specs = dict(catalog.all_metrics())
    specs["db.new_figure"] = MetricSpec("db.new_figure", "count", "Something new")
    monkeypatch.setattr(catalog, "all_metrics", lambda: specs)
    assert catalog.with_table(README.read_text()) != README.read_text()
    assert "| `db.new_figure` | count | Something new |" in catalog.reference_table()
    specs["db.new_figure"] = replace(specs["db.new_figure"], description="a | b")
    assert "a \\| b" in catalog.reference_table()            # a pipe cannot break the table
