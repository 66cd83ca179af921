"""Receiving one file: downloaded, decrypted, hashed and written in a pipeline; resumable.

Two threads overlap, joined by a small pool of reused 1 MiB buffers: one receives ciphertext
from the socket and hashes it; the other (the caller's) decrypts each buffer into a reused
output buffer, hashes the plaintext and writes it. Both spend most of their time in code that
releases the GIL, so a download costs about its slower half, in constant memory.

Resuming. The output is written to a partial file in the output directory, named by a hash of
the transfer, the file, its signed ciphertext digest and the output kind (never the raw ids),
created 0600 without following symbolic links, refused unless it is a regular file of ours
with no other link, and locked while in use. When a `get` finds one:

- decrypted output: it keeps the partial file's whole 64 KiB chunks (never the file's last
  chunk), asks the server for the age header again (`Range: bytes=0-…`), opens it, and rebuilds
  the digests of the kept part: the ciphertext by sealing the plaintext again with the file key
  and nonce (age's STREAM is deterministic given those and the chunk index; see
  `pli.crypto.age.Decryptor.replay`), and the plaintext as it is for a v1 manifest, which signs
  its digest;
- `--raw` output: it keeps the partial ciphertext as it is, if it starts with the same header.

Then it asks for the rest with `Range` and `If-Range` (the header answer's `ETag`): a server
whose blob changed in between answers with the whole file, which is taken from the start. The
signed digests are checked at the end exactly as for a download in one go; any mismatch deletes
the partial file, so the next attempt starts afresh. Nothing gets its final name before that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import stat
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pli.client import names
from pli.client.api import Api, Download, RangeAnswerError
from pli.crypto.age import Decryptor, Identity
from pli.crypto.manifest import FileEntry
from pli.crypto.stream import CHUNK_SIZE, NONCE_SIZE, SEALED_CHUNK_SIZE, sealed_size
from pli.errors import (
    AuthError,
    ConflictError,
    CryptoError,
    IntegrityError,
    TransportError,
    UsageError,
)
from pli.writeback import Writeback

BUFFER_SIZE = 1 << 20
BUFFERS = 4  # in flight between the two threads: 4 MiB, whatever the file size
_MAX_PREFIX = (1 << 20) + NONCE_SIZE  # the largest age header pli reads, and the nonce


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


def partial_name(transfer_id: str, entry: FileEntry, *, raw: bool) -> str:
    """The partial file's name: the same for the same signed file, telling nothing of it."""
    facts = json.dumps([transfer_id, entry.id, entry.ciphertext_sha256, raw])
    digest = hashlib.sha256(b"pli partial download\x00" + facts.encode("utf-8")).hexdigest()
    return f".pli-{digest[:32]}.part"


