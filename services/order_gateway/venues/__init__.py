"""Venue adapters: one interface (base.VenueAdapter) over python-binance, pybit and the paper venue."""

from __future__ import annotations

import os

from services.order_gateway.venues.base import VenueAdapter
from shared.config import AppConfig, ConfigError, Credentials
from shared.ratelimit import VenueBudget, budget_limit

SIM_DEFAULT_URL = "http://127.0.0.1:8800"
SIM_DEFAULT_KEY = "sim-key"
SIM_DEFAULT_SECRET = "sim-secret"


def credentials(cfg: AppConfig, venue: str) -> Credentials:
    """Keys of a venue: the config's [keys] (env and .env already merged there); the paper venue
    falls back to SIM_API_KEY / SIM_API_SECRET or its documented defaults."""
    creds = cfg.keys.get(venue)
    if creds is not None:
        return creds
    if cfg.venues[venue].kind == "sim":
        return Credentials(
            api_key=os.environ.get("SIM_API_KEY", SIM_DEFAULT_KEY),
            api_secret=os.environ.get("SIM_API_SECRET", SIM_DEFAULT_SECRET),
        )
    locked = _locked_in_keystore(cfg, venue)
    if locked:
        raise ConfigError(f"venue {venue!r}: no API keys: {locked}")
    raise ConfigError(
        f"venue {venue!r}: no API keys (set {venue.upper()}_API_KEY/_API_SECRET or a [keys.{venue}] table)"
    )


def _locked_in_keystore(cfg: AppConfig, venue: str) -> str:
    """When the venue's keys are in the keystore but no password was given to unlock it (`automata
    keys add`, then `automata doctor` in a shell without AUTOMATA_KEYSTORE_PASSWORD): what to set.
    The entries' names are readable without the password; nothing is decrypted here."""
    from shared import keystore
    from shared.config import config_path

    env = os.environ
    try:
        if keystore.password_from_env(env) is not None:
            return ""  # unlocked, and this venue is not in it (or the config chain said otherwise)
        path = keystore.resolve_path(cfg.keystore, config_path(), env).path
        if not path.is_file() or venue not in keystore.parse(path, path.read_bytes()).entries:
            return ""
    except (OSError, keystore.KeystoreError):
        return ""
    return (
        f"its keys are in the keystore {path}, which is locked: set {keystore.PASSWORD_ENV} "
        f"(or {keystore.PASSWORD_FILE_ENV}) in the environment or .env to unlock it"
    )


def make_adapter(cfg: AppConfig, venue: str) -> VenueAdapter:
    vcfg = cfg.venues[venue]
    creds = credentials(cfg, venue)
    og = cfg.order_gateway
    protocol = vcfg.protocol if vcfg.kind == "sim" else vcfg.kind
    base_url = vcfg.base_url or (SIM_DEFAULT_URL if vcfg.kind == "sim" else "")
    if protocol == "binance":
        from services.order_gateway.venues.binance import BinanceAdapter

        return BinanceAdapter(
            venue,
            creds.api_key,
            creds.api_secret,
            base_url=base_url,
            testnet=vcfg.testnet,
            timeout_s=og.request_timeout_s,
            recv_window_ms=og.recv_window_ms,
            # one budget per venue with the market gateway, in Redis (room for other programs on the IP)
            limiter=VenueBudget(venue, budget_limit(og.weight_limit), redis_url=cfg.redis.url),
        )
    if protocol == "bybit":
        from services.order_gateway.venues.bybit import BybitAdapter

        return BybitAdapter(
            venue,
            creds.api_key,
            creds.api_secret,
            base_url=base_url,
            demo=vcfg.testnet,
            timeout_s=og.request_timeout_s,
            recv_window_ms=og.recv_window_ms,
        )
    raise ConfigError(f"venue {venue!r}: unknown protocol {protocol!r}")
