"""A send from the browser resumes after the page is reloaded mid-upload, once the user chooses
the same file again, and never reuses a file key for other contents.

The browser reaches the server through a TCP relay that counts the bytes sent towards the
server and can hold the upload still partway: the server then keeps the parts it received
whole (a partial tus upload), and the page is reloaded. After unlocking the keys again, the
send page shows the interrupted send; choosing the file again resumes it:

- the same file: the same upload goes on from the server's offset (the bytes crossing the wire
  are about the rest of the file), the header and key are the ones begun with, and `pli get`
  receives the file byte for byte;
- another file with the same name, size and modification time: the digests of the parts
  already sent differ, so that upload is dropped and the file is sent again from its start
  under a new file key (a new header and payload nonce), as a new upload for the same file
  slot; the page says so, and `pli get` receives the new contents.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import axe_violations, screenshot
from tests.browser.test_transfers import BROWSER_PASSPHRASE, browser_account, digest, unlock
from tests.integration.conftest import Server, User, make_user
from tests.integration.test_downloads import Relay

NewPage = Callable[..., Page]
MIB = 1 << 20
SIZE = 40 * MIB
HOLD_AT = 20 * MIB  # in the middle of the third 8 MiB part
SENT = "Sent. Only the recipients can decrypt it."
INTERRUPTED = "An upload was interrupted: select the same files again to resume."
Q = "\u2019"  # the French apostrophe
INTERRUPTED_FR = (
    "Un envoi a été interrompu : choisissez de nouveau les mêmes fichiers pour le reprendre."
)

# What this browser keeps for resuming, read from the page (IndexedDB "pli-resume").
KEPT = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("pli-resume");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const all = (store) => new Promise((resolve, reject) => {
    const request = db.transaction(store).objectStore(store).getAll();
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const [device] = await all("device");
  const describe = (value) => value instanceof Uint8Array ? value.length : value;
  const files = (await all("files")).map((f) => ({
    fields: Object.keys(f).sort(),
    key: f.key ? { iv: f.key.iv.length, data: f.key.data.length } : null,
    prefix: describe(f.prefix),
    parts: f.parts.length,
    entry: f.entry ?? null,
  }));
  const sends = (await all("sends")).map((s) => ({ fields: Object.keys(s).sort(), to: s.to,
    message: Object.keys(s.message).sort() }));
  db.close();
  return { device: device ? { type: device.type, extractable: device.extractable,
    algorithm: device.algorithm.name, usages: [...device.usages].sort() } : null, files, sends };
}"""


class HoldingRelay(Relay):
    """The relay of test_downloads, which can also hold an upload still: `hold_upload(n)`
    stops relaying the connection that carries the n-th byte from now towards the server
    (that byte and what follows never reach it) until `let_go()` closes that connection."""

    def __init__(self, upstream: Server) -> None:
        super().__init__(upstream)
        self._hold_at: int | None = None
        self._gate = threading.Event()
        self.upload_held = threading.Event()

    def hold_upload(self, after: int) -> None:
        with self._lock:
            self._hold_at = self.uploaded + after

    def let_go(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self._gate.set()
        super().close()

    def _hold_here(self, size: int) -> bool:
        with self._lock:
            self.uploaded += size
            if self._hold_at is None or self.uploaded < self._hold_at:
                return False
            self._hold_at = None
            return True

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        held = False
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                if self._hold_here(len(data)):
                    held = True
                    break
                target.sendall(data)
        if held:
            self.upload_held.set()
            self._gate.wait()
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            return
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _db(server: Server, query: str, *args: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(server.data / "pli.db")) as db:
        return list(db.execute(query, args))


def _age_start(data: bytes) -> bytes:
    """An age file's header and payload nonce: up to the MAC line's end, then 16 bytes."""
    end = data.index(b"\n", data.index(b"\n--- ") + 1) + 1
    return data[: end + 16]


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))


