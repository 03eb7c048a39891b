"""A venue adapter for one CLI command: built from the config exactly as the order gateway
builds it (services/order_gateway/venues), opened, used, closed.

`public=True` is for market data (ticker, book, clock): a venue without configured keys still
answers those, so the adapter is built with an empty key pair instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from services.order_gateway.venues import make_adapter
from services.order_gateway.venues.base import VenueAdapter
from shared.config import AppConfig, Credentials

T = TypeVar("T")


def build(cfg: AppConfig, venue: str, *, public: bool = False) -> VenueAdapter:
    """The adapter; ConfigError when keys are needed but missing."""
    if public and venue not in cfg.keys and cfg.venues[venue].kind != "sim":
        cfg = msgspec.structs.replace(cfg, keys={**cfg.keys, venue: Credentials(api_key="", api_secret="")})
    return make_adapter(cfg, venue)


@contextlib.asynccontextmanager
async def opened(cfg: AppConfig, venue: str, *, public: bool = False) -> AsyncIterator[VenueAdapter]:
    adapter = build(cfg, venue, public=public)
    try:
        await adapter.start()
        yield adapter
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(adapter.close(), timeout=2.0)


def protocol(cfg: AppConfig, venue: str) -> str:
    """`binance` or `bybit`: the wire protocol the venue speaks (the paper venue speaks either)."""
    vcfg = cfg.venues[venue]
    return vcfg.protocol if vcfg.kind == "sim" else vcfg.kind


def run(
    cfg: AppConfig, venue: str, job: Callable[[VenueAdapter], Awaitable[T]], *, public: bool = False
) -> T:
    """asyncio.run(job(adapter)) with the adapter opened around it."""

    async def main() -> T:
        async with opened(cfg, venue, public=public) as adapter:
            return await job(adapter)

    return asyncio.run(main())


async def binance_call(adapter: Any, method: str, **params: Any) -> Any:
    """A python-binance AsyncClient method through the adapter's error mapping (venues/base.py)."""
    from services.order_gateway.venues.binance import classify

    try:
        return await getattr(adapter.client, method)(**params)
    except Exception as exc:
        err = classify(exc)
        if err is exc:
            raise
        raise err from None


async def bybit_call(adapter: Any, method: str, **params: Any) -> Any:
    """A pybit HTTP session method (blocking: run in a thread), unwrapped to its `result`."""
    from services.order_gateway.venues.bybit_payloads import classify

    try:
        res = await asyncio.to_thread(getattr(adapter.session, method), **params)
    except Exception as exc:
        err = classify(exc)
        if err is exc:
            raise
        raise err from None
    return res["result"] if isinstance(res, dict) and "result" in res else res
