"""The sending pipeline: its parts are a standard age file, cut where resuming needs them, and a
resumed encryption makes the very same bytes or refuses to go on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pli.client.upload import (
    PART_CHUNKS,
    Digests,
    Part,
    SentRecord,
    SourceChangedError,
    chunks_per_part,
    encrypted_parts,
    remaining,
)
from pli.crypto.age import Encryptor, X25519Identity, decrypt
from pli.crypto.stream import CHUNK_SIZE, SEALED_CHUNK_SIZE, ChunkSealer
from pli.errors import DecryptError, UsageError

PART = PART_CHUNKS * CHUNK_SIZE
SIZES = [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, PART - 1, PART, PART + 1, 2 * PART + 12345]


def _parts(path: Path, encryptor: Encryptor, digests: Digests) -> list[tuple[Part, bytes]]:
    return [
        (part, bytes(part.data))
        for part in encrypted_parts(path, path.stat().st_size, encryptor, digests)
    ]


@pytest.mark.parametrize("size", SIZES)
def test_the_parts_make_an_age_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "f"
    source.write_bytes(data)
    identity = X25519Identity.generate()
    encryptor = Encryptor.to_recipients([identity.recipient])
    digests = Digests()
    parts = _parts(source, encryptor, digests)
    whole = b"".join(data for _, data in parts)
    assert decrypt(whole, [identity]) == data
    assert len(whole) == encryptor.ciphertext_size(size)
    assert digests.plain is None  # a manifest signs the ciphertext's digest only
    assert digests.cipher == hashlib.sha256(whole).hexdigest()
    offset = 0
    for part, body in parts:  # each digest covers the file up to the part's end
        assert part.start == offset
        offset += len(body)
        assert part.digest == hashlib.sha256(whole[:offset]).hexdigest()
    for _, body in parts[1:-1]:
        assert len(body) == PART_CHUNKS * SEALED_CHUNK_SIZE


def test_a_resumed_encryption_makes_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(os.urandom(2 * PART + 7))
    identity = X25519Identity.generate()
    first = Encryptor.to_recipients([identity.recipient])
    secret = first.export_secret(identity.recipient)
    again = Encryptor.resume(first.prefix, secret, [identity])
    assert [b for _, b in _parts(source, first, Digests())] == [
        b for _, b in _parts(source, again, Digests())
    ]


def test_a_damaged_resume_state_is_refused() -> None:
    identity = X25519Identity.generate()
    encryptor = Encryptor.to_recipients([identity.recipient])
    secret = encryptor.export_secret(identity.recipient)
    other = Encryptor.to_recipients([identity.recipient])
    with pytest.raises(DecryptError):  # the header does not belong to this file key
        Encryptor.resume(other.prefix, secret, [identity])
    with pytest.raises(DecryptError):
        Encryptor.resume(encryptor.prefix, secret, [X25519Identity.generate()])


def test_a_changed_source_is_never_sent_under_the_same_key(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(os.urandom(2 * PART))
    identity = X25519Identity.generate()
    encryptor = Encryptor.to_recipients([identity.recipient])
    recorded: list[str] = []
    record = SentRecord(recorded, lambda digest: None)
    for part in encrypted_parts(source, 2 * PART, encryptor, Digests(), record.check):
        assert part.digest == recorded[part.number]
    with source.open("r+b") as handle:
        handle.seek(PART + 10)
        handle.write(b"changed")
    again = SentRecord(list(recorded), lambda digest: None)
    with pytest.raises(SourceChangedError):
        for _ in encrypted_parts(source, 2 * PART, encryptor, Digests(), again.check):
            pass


def test_a_file_that_grows_while_read_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    encryptor = Encryptor.to_recipients([X25519Identity.generate().recipient])
    with pytest.raises(UsageError):
        list(encrypted_parts(source, 50, encryptor, Digests()))


def test_remaining_starts_inside_a_part(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(os.urandom(PART + 5))
    encryptor = Encryptor.to_recipients([X25519Identity.generate().recipient])
    whole = b"".join(b for _, b in _parts(source, encryptor, Digests()))
    advanced: list[int] = []
    rest = remaining(encrypted_parts(source, PART + 5, encryptor, Digests()), 1000, advanced.append)
    assert b"".join(bytes(chunk) for chunk in rest) == whole[1000:]
    assert sum(advanced) == len(whole)


def test_parts_stay_under_the_store_limit_for_huge_files() -> None:
    assert chunks_per_part(0) == PART_CHUNKS
    assert -(-(1 << 40) // CHUNK_SIZE) / chunks_per_part(1 << 40) <= 9_000


def test_chunks_are_sealed_only_in_the_shapes_age_allows() -> None:
    sealer = ChunkSealer(b"k" * 16, b"n" * 16)
    out = memoryview(bytearray(SEALED_CHUNK_SIZE))
    with pytest.raises(ValueError, match="64 KiB"):
        sealer.seal_into(0, b"short", out, last=False)  # only the last chunk may be short
    with pytest.raises(ValueError, match="64 KiB"):
        sealer.seal_into(3, b"", out, last=True)  # an empty last chunk only stands alone
    assert sealer.seal_into(0, b"", out, last=True) == 16


@pytest.mark.parametrize("size", [0, PART + 1])
def test_the_plaintext_digest_when_asked_for(tmp_path: Path, size: int) -> None:
    """Request answers still carry the plaintext's SHA-256."""
    data = os.urandom(size)
    source = tmp_path / "f"
    source.write_bytes(data)
    encryptor = Encryptor.to_recipients([X25519Identity.generate().recipient])
    digests = Digests()
    parts = encrypted_parts(source, size, encryptor, digests, plaintext_digest=True)
    whole = b"".join(bytes(part.data) for part in parts)
    assert digests.plain == hashlib.sha256(data).hexdigest()
    assert digests.cipher == hashlib.sha256(whole).hexdigest()
