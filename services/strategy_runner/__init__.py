"""The strategy_runner service (python -m services.strategy_runner)."""
