"""Command line: ``python -m dashboard <serve|check|...>``.

A bad configuration prints one line naming the key and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from dashboard.auth.cli import add_commands, first_admin
from dashboard.collectors.base import Collector
from dashboard.config import load as config_mod
from dashboard.config.secrets import mask_url
from dashboard.config.settings import ConfigError, Settings
from dashboard.demo.cli import add_command as add_demo
from dashboard.report.cli import add_command
from dashboard.store import migrate
from dashboard.store.datadir import private_umask
from dashboard.store.migrations import SchemaTooNew
from dashboard.store.pg import PgUnavailable

ROOT = Path(__file__).resolve().parent.parent


def _load(args) -> Settings:
    try:
        return config_mod.load(getattr(args, "config", None))
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args) -> int:
    settings = _load(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.config:
        os.environ["DASHBOARD_CONFIG"] = str(Path(args.config).resolve())
    bind = args.bind or settings.bind
    mode = settings.async_mode
    first_admin(settings)     # very first start only: an admin with a random password, shown once
    if mode == "threading":
        # Development server without gunicorn (no WebSocket upgrade under plain threading).
        # lazy: only the command that runs loads its modules (an agent or `check` loads no web app)
        from dashboard.app import create_app
        app = create_app(settings)
        app.extensions["dashboard"].start()
        host, port = bind.rsplit(":", 1)
        app.extensions["dashboard.socketio"].run(app, host=host, port=int(port),
                                                 allow_unsafe_werkzeug=True)
        return 0
    if args.web_only:
        if not settings.message_queue:
            print("configuration error: message_queue: --web-only needs a message queue "
                  "(redis://...) to receive samples from `python -m dashboard collect`",
                  file=sys.stderr)
            return 2
        os.environ["DASHBOARD_WEB_ONLY"] = "1"
    entry = "wsgi_gevent:app" if mode == "gevent" else "wsgi:app"
    os.environ["DASHBOARD_WORKER_CLASS"] = mode
    # eventlet's real-thread pool only runs name lookups here (wsgi.py); its default is 20.
    os.environ.setdefault("EVENTLET_THREADPOOL_SIZE", "4")
    print(f"dashboard: serving {settings.public_url} (bind {bind}, {mode} worker), "
          f"data in {settings.data_dir}", flush=True)
    # gunicorn's master, with imports it never uses deferred (dashboard/process/master.py), and
    # its worker, under -OO: without docstrings (asserts go too; ours only narrow types) the
    # worker's memory after its imports is 36.2 -> 32.8 MB RssAnon (issue 19). scripts/setup.sh
    # compiles that bytecode.
    argv = [sys.executable, "-OO", "-m", "dashboard.process.master", "-c", str(ROOT / "gunicorn.conf.py"),
            "--chdir", str(ROOT), "--bind", bind, entry]
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_migrate_store(args) -> int:
    """The data dir's users, sessions, tokens, alerts, outbox, ... into ``--to``; run again to go
    on after an interruption (rows already there are kept)."""
    settings = _load(args)
    try:
        config_mod.from_dict({"store_url": args.to})        # validated as the key is
    except ConfigError as e:
        print(f"migrate-store: --to: {str(e).removeprefix('store_url: ')}", file=sys.stderr)
        return 2
    def say(line: str) -> None:
        print(f"migrate-store: {line}", file=sys.stderr, flush=True)

    say(f"from {settings.data_dir} to {mask_url(args.to)}")
    try:
        new = migrate.run(settings.data_dir, args.to, say)
    except FileNotFoundError as e:
        say(str(e))
        return 1
    except migrate.HistoryMismatch as e:
        say(str(e))
        return 2
    say(f"done: {new} rows copied; set store_url = {mask_url(args.to)!r} and start the dashboard")
    return 0


def cmd_collect(args) -> int:
    """Collectors, alert engine and outbox without a web server; samples reach the web
    instances through the message queue. Several may run: one leads, the others stand by."""
    settings = _load(args)
    if not settings.message_queue:
        print("configuration error: message_queue: `collect` needs a message queue (redis://...) "
              "through which the web instances receive samples", file=sys.stderr)
        return 2
    import signal

    # lazy: the collector's modules load with this command only
    from dashboard.app import create_app
    from dashboard.process import cluster
    app = create_app(settings, role="collector", async_mode="threading")
    runtime = app.extensions["dashboard"]
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    lock = cluster.take_part(runtime)
    print(f"dashboard collect: {lock.identity if lock else 'single'}; waiting for the leader "
          f"lock on the message queue", flush=True)
    done.wait()
    runtime.stop()
    if lock is not None:
        lock.stop()
    return 0


def cmd_agent(args) -> int:
    """Publish this host's statistics (and PHP-FPM's, when configured) to the message queue."""
    settings = _load(args)
    if not settings.message_queue:
        print("configuration error: message_queue: `agent` publishes through the message queue "
              "(redis://...); set it or DASHBOARD_MESSAGE_QUEUE", file=sys.stderr)
        return 2
    import signal

    import redis

    # lazy: the agent loads its two collectors and nothing of the web app (app servers)
    from dashboard.collectors.host import HostCollector
    from dashboard.process.agent import Agent, stream_key
    from dashboard.process.agent_acl import host_of
    host = args.host_name or settings.host_name
    try:
        stream_key(host)
    except ValueError as e:
        print(f"configuration error: host_name: {e}", file=sys.stderr)
        return 2
    own = host_of(settings.message_queue)
    if own is not None and own != host:
        print(f"not allowed: message_queue logs in as the agent user of {own}, which may publish "
              f"and retire as {own} only", file=sys.stderr)
        return 2
    collectors: list[Collector] = [HostCollector(interval_s=settings.interval_s)]
    if settings.phpfpm_url:
        # lazy: PHP-FPM only where configured
        from dashboard.collectors.phpfpm import PhpFpmCollector
        collectors.append(PhpFpmCollector(settings.phpfpm_url, settings.phpfpm_max_children))
    client = redis.Redis.from_url(settings.message_queue, socket_timeout=5, socket_connect_timeout=5)
    if args.retire:
        # lazy: as above
        from dashboard.process.agent import retire
        retire(client, host)
        print(f"dashboard agent: {host} retired (host_down resolved, removed from the fleet view)",
              flush=True)
        return 0
    agent = Agent(client, host, collectors, settings.interval_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop_event.set())
    print(f"dashboard agent: publishing {agent.host} every {settings.interval_s:g} s to "
          f"{mask_url(settings.message_queue)}", flush=True)
    agent.run()
    return 0


def cmd_agent_credentials(args) -> int:
    """A Redis user for one agent host, made with the dashboard's own message_queue user; prints
    the URL that host's agent uses as its message_queue."""
    settings = _load(args)
    if not settings.message_queue:
        print("configuration error: message_queue: agent users are made in the message queue's "
              "Redis (redis://...)", file=sys.stderr)
        return 2
    import redis

    # lazy: this command's module only
    from dashboard.process.agent_acl import create, user_name
    try:
        user_name(args.host)
    except ValueError as e:
        print(f"agent-credentials: {args.host!r}: {e}", file=sys.stderr)
        return 2
    admin = redis.Redis.from_url(settings.message_queue, socket_timeout=5, socket_connect_timeout=5)
    try:
        url, line, saved = create(admin, settings.message_queue, args.host)
    except redis.RedisError as e:
        print(f"agent-credentials: cannot create the user ({type(e).__name__}); the message_queue "
              "user needs the ACL command", file=sys.stderr)
        return 1
    finally:
        admin.close()
    if saved:
        print("agent-credentials: saved to Redis's ACL file (ACL SAVE)", file=sys.stderr)
    else:
        print("agent-credentials: Redis has no aclfile, so this user is gone when Redis restarts. "
              "Put this line into its ACL file (or `user ...` into redis.conf); the password in it "
              f"is hashed:\n{line}", file=sys.stderr)
    print(f"message_queue URL for the agent on {args.host} (keep it secret):\n{url}")
    return 0


