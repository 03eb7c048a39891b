"""Example user bots, written only against the public strategy interface (shared.strategy)."""
