"""``python -m dashboard report --date YYYY-MM-DD [--send] [--format text|json|csv]``.

Prints the day's summary (default: yesterday, in ``settings.timezone``); ``--send`` also mails it
to ``report.recipients`` through ``[smtp]``. A bad date, or ``--send`` without recipients, is one
line on stderr and exit status 2.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Callable


def cmd_report(args, load: Callable) -> int:
    settings = load(args)
    # lazy: the report's build and rendering load with `report` only
    from dashboard.report import render
    from dashboard.report.build import build_report
    from dashboard.report.days import BadDate
    from dashboard.report.views import public
    from dashboard.store import Store

    if args.send and not settings.report.recipients:
        print("report: --send needs report.recipients in the configuration", file=sys.stderr)
        return 2
    store = Store(settings.data_dir, settings.raw_retention_h, settings.rollup_retention_d,
                  settings.store_url, settings.store_pool_size)
    try:
        try:
            doc = build_report(store, settings, args.date)
        except BadDate as e:
            print(f"report: {e}", file=sys.stderr)
            return 2
        if args.format == "json":
            sys.stdout.write(json.dumps(public(doc), indent=2) + "\n")
        elif args.format == "csv":
            sys.stdout.write(render.to_csv(doc))
        else:
            sys.stdout.write(render.text(doc))
        if args.send:
            # lazy: as above
            from dashboard.report.mailer import send
            now = time.time()
            try:
                # A hand-made send gets its own Message-ID: a resend is not dropped as a copy.
                send(settings, doc, f"daily-report-{doc['date']}-{settings.host_name}-{int(now)}", now)
            except Exception as e:  # noqa: BLE001 - DeliveryError and friends: one line
                print(f"report: not sent: {e}", file=sys.stderr)
                return 1
            print(f"report: sent to {', '.join(settings.report.recipients)}", file=sys.stderr)
        return 0
    finally:
        store.close()


def add_command(sub, load: Callable) -> None:
    p = sub.add_parser("report", help="print (and optionally e-mail) the daily capacity summary")
    p.add_argument("--date", default=None,
                   help="YYYY-MM-DD, 'today' (so far) or 'yesterday' (default)")
    p.add_argument("--send", action="store_true", help="also e-mail it to report.recipients")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.set_defaults(func=lambda args: cmd_report(args, load))
