"""What every blob store does, run against each of them (a directory, an S3 bucket): uploads
made of numbered parts, parts sent again after an interruption, refused completions, cancelled
uploads, ranged reads in bounded chunks, confinement to the store's own keys, deletion. Then
what only the local store does."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path

import pytest

from pli.errors import ConflictError, NotFoundError
from pli.store.blobs import READ_CHUNK, BlobStore, LocalBlobStore, PartReceipt, put
from tests.unit.store.conftest import Subject

PART = 5 << 20  # S3's minimum for every part but the last, so the same tests run everywhere
WRITE = 1 << 20  # the server hands a part writer batches of this size


def write_part(store: BlobStore, token: str, number: int, offset: int, data: bytes) -> PartReceipt:
    writer = store.part(token, number, offset)
    view = memoryview(data)
    for start in range(0, len(data), WRITE):
        writer.write(view[start : start + WRITE])
    assert writer.size == len(data)
    return writer.commit()


def test_a_batch_of_pieces_is_written_in_order(subject: Subject) -> None:
    """The server hands each batch over as the pieces that came off the socket, of any sizes
    (empty ones too), more of them than one system call takes."""
    data = os.urandom(PART + 4321)
    cuts = sorted({0, len(data), *(int.from_bytes(os.urandom(3)) % len(data) for _ in range(2600))})
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
    store = subject.store
    token = store.begin()
    writer = store.part(token, 1, 0)
    half = len(pieces) // 2
    writer.write(*pieces[:half], b"", memoryview(bytearray(b"")))
    writer.write(*[memoryview(bytearray(piece)) for piece in pieces[half:]])
    assert writer.size == len(data)
    receipt = writer.commit()
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    key = store.complete(token, [receipt])
    assert content(store, key) == data


def upload(store: BlobStore, pieces: list[bytes]) -> tuple[str, list[PartReceipt]]:
    token = store.begin()
    receipts, offset = [], 0
    for number, piece in enumerate(pieces, start=1):
        receipts.append(write_part(store, token, number, offset, piece))
        offset += len(piece)
    return store.complete(token, receipts), receipts


def content(store: BlobStore, key: str) -> bytes:
    return b"".join(store.read(key))


def attempt_part(store: BlobStore, token: str, data: bytes) -> None:
    """Write and commit part 1; a store may refuse when the part is opened or when it is sent."""
    write_part(store, token, 1, 0, data)


def test_parts_written_in_order_become_one_blob(subject: Subject) -> None:
    store = subject.store
    pieces = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    key, receipts = upload(store, pieces)

    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert [(r.number, r.size, r.sha256) for r in receipts] == [
        (n, len(p), hashlib.sha256(p).hexdigest()) for n, p in enumerate(pieces, start=1)
    ]
    assert store.size(key) == 2 * PART + 1234
    assert content(store, key) == b"".join(pieces)
    assert [name for name in subject.leftovers() if key in name] == subject.leftovers()
    assert len(subject.leftovers()) == 1


def test_a_small_blob_is_one_part(subject: Subject) -> None:
    key, receipt = put(subject.store, [b"cipher", b"text", b"!"])
    assert receipt == PartReceipt(1, 11, hashlib.sha256(b"ciphertext!").hexdigest(), receipt.tag)
    assert content(subject.store, key) == b"ciphertext!"


def test_an_upload_without_parts_is_an_empty_blob(subject: Subject) -> None:
    store = subject.store
    key = store.complete(store.begin(), [])
    assert store.size(key) == 0
    assert content(store, key) == b""


@pytest.mark.parametrize("interrupted", ["aborted", "committed but not recorded"])
def test_a_part_sent_again_replaces_the_interrupted_attempt(
    subject: Subject, interrupted: str
) -> None:
    store = subject.store
    first, tail = os.urandom(PART), os.urandom(300_000)
    token = store.begin()
    r1 = write_part(store, token, 1, 0, first)

    writer = store.part(token, 2, PART)
    writer.write(b"\xff" * (PART + 777))  # longer than what replaces it
    if interrupted == "aborted":
        writer.abort()
    else:
        writer.commit()  # durable, but the server never counted it
    r2 = write_part(store, token, 2, PART, tail)

    key = store.complete(token, [r1, r2])
    assert content(store, key) == first + tail
    assert store.size(key) == PART + len(tail)


def test_complete_refuses_parts_of_the_wrong_size_and_the_upload_survives(
    subject: Subject,
) -> None:
    store = subject.store
    pieces = [os.urandom(PART), os.urandom(4096)]
    token = store.begin()
    r1 = write_part(store, token, 1, 0, pieces[0])
    r2 = write_part(store, token, 2, PART, pieces[1])

    for wrong in ([r1, r2._replace(size=r2.size + 1)], [r1, r2._replace(size=r2.size - 1)]):
        with pytest.raises(ConflictError, match="do not add up"):
            store.complete(token, wrong)
    with pytest.raises(ConflictError, match="numbered 1 to N"):
        store.complete(token, [r2, r1])

    key = store.complete(token, [r1, r2])
    assert content(store, key) == b"".join(pieces)


def test_cancel_leaves_nothing(subject: Subject) -> None:
    store = subject.store
    token = store.begin()
    r1 = write_part(store, token, 1, 0, os.urandom(PART))
    writer = store.part(token, 2, PART)
    writer.write(b"partial")
    writer.abort()

    store.cancel(token)
    assert subject.leftovers() == []
    store.cancel(token)  # idempotent
    with pytest.raises(NotFoundError, match="no such upload"):
        store.complete(token, [r1])
    with pytest.raises(NotFoundError, match="no such upload"):
        store.complete(token, [])
    with pytest.raises(NotFoundError, match="no such upload"):
        attempt_part(store, token, b"late")
    assert subject.leftovers() == []


DATA = bytes(range(256)) * 12_000  # 3 MiB less a bit: three READ_CHUNKs, not a whole number
RANGES = [
    (0, None),
    (1000, 3_000_000),
    (READ_CHUNK - 1, READ_CHUNK + 1),
    (READ_CHUNK, 2 * READ_CHUNK),
    (len(DATA) - 10, None),
    (len(DATA) - 10, len(DATA) + 10),
    (len(DATA), None),
    (len(DATA) + 5, len(DATA) + 10),
    (7, 7),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_ranged_reads_come_in_bounded_chunks(subject: Subject, start: int, end: int | None) -> None:
    key, _ = put(subject.store, [DATA])
    chunks = list(subject.store.read(key, start, end))
    assert b"".join(chunks) == DATA[start:end]
    assert all(0 < len(c) <= READ_CHUNK for c in chunks)


NOT_OURS = ["../../etc/passwd", "/etc/passwd", "..", "", "A" * 32, "0" * 31, "0" * 32 + "/.."]


@pytest.mark.parametrize("key", NOT_OURS)
def test_keys_that_are_not_ours_are_never_used(subject: Subject, key: str) -> None:
    store = subject.store
    with pytest.raises(NotFoundError):
        store.size(key)
    with pytest.raises(NotFoundError):
        store.read(key)
    with pytest.raises(NotFoundError):
        store.delete(key)


@pytest.mark.parametrize("token", [*NOT_OURS, "0" * 32 + ":\n", "0" * 32 + "/../x"])
def test_tokens_that_are_not_ours_are_never_used(subject: Subject, token: str) -> None:
    store = subject.store
    with pytest.raises(NotFoundError):
        store.part(token, 1, 0)
    with pytest.raises(NotFoundError):
        store.complete(token, [])
    with pytest.raises(NotFoundError):
        store.cancel(token)
    assert subject.leftovers() == []


def test_a_missing_blob_is_not_found(subject: Subject) -> None:
    missing = "0" * 32
    with pytest.raises(NotFoundError, match="no such blob"):
        subject.store.size(missing)
    with pytest.raises(NotFoundError, match="no such blob"):
        subject.store.read(missing)


def test_delete_is_idempotent_and_final(subject: Subject) -> None:
    store = subject.store
    key, _ = put(store, [b"x"])
    store.delete(key)
    store.delete(key)
    with pytest.raises(NotFoundError):
        store.size(key)
    assert subject.leftovers() == []


# -- the local store only ------------------------------------------------------------------


def test_local_parts_stay_under_uploads_until_complete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    token = store.begin()
    receipt = write_part(store, token, 1, 0, b"ciphertext" * 1000)
    assert [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()] == [
        "uploads"
    ]
    key = store.complete(token, [receipt])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(key)]


@pytest.mark.parametrize("key", NOT_OURS)
def test_local_keys_that_are_not_ours_never_become_paths(tmp_path: Path, key: str) -> None:
    with pytest.raises(NotFoundError):
        LocalBlobStore(tmp_path).path(key)
