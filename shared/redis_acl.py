"""One Redis ACL user per service, least privilege, derived from the key names of shared/streams.py.

Written by `automata run` (its own Redis), `automata deploy supervisor|compose` (yours): an ACL
file (`--aclfile`, passwords stored as `#<sha256>`) and one password file per user, 0600. A
service learns its user from REDIS_USER and its password from REDIS_PASSWORD_FILE (both set
per program / per container), so no process carries another service's password.

Users:
- `admin`: everything (the CLI, redis-cli, operators). `default` is off: no unauthenticated use
  (it keeps every right only for Redis's own replay of the append-only file: DEFAULT_USER).
- `market_gateway`, `order_gateway`, `notifier`, `ledger`, `web`: what each service does, on its own keys.
- one user per strategy runner (`bot_<id>` / `bots_<process>`, as cli/deploy.py names runners):
  its bots' keys only, no scripting, no SCAN, no deletion outside its own keys.

Redis 7 selectors `(...)` tie commands to key patterns: a runner may XACK on `md:*` (the consumer
group commands need write access to the stream) but XADD only to its own bots' command streams
(`orders:cmd:{venue}:{bot}`), `notify` and dead-letter streams. `%R~` grants read-only access to a key pattern.
The paper venue (services/exchange_sim) does not use Redis and has no user.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared import streams as s
from shared.files import write_atomic

ADMIN = "admin"
LEDGER = "ledger"
SELECTORS_MAJOR = 7  # ACL selectors `(...)` and `%R~`: Redis 7 and later (flat_rules before)
ACL_FILE = "users.acl"

# What every client sends on connecting (redis-py: CLIENT SETNAME; CLIENT SETINFO is Redis 7.2+,
# unknown to 7.0 and its error ignored) and transactions.
CONNECTION = (
    "+ping", "+echo", "+client|setname", "+client|getname", "+client|id",
    "+multi", "+exec", "+discard", "+watch", "+unwatch",
)  # fmt: skip
# Reading a stream in a consumer group and its bookkeeping (shared/bus).
GROUP_READ = (
    "+xreadgroup", "+xpending", "+xinfo|consumers", "+xinfo|groups", "+xinfo|stream",
    "+xrange", "+xrevrange", "+xlen",
)  # fmt: skip
GROUP_WRITE = (
    "+xack", "+xautoclaim", "+xclaim", "+xgroup|create", "+xgroup|createconsumer",
    "+xgroup|delconsumer",
)  # fmt: skip
# redis-py's Script: EVALSHA, and SCRIPT LOAD after a NOSCRIPT. Commands a script runs are
# checked against the caller's ACL too, so a script reaches only the user's keys.
SCRIPTS = ("+evalsha", "+script|load", "+script|exists", "+time")
STRINGS = ("+get", "+mget", "+set", "+exists", "+pexpire", "+pttl", "+type")
HASHES = ("+hget", "+hmget", "+hgetall", "+hkeys", "+hset", "+hincrby", "+hdel")
SETS = ("+sadd", "+srem", "+smembers", "+scard", "+sismember")


@dataclass(frozen=True)
class User:
    name: str
    rules: tuple[str, ...]  # ACL rules after `on #<hash>`: key patterns, commands, selectors

    def line(self, password: str, *, selectors: bool = True) -> str:
        rules = self.rules if selectors else flat_rules(self.rules)
        return f"user {self.name} on #{password_hash(password)} {' '.join(rules)}"


def flat_rules(rules: Sequence[str]) -> tuple[str, ...]:
    """The rules for a Redis older than 7 (no selectors, no `%R~`): each selector's key patterns
    and commands merged into the user's own, read-only patterns made read-write. Coarser — a
    runner could then XADD to its venues' market data — but still only the user's own keys, no
    scripting, no SCAN and nothing dangerous; `automata run` says so when it has to use it."""
    flat: list[str] = []
    for rule in rules:
        parts = rule[1:-1].split() if rule.startswith("(") else [rule]
        flat += ["~" + p[3:] if p.startswith("%R~") else p for p in parts]
    return tuple(dict.fromkeys(flat))


@dataclass(frozen=True)
class Runner:
    """A strategy runner process: its supervisord program / compose service name (the Redis
    user), its INSTANCE (heartbeat key), and its bots (id, venue)."""

    name: str
    instance: str
    bots: tuple[tuple[str, str], ...]


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _keys(prefix: str, patterns: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}{p}" for p in dict.fromkeys(patterns))


def _selector(*parts: Iterable[str]) -> str:
    return "(" + " ".join(rule for part in parts for rule in part) + ")"


def admin_user() -> User:
    return User(ADMIN, ("~*", "&*", "+@all"))


def market_gateway_user() -> User:
    own = _keys("~", [s.market_data(s.ANY), s.weight_budget(s.ANY), s.health("market_gateway", s.ANY)])
    commands = (*CONNECTION, "+xadd", "+xrange", "+xrevrange", "+xlen", "+del", *STRINGS, *HASHES, *SCRIPTS)
    return User("market_gateway", (*own, *commands, _selector(["~" + s.NOTIFY, "+xadd"])))


def order_gateway_user() -> User:
    any_venue = s.ANY
    own = _keys(
        "~",
        [
            s.og_order(any_venue), s.og_lease(any_venue), s.og_open(any_venue), s.og_symbols(any_venue),
            s.og_list(any_venue), s.og_open_lists(any_venue),
            # `orders:cmd:*`: every bot's command stream (`orders:cmd:{venue}:{bot}`) and the legacy one
            s.legacy_order_commands(any_venue), s.ANY_ORDER_EVENTS, s.account(any_venue),
            s.venue_symbols(any_venue), s.weight_budget(any_venue), s.dlq(s.legacy_order_commands(any_venue)),
            s.health("order_gateway", any_venue),
        ],
    )  # fmt: skip
    commands = (*CONNECTION, *GROUP_READ, *GROUP_WRITE, "+xadd", "+del", *STRINGS, *HASHES, *SETS, *SCRIPTS)
    # the book tickers, read-only: an emulated order list watches its stop (emulated_oco.py)
    books = _selector(["%R~" + s.book(any_venue, any_venue), "+exists", "+xread", "+xrevrange"])
    # SCAN (reconciliation lists og:order:*) is keyless: it shows every key's name, no value.
    return User("order_gateway", (*own, *commands, "+scan", _selector(["~" + s.NOTIFY, "+xadd"]), books))


def notifier_user() -> User:
    own = _keys("~", [s.NOTIFY, s.NOTIFIER_KEYS, s.dlq(s.NOTIFY), s.health("notifier", s.ANY)]) + _keys(
        "%R~", [s.any_bot("state"), s.health(s.ANY, s.ANY), s.account(s.ANY), s.venue_symbols(s.ANY)]
    )
    commands = (*CONNECTION, *GROUP_READ, *GROUP_WRITE, "+xadd", "+del", "+expire", *STRINGS, *HASHES)
    # Telegram /status lists bots and services (SCAN), /pause BOT and /trade append to bot:{bot}:control;
    # /status, /bots, /balance and /trades show amounts at the venue's precision (venue:*:symbols).
    control = _selector(["~" + s.any_bot("control"), "%R~" + s.any_bot("state"), "+xadd", "+exists"])
    return User("notifier", (*own, *commands, "+scan", control))


def ledger_user() -> User:
    """The ledger reads: consumer-group commands only on the streams it keeps (every bot's order
    updates, the accounts, candles, `notify`), the venues' symbol filters and the bots' state
    documents read-only (the position a bot took over at its start); it appends
    only to `notify` (gap reports) and its streams' dead letters, and never writes a message
    anyone acts on. Retention (services/ledger/retention.py): XTRIM, from a script, on the
    streams it keeps but the candles, and the order gateway's closed write-ahead records (orders
    and order lists): read their status, DEL under WATCH; `og:open:*`, `og:lists:*` and the
    command streams' pending entries read-only."""
    kept = [s.ANY_ORDER_EVENTS, s.account(s.ANY), s.candles(s.ANY, s.ANY, s.ANY), s.NOTIFY]
    read = _selector(_keys("~", kept), GROUP_READ, GROUP_WRITE)
    trim = _selector(_keys("~", [s.ANY_ORDER_EVENTS, s.account(s.ANY), s.NOTIFY]), ["+xtrim"], SCRIPTS)
    records = _selector(["~" + s.og_order(s.ANY), "~" + s.og_list(s.ANY), "+hmget", "+del", "+watch"])
    opened = _selector(["%R~" + s.og_open(s.ANY), "%R~" + s.og_open_lists(s.ANY), "+sismember"])
    commands = _selector(["%R~" + s.legacy_order_commands(s.ANY), "+xpending"])  # `orders:cmd:*`
    append = _selector(_keys("~", [s.NOTIFY, *(s.dlq(k) for k in kept)]), ["+xadd"])
    symbols = _selector(["%R~" + s.venue_symbols(s.ANY), "+hgetall"])
    states = _selector(["%R~" + s.any_bot("state"), "+get"])  # the position a bot took over
    own = _keys("~", [s.health(LEDGER, s.ANY)])
    # SCAN (new bots' order-update streams, og:order:* records) is keyless: it shows key names, no value.
    rules = (
        *own,
        *CONNECTION,
        "+set",
        "+del",
        "+scan",
        read,
        trim,
        records,
        opened,
        commands,
        append,
        symbols,
        states,
    )
    return User(LEDGER, rules)


