"""CPU of publishing one tick (issue 19): ``Runtime.publish`` -- the store write, the alert engine,
the Socket.IO ``samples`` packet encoded as the server encodes it for its clients, the statements
push -- on the ticks ``bench/overhead.py --all`` produces (every collector at 1 s against private
MariaDB and Redis with the workload running).

The parent starts MariaDB, Redis and the workload once; each checkout (this one, and with
``--vs DIR`` another, alternately A B B A) runs in a child process: it builds the app on a fresh
data dir, collects ``--collect`` real rounds one second apart, then publishes them again and again
(times moved on by the collected span each pass) and prints the process CPU per tick.

    .venv/bin/python bench/publish_tick.py --vs /work/other-checkout --ticks 2000
    .venv/bin/python bench/publish_tick.py --profile out.pstats     # cProfile of the timed ticks
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def child(args) -> None:
    root = Path(args.root).resolve()
    sys.path.insert(0, str(root))
    from engineio import packet as eio_packet  # noqa: PLC0415
    from socketio import packet as sio_packet  # noqa: PLC0415

    from dashboard.app import create_app  # noqa: PLC0415
    from dashboard.config import load as config  # noqa: PLC0415
    from dashboard.runtime import Runtime  # noqa: PLC0415
    try:
        from dashboard.web.live import JsonPacket as packet_class  # noqa: PLC0415
    except ImportError:
        packet_class = sio_packet.Packet

    settings = config.load()
    rt = Runtime(settings)
    create_app(settings, rt, async_mode="threading")
    encoded = [0]

    def emitter(event, data, namespace="/live", **_kw) -> None:
        # What python-socketio's manager does for a broadcast with one client connected.
        pkt = packet_class(sio_packet.EVENT, namespace=namespace, data=[event, data])
        p = pkt.encode()
        for part in (p if isinstance(p, list) else [p]):
            encoded[0] += len(eio_packet.Packet(eio_packet.MESSAGE, part).encode())

    rt.emitter = emitter
    for hook in rt.on_start:                 # StatsD listener, alert state
        hook()
    ticks: list[list] = []
    grab = rt.publish

    def capture(samples):
        ticks.append(list(samples))
        return grab(samples)
    rt.runner._publish = capture
    for _ in range(args.collect):
        t0 = time.time()
        rt.runner.collect_round(rt.runner.collectors, 3.0)
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))
    ticks = ticks[-args.collect:]
    span = ticks[-1][0].ts - ticks[0][0].ts + 1.0
    n_samples = sum(len(t) for t in ticks) / len(ticks)
    n_values = sum(len(s.values) for t in ticks for s in t) / len(ticks)

    def shifted(k: int):
        tick = ticks[k % len(ticks)]
        dt = span * (k // len(ticks) + 1)
        return [dataclasses.replace(s, ts=s.ts + dt, seq=None) for s in tick]

    # The ticks to publish are made before the clock starts.
    plan = [shifted(k) for k in range(args.ticks)]
    for t in plan[:50]:                                   # warm
        rt.publish(t)
    plan = plan[50:]
    prof = None
    if args.profile:
        import cProfile  # noqa: PLC0415
        prof = cProfile.Profile()
        prof.enable()
    per: list[float] = []
    for t in plan:
        c0 = time.process_time()
        rt.publish(t)
        per.append(time.process_time() - c0)
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    for hook in rt.on_stop:
        hook()
    rt.runner.stop()
    print(json.dumps({"root": str(root), "mean_us": 1e6 * statistics.fmean(per),
                      "median_us": 1e6 * statistics.median(per), "ticks": len(per),
                      "samples": n_samples, "values": n_values,
                      "bytes": encoded[0] / max(1, len(per) + 50)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vs", help="another checkout, run alternately (A B B A)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ticks", type=int, default=1500)
    ap.add_argument("--collect", type=int, default=10, help="real rounds collected, 1 s apart")
    ap.add_argument("--profile", help="cProfile the timed ticks of this checkout into this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", default=str(HERE), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    sys.path.insert(0, str(HERE))
    from bench import overhead  # noqa: PLC0415
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        ns = argparse.Namespace(interval=1.0, with_mysql=True, with_redis=True, all=True,
                                async_mode=None)
        env, _targets, _facts = overhead.start_targets(stack, tmp, ns)
        roots = [str(HERE)] if not args.vs else [str(HERE), str(Path(args.vs).resolve())]
        order = roots if len(roots) == 1 else [r for i in range(args.rounds)
                                               for r in (roots if i % 2 == 0 else roots[::-1])]
        results: dict[str, list[dict]] = {r: [] for r in roots}
        for i, root in enumerate(order):
            data = tmp / f"data{i}"
            data.mkdir()
            cenv = {**os.environ, **env, "DASHBOARD_DATA_DIR": str(data)}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--root", root,
                   "--ticks", str(args.ticks), "--collect", str(args.collect)]
            if args.profile and root == str(HERE):
                cmd += ["--profile", args.profile]
            out = subprocess.run(cmd, env=cenv, cwd=root, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[root].append(r)
            print(f"{root}: {r['mean_us']:.0f} us CPU mean, {r['median_us']:.0f} us median a tick "
                  f"({r['samples']:.0f} samples, {r['values']:.0f} values, {r['bytes']:.0f} B packet)",
                  flush=True)
        means = {r: statistics.fmean(x["mean_us"] for x in v) for r, v in results.items()}
        meds = {r: statistics.fmean(x["median_us"] for x in v) for r, v in results.items()}
        for r in roots:
            print(f"mean of {r}: {means[r]:.0f} us mean, {meds[r]:.0f} us median")
        if args.vs:
            a, b = roots
            print(f"ratio this/vs: mean {means[a] / means[b]:.2f}x, median {meds[a] / meds[b]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
