"""Where a strategy's exception came from, said for the person who wrote it.

The runner pauses a bot whose step raises and the backtester stops; both say so in one line,
which must lead to the strategy's own line of code, not to the machinery that called it (the
innermost frame is often the runner's, the interface's or a library's). So the line named is
the innermost one outside this package's shared/, backtest/ and services/ and outside Python's
own and installed libraries: the user's module, or a built-in strategy's.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_MACHINERY = tuple(
    os.path.realpath(p) + os.sep
    for p in (
        _ROOT / "shared",
        _ROOT / "backtest",
        _ROOT / "services",
        *{sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")},
    )
)


def shown_path(filename: str) -> str:
    """A file as short as it reads unambiguously: relative to the working directory when inside it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


def raised_at(exc: BaseException, *, fallback: bool = True) -> str:
    """`file, line N, in function` of the strategy code the exception came from; with none in
    the traceback, the innermost frame (a fault of the machinery's own), or "" without fallback."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not f.filename.startswith("<")]
    own = [f for f in own if not os.path.realpath(f.filename).startswith(_MACHINERY)]
    found = own or (frames if fallback else [])
    if not found:
        return ""
    return f"{shown_path(found[-1].filename)}, line {found[-1].lineno}, in {found[-1].name}"


def defined_at(func: object) -> str:
    """`file, line N, in name` of a function's def line ("" for one without Python code)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return ""
    return f"{shown_path(code.co_filename)}, line {code.co_firstlineno}, in {code.co_name}"


def failure_text(exc: BaseException, *, fallback: bool = True) -> str:
    """`ZeroDivisionError: division by zero (strategies_user/bot.py, line 21, in on_candle)`."""
    where = getattr(exc, "where", "") or raised_at(exc, fallback=fallback)
    return f"{type(exc).__name__}: {exc}" + (f" ({where})" if where else "")
