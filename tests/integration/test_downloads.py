"""Downloads: byte ranges on the server, and `pli get` that resumes, against the real server and
CLI. The CLI reaches the server through a TCP relay that counts the bytes the server sends, and
can stall or cut the connection after a given number of them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pli.client.api import Api
from pli.errors import TransportError
from tests.integration.conftest import (
    PLI,
    Server,
    User,
    make_user,
    start_server,
    stop_server,
)
from tests.integration.test_tls import _start_tls

MIB = 1 << 20
LARGE = 64 * MIB
BUDGET = 24 * MIB  # what the server may send before the relay stalls or cuts


class Relay:
    """Relays TCP connections to the server. `sent` counts the bytes the server sent towards
    the client. Past `budget` of them, in mode "cut" every connection is closed; in mode
    "stall" nothing more is relayed until `release()`, which then closes them. Towards the
    server, `cut_upload(n)` closes the connection that carries the n-th byte from now, once."""

    def __init__(self, upstream: Server) -> None:
        self.upstream_port = _port(upstream)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.sent = 0
        self.budget: int | None = None
        self.mode = "cut"
        self.stalled = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.uploaded = 0
        self.upload_cuts = 0
        self._upload_budget: int | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_upload(self, after: int) -> None:
        with self._lock:
            self._upload_budget = self.uploaded + after

    def limit(self, budget: int | None, mode: str = "cut") -> None:
        with self._lock:
            self.budget, self.mode = (None if budget is None else self.sent + budget), mode
        self.stalled.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._back, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                if self._cut_here(len(data)):
                    for sock in (source, target):
                        sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
                    return
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _cut_here(self, size: int) -> bool:
        with self._lock:
            self.uploaded += size
            if self._upload_budget is None or self.uploaded < self._upload_budget:
                return False
            self._upload_budget = None
            self.upload_cuts += 1
            return True

    def _back(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(1 << 16):
                with self._lock:
                    room = len(data) if self.budget is None else max(0, self.budget - self.sent)
                    self.sent += min(room, len(data))
                    mode = self.mode
                client.sendall(data[:room])
                if room < len(data):
                    if mode == "stall":
                        self.stalled.set()
                        self._released.wait()
                    break
        for sock in (server, client):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def relay(sqlite_server: Server) -> Iterator[Relay]:
    r = Relay(sqlite_server)
    yield r
    r.close()


def _pair(server: Server, tmp_path: Path, relay: Relay) -> tuple[User, User]:
    alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
    bob.ok("login", relay.url, "--email", bob.email)  # bob's traffic goes through the relay
    return alice, bob


def _source(tmp_path: Path, size: int = LARGE) -> Path:
    path = tmp_path / "imaging.dcm"
    rng = hashlib.sha256(b"seed")
    with path.open("wb") as handle:
        block = b"".join(hashlib.sha256(rng.digest() + bytes([i])).digest() for i in range(256))
        for i in range(size // len(block)):
            handle.write(block[i % 97 :] + block[: i % 97])
    return path


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _partials(out: Path) -> list[Path]:
    return sorted(out.glob(".pli-*.part")) if out.exists() else []


def _blob(server: Server, transfer: str) -> bytes:
    with contextlib.closing(sqlite3.connect(server.data / "pli.db")) as db:
        (key,) = db.execute(
            "SELECT blob_key FROM transfer_files WHERE transfer_id = ?", (transfer,)
        ).fetchone()
    return (server.data / "blobs" / str(key)[:2] / str(key)).read_bytes()


def _token(user: User) -> str:
    return (user.home / "session").read_text()


def _file_url(server: Server, transfer: str, auth: dict[str, str]) -> str:
    shown = httpx.get(f"{server.url}/api/v1/transfers/{transfer}", headers=auth).json()
    return f"{server.url}/api/v1/transfers/{transfer}/files/{shown['files'][0]['id']}"


def _interrupt(
    bob: User, transfer: str, out: Path, relay: Relay, *, stop: signal.Signals | None, raw: bool
) -> None:
    """Start `pli get`, let it receive BUDGET bytes, then stop it with a signal (while it waits
    for more), or cut it off."""
    relay.limit(BUDGET, "stall")
    proc = subprocess.Popen(
        [PLI, "get", transfer, "-o", str(out), *(["--raw"] if raw else [])],
        env=bob.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert relay.stalled.wait(120), "the download never reached the relay's budget"
        _wait_until_still(out)
        if stop is not None:
            proc.send_signal(stop)
            proc.wait(30)
        relay.release()  # the connection is cut: a client still running fails
        _, stderr = proc.communicate(timeout=60)
    finally:
        _end(proc)
    if stop is signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    elif stop is signal.SIGINT:  # Ctrl-C: the command ends by itself, keeping the partial file
        assert proc.returncode != 0
        assert b"Traceback" not in stderr
    else:
        assert proc.returncode == 1, stderr
        assert b"run the same command again to resume" in stderr


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _wait_until_still(out: Path) -> None:
    """Until the partial file stops growing: the client wrote all it received."""
    previous, deadline = -1, time.monotonic() + 60
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size for p in _partials(out)]
        if sizes and sizes[0] == previous:
            return
        previous = sizes[0] if sizes else -1
        time.sleep(0.3)
    raise AssertionError("the partial download never settled")


# --- ranges over HTTP ---------------------------------------------------------------------------


def test_range_requests(sqlite_server: Server, relay: Relay, tmp_path: Path) -> None:
    alice, bob = _pair(sqlite_server, tmp_path, relay)
    carol = make_user(sqlite_server, tmp_path, "carol")
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(300_000))
    transfer = alice.send(source, to=bob.email)
    blob = _blob(sqlite_server, transfer)
    size = len(blob)
    auth = {"authorization": f"Bearer {_token(bob)}"}
    url = _file_url(sqlite_server, transfer, auth)

    whole = httpx.get(url, headers=auth)
    assert whole.status_code == 200
    assert whole.content == blob
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(size)
    tag = whole.headers["etag"]
    assert tag.startswith('"')
    assert tag.endswith('"')

    for header, start, stop in [
        ("bytes=10-99", 10, 100),
        ("bytes=100-", 100, size),
        ("bytes=-50", size - 50, size),
        (f"bytes={size - 1}-{size + 1000}", size - 1, size),
        ("bytes=0-0", 0, 1),
    ]:
        part = httpx.get(url, headers={**auth, "range": header})
        assert part.status_code == 206, header
        expected = blob[start:stop]
        assert part.content == expected, header
        assert part.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
        assert part.headers["content-length"] == str(len(expected))
        assert part.headers["etag"] == tag

    for header in (f"bytes={size}-", "bytes=-0", f"bytes={size + 10}-{size + 20}"):
        refused = httpx.get(url, headers={**auth, "range": header})
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.headers["content-type"] == "application/problem+json"

    # Several ranges, another unit, a malformed header: the whole blob.
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=9-3"):
        ignored = httpx.get(url, headers={**auth, "range": header})
        assert (ignored.status_code, ignored.content) == (200, blob), header

    # If-Range: the current tag resumes; anything else gets the whole, current blob.
    resumed = httpx.get(url, headers={**auth, "range": "bytes=1000-", "if-range": tag})
    assert (resumed.status_code, resumed.content) == (206, blob[1000:])
    for stale in ('"0123"', f"W/{tag}", "Wed, 21 Oct 2015 07:28:00 GMT"):
        fresh = httpx.get(url, headers={**auth, "range": "bytes=1000-", "if-range": stale})
        assert (fresh.status_code, fresh.content) == (200, blob), stale

    # Another transfer's blob has another tag.
    other_url = _file_url(sqlite_server, alice.send(source, to=bob.email), auth)
    assert httpx.get(other_url, headers=auth).headers["etag"] != tag

    # Authorization comes first, whatever the range.
    assert httpx.get(url, headers={"range": "bytes=0-1"}).status_code == 401
    carol_auth = {"authorization": f"Bearer {_token(carol)}", "range": f"bytes={size}-"}
    assert httpx.get(url, headers=carol_auth).status_code == 404

    document = httpx.get(f"{sqlite_server.url}/openapi.json").json()
    answers = document["paths"]["/api/v1/transfers/{transfer_id}/files/{file_id}"]["get"]
    assert {"200", "206", "416"} <= set(answers["responses"])
    assert {"range", "if-range"} <= {p["name"] for p in answers["parameters"]}


# --- resumed `pli get` --------------------------------------------------------------------------


@pytest.mark.parametrize("interruption", ["kill", "ctrl-c", "cut", "server restart", "raw"])
def test_an_interrupted_get_resumes(
    sqlite_server: Server, relay: Relay, tmp_path: Path, interruption: str
) -> None:
    alice, bob = _pair(sqlite_server, tmp_path, relay)
    source = _source(tmp_path)
    transfer = alice.send(source, to=bob.email)
    blob_size = len(_blob(sqlite_server, transfer))
    out = tmp_path / "out"
    raw = ("--raw",) if interruption == "raw" else ()
    server = sqlite_server
    with contextlib.ExitStack() as stack:
        if interruption == "server restart":
            relay.limit(BUDGET, "stall")
            proc = subprocess.Popen(
                [PLI, "get", transfer, "-o", str(out)],
                env=bob.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            stack.callback(_end, proc)
            assert relay.stalled.wait(120)
            _wait_until_still(out)
            sqlite_server.process.kill()  # a crash, mid-response
            sqlite_server.process.wait()
            relay.release()
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 1, stderr
            server = start_server(tmp_path, None)
            stack.callback(stop_server, server)
            relay.upstream_port = _port(server)
        else:
            stop = {"kill": signal.SIGKILL, "ctrl-c": signal.SIGINT}.get(interruption)
            _interrupt(bob, transfer, out, relay, stop=stop, raw=bool(raw))

        (partial,) = _partials(out)
        assert partial.stat().st_mode & 0o777 == 0o600
        assert BUDGET // 4 < partial.stat().st_size < LARGE
        assert [p.name for p in out.iterdir()] == [partial.name]  # nothing placed yet

        relay.limit(None)
        before = relay.sent
        again = bob.run("get", transfer, "-o", str(out), *raw)
        assert again.returncode == 0, again.stderr
        assert "resumed an interrupted download" in again.stderr
        transferred = relay.sent - before
        # Only the rest of the file (and the age header) came again.
        assert transferred < blob_size - BUDGET // 4, transferred

    assert _partials(out) == []
    if raw:
        assert (out / "imaging.dcm.age").read_bytes() == _blob(server, transfer)
    else:
        assert _digest(out / "imaging.dcm") == _digest(source)
    assert "206" in server.log.read_text()


def test_a_tampered_partial_download_is_refused_then_started_over(
    sqlite_server: Server, relay: Relay, tmp_path: Path
) -> None:
    alice, bob = _pair(sqlite_server, tmp_path, relay)
    source = _source(tmp_path, 16 * MIB)
    transfer = alice.send(source, to=bob.email)
    out = tmp_path / "out"
    relay.limit(8 * MIB, "cut")
    cut = bob.run("get", transfer, "-o", str(out))
    assert cut.returncode == 1
    assert "hint: run the same command again to resume" in cut.stderr
    (partial,) = _partials(out)
    with partial.open("r+b") as handle:  # one flipped bit in the kept plaintext
        handle.seek(MIB + 7)
        byte = handle.read(1)
        handle.seek(MIB + 7)
        handle.write(bytes([byte[0] ^ 0x01]))

    relay.limit(None)
    refused = bob.run("get", transfer, "-o", str(out))
    assert refused.returncode == 1
    assert "does not match the sender's signed manifest" in refused.stderr
    assert "run the command again" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert list(out.iterdir()) == []  # the partial file is gone, nothing was placed

    fresh = bob.ok("get", transfer, "-o", str(out))
    assert "resumed" not in fresh.stderr
    assert _digest(out / "imaging.dcm") == _digest(source)
    assert _partials(out) == []


def test_a_partial_file_that_is_not_ours_is_left_alone(
    sqlite_server: Server, relay: Relay, tmp_path: Path
) -> None:
    """A symbolic link (or a second hard link) under the partial file's name is never written
    through: the download stops and names the file."""
    alice, bob = _pair(sqlite_server, tmp_path, relay)
    source = _source(tmp_path, 16 * MIB)
    transfer = alice.send(source, to=bob.email)
    out = tmp_path / "out"
    relay.limit(8 * MIB, "cut")
    assert bob.run("get", transfer, "-o", str(out)).returncode == 1
    (partial,) = _partials(out)
    partial.unlink()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    partial.symlink_to(victim)
    relay.limit(None)
    refused = bob.run("get", transfer, "-o", str(out))
    assert refused.returncode == 2, refused.stderr
    assert partial.name in refused.stderr
    assert victim.read_bytes() == b"precious"
    partial.unlink()
    os.link(victim, partial)
    assert bob.run("get", transfer, "-o", str(out)).returncode == 2
    assert victim.read_bytes() == b"precious"
    partial.unlink()
    bob.ok("get", transfer, "-o", str(out))
    assert _digest(out / "imaging.dcm") == _digest(source)


# --- over HTTPS ---------------------------------------------------------------------------------


def test_downloads_over_https_verify_the_server_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloads go over `http.client`, not httpx: the same certificate checks apply."""
    server = _start_tls(tmp_path)
    try:
        users = []
        for name in ("alice", "bob"):
            assert server.admin("create-user", f"{name}@example.org").returncode == 0
            user = User(f"{name}@example.org", tmp_path / f"home-{name}", server)
            user.extra_env["PLI_CA_BUNDLE"] = str(server.cert)
            user.ok("login", server.url, "--email", user.email)
            user.ok("keys", "init")
            users.append(user)
        alice, bob = users
        source = _source(tmp_path, 3 * MIB)
        transfer = alice.send(source, to=bob.email)
        bob.ok("get", transfer, "-o", str(tmp_path / "out"))
        assert _digest(tmp_path / "out" / source.name) == _digest(source)

        shown = httpx.get(
            f"{server.url}/api/v1/transfers/{transfer}",
            headers={"authorization": f"Bearer {_token(bob)}"},
            verify=server.context,
        ).json()
        path = f"/api/v1/transfers/{transfer}/files/{shown['files'][0]['id']}"
        monkeypatch.setenv("PLI_CA_BUNDLE", str(server.cert))
        api = Api(server.url, _token(bob))
        with api.download(path, start=5, stop=20) as body:
            buffer = memoryview(bytearray(64))
            assert (body.status, body.start, body.length) == (206, 5, 15)
            assert body.readinto(buffer) == 15
        api.close()
        monkeypatch.delenv("PLI_CA_BUNDLE")  # the default trust does not know this server
        api = Api(server.url, _token(bob))
        with pytest.raises(TransportError) as refused, api.download(path):
            pass
        assert refused.value.hint is not None
        assert "PLI_CA_BUNDLE" in refused.value.hint
        assert _token(bob) not in str(refused.value)
        api.close()
    finally:
        stop_server(server)