class Partial:
    """A partial download: a file in the output directory, open and locked by this process."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        self._writeback = Writeback(fd)  # the final fsync stays short

    @classmethod
    def open(cls, directory: Path, name: str) -> Partial:
        path = directory / name
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot write the partial download {path}: {exc.strerror}",
                hint="remove it if it is not a file of yours, and run the command again",
            ) from exc
        try:
            _check_ours(fd, path)
            _lock(fd, path)
            os.fchmod(fd, 0o600)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def cut(self, size: int) -> None:
        """Keep the first `size` bytes; the next write goes after them."""
        os.ftruncate(self.fd, size)
        os.lseek(self.fd, size, os.SEEK_SET)
        self._writeback = Writeback(self.fd, size)

    def readinto(self, buffer: memoryview, /) -> int:
        return os.readv(self.fd, [buffer])

    def write(self, data: memoryview) -> None:
        size = len(data)
        while data:
            data = data[os.write(self.fd, data) :]
        self._writeback.wrote(size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self.fd >= 0 and _same_file(self.fd, self.path):
                self.path.unlink()
        self.close()


def _check_ours(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    foreign = hasattr(os, "geteuid") and info.st_uid != os.geteuid()
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or foreign:
        raise UsageError(
            f"{path} is in the way of the download (not a partial download of yours)",
            hint="remove it, and run the command again",
        )


def _lock(fd: int, path: Path) -> None:
    if sys.platform != "win32":
        import fcntl  # noqa: PLC0415 (POSIX only)

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConflictError(
                f"another `pli get` is downloading the same file into {path.parent}"
            ) from exc
    # The name may have been placed (or removed) by the process that held the lock before us.
    if not _same_file(fd, path):
        raise ConflictError(
            f"another `pli get` has just downloaded the same file into {path.parent}",
            hint="run the command again",
        )


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = path.stat(follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


class Receiver:
    """Downloads one file of a transfer into a `Partial`, and checks it against the signed
    manifest entry. `identities` decrypt; None keeps the ciphertext (`--raw`)."""

    def __init__(
        self,
        api: Api,
        path: str,
        entry: FileEntry,
        partial: Partial,
        identities: Sequence[Identity] | None,
        progress: Progress,
        label: str,
    ) -> None:
        self.api, self.path, self.entry, self.out = api, path, entry, partial
        self.identities, self.progress, self.label = identities, progress, label
        self.resumed = False  # whether the partial file's content was used
        self.cipher_hash, self.plain_hash = hashlib.sha256(), self._plain_digest()
        self.received = self.written = 0
        self.decryptor: Decryptor | None = None

    def _reset(self) -> None:
        """Start from the beginning of the file."""
        self.out.cut(0)
        self.cipher_hash, self.plain_hash = hashlib.sha256(), self._plain_digest()
        self.received = self.written = 0
        self.decryptor = None if self.identities is None else Decryptor(self.identities)
        self.resumed = False

    def run(self) -> None:
        entry = self.entry
        self.progress.start(self.label, entry.ciphertext_size)
        prefix = entry.ciphertext_size - sealed_size(entry.size) + NONCE_SIZE
        if not NONCE_SIZE < prefix <= _MAX_PREFIX or not self._resume(prefix):
            self._reset()
            with self.api.download(self.path) as body:
                self._take(body)
        self._check()

    # --- resuming -------------------------------------------------------------------------------

    def _resume(self, prefix: int) -> bool:
        """Carry on from the partial file, if it holds anything worth keeping; False when the
        download must start from the beginning instead."""
        have = self.out.size
        if self.identities is None:
            keep, chunks = min(have, self.entry.ciphertext_size - 1), 0
            if keep <= prefix:
                return False
        else:
            last = max(1, -(-self.entry.size // CHUNK_SIZE)) - 1  # the last chunk is refetched
            chunks = min(have // CHUNK_SIZE, last)
            keep = chunks * CHUNK_SIZE
            if not chunks:
                return False
        try:
            with self.api.download(self.path, stop=prefix) as head:
                if head.status == 200:  # the range was ignored: this is the whole file
                    self._reset()
                    self._take(head)
                    return True
                header = _read_exactly(head, prefix)
                validator = head.etag
            self.out.cut(keep)
            os.lseek(self.out.fd, 0, os.SEEK_SET)
            if not self._replay(header, keep, chunks):
                return False
            self.out.cut(keep)  # and the next write goes after the kept part
            self.resumed = True
            self.progress.advance(self.received)
            with self.api.download(self.path, start=self.received, if_range=validator) as rest:
                if rest.status == 200:  # the blob changed since the header: take it all
                    self._reset()
                elif rest.start != self.received:
                    raise RangeAnswerError("the server answered with another part of the file")
                self._take(rest)
        except TransportError as exc:
            # Ranges the server gets wrong, or a blob shorter than signed (416): the download
            # starts over without them, and the end checks say what is wrong, if anything.
            if isinstance(exc, RangeAnswerError) or exc.status == 416:
                return False
            raise
        return True

    def _replay(self, header: bytes, keep: int, chunks: int) -> bool:
        """Bring the digests (and the decryptor) to the end of the kept part of the file, read
        from its start; False if that part cannot be used."""
        cipher_hash, plain_hash = hashlib.sha256(header), self._plain_digest()
        decryptor = None
        if self.identities is None:
            start = bytearray(len(header))
            if self.out.readinto(memoryview(start)) != len(header) or start != header:
                return False  # another encryption of the file: start over
            buffer = memoryview(bytearray(BUFFER_SIZE))
            left = keep - len(header)
            while left:
                n = self.out.readinto(buffer[: min(left, BUFFER_SIZE)])
                if not n:
                    return False
                cipher_hash.update(buffer[:n])
                left -= n
            received, written = keep, 0
        else:
            decryptor = Decryptor(self.identities, first_chunk=chunks)
            if decryptor.update(header):
                return False
            for plain, sealed in decryptor.replay(self.out):
                if plain_hash is not None:
                    plain_hash.update(plain)
                cipher_hash.update(sealed)
            received, written = len(header) + chunks * SEALED_CHUNK_SIZE, keep
        self.cipher_hash, self.plain_hash, self.decryptor = cipher_hash, plain_hash, decryptor
        self.received, self.written = received, written
        return True

    # --- the pipeline ---------------------------------------------------------------------------

    def _take(self, body: Download) -> None:
        """Receive `body`, which starts at `self.received`, to its end."""
        allowed = self.entry.ciphertext_size - self.received
        if body.length is not None and body.length > allowed:
            raise IntegrityError("the server sent more bytes than the sender signed for")
        free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            free.put(bytearray(BUFFER_SIZE))
        filled: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None]
        filled = queue.SimpleQueue()
        reader = threading.Thread(
            target=self._receive, args=(body, allowed, free, filled), daemon=True
        )
        plain = memoryview(bytearray(BUFFER_SIZE + SEALED_CHUNK_SIZE))
        reader.start()
        try:
            while (item := _next(filled)) is not None:
                if isinstance(item, BaseException):
                    raise item
                buffer, n = item
                self._consume(memoryview(buffer)[:n], plain)
                self.progress.advance(n)
                free.put(buffer)
        finally:
            free.put(None)  # a reader waiting for a buffer stops
            body.abort()  # a reader waiting for the network stops
            reader.join()
        if self.decryptor is not None:
            last = self.decryptor.finish()
            self._hash_plain(last)
            self.out.write(memoryview(last))
            self.written += len(last)

    def _receive(
        self,
        body: Download,
        allowed: int,
        free: queue.SimpleQueue[bytearray | None],
        filled: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None],
    ) -> None:
        """The reader thread: fills buffers from the socket, hashes them, hands them over."""
        try:
            self._read(body, allowed, free, filled)
        except BaseException as exc:  # noqa: BLE001 - raised again by the consuming thread
            filled.put(exc)
        filled.put(None)

    def _read(
        self,
        body: Download,
        allowed: int,
        free: queue.SimpleQueue[bytearray | None],
        filled: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None],
    ) -> None:
        total = 0
        while (buffer := free.get()) is not None:
            view = memoryview(buffer)
            n = 0
            while n < len(view) and (got := body.readinto(view[n:])):
                n += got
            if n > allowed:
                raise IntegrityError("the server sent more bytes than the sender signed for")
            allowed -= n
            total += n
            self.cipher_hash.update(view[:n])
            self.received += n
            if n:
                filled.put((buffer, n))
            if n < len(view):  # the end of the body
                if body.length is not None and total != body.length:
                    raise TransportError("the download was interrupted: the connection closed")
                return

    def _consume(self, data: memoryview, plain: memoryview) -> None:
        if self.decryptor is None:
            self.out.write(data)
            self.written += len(data)
            return
        n = self.decryptor.update_into(data, plain)
        self._hash_plain(plain[:n])
        self.out.write(plain[:n])
        self.written += n

    # --- the end --------------------------------------------------------------------------------

    def _check(self) -> None:
        entry = self.entry
        if (
            self.received != entry.ciphertext_size
            or self.cipher_hash.hexdigest() != entry.ciphertext_sha256
        ):
            raise IntegrityError("a file does not match the sender's signed manifest")
        if self.decryptor is not None and (
            self.written != entry.size
            or (self.plain_hash is not None and self.plain_hash.hexdigest() != entry.sha256)
        ):
            raise IntegrityError("a decrypted file does not match the sender's signed manifest")
        os.fsync(self.out.fd)

    def _plain_digest(self) -> hashlib._Hash | None:
        """A hash of the plaintext, for an entry that signs one (v1 manifests); a v2 entry's
        ciphertext digest fixes the plaintext, and hashing it again would only cost time."""
        return hashlib.sha256() if self.entry.sha256 is not None else None

    def _hash_plain(self, plain: bytes | memoryview) -> None:
        if self.plain_hash is not None:
            self.plain_hash.update(plain)


def _read_exactly(body: Download, size: int) -> bytes:
    if body.start != 0 or body.length != size:
        raise RangeAnswerError("the server answered with another part of the file")
    data = memoryview(bytearray(size))
    got = 0
    while got < size and (n := body.readinto(data[got:])):
        got += n
    if got != size:
        raise TransportError("the download was interrupted")
    return bytes(data)


# Failures after which a partial download is kept, for the same command to resume.
RESUMABLE = (TransportError, AuthError, OSError, KeyboardInterrupt)


@dataclass(frozen=True)
class Fetch:
    """Where the files of one transfer come from, and how they are kept: `files` is the path
    the file ids are appended to; `identities` decrypt, None keeps the ciphertext."""

    api: Api
    files: str
    transfer_id: str
    out_dir: Path
    identities: Sequence[Identity] | None
    raw: bool = False


def receive_all(
    fetch: Fetch, entries: Sequence[FileEntry], progress: Progress, notices: list[str]
) -> list[Path]:
    """Download every file, each checked against its signed entry, then give each its final
    name: nothing is placed until every file has been authenticated."""
    fetch.out_dir.mkdir(parents=True, exist_ok=True)
    partials: list[Partial] = []
    keep = False
    try:
        for entry in entries:
            partials.append(_receive(fetch, entry, progress, notices))
        suffix = ".age" if fetch.raw else ""
        return [
            names.place(partial.path, fetch.out_dir, entry.name + suffix)
            for partial, entry in zip(partials, entries, strict=True)
        ]
    except RESUMABLE:
        keep = True  # the files already checked are kept for the next attempt too
        raise
    finally:
        for partial in partials:
            partial.close() if keep else partial.discard()


def _receive(fetch: Fetch, entry: FileEntry, progress: Progress, notices: list[str]) -> Partial:
    """Download one file into its partial file (resuming an earlier attempt's)."""
    partial = Partial.open(fetch.out_dir, partial_name(fetch.transfer_id, entry, raw=fetch.raw))
    label = names.safe_name(entry.name)
    path = f"{fetch.files}/{entry.id}"
    receiver = Receiver(fetch.api, path, entry, partial, fetch.identities, progress, label)
    try:
        receiver.run()
    except RESUMABLE as exc:
        partial.close()
        if isinstance(exc, TransportError) and exc.hint is None:
            exc.hint = "run the same command again to resume the download"
        raise
    except BaseException as exc:
        partial.discard()
        if isinstance(exc, CryptoError) and receiver.resumed and exc.hint is None:
            exc.hint = "the partial download was deleted: run the command again"
        raise
    finally:
        if receiver.resumed:
            notices.append(f"{label}: resumed an interrupted download")
    return partial


def _next(
    filled: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None],
) -> tuple[bytearray, int] | BaseException | None:
    """The reader's next item, waited for in short slices. Ctrl-C may be delivered to the
    reader's thread, blocked in the network; a main thread blocked in one long wait would then
    not see it until the server sends again, and `pli get` would ignore Ctrl-C on a stalled
    connection. Each slice's end lets the interpreter act on it."""
    while True:
        try:
            return filled.get(timeout=0.1)
        except queue.Empty:
            continue
