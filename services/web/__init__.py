"""The web dashboard: a REST API under /api, server-sent events, the pages (docs/ARCHITECTURE.md)."""

import shared.redis_lean  # noqa: F401  (first: redis-py without importlib.metadata)
