"""The forward path off eventlet: ``gunicorn -k gevent -c gunicorn.conf.py wsgi_gevent:app``."""
from gevent import monkey

monkey.patch_all()

from dashboard.config import load as config_mod  # noqa: E402
from dashboard.process.serverimports import skip_client_libraries, skip_unused_modules  # noqa: E402

# Before the settings: loading them parses the rate limits with ``limits`` (serverimports.py).
skip_unused_modules()

# The settings first: without a message queue, redis-py stays out too (serverimports.py).
settings = config_mod.load()
skip_client_libraries(settings.message_queue)

from dashboard.app import create_app  # noqa: E402

app = create_app(settings, async_mode="gevent")
