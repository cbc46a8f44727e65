"""The HTTP and Socket.IO surface: pages, the JSON API, history, the database and fleet views,
Prometheus metrics, the alerts pages and the live namespace."""
