"""The ``demo`` command and the check ``scripts/run.sh`` makes before choosing it."""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from dashboard.config import load as config
from dashboard.config.settings import ConfigError

DEFAULT_DIR = Path("data") / "demo"
DEFAULT_BIND = "127.0.0.1:8050"


def cmd_demo(args: argparse.Namespace) -> int:
    # lazy: the demo's servers and workload load with `demo` only
    from dashboard.demo.runner import Options, port_free, run
    from dashboard.demo.services import free_port
    data_dir = Path(args.data_dir or os.environ.get("DASHBOARD_DATA_DIR") or DEFAULT_DIR).resolve()
    bind = args.bind or os.environ.get("DASHBOARD_BIND") or ""
    host, _, port = bind.rpartition(":")
    if bind and not (host and re.fullmatch(r"[0-9]+", port) and int(port) < 65536):
        print(f"demo: --bind: expected host:port, got {bind!r}", file=sys.stderr)
        return 2
    if bind and int(port) == 0:
        bind = f"{host}:{free_port()}"           # any free port
    if bind and not port_free(bind):
        print(f"demo: cannot listen on {bind}: the address is in use", file=sys.stderr)
        return 2
    if not bind:   # the README's address when it is free, else any free loopback port
        bind = DEFAULT_BIND if port_free(DEFAULT_BIND) else f"127.0.0.1:{free_port()}"
    return run(Options(data_dir=data_dir, bind=bind, fast=args.fast))


def add_command(sub) -> None:
    d = sub.add_parser("demo", help="run a local demo platform and workload with the dashboard "
                                    "(Ctrl-C stops all of it)")
    d.add_argument("--data-dir", help="where the demo keeps everything "
                                      "(default: $DASHBOARD_DATA_DIR, else data/demo)")
    d.add_argument("--bind", help="host:port of the dashboard (default: 127.0.0.1:8050 if free; "
                                  "port 0: any free port)")
    d.add_argument("--fast", action="store_true",
                   help="every phase and alert timing x0.4 (the tests): a cycle in ~1.5 min")
    d.set_defaults(func=cmd_demo)


def has_targets(env: dict[str, str] | None = None) -> bool:
    """Is anything configured to monitor? (``scripts/run.sh`` runs the demo when not.)

    A configuration that does not load counts as configured: ``serve`` then names the bad key.
    """
    env = dict(os.environ if env is None else env)
    if not any(env.get(k) for k in ("DASHBOARD_CONFIG", "DASHBOARD_MYSQL_URL", "DASHBOARD_REDIS_URL",
                                     "DASHBOARD_MESSAGE_QUEUE")):
        return False
    try:
        s = config.load(env=env)
    except ConfigError:
        return True
    return s.has_targets() or bool(s.message_queue)


if __name__ == "__main__":
    # `python -m dashboard.demo.cli has-targets`: exit 0 when targets are configured, 1 when not
    sys.exit(0 if has_targets() else 1)
