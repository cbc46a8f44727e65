"""Every metric the dashboard can produce, from the ``metrics`` of each collector class.

``/metrics`` takes its HELP texts from here (and the README's reference can). The collectors are
those of the registry's table (``dashboard.collectors.registry.COLLECTORS``), imported only when
the catalog is first asked for, so importing this module costs nothing and an unused collector's
dependencies stay unloaded until then.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Mapping

from dashboard.collectors.registry import COLLECTORS, collector_class
from dashboard.model import MetricSpec

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def all_metrics() -> Mapping[str, MetricSpec]:
    """Dotted name -> spec, over all collectors (in the table's order).

    Two collectors may measure the same contract name (``app.response_ms`` per probe, and from
    StatsD timers without a label): the entry then carries both descriptions and both labels.
    """
    out: dict[str, MetricSpec] = {}
    for name in COLLECTORS:
        try:
            cls = collector_class(name)
        except Exception:  # noqa: BLE001 - a broken optional module must not hide the others
            log.exception("catalog: cannot import %s", COLLECTORS[name])
            continue
        for spec in cls.metrics:
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
