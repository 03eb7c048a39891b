"""The services without docstrings: PYTHONOPTIMIZE=2 where that bytecode is already compiled.

Why: docstrings are constants every process holds in its code objects (python-binance's client
alone carries megabytes of them); run with -OO the demo stack holds ~18 MB less RSS
(docs/BENCHMARKS.md). Only where the .opt-2.pyc files exist, the standard library's included
(`make venv` compiles the project's and the virtual environment's): without them a service
compiles its imports at every start when it cannot write __pycache__, and keeps the compiler's
memory, more than the docstrings save. -OO also drops `assert` statements: ours only narrow
types for the type checker, never check anything at run time; a strategy's may guard its money,
so the strategy runners' programs set PYTHONOPTIMIZE="" (deploy/supervisord.conf, `automata
deploy supervisor`) and run user code as written. The environment's own choice is kept.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping

OPTIMIZE_ENV = "PYTHONOPTIMIZE"
# One module of each place the services import from: the standard library, the virtual
# environment, the project.
PROBES = ("asyncio.base_events", "redis.client", "shared.service")


def optimized_bytecode(modules: Iterable[str] = PROBES) -> bool:
    """Every module's -OO bytecode (.opt-2.pyc) is compiled already."""
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(".py"):
            return False
        if not os.path.exists(importlib.util.cache_from_source(origin, optimization=2)):
            return False
    return True


def lean_env(env: Mapping[str, str], modules: Iterable[str] = PROBES) -> dict[str, str]:
    """PYTHONOPTIMIZE=2 for the services when their bytecode is ready and env does not set it."""
    if OPTIMIZE_ENV in env or not optimized_bytecode(modules):
        return {}
    return {OPTIMIZE_ENV: "2"}