def _interrupted_send(
    server: Server, tmp_path: Path, page: Page, relay: HoldingRelay
) -> tuple[User, Path, dict[str, Any]]:
    """A 40 MiB send from the browser, held still by the relay mid-upload, then the page
    reloaded and the keys unlocked again: alice (the recipient), the file, and what the server
    held of the upload when the page was reloaded."""
    alice = make_user(server, tmp_path, "alice")
    browser_account(server, tmp_path, page, "bob", base=relay.url)
    big = tmp_path / "export.bin"
    _random_file(big, SIZE)
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill(alice.email)
    page.locator("#file-picker").set_input_files(str(big))
    page.get_by_label("Message (encrypted)").fill("Export de mars, à reprendre.")
    start = relay.uploaded
    relay.hold_upload(HOLD_AT)
    page.get_by_role("button", name="Encrypt and send").click()
    assert relay.upload_held.wait(120), "the upload never reached the relay's hold"

    ((transfer, token, offset, length),) = _db(
        server, 'SELECT transfer_id, token, "offset", length FROM uploads'
    )
    # The server holds a partial upload: the parts before the hold, whole, and no more.
    assert 8 * MIB < offset < HOLD_AT < SIZE < length
    partial = server.data / "blobs" / "uploads" / token  # with what came of the held part
    assert partial.stat().st_size >= offset
    header = _age_start(partial.read_bytes()[:4096])

    page.reload()
    relay.let_go()  # the held request ends: the server lets go of the upload
    unlock(page, BROWSER_PASSPHRASE, then="Send files")
    expect(page.get_by_text(INTERRUPTED)).to_be_visible(timeout=30_000)
    box = page.get_by_role("region", name="Interrupted send")
    expect(box).to_contain_text("export.bin")
    expect(box).to_contain_text(alice.email)
    screenshot(page, "send-interrupted", "en")

    kept = page.evaluate(KEPT)
    # One device key, which no script can read; the file key and the message only sealed.
    assert kept["device"] == {
        "type": "secret",
        "extractable": False,
        "algorithm": "AES-GCM",
        "usages": ["decrypt", "encrypt"],
    }
    (send,) = kept["sends"]
    assert send["to"] == [alice.email]
    assert send["message"] == ["data", "iv"]
    assert "Export de mars" not in str(send)
    (record,) = kept["files"]
    assert record["key"] == {"iv": 12, "data": 32}  # 16 bytes of key + 16 of tag
    assert record["prefix"] == len(header)
    assert record["parts"] == 3  # the two parts the server holds, and the one held
    held = {
        "transfer": transfer,
        "token": token,
        "offset": offset,
        "length": length,
        "header": header,
        "start": start,
    }
    return alice, big, held


def _resume_with(page: Page, path: Path) -> None:
    box = page.get_by_role("region", name="Interrupted send")
    box.locator("input[type=file]").set_input_files(str(path))
    box.get_by_role("button", name="Resume sending").click()
    expect(box.get_by_text(SENT)).to_be_visible(timeout=180_000)


def _received(alice: User, transfer: str, tmp_path: Path) -> Path:
    out = tmp_path / "alice-got"
    out.mkdir()
    alice.ok("get", transfer, "-o", str(out))
    return out / "export.bin"


def _blob_key(server: Server, transfer: str) -> str:
    ((key,),) = _db(server, "SELECT blob_key FROM transfer_files WHERE transfer_id = ?", transfer)
    return str(key)


def _blob(server: Server, key: str) -> bytes:
    return (server.data / "blobs" / key[:2] / key).read_bytes()


