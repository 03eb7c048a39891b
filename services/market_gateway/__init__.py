"""The market_gateway service (python -m services.market_gateway)."""

import shared.redis_lean  # noqa: F401  (first: redis-py without importlib.metadata)
