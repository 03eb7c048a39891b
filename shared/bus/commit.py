"""The atomic commit: state writes, output entries and the input's XACK in one MULTI/EXEC.

A crash before EXEC leaves everything as it was (the input entry is redelivered); after EXEC
all of it happened. Optional WATCH keys give fencing: if a watched key changed since it was
read (another runner took the lease), nothing is written and FencedError is raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.codec import encode
from shared.messages import Message


class FencedError(RuntimeError):
    """A watched key changed before EXEC: this process no longer owns the work."""


class Commit:
    """Collects the effects of handling one entry, then applies them atomically."""

    __slots__ = ("_ops", "_acked")

    def __init__(self) -> None:
        self._ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._acked: list[Any] = []

    def set(self, key: str, value: bytes | str, *, px: int | None = None) -> Commit:
        self._ops.append(("set", (key, value), {"px": px}))
        return self

    def hset(self, key: str, mapping: dict[str, Any]) -> Commit:
        self._ops.append(("hset", (key,), {"mapping": mapping}))
        return self

    def sadd(self, key: str, *members: str) -> Commit:
        self._ops.append(("sadd", (key, *members), {}))
        return self

    def srem(self, key: str, *members: str) -> Commit:
        self._ops.append(("srem", (key, *members), {}))
        return self

    def zadd(self, key: str, mapping: dict[str, float]) -> Commit:
        self._ops.append(("zadd", (key, mapping), {}))
        return self

    def zrem(self, key: str, *members: str) -> Commit:
        self._ops.append(("zrem", (key, *members), {}))
        return self

    def publish(self, stream: str, msg: Message, *, maxlen: int | None = None) -> Commit:
        self._ops.append(("xadd", (stream, encode(msg)), {"maxlen": maxlen, "approximate": True}))
        return self

    def ack(self, stream: str, group: str, entry_id: bytes | str, entry: Any = None) -> Commit:
        """XACK the input entry; pass the bus Entry too so the consumer does not ack it again."""
        self._ops.append(("xack", (stream, group, entry_id), {}))
        if entry is not None:
            self._acked.append(entry)
        return self

    def __len__(self) -> int:
        return len(self._ops)

    async def execute(
        self,
        redis: aioredis.Redis,
        *,
        watch: Sequence[str] = (),
        check: Callable[[aioredis.client.Pipeline], Awaitable[bool]] | None = None,
    ) -> list[Any]:
        """Run all operations in one MULTI/EXEC; with watch/check, only if check() holds and no
        watched key changed meanwhile (else FencedError, nothing written)."""
        async with redis.pipeline(transaction=True) as pipe:
            if watch:
                await pipe.watch(*watch)
                if check is not None and not await check(pipe):
                    await pipe.reset()
                    raise FencedError("fencing check failed")
                pipe.multi()
            for name, args, kwargs in self._ops:
                getattr(pipe, name)(*args, **kwargs)
            try:
                results = await pipe.execute()
            except WatchError as exc:
                raise FencedError("a watched key changed before EXEC") from exc
        for entry in self._acked:
            entry.acked = True
        return results
