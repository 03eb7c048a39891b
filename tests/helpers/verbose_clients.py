"""Signed pybit and python-binance calls on the paper venue with the libraries' request logging
on, through the services' logging (shared/logs.py) at DEBUG: what a user who turns on DEBUG to
chase a venue problem gets. Run by tests/test_log_masking.py as a real process.

    python tests/helpers/verbose_clients.py BASE_URL KEY SECRET RAW_LOG

stderr: the log lines as a service writes them. RAW_LOG: the same messages unmasked, so the test
knows which signatures went out (the sim's throwaway key only)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from binance import AsyncClient, Client  # noqa: E402
from pybit.unified_trading import HTTP  # noqa: E402

from shared.logs import setup_logging  # noqa: E402


def main(base_url: str, key: str, secret: str, raw_log: str) -> None:
    setup_logging("verbose_clients", "DEBUG")
    raw = logging.FileHandler(raw_log)
    raw.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger().addHandler(raw)

    bybit = HTTP(testnet=True, api_key=key, api_secret=secret, log_requests=True, retry_codes={0})
    bybit.endpoint = base_url
    bybit.get_wallet_balance(accountType="UNIFIED")
    bybit.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                      price="20000", orderLinkId="verbose-1")  # fmt: skip

    binance = type("SimClient", (Client,), {"API_URL": f"{base_url}/api"})(
        key, secret, ping=False, verbose=True
    )
    binance.get_account()
    binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                         price="20000", newClientOrderId="verbose-2")  # fmt: skip
    asyncio.run(_async_binance(base_url, key, secret))
    logging.getLogger("automata.test").debug("config headers %r", {"X-MBX-APIKEY": key, "api_secret": secret})


async def _async_binance(base_url: str, key: str, secret: str) -> None:
    """The AsyncClient the order gateway uses: it logs the signed query string of a GET."""
    client = type("SimAsyncClient", (AsyncClient,), {"API_URL": f"{base_url}/api"})(key, secret, verbose=True)
    try:
        await client.get_account()
        await client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                  quantity="0.001", price="20000", newClientOrderId="verbose-3")  # fmt: skip
    finally:
        await client.close_connection()


if __name__ == "__main__":
    main(*sys.argv[1:5])
