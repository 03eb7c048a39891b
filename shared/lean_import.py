"""Importing a library without the modules it imports at module level but uses only in functions.

A library that does `import x` at the top and reads `x.something` only inside functions makes
every process pay for `x` (code objects: 1-5 MB each for the ones deferred here) even when those
functions never run. `deferred()` imports such a library with `x` replaced by a stand-in: a module that
imports the real `x` on its first attribute read and takes its attributes, so the library's
global keeps working. The stand-ins leave sys.modules when the import is done: any later
`import x` is the real module, and nothing is changed for code that uses `x` itself.

A name read while the library is being imported (a `def`'s annotations, in modules without
`from __future__ import annotations`) is named in `annotations`: it gets its text, as
`from __future__ import annotations` would give. Any other read loads the real module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str, annotations: tuple[str, ...]) -> None:
        super().__init__(name)
        self.__spec__ = importlib.util.find_spec(name)  # without it `import name` would load it
        self._annotations = annotations

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._annotations:
            return f"{self.__name__}.{attr}"
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        vars(self).update(vars(real))
        return getattr(real, attr)

    def loaded(self) -> None:
        """The import is done: from now on every attribute is the real module's."""
        self._annotations = ()


@contextlib.contextmanager
def deferred(names: tuple[str, ...], annotations: dict[str, tuple[str, ...]] | None = None) -> Iterator[None]:
    """Within the block, `import name` for each of `names` gives a stand-in (none for a module
    already imported: it is real already)."""
    stand_ins = {}
    for name in names:
        if name not in sys.modules:
            stand_ins[name] = sys.modules[name] = _Deferred(name, (annotations or {}).get(name, ()))
    try:
        yield
    finally:
        for name, stand_in in stand_ins.items():
            stand_in.loaded()
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


def package_without_init(name: str) -> types.ModuleType:
    """The package `name` in sys.modules without its __init__ run, so its submodules import
    without what the __init__ imports; the __init__ runs on the first attribute the package lacks
    (PEP 562 `__getattr__`), so every name it gives is still there. A package imported already
    is returned as it is."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not a package", name=name)
    package = importlib.util.module_from_spec(spec)
    ran: list[bool] = []

    def run_init(attr: str) -> object:
        if ran:  # run once; an attribute its __init__ does not give is missing
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        ran.append(True)
        spec.loader.exec_module(package)
        return getattr(package, attr)

    package.__getattr__ = run_init  # type: ignore[method-assign]
    sys.modules[name] = package
    return package