def _agent_user_check(url: str, host: str) -> int:
    """``check`` with an agent's URL: what that user can and cannot do, one line each."""
    # lazy: `check` with an agent's URL loads what it probes only
    from dashboard.process import cluster
    from dashboard.process.agent_acl import probe
    from dashboard.web import live
    print(f"\nmessage queue: agent user of {host}:")
    problems = 0
    try:
        for ok, what in probe(url, host, live.CHANNEL, cluster.STATUS_KEY, cluster.LOCK_KEY):
            print(f"  {'ok     ' if ok else 'PROBLEM'} {what}")
            problems += not ok
    except Exception as e:  # noqa: BLE001 - Redis away, wrong password: say so, exit non-zero
        print(f"  PROBLEM cannot talk to the message queue ({type(e).__name__})")
        problems += 1
    return problems


def _probe(collector, timeout: float) -> tuple[bool, str]:
    result: dict = {}

    def run() -> None:
        try:
            result["readings"] = collector.collect()
        except Exception as e:  # noqa: BLE001
            result["error"] = f"{type(e).__name__}: {e}" if type(e).__name__ != "CollectorError" else str(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return False, f"no answer within {timeout:g} s"
    if "error" in result:
        return False, result["error"]
    n = sum(len(r.values) for r in result["readings"])
    return True, f"{n} values"


def cmd_check(args) -> int:
    settings = _load(args)
    print("effective settings (secrets masked):")
    print(json.dumps(settings.masked(), indent=2, default=str))
    # lazy: `check` loads the collectors it tries only
    from dashboard.collectors import registry
    from dashboard.config.redact import scrub  # a driver's message may quote a DSN (issue 7)
    from dashboard.process.agent_acl import host_of
    secrets = settings.secrets()
    failures = 0
    agent_host = host_of(settings.message_queue or "")
    print("\ntargets:")
    for c in registry.build(settings):
        if agent_host is not None and c.source == "agents":
            continue              # an agent's user reads no streams: checked below instead
        ok, detail = _probe(c, max(c.timeout_s, 5.0))
        # A second reading gives collectors that compute rates something to compare with.
        print(f"  {'ok  ' if ok else 'FAIL'} {c.source:<8} {scrub(detail, secrets)}")
        for line in getattr(c, "check_notes", lambda: [])():
            print(f"       {scrub(line, secrets)}")
        failures += not ok
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    if agent_host is not None and settings.message_queue:
        failures += _agent_user_check(settings.message_queue, agent_host)
    return 1 if failures else 0


def cmd_backtest(args) -> int:
    """Replay the stored history through the rules (with ``--set`` overrides): what would have
    paged, per rule and label set (alerts/backtest.py)."""
    settings = _load(args)
    # lazy: the backtest's modules load with this command only
    from alerts import backtest, backtest_text
    from alerts.rules import build_rules
    from dashboard.store import Store
    from dashboard.store.history_reads import HistoryReads
    try:
        since_s = backtest.parse_since(args.since)
    except ValueError as e:
        print(f"backtest: --since: {e}", file=sys.stderr)
        return 2
    try:
        settings = backtest.apply_sets(settings, args.set or [])
    except ConfigError as e:
        print(f"backtest: --set {e}", file=sys.stderr)
        return 2
    rules = build_rules(settings)
    if args.rule is not None:
        if args.rule not in rules:
            print(f"backtest: --rule: unknown rule {args.rule!r}", file=sys.stderr)
            return 2
        if args.rule in backtest.TICK_RULES:
            print(f"backtest: --rule: {args.rule} is judged from the dashboard's own state, not from "
                  "stored history", file=sys.stderr)
            return 2
        if not rules[args.rule].enabled:
            print(f"backtest: --rule: {args.rule} is disabled; add --set rules.{args.rule}.enabled=true",
                  file=sys.stderr)
            return 2
        rules = {args.rule: rules[args.rule]}
    if not settings.data_dir.is_dir():
        print(f"backtest: no history in {settings.data_dir} (data_dir)", file=sys.stderr)
        return 2
    until = time.time()
    store = Store(settings.data_dir, settings.raw_retention_h, settings.rollup_retention_d)
    try:
        with HistoryReads(store.history_connect()) as reads:
            doc = backtest.backtest(reads, rules, backtest.source_intervals(settings),
                                    until - since_s, until)
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(backtest.public(doc), indent=2) + "\n")
    else:
        sys.stdout.write(backtest_text.render(doc, rules, ZoneInfo(settings.timezone)))
    return 0