def test_a_send_resumes_after_a_reload_with_the_same_file(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    relay = HoldingRelay(sqlite_server)
    try:
        page = new_page()
        alice, big, held = _interrupted_send(sqlite_server, tmp_path, page, relay)
        before = relay.uploaded
        _resume_with(page, big)
        expect(page.get_by_text("is not the file that was interrupted")).to_have_count(0)
        resumed = relay.uploaded - before
        total = relay.uploaded - held["start"]
    finally:
        relay.close()
    # Only the rest of the file crossed the wire again (with a few requests' headers), and in
    # all, the file and the part that was held: a little over the file's size.
    assert resumed < held["length"] - held["offset"] + MIB, resumed
    assert total < SIZE + 8 * MIB + 2 * MIB, total
    # The same upload went on: its token became the blob, under the header it began with.
    key = _blob_key(sqlite_server, held["transfer"])
    assert key == held["token"]
    assert _blob(sqlite_server, key).startswith(held["header"])
    # Nothing is left in the browser once the transfer is sealed.
    kept = page.evaluate(KEPT)
    assert kept["sends"] == []
    assert kept["files"] == []
    assert digest(_received(alice, held["transfer"], tmp_path)) == digest(big)
    (sent,) = alice.ok("inbox", "--json").json()
    assert sent["id"] == held["transfer"]


def test_another_file_with_the_same_name_size_and_time_gets_a_new_key(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    relay = HoldingRelay(sqlite_server)
    try:
        page = new_page()
        alice, big, held = _interrupted_send(sqlite_server, tmp_path, page, relay)
        # Other contents, under the same name, size and modification time.
        times = big.stat()
        _random_file(big, SIZE)
        os.utime(big, ns=(times.st_atime_ns, times.st_mtime_ns))
        assert big.stat().st_mtime_ns == times.st_mtime_ns
        assert big.stat().st_size == SIZE
        before = relay.uploaded
        _resume_with(page, big)
        box = page.get_by_role("region", name="Interrupted send")
        expect(box.get_by_text("export.bin is not the file that was interrupted")).to_be_visible()
        resumed = relay.uploaded - before
    finally:
        relay.close()
    # The whole file crossed the wire again: nothing of the first upload was reused.
    assert resumed > held["length"], resumed
    # A new upload for the same file slot, under a new header: a new file key and payload
    # nonce. The interrupted upload's parts were dropped.
    key = _blob_key(sqlite_server, held["transfer"])
    assert key != held["token"]
    blob = _blob(sqlite_server, key)
    new_start = _age_start(blob)
    assert new_start[-16:] != held["header"][-16:]  # the payload nonce
    assert new_start.split(b"\n--- ")[1] != held["header"].split(b"\n--- ")[1]  # the MAC
    assert not (sqlite_server.data / "blobs" / "uploads" / held["token"]).exists()
    assert digest(_received(alice, held["transfer"], tmp_path)) == digest(big)


def test_an_interrupted_send_can_be_discarded(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    relay = HoldingRelay(sqlite_server)
    try:
        page = new_page(bypass_csp=True)  # for axe, injected: the other tests keep the policy
        _, _, held = _interrupted_send(sqlite_server, tmp_path, page, relay)
        assert axe_violations(page) == []
        # In French, too: then discarded from there, with the keyboard.
        page.get_by_role("button", name="Afficher en français").click()
        expect(page.get_by_text(INTERRUPTED_FR)).to_be_visible(timeout=30_000)
        box = page.get_by_role("region", name="Envoi interrompu")
        expect(box.get_by_role("button", name=f"Reprendre l{Q}envoi")).to_be_visible()
        assert axe_violations(page) == []
        screenshot(page, "send-interrupted", "fr")
        box.get_by_role("button", name="Abandonner cet envoi").focus()
        page.keyboard.press("Enter")
        expect(box.get_by_text(f"L{Q}envoi interrompu a été abandonné.")).to_be_visible()
        expect(box.get_by_role("button", name=f"Reprendre l{Q}envoi")).to_be_hidden()
        kept = page.evaluate(KEPT)
        page.get_by_role("link", name="Reçus").click()
        page.get_by_role("link", name="Envoyer").click()
        expect(page.get_by_role("button", name="Chiffrer et envoyer")).to_be_visible()
        page.wait_for_timeout(500)  # time for the page to look for interrupted sends
        expect(page.get_by_text(INTERRUPTED_FR)).to_have_count(0)
    finally:
        relay.close()
    # Nothing is kept in the browser, and the server no longer takes the transfer's upload.
    assert kept["sends"] == []
    assert kept["files"] == []
    states = _db(sqlite_server, "SELECT state FROM transfers WHERE id = ?", held["transfer"])
    assert states in ([], [("revoked",)]), states
