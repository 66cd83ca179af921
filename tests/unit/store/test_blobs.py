"""The local blob store: atomic writes, confinement to its root, ranged reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pli.errors import NotFoundError
from pli.store.blobs import READ_CHUNK, LocalBlobStore


def test_commit_is_atomic_and_reports_size_and_hash(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    writer = store.writer()
    data = b"ciphertext" * 300_000
    writer.write(data[:1000])
    writer.write(memoryview(data)[1000:])
    assert [
        p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and "tmp" not in p.parts
    ] == []
    key, size, digest = writer.commit()
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert store.size(key) == len(data)
    assert b"".join(store.read(key)) == data
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_ranged_reads_come_in_bounded_chunks(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    data = bytes(range(256)) * 20_000
    writer.write(data)
    key, _, _ = writer.commit()
    chunks = list(store.read(key, 1000, 3_000_000))
    assert b"".join(chunks) == data[1000:3_000_000]
    assert max(len(c) for c in chunks) <= READ_CHUNK


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    writer.write(b"partial")
    writer.abort()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "..", "", "A" * 32, "0" * 31])
def test_keys_that_are_not_ours_never_become_paths(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(NotFoundError):
        store.path(key)
    with pytest.raises(NotFoundError):
        store.size(key)


def test_delete_is_idempotent_and_final(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    writer.write(b"x")
    key, _, _ = writer.commit()
    store.delete(key)
    store.delete(key)
    with pytest.raises(NotFoundError):
        store.size(key)
