"""Per-host agents read from Redis: one stream per host, every entry checked before it becomes a sample."""
