"""The order gateway's part of a bot's start-up sync, for runner tests that run no gateway.

A strategy runner commits a SyncBot when it starts serving a bot and places nothing until the
gateway answers with BotSynced (services/strategy_runner/runner.py). Tests that play the
gateway themselves (they write the order updates a gateway would) answer it here the way a
gateway with no order of the bot at the venue would: max_seq = the bot's own sequence.
"""

from __future__ import annotations

import threading

import redis

from shared.codec import decode, encode
from shared.messages import BotSynced, SyncBot
from shared.streams import order_events
from tests.helpers.cmdstreams import command_streams


class SyncAnswerer(threading.Thread):
    def __init__(self, url: str, venue: str = "sim") -> None:
        super().__init__(daemon=True, name="sync-answerer")
        self.redis = redis.Redis.from_url(url)
        self.venue = venue
        self._halt = threading.Event()
        self.answered = 0

    def run(self) -> None:
        last: dict[str, bytes | str] = {}  # each bot's command stream, read to
        while not self._halt.is_set():
            try:
                for stream in command_streams(self.redis, self.venue):  # bots that appeared since
                    last.setdefault(stream, "0-0")
                if not last:
                    self._halt.wait(0.05)
                    continue
                reply = self.redis.xread(last, count=100, block=100)
            except redis.ConnectionError:
                if self._halt.wait(0.1):
                    return
                continue
            for stream, entries in reply or ():
                for entry_id, fields in entries:
                    last[stream.decode()] = entry_id
                    if fields.get(b"type") != b"sync":
                        continue
                    msg = decode(fields)
                    assert isinstance(msg, SyncBot)
                    answer = BotSynced(
                        bot=msg.bot, venue=msg.venue, token=msg.token, max_seq=msg.seq, ts=msg.ts
                    )
                    self.redis.xadd(order_events(msg.bot), encode(answer))
                    self.answered += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.redis.close()