def web_user() -> User:
    """The dashboard (services/web) reads: bots' state and decisions, balances, order updates and
    records, market data, notifications, heartbeats, symbol filters, with plain XREAD (no group:
    it takes no entry from anyone). It writes only what `automata pause|order|trade` writes through
    it: a control or a smart trade on `bot:{bot}:control` (of a bot with state; a bot's order is
    cancelled by its bot, asked there) and a manual order or cancel on
    `orders:cmd:{venue}:manual`, its cid from `manual:seq` (INCR in a script). Never a bot's
    command stream: the stream an order arrives on is the gateway's proof of its sender."""
    read = [
        s.any_bot("state"), s.any_bot("decisions"), s.account(s.ANY), s.ANY_ORDER_EVENTS, s.og_order(s.ANY),
        s.og_open(s.ANY), s.market_data(s.ANY), s.NOTIFY, s.health(s.ANY, s.ANY), s.venue_symbols(s.ANY),
    ]  # fmt: skip
    commands = (
        *CONNECTION, "+get", "+mget", "+exists", "+type", "+xread", "+xrange", "+xrevrange", "+xlen",
        "+xinfo|stream", "+hget", "+hgetall", "+hkeys", "+smembers", "+scard", "+sismember",
        "+time",  # the live feed starts at Redis's now (services/web/live.py)
    )  # fmt: skip
    control = _selector(["~" + s.any_bot("control"), "+xadd"])
    manual = _selector(
        ["~" + s.order_commands(s.ANY, s.MANUAL_BOT), "~" + s.MANUAL_SEQ, "+xadd", "+eval", "+incr", "+set"]
    )
    own = _keys("~", [s.health("web", s.ANY)])
    # SCAN (new bots' streams, balances, heartbeats) is keyless: it shows key names, no value.
    return User("web", (*own, *_keys("%R~", read), *commands, "+set", "+del", "+scan", control, manual))


