"""A bus consumer in its own process, for crash tests.

Each entry is a Notification whose `text` names it. The handler pushes `start:{text}` to
the list `t:log`, then either hangs (--hang TEXT, so the test can SIGKILL it mid-handler),
kills its own process (--die TEXT, a poison pill), or finishes: with --commit it writes
state `t:state:{text}`, publishes to `t:out` and acks in one Commit; otherwise it pushes
`done:{text}` and lets the consumer ack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from shared.bus import Commit, Consumer, Entry
from shared.logs import setup_logging
from shared.messages import Notification
from shared.redis_conn import connect


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--stream", default="t:in")
    p.add_argument("--group", default="g")
    p.add_argument("--name", default="w1")
    p.add_argument("--hang", default="")
    p.add_argument("--die", default="")
    p.add_argument("--commit", action="store_true")
    p.add_argument("--claim-idle-ms", type=int, default=60_000)
    p.add_argument("--max-deliveries", type=int, default=5)
    args = p.parse_args()
    setup_logging("bus_worker", "INFO", json=False)
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    redis = connect()

    async def handler(entry: Entry) -> None:
        msg = entry.message
        assert isinstance(msg, Notification)
        await redis.rpush("t:log", f"start:{msg.text}:{args.name}:{entry.deliveries}")
        if msg.text == args.hang:
            await asyncio.sleep(3600)
        if msg.text == args.die:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.commit:
            out = Notification(id=f"out-{msg.id}", kind="info", text=msg.text)
            commit = Commit().set(f"t:state:{msg.text}", entry.id).publish("t:out", out)
            await commit.ack(entry.stream, entry.group, entry.id, entry).execute(redis)
        else:
            await redis.rpush("t:log", f"done:{msg.text}:{args.name}")

    consumer = Consumer(
        redis,
        [args.stream],
        args.group,
        args.name,
        handler,
        claim_idle_ms=args.claim_idle_ms,
        claim_every_s=0.2,
        max_deliveries=args.max_deliveries,
        block_ms=200,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, consumer.stop)
    await redis.rpush("t:ready", args.name)
    await consumer.run()
    await redis.aclose()


if __name__ == "__main__":
    main()
