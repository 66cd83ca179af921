"""Blob stores: where ciphertext lives. Keys are server-generated random identifiers; no
user input ever becomes a path or an object name.

Every blob is written as a multi-part upload, the shape both a local directory and an S3
bucket can make durable part by part: `begin` opens one and returns an opaque token (kept in
the database, so any server instance can carry on), `part` writes one numbered part at a
byte offset and `commit`s it durably, `complete` turns the parts into a readable blob and
returns its key, `cancel` drops an unfinished one. A part written again under the same number
replaces the earlier attempt: an interrupted request leaves nothing behind that counts.

A blob's key is the first 32 characters of the token of the upload that made it, in every
store: the orphan sweep (pli.server.purge) relies on it to spare a blob whose upload is being
completed. `stored` and `pending` list what a store holds, lazily, for that sweep; names not in
the store's own format are never listed, so they are never deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from pli.errors import ConflictError, NotFoundError
from pli.writeback import Writeback

# A download's chunks: large, for few trips through the event loop (Starlette's 64 KiB costs four
# times the CPU here), and no larger, since up to two are held per download: 1 MiB chunks put the
# server's peak during a download 1.6 MiB higher, for no egress that the clients could use.
READ_CHUNK = 1 << 19
_IOV_MAX = 1024  # pieces per writev call (Linux's limit)
_KEY = re.compile(r"[0-9a-f]{32}")
_SHARD = re.compile(r"[0-9a-f]{2}")


class PartReceipt(NamedTuple):
    number: int  # 1-based, in upload order
    size: int
    sha256: str  # hex digest of the part's bytes
    tag: str  # the store's own name for the stored part (an S3 ETag); "" where unused


class Listed(NamedTuple):
    """A blob or an unfinished upload, as a store lists it."""

    name: str  # a blob's key, or an upload's token
    size: int  # bytes; 0 where the listing does not say (an S3 multipart upload)


class PartWriter(Protocol):
    size: int

    def write(self, *pieces: bytes | bytearray | memoryview) -> None:
        """Append the pieces, in order. Blocking; called off the event loop with large
        batches."""

    def commit(self) -> PartReceipt:
        """Make the part durable."""

    def abort(self) -> None:
        """Forget what this writer wrote; the upload is as it was before `part`."""


class BlobStore(Protocol):
    # The smallest part but the last a store accepts (S3 has a minimum; a directory has not).
    min_part: int

    def begin(self) -> str: ...

    def part(self, token: str, number: int, offset: int, *, checksum: bool = True) -> PartWriter:
        """A writer for part `number` at byte `offset`; with `checksum`, its receipt carries
        the part's SHA-256 (else ""): hashing costs as much CPU as receiving, so it is asked
        for only where something checks it."""

    def complete(self, token: str, parts: Sequence[PartReceipt]) -> str: ...

    def cancel(self, token: str) -> None: ...

    def size(self, key: str) -> int: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of a blob, in chunks of at most READ_CHUNK."""

    def delete(self, key: str) -> None:
        """Idempotent."""

    def stored(self, older_than: datetime) -> Iterator[Listed]:
        """Every blob last written before `older_than`, read as it goes (never all at once)."""

    def pending(self, older_than: datetime) -> Iterator[Listed]:
        """Every unfinished upload begun (or, in a directory, last written) before
        `older_than`, named by the token `begin` returned for it."""


def put(store: BlobStore, chunks: Iterable[bytes]) -> tuple[str, PartReceipt]:
    """Write a whole blob as one part: for small blobs and tests."""
    token = store.begin()
    writer = store.part(token, 1, 0)
    try:
        for chunk in chunks:
            writer.write(chunk)
        receipt = writer.commit()
    except BaseException:
        writer.abort()
        store.cancel(token)
        raise
    return store.complete(token, [receipt]), receipt


def check_parts(parts: Sequence[PartReceipt]) -> None:
    if [p.number for p in parts] != list(range(1, len(parts) + 1)):
        raise ConflictError("the parts of this upload are not numbered 1 to N in order")


