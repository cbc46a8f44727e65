"""The gunicorn worker class: eventlet, loaded in the worker process only.

gunicorn imports its worker class in the master, and ``gunicorn.workers.geventlet`` imports
eventlet (and monkey-patches the master) at import. The master only supervises: it forks the one
worker, checks its heartbeat and restarts it. Loading eventlet there cost 6.6 MB of RSS in the
master (measured: 25.0 MB for gunicorn's arbiter alone, 31.6 MB with the eventlet worker module)
for nothing it uses; issue 2 budgets 90 MB for master + worker together.

``LazyEventletWorker`` is the master's handle on the worker: after the fork, in the child, it
becomes gunicorn's own ``EventletWorker`` before anything else runs there (``init_process`` is the
child's first step; it monkey-patches, then loads ``wsgi.py``). Nothing else differs: the same
class runs the worker, with the same settings, on eventlet's epoll hub minus its wake-ups for
cancelled timers (dashboard/process/quiethub.py), with its heartbeat on the process's beat
(dashboard/beat.py). Like wsgi.py, this file is the eventlet-specific
edge of the code base; ``DASHBOARD_WORKER_CLASS=gevent`` uses gunicorn's gevent worker directly.
"""
from __future__ import annotations

import os

from gunicorn.workers.base_async import AsyncWorker


class LazyEventletWorker(AsyncWorker):
    def init_process(self) -> None:
        # In the worker process now: import eventlet's worker (which monkey-patches) and become it.
        import eventlet
        from gunicorn.workers.geventlet import EventletWorker

        from dashboard import beat

        class Worker(EventletWorker):
            def patch(self) -> None:
                super().patch()                 # gunicorn's use_hub(): the default epoll hub
                # lazy: imports eventlet, which only the worker may load (see above)
                from dashboard.process import quiethub
                if not os.environ.get("EVENTLET_HUB") and quiethub.is_available():
                    quiethub.install()          # the same hub, without cancelled timers' wake-ups

            def notify(self) -> None:
                super().notify()
                # gunicorn's loop sleeps 1 s after each heartbeat: a wake-up a second on a phase
                # of its own. Returning on a beat (dashboard/beat.py) puts that one on the next
                # beat too, when the tick wakes the process anyway; the heartbeat file is then
                # touched every 2 s (the master's time-out is 60 s). A graceful stop may begin
                # up to 1 s later than with gunicorn's loop alone (graceful_timeout is 10 s).
                step = beat.sleep_to_next()
                if self.alive and step is not None and step <= 1.0:
                    eventlet.sleep(step)

        self.__class__ = Worker
        Worker.init_process(self)
