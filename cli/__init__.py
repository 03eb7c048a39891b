"""The `automata` console command (typer + rich).

main.py builds the app and registers each command group from its own module (run.py: run and
down; health.py: the heartbeat listing), so later commands are added the same way.
"""
