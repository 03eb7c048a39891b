"""Automata's shared package: message schemas, stream names, the bus, config, money, ids."""
