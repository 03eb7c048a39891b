"""The market_gateway service (python -m services.market_gateway)."""
