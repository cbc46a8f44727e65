"""What the live page draws: panels grouped by area, each naming the metrics it plots.

The page builds one Plotly chart per panel from this table; a labelled metric
(``host.disk_percent{mount}``) gets one trace per label set as series appear. ``lines`` are
horizontal reference lines (targets and thresholds, from the alert rules where one exists).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence


@dataclass(frozen=True)
class Line:
    value: float
    label: str
    severity: str = "warning"      # warning | critical | target


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    metrics: Sequence[str]
    unit: str
    area: str
    lines: Sequence[Line] = ()
    y_max: float | None = None      # e.g. 100 for percentages
    rule: str | None = None         # the alert rule whose breaches shade this panel
    names: dict[str, str] = field(default_factory=dict)   # metric -> legend name


HOST_PANELS: tuple[Panel, ...] = (
    Panel("host-cpu", "CPU busy", ["host.cpu_percent"], "%", "host",
          [Line(80, "warning 80 %"), Line(95, "critical 95 %", "critical")], 100, "host_cpu",
          {"host.cpu_percent": "CPU"}),
    Panel("host-load", "Load per core (1 min)", ["host.load_per_core"], "", "host",
          [Line(1.5, "warning 1.5"), Line(3, "critical 3", "critical")], None, "host_load",
          {"host.load_per_core": "load/core"}),
    Panel("host-mem", "Memory and swap in use", ["host.mem_percent", "host.swap_percent"], "%",
          "host", [Line(85, "warning 85 %"), Line(95, "critical 95 %", "critical")], 100,
          "host_memory", {"host.mem_percent": "memory", "host.swap_percent": "swap"}),
    Panel("host-disk", "Disk space used", ["host.disk_percent"], "%", "host",
          [Line(80, "warning 80 %"), Line(90, "critical 90 %", "critical")], 100, "host_disk"),
    Panel("host-net", "Network", ["host.net_rx_bps", "host.net_tx_bps"], "B/s", "host",
          names={"host.net_rx_bps": "received", "host.net_tx_bps": "sent"}),
    Panel("host-io", "Disk I/O", ["host.disk_read_bps", "host.disk_write_bps"], "B/s", "host",
          names={"host.disk_read_bps": "read", "host.disk_write_bps": "written"}),
)

AREAS: dict[str, str] = {"host": "Host"}

PANELS: list[Panel] = [*HOST_PANELS]


def as_json(panels: Sequence[Panel] | None = None) -> list[dict]:
    return [asdict(p) for p in (PANELS if panels is None else panels)]
