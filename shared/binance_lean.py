"""python-binance without the sync client's libraries loaded: ~8 MB less in each gateway.

python-binance (pinned at 1.0.37) imports at module level what only its sync paths run: `requests`
(binance/client.py: the sync Client's session; AsyncClient uses aiohttp) and `dateparser` with
`pytz` (binance/helpers.py: `date_to_milliseconds`, for a date string such as "1 day ago" given
to the historical-klines helpers; we give them integer milliseconds). AsyncClient cannot be had
without binance/client.py: its class body copies the sync Client's docstrings. The websockets
library it uses imports importlib.metadata for a development version only (the redis-py client
keeps it out too: shared/redis_lean.py). pycryptodome's key and signature modules
(binance/base_client.py) sign with an RSA or Ed25519 private key, never with an HMAC secret.

So python-binance is imported with those deferred (shared/lean_import.py): each is loaded
the first time python-binance reads one of its attributes, so a sync Client or a date string still
works. The two attributes read during the import are annotations of the sync Client
(`requests.Session`, `requests.Response`), which get their text. Every name of `binance` is
unchanged. tests/test_import_footprint.py checks that the gateways keep them out, and that
a date string and the sync Client still work.

Import python-binance through this module (every service module that uses it does): imported
first elsewhere, `binance` brings them in.
"""

from __future__ import annotations

from shared.lean_import import deferred

# pycryptodome: for a venue key that is an RSA or Ed25519 private key; ours are HMAC secrets
_KEY_SIGNING = ("Crypto.PublicKey.RSA", "Crypto.PublicKey.ECC", "Crypto.Hash.SHA256", "Crypto.Signature.pkcs1_15",
                "Crypto.Signature.eddsa")  # fmt: skip
_DEFERRED = ("requests", "dateparser", "pytz", "importlib.metadata", *_KEY_SIGNING)

with deferred(_DEFERRED, annotations={"requests": ("Session", "Response")}):
    import binance  # noqa: F401

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
