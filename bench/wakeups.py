"""What one wake-up of an idle process costs on this machine (issue 19), before any work.

A child process does nothing but sleep ``1/rate`` s at a time (``time.sleep``, which eventlet
monkey-patches into its hub's timer and epoll wait), for ``--seconds``; its on-CPU time (schedstat,
ns) is divided by the number of wake-ups. Rates alternate (A B B A per round) so the machine's
drift falls on both. Printed, never asserted:

    .venv/bin/python bench/wakeups.py [--rates 1,10] [--seconds 30] [--rounds 2] [--plain]

``--plain`` runs the same loop without eventlet too (the kernel's and the VM's share).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

CHILD = r"""
import sys
if sys.argv[1] == "eventlet":
    import warnings
    warnings.simplefilter("ignore")
    import eventlet
    eventlet.monkey_patch()
import os, time
rate, seconds = float(sys.argv[2]), float(sys.argv[3])
def oncpu():
    with open(f"/proc/{os.getpid()}/schedstat") as f:
        return int(f.read().split()[0])
time.sleep(1.0)                                   # imports and start-up are not counted
c0, t0, n = oncpu(), time.monotonic(), 0
next_at = t0
while next_at - t0 < seconds:
    next_at += 1.0 / rate
    time.sleep(max(0.0, next_at - time.monotonic()))
    n += 1
print(oncpu() - c0, time.monotonic() - t0, n)
"""


def one(kind: str, rate: float, seconds: float) -> tuple[float, float]:
    """(% of a core, microseconds a wake-up) of one child run."""
    out = subprocess.run([harness.PY, "-c", CHILD, kind, str(rate), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60, check=True)
    ns, wall, n = out.stdout.split()
    return 100 * int(ns) / 1e9 / float(wall), int(ns) / 1e3 / max(int(n), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="1,10", help="wake-ups a second, comma-separated")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--plain", action="store_true", help="also without eventlet")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    kinds = ["eventlet", "plain"] if args.plain else ["eventlet"]
    print(harness.machine_line(), flush=True)
    got: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        order = rates if r % 2 == 0 else rates[::-1]
        for kind in kinds:
            for rate in order:
                pct, us = one(kind, rate, args.seconds)
                got.setdefault((kind, rate), []).append((pct, us))
                print(f"round {r + 1}: {kind:8} {rate:6g}/s: {pct:.4f} % of a core, "
                      f"{us:.1f} us a wake-up", flush=True)
    print(f"\n{harness.machine_line()}")
    for (kind, rate), rows in got.items():
        pct = sum(x[0] for x in rows) / len(rows)
        us = sum(x[1] for x in rows) / len(rows)
        print(f"{kind:8} {rate:6g} wake-ups/s: {pct:.4f} % of a core, {us:.1f} us each "
              f"(runs: {', '.join(f'{x[1]:.1f}' for x in rows)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
