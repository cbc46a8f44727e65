"""The forward path off eventlet: ``gunicorn -k gevent -c gunicorn.conf.py wsgi_gevent:app``."""
from gevent import monkey

monkey.patch_all()

from dashboard.process.serverimports import worker_app  # noqa: E402

app = worker_app("gevent")
