"""A malicious or broken server cannot make a recipient accept what the sender did not send.

Each test tampers with what the server holds (its real SQLite database and blob files), then
checks the real `pli get` refuses with a one-line error and writes nothing at all."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pli.client.sdk import Client
from pli.crypto import age, signing
from pli.crypto import manifest as mf
from pli.crypto.bundle import parse_bundle
from pli.crypto.identity import DeviceIdentity
from tests.integration.conftest import PASSPHRASE, Server, User, three_people


@contextmanager
def database(server: Server) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(server.data / "pli.db")
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def blob_of(server: Server, transfer: str) -> Path:
    with database(server) as db:
        (key,) = db.execute(
            "SELECT blob_key FROM transfer_files WHERE transfer_id = ?", (transfer,)
        ).fetchone()
    return server.data / "blobs" / str(key)[:2] / str(key)


@pytest.fixture
def trio(sqlite_server: Server, tmp_path: Path) -> tuple[User, User, User]:
    return three_people(sqlite_server, tmp_path)


def refused(user: User, transfer: str, out: Path, expected: str) -> None:
    result = user.run("get", transfer, "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error, and perhaps a hint
    assert "Traceback" not in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def source(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_flipped_byte_in_a_stored_blob(trio: tuple[User, User, User], tmp_path: Path) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "a.csv", b"A" * 300_000), to=bob.email)
    blob = blob_of(alice.server, transfer)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    refused(bob, transfer, tmp_path / "out", "error: ")


def test_blobs_swapped_between_two_transfers(trio: tuple[User, User, User], tmp_path: Path) -> None:
    alice, bob, _ = trio
    first = alice.send(source(tmp_path, "one.csv", b"1" * 5000), to=bob.email)
    second = alice.send(source(tmp_path, "two.csv", b"2" * 5000), to=bob.email)
    a, b = blob_of(alice.server, first), blob_of(alice.server, second)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    refused(bob, first, tmp_path / "out1", "does not match the sender's signed manifest")
    refused(bob, second, tmp_path / "out2", "does not match the sender's signed manifest")


def test_modified_manifest(trio: tuple[User, User, User], tmp_path: Path) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "m.csv", b"data"), to=bob.email)
    with database(alice.server) as db:
        (manifest,) = db.execute(
            "SELECT manifest FROM transfers WHERE id = ?", (transfer,)
        ).fetchone()
        changed = bytearray(manifest)
        changed[-20] ^= 0x01
        db.execute("UPDATE transfers SET manifest = ? WHERE id = ?", (bytes(changed), transfer))
    refused(bob, transfer, tmp_path / "out", "error: ")


def test_manifest_replayed_under_another_transfer(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    old = alice.send(source(tmp_path, "old.csv", b"same"), to=bob.email)
    new = alice.send(source(tmp_path, "new.csv", b"same"), to=bob.email)
    with database(alice.server) as db:
        db.execute(
            "UPDATE transfers SET manifest = (SELECT manifest FROM transfers WHERE id = ?) "
            "WHERE id = ?",
            (old, new),
        )
    refused(bob, new, tmp_path / "out", "belongs to another transfer")


def test_transfer_reattributed_to_another_sender(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, carol = trio
    transfer = alice.send(source(tmp_path, "r.csv", b"data"), to=bob.email)
    with database(alice.server) as db:
        db.execute(
            "UPDATE transfers SET sender_id = (SELECT id FROM users WHERE email = ?) WHERE id = ?",
            (carol.email, transfer),
        )
    refused(bob, transfer, tmp_path / "out", "someone other than the stated sender")


def test_manifest_forged_by_the_server(trio: tuple[User, User, User], tmp_path: Path) -> None:
    """The server knows every public key, so it can encrypt a manifest to Bob that claims
    Alice's device; it cannot sign it with her key."""
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "f.csv", b"genuine"), to=bob.email)
    with database(alice.server) as db:
        bundles = {
            email: parse_bundle(json.loads(bundle))
            for email, bundle in db.execute(
                "SELECT users.email, devices.bundle FROM devices JOIN users ON users.id = user_id"
            )
        }
        files = db.execute(
            "SELECT id, size FROM transfer_files WHERE transfer_id = ?", (transfer,)
        ).fetchall()
        forger = DeviceIdentity.generate(alice.email)
        forged = mf.Manifest(
            transfer=transfer,
            sender=mf.key_entry(bundles[alice.email]),
            recipients=[mf.key_entry(bundles[bob.email])],
            files=[mf.FileEntry(i, "invoice.pdf.exe", 7, size, "1" * 64) for i, size in files],
            created="2026-11-28T00:00:00Z",
            expires="2026-12-05T00:00:00Z",
            message="please run the attachment",
        )
        sealed = mf.seal(forger, forged, [age.Recipient.parse(bundles[bob.email].age)])
        db.execute("UPDATE transfers SET manifest = ? WHERE id = ?", (sealed, transfer))
    refused(bob, transfer, tmp_path / "out", "signature verification failed")
    listing = bob.ok("inbox", "--json").json()
    assert listing[0]["verified"] is False
    assert listing[0]["files"] == []
    assert "please run" not in json.dumps(listing)


