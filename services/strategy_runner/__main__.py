"""python -m services.strategy_runner --bot ID: runs one bot."""

from __future__ import annotations

import argparse

from shared.bus import ensure_group
from shared.ids import IdError, check_bot_id
from shared.service import ServiceContext, run_service
from shared.streams import bot_control, bot_group, order_events


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.strategy_runner")
    parser.add_argument("--bot", required=True, help="id of the bot to run")
    args = parser.parse_args(argv)
    try:
        check_bot_id(args.bot)
    except IdError as exc:
        parser.error(str(exc))
    return args


async def start(ctx: ServiceContext) -> None:
    bot = ctx.args.bot
    ctx.info["bot"] = bot
    for stream in (order_events(bot), bot_control(bot)):
        await ensure_group(ctx.redis, stream, bot_group(bot))


if __name__ == "__main__":
    run_service("strategy_runner", start, parse_args())
