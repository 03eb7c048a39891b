"""The order_gateway service (python -m services.order_gateway)."""
