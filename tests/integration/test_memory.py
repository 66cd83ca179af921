"""Streaming: neither the client nor the server holds a whole file in memory, so peak memory
is the same for a small file and a large one."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import Result, Server, User, make_user

MIB = 1 << 20
LARGE = 384 * MIB
CLIENT_LIMIT_KIB = 100 * 1024
GROWTH_LIMIT_KIB = 24 * 1024  # allocator noise; a buffered file would add 384 MiB


def _file(path: Path, size: int) -> Path:
    block = bytes(range(256)) * (MIB // 256)
    with path.open("wb") as handle:
        for _ in range(max(1, size // MIB)):
            handle.write(block)
    return path


def _round_trip(alice: User, bob: User, source: Path, out: Path) -> tuple[Result, Result]:
    sent = alice.run("send", str(source), "--to", bob.email, "--json")
    assert sent.returncode == 0, sent.stderr
    received = bob.run("get", sent.json()["id"], "-o", str(out))
    assert received.returncode == 0, received.stderr
    return sent, received


def test_peak_memory_does_not_grow_with_file_size(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    small_sent, small_got = _round_trip(
        alice, bob, _file(tmp_path / "small.bin", MIB), tmp_path / "o1"
    )
    server_before = sqlite_server.peak_rss_kib()

    big = _file(tmp_path / "imaging.bin", LARGE)
    sent, received = _round_trip(alice, bob, big, tmp_path / "o2")
    copy = tmp_path / "o2" / "imaging.bin"
    assert copy.stat().st_size == LARGE
    with big.open("rb") as a, copy.open("rb") as b:
        while chunk := a.read(MIB):
            assert chunk == b.read(MIB)

    assert sent.maxrss_kib < CLIENT_LIMIT_KIB, f"client used {sent.maxrss_kib} KiB sending"
    assert received.maxrss_kib < CLIENT_LIMIT_KIB, f"client used {received.maxrss_kib} KiB"
    assert sent.maxrss_kib - small_sent.maxrss_kib < GROWTH_LIMIT_KIB
    assert received.maxrss_kib - small_got.maxrss_kib < GROWTH_LIMIT_KIB
    server_growth = sqlite_server.peak_rss_kib() - server_before
    assert server_growth < GROWTH_LIMIT_KIB, f"server grew by {server_growth} KiB"
