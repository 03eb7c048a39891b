"""shared/files.py write_atomic: whole, private whatever the umask, never through a planted link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared import files, redis_acl


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_the_file_has_the_asked_mode_and_no_temporary_is_left(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        files.write_atomic(tmp_path / "a" / "secret", b"one", 0o640)
        files.write_atomic(tmp_path / "a" / "secret", b"two")
    finally:
        os.umask(old)
    target = tmp_path / "a" / "secret"
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret"]


def test_a_password_file_is_never_written_through_a_link_planted_at_the_old_temporary_name(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("not yours")
    path = tmp_path / "secrets" / "bot"
    path.parent.mkdir()
    (path.parent / ".bot.tmp").symlink_to(victim)  # the predictable name redis_acl once used
    password = redis_acl.ensure_password(path)
    assert victim.read_text() == "not yours"
    assert path.read_text().strip() == password and not path.is_symlink()
    assert redis_acl.ensure_password(path) == password  # kept across regeneration


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "acl"
    files.write_atomic(target, b"old")

    def refuse(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", refuse)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["acl"]
