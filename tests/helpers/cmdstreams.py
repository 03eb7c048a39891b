"""The order command streams of a venue, one per bot (`orders:cmd:{venue}:{bot}`), as tests read
them: every one Redis holds, found the way the order gateway finds them (SCAN), and their
entries merged in the order they were written."""

from __future__ import annotations

import redis

from shared.streams import GROUP_ORDER_GATEWAY, any_order_commands, command_stream_bot


def command_streams(r: redis.Redis, venue: str = "sim") -> list[str]:
    keys = (k.decode() for k in r.scan_iter(match=any_order_commands(venue), count=1000, _type="stream"))
    return sorted(k for k in keys if command_stream_bot(venue, k) is not None)


def entry_key(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.decode().split("-")
    return int(ms), int(seq)


def command_entries(r: redis.Redis, venue: str = "sim") -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every bot's commands to the venue, oldest first (entry ids are unique across streams
    only by time: ties keep stream order)."""
    entries = [e for stream in command_streams(r, venue) for e in r.xrange(stream)]
    return sorted(entries, key=lambda e: entry_key(e[0]))


def pending_entries(r: redis.Redis, venue: str = "sim") -> list[tuple[str, str]]:
    """(stream, entry id) of every command the order gateway's group holds unacknowledged."""
    return [
        (stream, p["message_id"].decode())
        for stream in command_streams(r, venue)
        if any(g["name"] == GROUP_ORDER_GATEWAY.encode() for g in r.xinfo_groups(stream))
        for p in r.xpending_range(stream, GROUP_ORDER_GATEWAY, "-", "+", 1000)
    ]


def readers(r: redis.Redis, venue: str = "sim") -> set[str]:
    """The consumers of the order gateway's group on any command stream of the venue."""
    return {
        c["name"].decode()
        for stream in command_streams(r, venue)
        if any(g["name"] == GROUP_ORDER_GATEWAY.encode() for g in r.xinfo_groups(stream))
        for c in r.xinfo_consumers(stream, GROUP_ORDER_GATEWAY)
    }
