"""python -m services.strategy_runner --bot ID [--bot ID ...] [--bots FILE]: runs bots.

One `--bot` is the default deployment: a process per bot, so a crash, a blocking strategy or a
leak takes down only that bot. Several `--bot` run those bots in one process (bots sharing a
`process` name in the bots file; `automata deploy` and the demo do this) to pay for the
interpreter and libraries once on a small machine. Each bot still has its own lease, state,
consumer group and exactly-once commit; only the process is shared.

The config of every bot it runs is validated before anything starts: a bad config prints an
error naming the file, the bot and the field, and exits with code 2. Another bot's entry of the
same file is checked as an entry only (its strategy and params are its own runner's business).
"""

from __future__ import annotations

import argparse
import sys

from services.strategy_runner.bots import find_bots
from services.strategy_runner.runner import BotRunner
from shared.config import ConfigError
from shared.ids import IdError, check_bot_id
from shared.service import ServiceContext, run_service
from shared.strategy.base import Strategy
from shared.strategy.registry import load_strategy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.strategy_runner")
    parser.add_argument(
        "--bot",
        required=True,
        action="append",
        dest="bot_ids",
        metavar="ID",
        help="id of a bot to run; repeat it to run several bots in this process",
    )
    parser.add_argument("--bots", default=None, help="bot config file (default $AUTOMATA_BOTS or bots.toml)")
    args = parser.parse_args(argv)
    try:
        for bot_id in args.bot_ids:
            check_bot_id(bot_id)
        args.bot_configs = find_bots(args.bot_ids, args.bots)
    except (IdError, ConfigError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    return args


async def start(ctx: ServiceContext) -> None:
    ctx.info["bots"] = [bot.id for bot in ctx.args.bot_configs]
    trades: dict[str, str] = {}  # the bots that take manual trades (shared/trade_control.py finds them)
    for bot in ctx.args.bot_configs:
        strategy = load_strategy(bot.strategy)
        if type(strategy).on_trade is not Strategy.on_trade:
            trades[bot.id] = f"{bot.venue}:{bot.symbol}"
        ctx.add(BotRunner(ctx, bot, strategy))
    if trades:
        ctx.info["trades"] = trades


if __name__ == "__main__":
    run_service("strategy_runner", start, parse_args())
