"""The processes around the web app: the collector leader lock, the per-host agent, the debug dump,
and what the web worker keeps out of memory."""