def runner_user(runner: Runner) -> User:
    """A runner's own keys (its bots' `bot:{id}:*`: state, lease, timers, control, decisions;
    `orders:events:{id}`, its heartbeat) in full,
    its venues' market data, balances and symbol filters read-only; consumer-group writes on its
    venues' market data; XADD to its own bots' command streams (`orders:cmd:{venue}:{bot}`, so
    it can never send a command the gateway takes as another bot's), `notify` and its dead
    letters."""
    ids = [bot for bot, _ in runner.bots]
    venues = sorted({venue for _, venue in runner.bots})
    own = [*(s.bot_keys(b) for b in ids), *(s.order_events(b) for b in ids)]
    market = [s.market_data(v) for v in venues]
    shared_read = [*market, *(s.account(v) for v in venues), *(s.venue_symbols(v) for v in venues)]
    commands = (
        *CONNECTION, *GROUP_READ, *GROUP_WRITE, "+xadd", "+del", "+zadd", "+zrem", "+zrange",
        "+zrangebyscore", "+zcard", *STRINGS, "+hget", "+hmget", "+hgetall",
    )  # fmt: skip
    consume_market = _selector(_keys("~", market), GROUP_WRITE)
    dead_letters = [s.dlq(p) for p in (*market, *own)]
    append = _selector(
        _keys("~", [*(s.order_commands(v, b) for b, v in runner.bots), s.NOTIFY, *dead_letters]), ["+xadd"]
    )
    rules = (
        *_keys("~", [*own, s.health("strategy_runner", runner.instance)]),
        *_keys("%R~", shared_read),
        *commands,
        consume_market,
        append,
    )
    return User(runner.name, rules)


