"""Every Redis stream and key name, in one module (see docs/ARCHITECTURE.md).

Readable with redis-cli: `XRANGE md:candles:sim:BTCUSDT:1m - + COUNT 5`.
"""

from __future__ import annotations

from shared.ids import BOT_ID_RE, check_bot_id

# Consumer groups
GROUP_ORDER_GATEWAY = "order_gateway"
GROUP_NOTIFIER = "notifier"
GROUP_LEDGER = "ledger"  # the ledger service reads every stream it keeps in this group
# A strategy runner reads its inputs in a group of its own, one per bot.
NOTIFY = "notify"

# Default trims (approximate MAXLEN ~)
BOOK_MAXLEN = 10_000
CANDLES_MAXLEN = 100_000
EVENTS_MAXLEN = 100_000
DLQ_MAXLEN = 100_000
DECISIONS_MAXLEN = 5_000  # a bot's last decisions (`automata tail decisions --bot ID`)


def candles(venue: str, symbol: str, interval: str) -> str:
    """Closed candles; entry id is `{open_time_ms}-1` so a candle can never be stored twice."""
    return f"md:candles:{venue}:{symbol.upper()}:{interval}"


def book(venue: str, symbol: str) -> str:
    return f"md:book:{venue}:{symbol.upper()}"


def market_data(venue: str) -> str:
    """Redis glob of every market-data stream of a venue (candles and books)."""
    return f"md:*:{venue}:*"


def order_commands(venue: str, bot: str) -> str:
    """One bot's order commands to a venue. Each bot has its own stream, writable only by its
    runner's Redis user (shared/redis_acl.py), so the stream a command arrives on says which bot
    sent it: the order gateway refuses a command naming any other bot (its router)."""
    return f"orders:cmd:{venue}:{check_bot_id(bot)}"


def any_order_commands(venue: str) -> str:
    """Redis glob of every bot's command stream of a venue (the order gateway's SCAN)."""
    return f"orders:cmd:{venue}:*"


def command_stream_bot(venue: str, stream: str) -> str | None:
    """The bot a command stream of `venue` belongs to; None for any other key (the legacy
    stream, another venue's, a name no bot can have)."""
    prefix = any_order_commands(venue)[:-1]
    if not stream.startswith(prefix):
        return None
    bot = stream[len(prefix) :]
    return bot if BOT_ID_RE.match(bot) else None


def legacy_order_commands(venue: str) -> str:
    """The stream every bot of a venue shared before per-bot command streams. Bots can no longer
    write it (no runner user has it in its ACL); the order gateway still drains what an upgrade
    left on it, with the ownership checks of its router only (the writer is unknown)."""
    return f"orders:cmd:{venue}"


def order_events(bot: str) -> str:
    return f"orders:events:{check_bot_id(bot)}"


def order_events_bot(stream: str) -> str | None:
    """The bot an order-update stream belongs to; None for any other key."""
    prefix = ANY_ORDER_EVENTS[:-1]
    bot = stream[len(prefix) :] if stream.startswith(prefix) else ""
    return bot if BOT_ID_RE.match(bot) else None


def account(venue: str) -> str:
    return f"account:{venue}"


def bot_control(bot: str) -> str:
    return f"bot:{check_bot_id(bot)}:control"


def bot_state(bot: str) -> str:
    return f"bot:{check_bot_id(bot)}:state"


def bot_decisions(bot: str) -> str:
    """What a bot decided and why, one Decision a line (its runner writes it, trimmed to
    DECISIONS_MAXLEN; the runner's Redis user has it among its bot's `bot:{id}:*` keys)."""
    return f"bot:{check_bot_id(bot)}:decisions"


def bot_lease(bot: str) -> str:
    return f"bot:{check_bot_id(bot)}:lease"


def bot_timers(bot: str) -> str:
    """Sorted set of a bot's armed timers (member = name, score = due ms)."""
    return f"bot:{check_bot_id(bot)}:timers"


def bot_keys(bot: str) -> str:
    """Redis glob of every key of one bot (state, lease, timers, control, decisions)."""
    return f"bot:{check_bot_id(bot)}:*"


def any_bot(kind: str) -> str:
    """Redis glob of one kind of key of every bot: any_bot("state") = `bot:*:state`."""
    return f"bot:*:{kind}"


def bot_group(bot: str) -> str:
    """Consumer group a strategy runner uses on each of its input streams."""
    return f"bot:{check_bot_id(bot)}"


def dlq(stream: str) -> str:
    return f"dlq:{stream}"


def og_order(cid: str) -> str:
    """Write-ahead record of one order (hash)."""
    return f"og:order:{cid}"


def og_list(list_cid: str) -> str:
    """Write-ahead record of one order list (hash): its kind, legs, mode and phase
    (services/order_gateway/list_wal.py); each leg has its own og_order record."""
    return f"og:list:{list_cid}"


def og_open_lists(venue: str) -> str:
    """Set of list cids the order gateway has not finished at a venue."""
    return f"og:lists:{venue}"


def og_lease(venue: str) -> str:
    """One active order gateway per venue (SET PX, renewed); the WAL's writes are fenced by it."""
    return f"og:lease:{venue}"


def og_open(venue: str) -> str:
    """Set of cids the order gateway believes open at a venue."""
    return f"og:open:{venue}"


def og_symbols(venue: str) -> str:
    """Set of every symbol the order gateway's log has recorded an order on at a venue, so
    reconciliation looks for orders lost with Redis on each of them (not only on the symbols
    of records still open)."""
    return f"og:symbols:{venue}"


def venue_symbols(venue: str) -> str:
    """Hash symbol -> SymbolFilters JSON, written by the order gateway from exchangeInfo so
    strategy runners know tick and step sizes without calling the exchange."""
    return f"venue:{venue}:symbols"


def weight_budget(venue: str) -> str:
    """Hash of a venue's request-weight budget this minute, shared by every process that calls
    the venue's REST API (shared/ratelimit.py VenueBudget)."""
    return f"ratelimit:{venue}"


def health(service: str, instance: str) -> str:
    """Heartbeat key a service refreshes (with a TTL) so the CLI can show it alive."""
    return f"svc:{service}:{instance}"


def candle_entry_id(open_time_ms: int) -> str:
    return f"{open_time_ms}-1"


def notifier_group(channel: str) -> str:
    """Consumer group of one notifier channel on `notify` (each channel has its own pending list)."""
    return f"{GROUP_NOTIFIER}:{channel}"


def notifier_sent(channel: str, notification_id: str) -> str:
    """Hash target -> ms of a notification delivered by a channel (dedupe of redeliveries; TTL)."""
    return f"notifier:sent:{channel}:{notification_id}"


NOTIFIER_TELEGRAM_OFFSET = "notifier:telegram:offset"  # next getUpdates offset (commands handled once)

# Manual orders (`automata order`): placed under this bot id, cids `manual-{seq}` with seq from an
# INCR on MANUAL_SEQ kept at or above the time in ms (cli/order.py), so two terminals never make
# the same cid, nor does a Redis that lost its last second.
ANY = "*"  # a Redis glob in place of a name: legacy_order_commands(ANY), health("notifier", ANY), ...
ANY_ORDER_EVENTS = "orders:events:*"
NOTIFIER_KEYS = "notifier:*"
MANUAL_BOT = "manual"
MANUAL_SEQ = "manual:seq"
