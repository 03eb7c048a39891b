"""The notifier service (python -m services.notifier)."""
