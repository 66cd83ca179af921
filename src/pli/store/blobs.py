"""Blob stores: where ciphertext lives. Keys are server-generated random identifiers; no
user input ever becomes a path."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from pli.errors import NotFoundError

READ_CHUNK = 1 << 20
_KEY = re.compile(r"[0-9a-f]{32}")


class BlobWriter(Protocol):
    size: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self) -> tuple[str, int, str]:
        """Make the blob durable; returns (key, size, sha256 hex)."""

    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...

    def size(self, key: str) -> int: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...


class LocalBlobStore:
    """Blobs as files under one root directory, written atomically: temporary file, fsync,
    rename, fsync of the directory. Confined to its root: keys are checked before use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise NotFoundError("no such blob")
        return self.root / key[:2] / key

    def writer(self) -> LocalBlobWriter:
        return LocalBlobWriter(self)

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError("no such blob") from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = self.path(key).open("rb", buffering=0)
        except FileNotFoundError as exc:
            raise NotFoundError("no such blob") from exc
        return _read_range(handle, start, end)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


def _read_range(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            data = handle.read(want)
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


class LocalBlobWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._key = secrets.token_hex(16)
        self._tmp_path = store._tmp / f"{self._key}.part"
        self._file = self._tmp_path.open("xb", buffering=0)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # One call per large batch: the write and the hash run off the event loop together.
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> tuple[str, int, str]:
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._store.path(self._key)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        self._tmp_path.replace(final)
        _fsync_dir(final.parent)
        return self._key, self.size, self._hash.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self._tmp_path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
