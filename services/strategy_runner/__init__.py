"""The strategy_runner service (python -m services.strategy_runner)."""

import shared.redis_lean  # noqa: F401  (first: redis-py without importlib.metadata)
