"""A large file written through `Writeback` does not stay in the page cache as it is written:
the kernel is told to write it out, and the pages already on disk are let go."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pli.writeback import STEP, Writeback

SIZE = 6 * STEP
BLOCK = b"\xa5" * (1 << 20)

needs_fincore = pytest.mark.skipif(
    shutil.which("fincore") is None or not hasattr(os, "posix_fadvise"),
    reason="fincore (util-linux) and posix_fadvise",
)


def _resident(path: Path) -> int:
    """Bytes of `path` in the page cache, as util-linux's fincore reports them."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


def _write(path: Path, *, follow: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        writeback = Writeback(fd)
        for _ in range(SIZE // len(BLOCK)):
            os.write(fd, BLOCK)
            if follow:
                writeback.wrote(len(BLOCK))
        os.fsync(fd)
    finally:
        os.close(fd)


@needs_fincore
def test_written_pages_are_let_go(tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    _write(path, follow=True)
    assert path.stat().st_size == SIZE
    assert _resident(path) <= SIZE // 2


@needs_fincore
def test_without_it_the_file_stays_cached(tmp_path: Path) -> None:
    """The check above can fail: a file written plainly is still all in memory."""
    path = tmp_path / "large.bin"
    _write(path, follow=False)
    assert _resident(path) > SIZE // 2