def users(runners: Sequence[Runner]) -> list[User]:
    """Every user of a deployment: admin, the services, one per strategy runner."""
    unique = {r.name: r for r in runners}  # a runner named twice (demo and yours) once
    return [
        admin_user(),
        market_gateway_user(),
        order_gateway_user(),
        notifier_user(),
        ledger_user(),
        web_user(),
        *(runner_user(r) for r in unique.values()),
    ]


# `default` is off: nobody can authenticate as it, so an unauthenticated connection can do
# nothing (NOAUTH). It still holds every right, because Redis replays the append-only file as
# `default` and, at each EXEC, checks the transaction's commands against that user's rights
# again (redis/redis#14541, fixed only in recent releases; Debian 12 ships 7.0): with none, every MULTI/EXEC
# of the file was refused at a restart (NOPERM in redis.log) and lost — the bots' states with
# the commands and acks committed beside them.
DEFAULT_USER = "user default off resetchannels ~* &* +@all"


def acl_text(all_users: Sequence[User], passwords: dict[str, str], *, selectors: bool = True) -> str:
    lines = [  # an ACL file has no comments
        DEFAULT_USER,
        *(u.line(passwords[u.name], selectors=selectors) for u in all_users),
    ]
    return "\n".join(lines) + "\n"


def ensure_password(path: Path, mode: int = 0o600) -> str:
    """The password in `path`, or a new random one written there: passwords survive
    regeneration, so a deployment's running services keep working."""
    if path.is_file():
        existing = path.read_text().strip()
        if existing:
            os.chmod(path, mode)
            return existing
    password = secrets.token_hex(32)
    write_atomic(path, (password + "\n").encode(), mode)
    return password


def write_acl(
    secrets_dir: Path, runners: Sequence[Runner], *, file_mode: int = 0o600, selectors: bool = True
) -> Path:
    """The ACL file secrets_dir/users.acl and a password file per user (secrets_dir/<user>),
    existing passwords kept, in a 0700 directory. Returns the ACL file's path.

    `file_mode` 0644 is for compose, where each file is mounted into the one container that
    needs it and read there by another uid (the redis user, the image's automata user); the
    0700 directory keeps the host's other users out. The ACL file holds only SHA-256 hashes of
    256-bit random passwords. `selectors=False` writes flat_rules, for a Redis older than 7."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(secrets_dir, 0o700)
    all_users = users(runners)
    passwords = {u.name: ensure_password(secrets_dir / u.name, file_mode) for u in all_users}
    target = secrets_dir / ACL_FILE
    write_atomic(target, acl_text(all_users, passwords, selectors=selectors).encode(), file_mode)
    return target
