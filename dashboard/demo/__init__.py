"""``python -m dashboard demo``: a local demo platform and a workload that moves every panel.

A private MariaDB and Redis on loopback (``platform``), a small shop with a PHP-FPM-style worker
pool that sends StatsD (``shop``), a workload that crosses thresholds on purpose in repeating
phases (``workload``, ``timing``), and the dashboard itself under gunicorn with a demo
configuration (``configfile``, ``child``), all stopped by Ctrl-C (``runner``).
"""
