"""The notifier service (python -m services.notifier)."""

import shared.redis_lean  # noqa: F401  (first: redis-py without importlib.metadata)
