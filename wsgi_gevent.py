"""The forward path off eventlet: ``gunicorn -k gevent -c gunicorn.conf.py wsgi_gevent:app``."""
from gevent import monkey

monkey.patch_all()

from dashboard.process.serverimports import skip_client_libraries  # noqa: E402

skip_client_libraries()

from dashboard.app import create_app  # noqa: E402

app = create_app(async_mode="gevent")
