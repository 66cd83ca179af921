"""Resumable uploads (tus 1.0) against the real server, and `pli send` that resumes after a
killed client, a server restart, or refuses to when the file changed meanwhile."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import PLI, TUS, Server, User, bearer, make_user, new_upload

OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}
MIB = 1 << 20


def _new_upload(server: Server, alice: User, bob: User, length: int) -> str:
    return new_upload(server, alice, bob.email, length)


def _offset(server: Server, user: User, location: str) -> int:
    head = httpx.head(f"{server.url}{location}", headers={**bearer(user), **TUS})
    assert head.status_code == 200
    assert head.headers["cache-control"] == "no-store"
    return int(head.headers["upload-offset"])


def _patch(
    server: Server, user: User, location: str, offset: int, data: bytes, **extra: str
) -> httpx.Response:
    headers = {**bearer(user), **OCTETS, "upload-offset": str(offset), **extra}
    return httpx.patch(f"{server.url}{location}", headers=headers, content=data, timeout=60)


def _sha256(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _stored_blobs(server: Server) -> list[Path]:
    root = server.data / "blobs"
    return [p for p in root.glob("??/*") if p.is_file()]


def test_discovery_names_the_protocol_and_extensions(sqlite_server: Server) -> None:
    answer = httpx.options(f"{sqlite_server.url}/api/v1/uploads")
    assert answer.status_code == 204
    assert answer.headers["tus-version"] == "1.0.0"
    assert set(answer.headers["tus-extension"].split(",")) == {
        "creation",
        "termination",
        "checksum",
        "expiration",
    }
    assert answer.headers["tus-checksum-algorithm"] == "sha256"


def test_an_upload_in_parts_with_checksums(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    data = os.urandom(3 * MIB + 5)
    location = _new_upload(sqlite_server, alice, bob, len(data))
    assert _offset(sqlite_server, alice, location) == 0

    first = data[: 2 * MIB]
    wrong = _patch(sqlite_server, alice, location, 0, first, **{"upload-checksum": _sha256(b"x")})
    assert wrong.status_code == 460
    assert wrong.headers["content-type"] == "application/problem+json"
    assert _offset(sqlite_server, alice, location) == 0  # a mismatched part counts for nothing

    good = _patch(sqlite_server, alice, location, 0, first, **{"upload-checksum": _sha256(first)})
    assert good.status_code == 204
    assert good.headers["upload-offset"] == str(2 * MIB)

    stale = _patch(sqlite_server, alice, location, 0, first)
    assert stale.status_code == 409  # the offset moved on
    past = _patch(sqlite_server, alice, location, 2 * MIB, data[2 * MIB :] + b"extra")
    assert past.status_code == 400

    last = _patch(sqlite_server, alice, location, 2 * MIB, data[2 * MIB :])
    assert last.status_code == 204
    assert last.headers["upload-offset"] == str(len(data))
    assert [p.read_bytes() for p in _stored_blobs(sqlite_server)] == [data]


def test_protocol_errors_are_clear(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    location = _new_upload(sqlite_server, alice, bob, 10)
    url = f"{sqlite_server.url}{location}"
    headers = {**bearer(alice), **OCTETS, "upload-offset": "0"}
    no_version = {k: v for k, v in headers.items() if k != "tus-resumable"}
    assert httpx.patch(url, headers=no_version, content=b"x" * 10).status_code == 412
    not_octets = {**headers, "content-type": "application/json"}
    assert httpx.patch(url, headers=not_octets, content=b"x" * 10).status_code == 415
    bad_sum = {**headers, "upload-checksum": "md5 AAAA"}
    answer = httpx.patch(url, headers=bad_sum, content=b"x" * 10)
    assert answer.status_code == 400
    assert "sha256" in answer.json()["detail"]
    # Termination: the upload and its parts are gone.
    assert httpx.delete(url, headers={**bearer(alice), **TUS}).status_code == 204
    assert httpx.head(url, headers={**bearer(alice), **TUS}).status_code == 404
    assert list((sqlite_server.data / "blobs" / "uploads").iterdir()) == []


def test_a_cut_request_keeps_what_arrived(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    data = os.urandom(6 * MIB)
    location = _new_upload(sqlite_server, alice, bob, len(data))
    host, port = sqlite_server.url.removeprefix("http://").split(":")
    token = (alice.home / "session").read_text()
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PATCH {location} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n"
            "tus-resumable: 1.0.0\r\ncontent-type: application/offset+octet-stream\r\n"
            f"upload-offset: 0\r\ncontent-length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: 4 * MIB])
        time.sleep(1)
    offset = 0
    for _ in range(50):  # the server notices the cut, and commits, shortly after
        offset = _offset(sqlite_server, alice, location)
        if offset:
            break
        time.sleep(0.1)
    assert 0 < offset <= 4 * MIB
    assert _patch(sqlite_server, alice, location, offset, data[offset:]).status_code == 204
    assert [p.read_bytes() for p in _stored_blobs(sqlite_server)] == [data]


# --- the CLI -----------------------------------------------------------------------------------


def _background_send(
    user: User, source: Path, to: str, extra_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PLI, "send", str(source), "--to", to, "--json"],
        env={**user.env(), **extra_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _when_received(server: Server, at_least: int, process: subprocess.Popen[bytes]) -> None:
    uploads = server.data / "blobs" / "uploads"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the send finished before it could be interrupted")
        if any(p.stat().st_size >= at_least for p in uploads.iterdir()):
            return
        time.sleep(0.02)
    pytest.fail("the upload never got going")


def _big_file(tmp_path: Path, size: int) -> Path:
    source = tmp_path / "scan.bin"
    with source.open("wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))
    return source


def _state(user: User) -> dict[str, object]:
    [state] = user.home.glob("send-*.json")
    found: dict[str, object] = json.loads(state.read_text())
    return found


def _killed_send(server: Server, alice: User, bob: User, source: Path) -> None:
    sending = _background_send(alice, source, bob.email, {})
    _when_received(server, 16 * MIB, sending)
    sending.send_signal(signal.SIGKILL)
    sending.wait()


def _received(bob: User, transfer: str, tmp_path: Path) -> bytes:
    bob.ok("get", transfer, "-o", str(tmp_path / "got"))
    return (tmp_path / "got" / "scan.bin").read_bytes()


def test_a_killed_send_resumes(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    source = _big_file(tmp_path, 256 * MIB)
    _killed_send(sqlite_server, alice, bob, source)
    state = _state(alice)
    files = state["files"]
    assert isinstance(files, list)
    # The server keeps what arrived once it notices the cut: soon, not at once.
    deadline = time.monotonic() + 15
    while (held := _offset(sqlite_server, alice, files[0]["upload"])) == 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert held > 0

    again = alice.run("send", str(source), "--to", bob.email, "--json")
    assert again.returncode == 0, again.stderr
    assert again.json()["id"] == state["id"]
    assert "resuming" in again.stderr
    assert list(alice.home.glob("send-*")) == []  # nothing left once sealed
    assert _received(bob, str(state["id"]), tmp_path) == source.read_bytes()


def test_a_send_resumes_after_a_file_change_from_the_start(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    source = _big_file(tmp_path, 256 * MIB)
    _killed_send(sqlite_server, alice, bob, source)
    before = source.stat()
    with source.open("r+b") as handle:  # same size, same inode, same times: only bytes differ
        handle.write(b"\x00" * 4096)
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))

    again = alice.run("send", str(source), "--to", bob.email, "--json")
    assert again.returncode == 0, again.stderr
    assert "changed since its upload was interrupted" in again.stderr
    assert _received(bob, again.json()["id"], tmp_path) == source.read_bytes()


def test_a_send_rides_out_a_server_restart(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    source = _big_file(tmp_path, 256 * MIB)
    sending = _background_send(alice, source, bob.email, {"PLI_UPLOAD_RETRY_SECONDS": "90"})
    _when_received(sqlite_server, 16 * MIB, sending)
    sqlite_server.process.send_signal(signal.SIGKILL)  # no goodbye: as in a crash
    sqlite_server.process.wait()
    with (sqlite_server.log).open("ab") as log:
        sqlite_server.process = subprocess.Popen(
            sqlite_server.process.args,
            env=sqlite_server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    out, err = sending.communicate(timeout=300)
    assert sending.returncode == 0, err.decode()
    transfer = json.loads(out)["id"]
    assert _received(bob, transfer, tmp_path) == source.read_bytes()
