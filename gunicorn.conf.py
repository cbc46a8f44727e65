"""gunicorn settings: one worker (Socket.IO needs sticky sessions), collectors started in the
worker after the fork, never at import and never with --preload.

``python -m dashboard serve`` passes --bind from the settings; run by hand:
    gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8050 wsgi:app
"""
import gc
import os

# A hand-run gunicorn writes the data dir's files owner-only too (dashboard/store/datadir.py).
os.umask(0o077)

# Inherited by the worker, which imports eventlet (gworker.py) after the fork: see wsgi.py.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

workers = 1
# "eventlet" loads eventlet in the worker only, not in the master (gworker.py: 6.6 MB less RSS).
_worker = os.environ.get("DASHBOARD_WORKER_CLASS", "eventlet")
worker_class = "gworker.LazyEventletWorker" if _worker == "eventlet" else _worker
worker_connections = 2000
preload_app = False
graceful_timeout = 10
timeout = 60
accesslog = None
loglevel = os.environ.get("DASHBOARD_LOG_LEVEL", "info")
# The collectors run inside the one worker; a second worker would run a second set.
if workers != 1:
    raise SystemExit("gunicorn.conf.py: workers must be 1 (scale out with more instances)")


def pre_fork(server, worker):
    # The worker starts as a copy-on-write view of the master. Its garbage collector's passes
    # write into the header of every object they visit, copying the master's pages into the
    # worker; frozen here, they are never visited (the gc module's advice for fork servers).
    # Issue 19, bench/overhead.py --all --vs: PSS 65.2 -> 64.7 MB, CPU 0.91x (noisy) in one run.
    gc.freeze()


def post_worker_init(worker):
    # Leak hunts only: SIGUSR2 dumps greenlets/objects/tracemalloc when DASHBOARD_DEBUG_DUMP is set.
    from dashboard.process import debugdump
    debugdump.install_from_env()
    # Everything imported so far lives as long as the worker: keep it out of the garbage
    # collector's full passes (measured: 65-160 ms pauses at 500 clients, 25-36 ms frozen).
    gc.freeze()
    runtime = worker.wsgi.extensions["dashboard"]
    # `python -m dashboard serve` made the first admin already; this covers a hand-run gunicorn.
    from dashboard.auth.cli import announce_first_admin
    announce_first_admin(worker.wsgi.extensions["dashboard.accounts"])
    # Collect here unless web-only; with a message queue, only while holding the leader lock.
    from dashboard.process.cluster import take_part
    take_part(runtime, web_only=os.environ.get("DASHBOARD_WEB_ONLY") == "1")


def worker_exit(server, worker):
    app = getattr(worker, "wsgi", None)
    if app is not None:
        app.extensions["dashboard"].stop()