def test_sender_key_changed_after_first_contact(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    first = alice.send(source(tmp_path, "first.csv", b"1"), to=bob.email)
    bob.ok("get", first, "-o", str(tmp_path / "pinned"))  # bob pins alice's key here
    # The server (or whoever controls alice's account) introduces a new key for alice.
    with database(alice.server) as db:
        db.execute(
            "DELETE FROM devices WHERE id = ?",
            (json.loads((alice.home / "device.json").read_text())["doc"]["device"],),
        )
    usurper = User(alice.email, tmp_path / "home-usurper", alice.server)
    usurper.ok("login", alice.server.url, "--email", alice.email)
    usurper.ok("keys", "init")  # a first device again, for the server
    second = usurper.send(source(tmp_path, "second.csv", b"2"), to=bob.email)
    refused(bob, second, tmp_path / "out", "have changed since you last exchanged files")
    result = bob.run("get", second, "-o", str(tmp_path / "out"))
    assert f"pli keys trust {alice.email}" in result.stderr
    unconfirmed = bob.run("keys", "trust", alice.email)
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    refused(bob, second, tmp_path / "out", "have changed since you last exchanged files")
    trusted = bob.ok("keys", "trust", alice.email, "--yes")
    assert "old: " in trusted.stderr
    assert "new: " in trusted.stderr
    bob.ok("get", second, "-o", str(tmp_path / "accepted"))
    assert (tmp_path / "accepted" / "second.csv").read_bytes() == b"2"


def test_recipient_key_substituted_before_sending(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    alice.send(source(tmp_path, "first.csv", b"1"), to=bob.email)  # alice pins bob's key
    with database(alice.server) as db:
        db.execute(
            "DELETE FROM devices WHERE user_id = (SELECT id FROM users WHERE email = ?)",
            (bob.email,),
        )
    impostor = User(bob.email, tmp_path / "home-impostor", bob.server)
    impostor.ok("login", bob.server.url, "--email", bob.email)
    impostor.ok("keys", "init")
    result = alice.run("send", str(source(tmp_path, "secret.csv", b"s")), "--to", bob.email)
    assert result.returncode == 1
    assert f"the keys of {bob.email} have changed" in result.stderr
    assert len(alice.ok("outbox", "--json").json()) == 1


def test_server_cannot_extend_the_signed_expiry(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    transfer = alice.send(
        source(tmp_path, "brief.csv", b"short-lived"), to=bob.email, extra=("--expires", "2s")
    )
    with database(alice.server) as db:
        db.execute(
            "UPDATE transfers SET expires_at = datetime(expires_at, '+1 day') WHERE id = ?",
            (transfer,),
        )
    time.sleep(2.5)
    refused(bob, transfer, tmp_path / "out", "this transfer has expired")


def test_revocation_leaves_no_ciphertext_on_the_server(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "wrong-person.csv", b"oops"), to=bob.email)
    blob = blob_of(alice.server, transfer)
    alice.ok("revoke", transfer)
    assert not blob.exists()
    with database(alice.server) as db:
        row = db.execute("SELECT state, manifest FROM transfers WHERE id = ?", (transfer,))
        assert row.fetchone() == ("revoked", None)
        keys = db.execute("SELECT blob_key FROM transfer_files WHERE transfer_id = ?", (transfer,))
        assert keys.fetchall() == [(None,)]


SEALED_CHUNK = 64 * 1024 + 16


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a stored age file into (header and nonce, sealed STREAM chunks)."""
    start = blob.index(b"\n", blob.index(b"\n--- ") + 1) + 1 + 16
    body = blob[start:]
    return blob[:start], [body[i : i + SEALED_CHUNK] for i in range(0, len(body), SEALED_CHUNK)]


@pytest.mark.parametrize(
    "damage",
    ["truncated at a chunk boundary", "chunks reordered", "a chunk duplicated", "a chunk dropped"],
)
def test_chunk_level_tampering(trio: tuple[User, User, User], tmp_path: Path, damage: str) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "scan.bin", bytes(range(256)) * 800), to=bob.email)
    blob = blob_of(alice.server, transfer)
    head, chunks = _chunks(blob.read_bytes())
    assert len(chunks) == 4
    changed = {
        "truncated at a chunk boundary": chunks[:-1],
        "chunks reordered": [chunks[1], chunks[0], *chunks[2:]],
        "a chunk duplicated": [chunks[0], chunks[1], chunks[1], *chunks[2:]],
        "a chunk dropped": [chunks[0], *chunks[2:]],
    }[damage]
    blob.write_bytes(head + b"".join(changed))
    refused(bob, transfer, tmp_path / "out", "error: ")


def test_a_device_the_server_drops_is_said(trio: tuple[User, User, User], tmp_path: Path) -> None:
    """Bob adds a device and approves it, Alice's client accepts it on that approval; a server
    that then drops the device from Bob's keys can make files unreadable there, never readable
    elsewhere: Alice's client sends to the devices left, and says which one left."""
    alice, bob, _ = trio
    alice.send(source(tmp_path, "first.csv", b"1"), to=bob.email)
    tablet = User(bob.email, tmp_path / "home-bob-tablet", bob.server)
    tablet.ok("login", bob.server.url, "--email", bob.email)
    made = tablet.ok("keys", "init")
    new_device = json.loads((tablet.home / "device.json").read_text())["doc"]["device"]
    fingerprint = made.stdout.split("fingerprint:", 1)[1].strip()
    bob.ok("devices", "approve", new_device, "--fingerprint", fingerprint)
    second = alice.ok("send", str(source(tmp_path, "second.csv", b"2")), "--to", bob.email)
    assert "approved by its device" in second.stderr
    with database(alice.server) as db:
        db.execute("DELETE FROM devices WHERE id = ?", (new_device,))
    third = alice.ok("send", str(source(tmp_path, "third.csv", b"3")), "--to", bob.email)
    assert f"device {new_device} of {bob.email} was removed" in third.stderr


# --- transfers sealed before manifest v2 ---------------------------------------------------

CONTENT = b"patient;result\nP-0001;negative\n"


def _reseal_as_v1(alice: User, transfer: str, plaintext_sha256: str) -> None:
    """What a client before v2 sealed for this transfer: the same document under
    `pli/manifest/v1`, with the plaintext digest, signed by Alice's own device."""
    client = Client(home_path=alice.home)
    try:
        identity = client.unlock(PASSPHRASE)
    finally:
        client.close()
    with database(alice.server) as db:
        (sealed,) = db.execute(
            "SELECT manifest FROM transfers WHERE id = ?", (transfer,)
        ).fetchone()
        _, signed = mf.open_sealed(sealed, identity.age_identity)
        doc = signed["doc"]
        assert doc["kind"] == mf.MANIFEST_KIND  # what is written today
        files = [{**f, "sha256": plaintext_sha256} for f in doc["files"]]
        legacy = {**doc, "kind": mf.MANIFEST_V1, "files": files}
        readers = [age.Recipient.parse(k["age"]) for k in (doc["sender"], *doc["recipients"])]
        text = signing.canonical_json(identity.sign(mf.MANIFEST_V1, legacy))
        db.execute(
            "UPDATE transfers SET manifest = ? WHERE id = ?", (age.encrypt(text, readers), transfer)
        )


def test_a_transfer_sealed_with_a_v1_manifest_is_received(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "results.csv", CONTENT), to=bob.email)
    _reseal_as_v1(alice, transfer, hashlib.sha256(CONTENT).hexdigest())
    listed = bob.ok("inbox", "--json").json()
    assert listed[0]["verified"] is True
    bob.ok("get", transfer, "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "results.csv").read_bytes() == CONTENT


def test_a_v1_manifest_still_binds_the_plaintext(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    transfer = alice.send(source(tmp_path, "results.csv", CONTENT), to=bob.email)
    _reseal_as_v1(alice, transfer, hashlib.sha256(b"other results").hexdigest())
    refused(bob, transfer, tmp_path / "out", "a decrypted file does not match the sender's")
