"""`automata doctor`: is this machine ready to trade? Each check prints ✓ (fine), ✗ (wrong, with
the reason and what to do), ! (works, but leaves a risk open, and how to close it: an unsigned
webhook, Telegram commands with no allowed user, an old redis-server) or – (cannot be told here,
and why); exit code 1 when any is ✗.

Checks: the config (and the bots file, when there is one) loads; Redis answers, is 7 or newer
and has AOF on (without it a power cut loses the last writes, and the crash-safety argument with
them); the redis-server `automata run` would start here is 7 or newer (shared/redis_server.py:
older ones lack the fixes for CVE-2024-46981 and CVE-2025-49844, a warning, not a failure); per
configured venue, the clock against the venue's (a signed request more than 1 s ahead of the
venue's clock or older than recvWindow is refused); the keys are there, accepted, able to trade
and unable to withdraw, where the venue tells. Binance tells in GET /sapi/v1/account/apiRestrictions
(main net only: the Spot Testnet and the paper venue do not serve /sapi), Bybit in
GET /v5/user/query-api. The paper venue's keys are checked for being accepted only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
import typer
from rich.markup import escape

from cli import common, connect
from cli import venue as venues
from cli.paths import UsageError
from services.order_gateway.venues import credentials
from services.order_gateway.venues.base import AuthError, VenueAdapter, VenueError
from shared.config import AppConfig, ConfigError, load_config
from shared.redis_conn import safe_url
from shared.redis_server import RedisServerError, locate_redis_server, outdated_warning, refusing_writes

OK, BAD, SKIP, WARN = "✓", "✗", "–", "!"  # WARN: works, but leaves a risk open (not counted as a problem)


@dataclass(frozen=True)
class Check:
    mark: str
    name: str
    detail: str


def check_config(system: connect.System | None = None) -> tuple[list[Check], AppConfig | None]:
    from services.strategy_runner.bots import load_bots

    try:
        system = system or connect.system()
        system.need_config()
        cfg = load_config()
    except (UsageError, ConfigError) as exc:
        return [Check(BAD, "config", str(exc))], None
    source = str(system.config) if system.config is not None else "no config file (all defaults)"
    checks = [Check(OK, "config", f"{source}: valid; venues: {', '.join(sorted(cfg.venues))}")]
    if system.bots is not None:
        try:
            found = load_bots(system.bots)
            checks.append(Check(OK, "bots", f"{system.bots}: {len(found)} bot(s) valid"))
        except ConfigError as exc:
            checks.append(Check(BAD, "bots", str(exc)))
    from services.notifier.checks import config_warnings

    checks += [Check(WARN, "notifier", warning) for warning in config_warnings(cfg.notifier)]
    return checks, cfg


def check_redis(system: connect.System) -> list[Check]:
    try:
        url = system.need_redis()
    except UsageError as exc:
        return [Check(BAD, "redis", str(exc))]
    client = connect.client(url)
    try:
        info = client.info()
    except redis.ResponseError:  # INFO not allowed to this ACL user: PING is enough here
        info = {}
    except redis.RedisError as exc:
        return [Check(BAD, "redis", f"cannot reach {safe_url(url)}: {exc}")]
    version = info.get("redis_version", "?")
    checks = [Check(OK, "redis", f"{safe_url(url)} answers (redis {version})")]
    if refused := refusing_writes(info):
        checks.append(Check(BAD, "redis disk", refused))
    if version != "?" and (old := outdated_warning(version, f"the server at {safe_url(url)}")):
        checks.append(Check(WARN, "redis version", old))
    try:
        aof = client.config_get("appendonly").get("appendonly")
    except redis.RedisError as exc:
        checks.append(Check(SKIP, "redis aof", f"CONFIG GET refused ({exc}); check appendonly on the server"))
        return checks
    if aof == "yes":
        checks.append(Check(OK, "redis aof", "appendonly yes"))
    else:
        checks.append(
            Check(BAD, "redis aof", f"appendonly {aof}: a crash loses recent writes; set `appendonly yes`")
        )
    return checks


def check_redis_server() -> Check:
    """The redis-server binary `automata run` (and the tests) would start on this machine."""
    try:
        binary = locate_redis_server()
    except RedisServerError as exc:
        return Check(SKIP, "redis-server", f"{exc} (only `automata run` needs one)")
    old = binary.warning()
    return (
        Check(WARN, "redis-server", old)
        if old
        else Check(OK, "redis-server", f"{binary.path}: redis {binary.version}")
    )


async def _clock(name: str, adapter: VenueAdapter, max_skew_ms: int) -> Check:
    offset = await adapter.sync_time()
    side = "ahead of" if offset >= 0 else "behind"
    text = f"venue clock {abs(offset)} ms {side} this machine (limit ±{max_skew_ms} ms)"
    if abs(offset) <= max_skew_ms:
        return Check(OK, f"{name} clock", text)
    return Check(BAD, f"{name} clock", text + ": sync this machine's clock (NTP, e.g. chrony)")


async def _binance_permissions(name: str, adapter: Any, testnet: bool, base_url: str) -> list[Check]:
    account = await venues.binance_call(adapter, "get_account")
    checks = [
        Check(OK, f"{name} keys", "accepted; account canTrade")
        if account.get("canTrade")
        else Check(BAD, f"{name} keys", "accepted, but the account cannot trade (canTrade false)")
    ]
    if testnet:
        checks.append(Check(SKIP, f"{name} withdraw", "Spot Testnet has no /sapi/v1/account/apiRestrictions"))
        return checks
    if base_url:  # never send a key to binance.com's /sapi when the venue is elsewhere
        adapter.client.MARGIN_API_URL = f"{base_url.rstrip('/')}/sapi"
    try:
        perms = await venues.binance_call(adapter, "get_account_api_permissions")
    except VenueError as exc:
        checks.append(
            Check(BAD, f"{name} withdraw", f"cannot read the key's restrictions: {common.short(exc)}")
        )
        return checks
    if perms.get("enableWithdrawals"):
        checks.append(Check(BAD, f"{name} withdraw", "this key can withdraw: turn withdrawals off for it"))
    else:
        checks.append(Check(OK, f"{name} withdraw", "withdrawals disabled for this key"))
    if not perms.get("enableSpotAndMarginTrading"):
        checks.append(Check(BAD, f"{name} trade", "spot trading is not enabled for this key"))
    return checks


async def _bybit_permissions(name: str, adapter: Any, demo: bool) -> list[Check]:
    await adapter.balances()
    checks = [Check(OK, f"{name} keys", "accepted (wallet balance read)")]
    try:
        info = await venues.bybit_call(adapter, "get_api_key_information")
    except VenueError as exc:
        mark = SKIP if demo else BAD
        return [
            *checks,
            Check(mark, f"{name} withdraw", f"cannot read the key's permissions: {common.short(exc)}"),
        ]
    perms = info.get("permissions") or {}
    if info.get("readOnly") or "SpotTrade" not in (perms.get("Spot") or []):
        checks.append(Check(BAD, f"{name} trade", "this key cannot trade spot (read-only or no SpotTrade)"))
    if "Withdraw" in (perms.get("Wallet") or []):
        checks.append(Check(BAD, f"{name} withdraw", "this key can withdraw: remove the Withdraw permission"))
    else:
        checks.append(Check(OK, f"{name} withdraw", "no withdraw permission"))
    return checks


async def _keys(cfg: AppConfig, name: str) -> list[Check]:
    vcfg = cfg.venues[name]
    async with venues.opened(cfg, name) as adapter:
        try:
            if vcfg.kind == "sim":
                await adapter.balances()
                return [
                    Check(OK, f"{name} keys", "paper venue: key pair accepted"),
                    Check(
                        SKIP,
                        f"{name} withdraw",
                        "paper venue: no apiRestrictions endpoint, nothing to withdraw",
                    ),
                ]
            if vcfg.kind == "binance":
                return await _binance_permissions(name, adapter, vcfg.testnet, vcfg.base_url)
            return await _bybit_permissions(name, adapter, vcfg.testnet)
        except AuthError as exc:
            return [Check(BAD, f"{name} keys", f"refused by the venue: {common.short(exc)}")]


async def check_venue(cfg: AppConfig, name: str, max_skew_ms: int) -> list[Check]:
    async def guarded(label: str, job: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
        try:
            return await asyncio.wait_for(job(), timeout=30)
        except (VenueError, OSError, TimeoutError) as exc:
            return [Check(BAD, label, f"venue did not answer: {type(exc).__name__}: {common.short(exc)}")]
        except redis.exceptions.NoPermissionError as exc:  # a service's ACL user, not admin
            return [
                Check(SKIP, label, f"not checked: this Redis user may not share the weight budget ({exc})")
            ]

    async def clock() -> list[Check]:
        async with venues.opened(cfg, name, public=True) as adapter:
            return [await _clock(name, adapter, max_skew_ms)]

    first = await guarded(f"{name} clock", clock)
    try:
        credentials(cfg, name)
    except ConfigError as exc:
        return [*first, Check(BAD, f"{name} keys", str(exc))]
    if first[0].mark == BAD:  # signed requests would be refused (or retried for long): say why instead
        return [*first, Check(SKIP, f"{name} keys", "not checked: the venue's clock check failed")]
    return [*first, *await guarded(f"{name} keys", lambda: _keys(cfg, name))]


async def check_venues(cfg: AppConfig, max_skew_ms: int) -> list[Check]:
    """Every venue at once (each check is a few round trips; a slow venue does not hold up the rest)."""
    results = await asyncio.gather(*(check_venue(cfg, name, max_skew_ms) for name in sorted(cfg.venues)))
    return [c for checks in results for c in checks]


def doctor(
    max_skew_ms: int = typer.Option(1000, help="largest clock difference with a venue that passes"),
) -> None:
    """Check Redis (reachable, version, AOF), the config, each venue's clock and keys; exit 1 if anything is wrong."""
    out = common.console()
    system = common.located(out)
    out.print(escape(system.line()), soft_wrap=True)
    checks, cfg = check_config(system)
    checks += [*check_redis(system), check_redis_server()]
    if cfg is not None:
        # the venues' shared weight budget lives in Redis; a Redis that is away is reported
        # above once, not again by every request as a log line on stderr
        logging.getLogger("automata.ratelimit").setLevel(logging.ERROR)
        checks += asyncio.run(check_venues(cfg, max_skew_ms))
    width = max(len(c.name) for c in checks)
    colours = {OK: "green", BAD: "red", SKIP: "dim", WARN: "yellow"}
    for c in checks:
        out.print(f"[{colours[c.mark]}]{c.mark}[/] {c.name.ljust(width)}  {escape(c.detail)}", soft_wrap=True)
    bad = sum(c.mark == BAD for c in checks)
    warned = sum(c.mark == WARN for c in checks)
    summary = f"{warned} warning(s) above; otherwise all good" if warned else "all good"
    out.print(f"{bad} problem(s)" if bad else summary)
    if bad:
        raise typer.Exit(1)
