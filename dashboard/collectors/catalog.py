"""Every metric the dashboard can produce, from the ``METRICS`` tuple of each collector module.

``/metrics`` takes its HELP texts from here (and the README's reference can). Collector modules
are imported only when the catalog is first asked for, so importing this module costs nothing
and an unused collector's dependencies stay unloaded until then. New collector modules are found
by themselves: any module of ``dashboard.collectors`` with a ``METRICS`` tuple counts.
"""
from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from dataclasses import replace
from typing import Mapping

from dashboard.model import MetricSpec

log = logging.getLogger(__name__)


def _collector_modules() -> list[str]:
    import dashboard.collectors as pkg
    return sorted(f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_"))


@functools.lru_cache(maxsize=1)
def all_metrics() -> Mapping[str, MetricSpec]:
    """Dotted name -> spec, over all collector modules (in module-name order).

    Two collectors may measure the same contract name (``app.response_ms`` per probe, and from
    StatsD timers without a label): the entry then carries both descriptions and both labels.
    """
    out: dict[str, MetricSpec] = {}
    for name in _collector_modules():
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a broken optional module must not hide the others
            log.exception("catalog: cannot import %s", name)
            continue
        for spec in getattr(module, "METRICS", ()) or ():
            seen = out.get(spec.name)
            if seen is None:
                out[spec.name] = spec
                continue
            desc = seen.description
            if spec.description not in desc:
                desc = f"{desc}; or: {spec.description}"
            labels = seen.labels + tuple(x for x in spec.labels if x not in seen.labels)
            out[spec.name] = replace(seen, description=desc, labels=labels)
    return out
