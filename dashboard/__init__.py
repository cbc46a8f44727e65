"""Real-time monitoring dashboard for MySQL/MariaDB + Redis + job-queue web platforms."""
from __future__ import annotations


def create_app(*args, **kwargs):
    from dashboard.app import create_app as _create_app
    return _create_app(*args, **kwargs)
