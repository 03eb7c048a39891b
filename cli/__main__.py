"""`python -m cli ...` = `automata ...` (works from a checkout that is not pip-installed)."""

from cli.main import main

main()
