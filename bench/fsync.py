"""fsync benchmark: what one durable write costs on this disk, raw and through Redis.

Redis with `appendfsync always` writes each event loop turn's commands to the AOF and calls
fdatasync before it answers them, so every acknowledged write of the bots' state and of the
order write-ahead log waits for the disk. This measures that wait where the data lives:

1. raw: N appends of 256 bytes (about one AOF entry of a commit) and of 4 KiB to a file in the
   directory under test, each followed by fdatasync (what Redis calls on Linux), then by fsync;
   latency of write + sync, p50 / p99 / max, and syncs per second;
2. through Redis: a private redis-server (AOF on) in the same directory, once with
   `appendfsync everysec` and once with `always`; N sequential XADDs of a 200-byte entry from
   redis-py, the round trip each.

The directory defaults to the system's temporary directory, where the benches' Redis lives;
`--dir PATH` measures another disk (e.g. where `automata run` keeps var/redis). Its filesystem and
device are printed: a tmpfs would make every figure meaningless.
Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/fsync.py [--dir PATH] [-n 2000]` (about 10 s here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, host, percentiles  # noqa: E402

from shared.redis_server import RedisServer  # noqa: E402


def mount_of(path: Path) -> Result:
    """The mount holding path (longest mount point prefix in /proc/mounts)."""
    best = {"mount": "?", "fs": "?", "device": "?"}
    target = str(path.resolve())
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fs = line.split()[:3]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best["mount"].replace("?", "")):
                best = {"mount": mount, "fs": fs, "device": device}
    except OSError:
        pass
    return best


def raw(directory: Path, n: int, size: int, sync: str) -> Result:
    """n appends of `size` bytes, each made durable by os.fdatasync or os.fsync."""
    call = os.fdatasync if sync == "fdatasync" else os.fsync
    payload = os.urandom(size)
    lat: list[int] = []
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-bench-") as f:
        fd = f.fileno()
        for _ in range(n // 20):  # warm-up: the file exists and has blocks
            os.write(fd, payload)
            call(fd)
        t_run = time.monotonic()
        for _ in range(n):
            t0 = time.monotonic_ns()
            os.write(fd, payload)
            call(fd)
            lat.append(time.monotonic_ns() - t0)
        seconds = time.monotonic() - t_run
    return {**percentiles(lat), "per_s": round(n / seconds)}


def through_redis(directory: Path, n: int, appendfsync: str) -> Result:
    """n sequential XADDs (one round trip each) to a Redis with AOF and this fsync policy."""
    import redis

    server = RedisServer(
        Path(tempfile.mkdtemp(prefix="fsync-redis-", dir=directory)), appendfsync=appendfsync
    )
    server.start()
    client = redis.Redis.from_url(server.url)
    fields = {b"type": b"bench", b"v": b"1", b"data": os.urandom(100).hex().encode()}  # ~200 bytes
    lat: list[int] = []
    try:
        for _ in range(n // 20):
            client.xadd("bench:fsync", fields)
        t_run = time.monotonic()
        for _ in range(n):
            t0 = time.monotonic_ns()
            client.xadd("bench:fsync", fields)
            lat.append(time.monotonic_ns() - t0)
        seconds = time.monotonic() - t_run
    finally:
        client.close()
        server.stop()
    return {**percentiles(lat), "per_s": round(n / seconds)}


def bench(directory: Path, n: int) -> Result:
    out: Result = {**host(), "dir": str(directory), **mount_of(directory), "n": n}
    for size in (256, 4096):
        for sync in ("fdatasync", "fsync"):
            out[f"raw_{size}b_{sync}"] = raw(directory, n, size, sync)
    for policy in ("everysec", "always"):
        out[f"redis_xadd_{policy}"] = through_redis(directory, n, policy)
    return out


def report(r: Result) -> None:
    print(f"{r['date']}: {r['nproc']} cores ({r['cpu_model']}), {r['uname']}")
    print(f"directory {r['dir']}: {r['fs']} on {r['device']} (mounted at {r['mount']}), {r['n']} writes each")
    print("write + sync of one append          p50        p99        max       syncs/s")
    for size in (256, 4096):
        for sync in ("fdatasync", "fsync"):
            m = r[f"raw_{size}b_{sync}"]
            print(
                f"  {size:>4} B, {sync:<9}            {m['p50_ms']:>7.3f} ms {m['p99_ms']:>7.3f} ms"
                f" {m['max_ms']:>8.3f} ms {m['per_s']:>8,}"
            )
    print("redis-py XADD round trip (AOF on)")
    for policy in ("everysec", "always"):
        m = r[f"redis_xadd_{policy}"]
        print(
            f"  appendfsync {policy:<9}            {m['p50_ms']:>7.3f} ms {m['p99_ms']:>7.3f} ms"
            f" {m['max_ms']:>8.3f} ms {m['per_s']:>8,}"
        )
    if r["fs"] in ("tmpfs", "ramfs"):
        print("WARNING: the directory is in memory: these syncs never reach a disk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="directory on the disk to measure"
    )
    parser.add_argument("-n", type=int, default=2000, help="writes per measurement")
    args = parser.parse_args()
    t0 = time.monotonic()
    result = bench(args.dir, args.n)
    result["bench_seconds"] = round(time.monotonic() - t0, 1)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
