"""Alerting: rules (the docs' thresholds), a pure engine, notifiers and a durable outbox.

Nothing in this package imports Flask; ``dashboard.alerting`` wires it into the running app.
"""
