"""python-binance without the sync client's libraries loaded: ~8 MB less in each gateway.

python-binance (pinned at 1.0.37) imports at module level what only its sync paths run: `requests`
(binance/client.py: the sync Client's session; AsyncClient uses aiohttp) and `dateparser` with
`pytz` (binance/helpers.py: `date_to_milliseconds`, a date string such as "1 day ago" given to
the historical-klines helpers, which we call with integer milliseconds). AsyncClient cannot be
had without binance/client.py: its class body copies the sync Client's docstrings.

So those three are deferred: while python-binance is imported, each is a module of its own kind in
sys.modules that imports the real library on its first attribute (then takes the real one's
attributes, so a global that kept the stand-in keeps working). The only attributes read during the
import are two annotations of the sync Client (`requests.Session`, `requests.Response`); they
get the annotation's text, as `from __future__ import annotations` would give. Once python-binance
is imported the stand-ins leave sys.modules: any later `import requests` is the real one, and a
sync Client (or a date string) still works, loading its library then. Every name python-binance
has is unchanged (`from binance import X` included); tests/test_import_footprint.py checks that
the libraries stay out and that a date string and the sync Client still work.

Import python-binance through this module (every service module that uses it does).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

DEFERRED = ("requests", "dateparser", "pytz")
_ANNOTATIONS = {"requests": ("Session", "Response")}  # read at import, in a `def`'s annotations


class _Deferred(types.ModuleType):
    """Stands in for a library until one of its attributes is read."""

    importing = True  # python-binance is being imported: annotations get their text

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if _Deferred.importing and attr in _ANNOTATIONS.get(self.__name__, ()):
            return f"{self.__name__}.{attr}"
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        vars(self).update(vars(real))
        return getattr(real, attr)


def _import_binance() -> types.ModuleType:
    if "binance" in sys.modules:
        return sys.modules["binance"]
    stand_ins = {}
    for name in DEFERRED:
        if name not in sys.modules:
            stand_in = _Deferred(name)
            stand_in.__spec__ = importlib.util.find_spec(name)
            stand_ins[name] = sys.modules[name] = stand_in
    try:
        return importlib.import_module("binance")
    finally:
        _Deferred.importing = False
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


binance = _import_binance()

from binance import AsyncClient, BinanceSocketManager  # noqa: E402
from binance.exceptions import BinanceAPIException, BinanceRequestException  # noqa: E402
from binance.ws.reconnecting_websocket import ReconnectingWebsocket, WSListenerState  # noqa: E402

__all__ = [
    "AsyncClient",
    "BinanceAPIException",
    "BinanceRequestException",
    "BinanceSocketManager",
    "ReconnectingWebsocket",
    "WSListenerState",
]
