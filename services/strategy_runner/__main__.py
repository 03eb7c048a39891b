"""python -m services.strategy_runner --bot ID [--bots FILE]: runs one bot.

The bot's config is validated before anything starts: a bad config prints an error naming
the file, the bot and the field, and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys

from services.strategy_runner.bots import BotConfig, find_bot
from services.strategy_runner.runner import BotRunner
from shared.config import ConfigError
from shared.ids import IdError, check_bot_id
from shared.service import ServiceContext, run_service
from shared.strategy.registry import load_strategy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.strategy_runner")
    parser.add_argument("--bot", required=True, help="id of the bot to run")
    parser.add_argument("--bots", default=None, help="bot config file (default $AUTOMATA_BOTS or bots.toml)")
    args = parser.parse_args(argv)
    try:
        check_bot_id(args.bot)
        args.bot_config = find_bot(args.bot, args.bots)
    except (IdError, ConfigError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    return args


async def start(ctx: ServiceContext) -> None:
    bot: BotConfig = ctx.args.bot_config
    ctx.info["bot"] = bot.id
    ctx.info["strategy"] = bot.strategy
    ctx.add(BotRunner(ctx, bot, load_strategy(bot.strategy)))


if __name__ == "__main__":
    run_service("strategy_runner", start, parse_args())
