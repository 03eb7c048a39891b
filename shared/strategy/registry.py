"""Finding a strategy by the name a bot config gives: a built-in name or `package.module:Name`.

Name may be a Strategy subclass (instantiated without arguments), a Strategy instance, or a
plain function `step(params, state, event, ctx) -> (state, commands)` (wrapped: its params
are the config table as a dict, its state a plain StrategyState). `package.module` alone
looks for `STRATEGY`, then a function `bot` (a function-style bot).

A user's module is imported from the Python path; the working directory is searched last (a
runner started with `python -m` has it first already, the `automata` command has not), so
`strategies_user.my_bot:MyBot` is found beside the bots file wherever the bot is run or
backtested, and a file there never shadows an installed module.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import msgspec

from shared.strategy.base import Strategy
from shared.strategy.context import StrategyContext
from shared.strategy.events import Event
from shared.strategy.failure import defined_at, failure_text
from shared.strategy.state import StrategyState
from shared.strategy.unsent import check_sent

BUILTIN: dict[str, str] = {
    "dca": "strategies.dca:DcaStrategy",
    "fractal_trailing": "strategies.fractal_trailing:FractalTrailingStrategy",
    "grid": "strategies.grid:GridStrategy",
    "manual": "strategies.manual:ManualStrategy",
    "range_oco": "strategies.range_oco:RangeOcoStrategy",
}


class StrategyLoadError(ValueError):
    """The named strategy cannot be found or is not a strategy."""


class DictParams(msgspec.Struct, frozen=True):
    """Params of a function strategy: the config table as it is."""

    values: dict[str, Any] = {}


class FunctionStrategy(Strategy[Any, StrategyState]):
    """Adapts a plain step function to the Strategy interface."""

    params_type = DictParams

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self.func = func
        self.name = name  # type: ignore[misc]

    def parse_params(self, raw: Mapping[str, Any] | None, source: str = "params") -> Any:
        return dict(raw or {})

    def step(self, params: Any, state: StrategyState, event: Event, ctx: StrategyContext) -> Any:
        new_state, commands = self.func(params, state, event, ctx)
        commands = list(commands)
        if isinstance(state, StrategyState) and isinstance(new_state, StrategyState):
            check_sent(state.orders, new_state.orders, commands, lambda: defined_at(self.func))
        return new_state, commands


def _import(module_name: str) -> ModuleType:
    """import_module, retried once with the working directory at the end of sys.path."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = module_name.partition(".")[0]
        if exc.name != top or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = _import(module_name)
    except Exception as exc:  # ImportError; a name import_module refuses (".x", ""); the module's own error
        raise StrategyLoadError(f"strategy {spec!r}: cannot import {module_name!r}: {_why(exc)}") from None
    names = [attr] if attr else ["STRATEGY", "bot"]
    for name in names:
        obj: Any = module
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    found = _strategy_classes(module)
    hint = f"; it defines {', '.join(found)}: name one, e.g. '{module_name}:{found[0]}'" if found else ""
    raise StrategyLoadError(f"strategy {spec!r}: {module_name} has no {' or '.join(names)}{hint}")


def _why(exc: Exception) -> str:
    """What stopped a user's module from importing, with the file and line of their code where
    it happened (a SyntaxError's own text names the file's base name only)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"SyntaxError in {exc.filename}, line {exc.lineno}: {exc.msg}"
    return failure_text(exc, fallback=False)


def _strategy_classes(module: ModuleType) -> list[str]:
    """The Strategy classes a module defines (not those it imports): what a spec without the
    class, or with a misspelt one, most likely meant."""
    return [
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, Strategy) and obj.__module__ == module.__name__
    ]


def load_strategy(name: str) -> Strategy[Any, Any]:
    """The strategy a bot config names: a built-in (BUILTIN) or 'package.module:Name'."""
    spec = BUILTIN.get(name, name)
    if spec == name and "." not in name and ":" not in name:
        raise StrategyLoadError(
            f"unknown strategy {name!r}: use one of {', '.join(BUILTIN)} or 'package.module:Name'"
        )
    obj = _resolve(spec)
    if inspect.isclass(obj) and issubclass(obj, Strategy):
        return _checked(obj(), name)
    if isinstance(obj, Strategy):
        return _checked(obj, name)
    if callable(obj):
        return FunctionStrategy(obj, name)
    raise StrategyLoadError(f"strategy {name!r}: {spec} is not a Strategy, a Strategy class or a function")


def _checked(strategy: Strategy[Any, Any], name: str) -> Strategy[Any, Any]:
    """A Strategy class without the class attributes the runner and the backtester read is
    refused here by name, not met later as an AttributeError in the middle of a run."""
    cls = type(strategy).__name__
    params = getattr(strategy, "params_type", None)
    if not (inspect.isclass(params) and issubclass(params, msgspec.Struct)):
        raise StrategyLoadError(
            f"strategy {name!r}: {cls}.params_type must be the msgspec.Struct class of its params "
            f"(params_type = Params), got {params!r}"
        )
    state = getattr(strategy, "state_type", None)
    if not (inspect.isclass(state) and issubclass(state, StrategyState)):
        raise StrategyLoadError(
            f"strategy {name!r}: {cls}.state_type must be a StrategyState subclass, got {state!r}"
        )
    return strategy
