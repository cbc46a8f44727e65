"""Real-time monitoring dashboard for MySQL/MariaDB + Redis + job-queue web platforms."""