def main(argv: list[str] | None = None) -> int:
    private_umask()                    # the data dir's files are the owner's only, whatever the shell's umask
    p = argparse.ArgumentParser(prog="python -m dashboard")
    p.add_argument("--config", help="TOML file (default: $DASHBOARD_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the web dashboard and its collectors (gunicorn)")
    s.add_argument("--bind", help="host:port (default: bind from the settings)")
    s.add_argument("--web-only", action="store_true",
                   help="serve pages only; samples come from `collect` through the message queue")
    s.set_defaults(func=cmd_serve)
    co = sub.add_parser("collect", help="run collectors, alerts and notifications without a web server")
    co.set_defaults(func=cmd_collect)
    ag = sub.add_parser("agent", help="publish this host's statistics to the message queue")
    ag.add_argument("--host-name", help="name shown in the fleet view (default: host_name)")
    ag.add_argument("--retire", action="store_true",
                    help="take this host out of service: resolve its host_down, drop it from the fleet")
    ag.set_defaults(func=cmd_agent)
    ac = sub.add_parser("agent-credentials",
                        help="a Redis user for one agent host: may append to its own stream only")
    ac.add_argument("host", help="the agent's --host-name")
    ac.set_defaults(func=cmd_agent_credentials)
    ms = sub.add_parser("migrate-store",
                        help="copy the SQLite data dir's tables into PostgreSQL (resumable)")
    ms.add_argument("--to", required=True, metavar="postgresql://…",
                    help="the database (the store_url the dashboard will use)")
    ms.set_defaults(func=cmd_migrate_store)
    c = sub.add_parser("check", help="print the effective settings and try every target")
    c.set_defaults(func=cmd_check)
    bt = sub.add_parser("backtest", help="replay stored history through the alert rules: what "
                        "would have paged")
    bt.add_argument("--since", default="7d", help="how far back: 7d, 36h, 90m (default 7d)")
    bt.add_argument("--rule", help="only this rule")
    bt.add_argument("--set", action="append", metavar="rules.NAME.KEY=VALUE",
                    help="a proposed override (warning, critical, clear, for_s, keep_firing_for_s, "
                    "enabled); repeatable")
    bt.add_argument("--format", choices=("text", "json"), default="text")
    bt.set_defaults(func=cmd_backtest)
    add_commands(sub, _load)           # create-user, create-token, revoke-token
    add_command(sub, _load)            # report --date YYYY-MM-DD [--send] (issue 6)
    add_demo(sub)                      # demo [--fast] [--bind H:P] (issue 8)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except SchemaTooNew as e:          # a store a newer dashboard wrote: one line, as bad config
        print(f"store error: {e}", file=sys.stderr)
        return 2
    except PgUnavailable as e:         # store_url's server does not answer at start-up
        print(f"store error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
