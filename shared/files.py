"""Files that must survive a crash or a power cut whole: the keystore, the Redis ACL and the
services' password files, the paper venue's snapshot.

`write_atomic` writes a temporary file with an unpredictable name beside the target (created
new with O_EXCL and never through a symlink, so a planted file or link is never written
through), fsyncs it, renames it over the target, then fsyncs the directory: after a crash the
path holds the old content or the new, never an empty or half-written file (a rename alone can
reach the disk before the data it names).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _temp_path(path: Path) -> Path:
    """An unpredictable name beside `path` (a planted file or symlink cannot be waiting at it)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` (file mode `mode`, whatever the umask), durably and whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(8):
        tmp = _temp_path(path)
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{path.parent}: cannot create a temporary file: every name tried exists")
    try:
        os.fchmod(fd, mode)  # the umask cannot narrow what we ask for, nor widen it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