class LocalBlobStore:
    """Blobs as files under one root directory. An upload is one file under `uploads/`,
    written in place part after part and fsynced at each commit; `complete` renames it into
    place and fsyncs the directory. Confined to its root: keys are checked before use."""

    min_part = 1

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads = root / "uploads"
        self._uploads.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, key: str) -> Path:
        return self.root / _checked(key)[:2] / key

    def _upload_path(self, token: str) -> Path:
        return self._uploads / _checked(token)

    def begin(self) -> str:
        token = secrets.token_hex(16)
        self._upload_path(token).touch(mode=0o600, exist_ok=False)
        return token

    def part(
        self, token: str, number: int, offset: int, *, checksum: bool = True
    ) -> LocalPartWriter:
        try:
            handle = self._upload_path(token).open("r+b", buffering=0)
        except FileNotFoundError as exc:
            raise NotFoundError("no such upload") from exc
        return LocalPartWriter(handle, number, offset, checksum=checksum)

    def complete(self, token: str, parts: Sequence[PartReceipt]) -> str:
        check_parts(parts)
        source, total = self._upload_path(token), sum(p.size for p in parts)
        try:
            size = source.stat().st_size
        except FileNotFoundError as exc:
            # Completed already (and the caller died before it could record that): the same.
            if self.path(token).exists() and self.size(token) == total:
                return token
            raise NotFoundError("no such upload") from exc
        if size != total:
            raise ConflictError("the stored parts do not add up to the upload's size")
        final = self.path(token)  # the upload token becomes the blob's key
        final.parent.mkdir(exist_ok=True, mode=0o700)
        source.replace(final)
        _fsync_dir(final.parent)
        return token

    def cancel(self, token: str) -> None:
        self._upload_path(token).unlink(missing_ok=True)

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

    def stored(self, older_than: datetime) -> Iterator[Listed]:
        for shard in _entries(self.root):
            if _SHARD.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False):
                found = _listed(_entries(Path(shard.path)), older_than)
                yield from (f for f in found if f.name.startswith(shard.name))

    def pending(self, older_than: datetime) -> Iterator[Listed]:
        return _listed(_entries(self._uploads), older_than)


def _entries(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            yield from entries
    except FileNotFoundError:
        return


def _listed(entries: Iterable[os.DirEntry[str]], older_than: datetime) -> Iterator[Listed]:
    """The regular files named like a key, last written before `older_than`. Anything else
    (a symbolic link, a file of another program) is not the store's and is never listed."""
    limit = older_than.timestamp()
    for entry in entries:
        if not _KEY.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # completed, cancelled or deleted meanwhile
            continue
        if info.st_mtime < limit:
            yield Listed(entry.name, info.st_size)


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise NotFoundError("no such blob")
    return key


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


class LocalPartWriter:
    def __init__(self, handle: BinaryIO, number: int, offset: int, *, checksum: bool) -> None:
        self._file, self._number, self._offset = handle, number, offset
        # Whatever an earlier, interrupted attempt left past the offset is dropped.
        handle.truncate(offset)
        handle.seek(offset)
        self._hash = hashlib.sha256() if checksum else None
        self._writeback = Writeback(handle.fileno(), offset)  # the commit's fsync stays short
        self.size = 0

    def write(self, *pieces: bytes | bytearray | memoryview) -> None:
        # One call per large batch, its pieces as they came off the socket: written with one
        # system call (no copy to join them) and hashed, off the event loop together.
        views = [memoryview(piece) for piece in pieces if len(piece)]
        size = sum(len(view) for view in views)
        fd = self._file.fileno()
        while views:
            written = os.writev(fd, views[:_IOV_MAX])
            views = _advance(views, written)
        if self._hash is not None:
            for piece in pieces:
                self._hash.update(piece)
        self.size += size
        self._writeback.wrote(size)

    def commit(self) -> PartReceipt:
        os.fsync(self._file.fileno())
        self._file.close()
        digest = self._hash.hexdigest() if self._hash is not None else ""
        return PartReceipt(self._number, self.size, digest, "")

    def abort(self) -> None:
        if self._file.closed:
            return
        self._file.truncate(self._offset)
        self._file.close()


def _advance(views: list[memoryview], written: int) -> list[memoryview]:
    """What is left to write once `written` bytes of `views` are out."""
    while views and written >= len(views[0]):
        written -= len(views[0])
        views = views[1:]
    if views and written:
        views[0] = views[0][written:]
    return views


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
