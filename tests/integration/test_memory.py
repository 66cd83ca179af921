"""Streaming: neither the client nor the server holds a whole file in memory, so peak memory
is the same for a small file and a large one."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.conftest import PASSWORD, Result, Server, User, make_user

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


def test_password_checks_leave_no_memory_behind(sqlite_server: Server, tmp_path: Path) -> None:
    """Each login's argon2 hash takes 19 MiB, freed at its end: the server must give it back
    rather than keep it per worker thread (see pli.server.memory)."""
    alice = make_user(sqlite_server, tmp_path, "alice")
    body = {"email": alice.email, "password": PASSWORD}
    login = f"{sqlite_server.url}/api/v1/auth/login"
    with httpx.Client(timeout=30) as client:
        assert client.post(login, json=body).status_code == 200
        before = sqlite_server.rss_kib()
        for _ in range(4):
            assert client.post(login, json=body).status_code == 200
    assert sqlite_server.rss_kib() - before < 8 * 1024


def test_the_server_is_the_process_started(sqlite_server: Server) -> None:
    """`pli serve` becomes the server in the same process (so signals reach it), without the
    client's libraries, and still names the `pli` it was started as in what it suggests."""
    command = Path(f"/proc/{sqlite_server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert command[1:3] == [b"-m", b"pli.server"]
    suggested = [x for x in sqlite_server.log.read_text().splitlines() if "admin create-user" in x]
    assert len(suggested) == 1
    program = suggested[0].split(":", 1)[1].split()[0]
    assert Path(program).name == "pli"
