"""Automata services: one package a process."""
