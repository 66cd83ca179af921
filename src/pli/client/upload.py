"""Sending one file: encrypted in a pipeline, uploaded in parts over tus, resumable.

Stages overlap, each in its own thread, joined by small bounded queues of reused buffers:
read the plaintext (and hash it, for a request's answer only: a manifest signs the ciphertext
alone, which fixes the plaintext); seal it into ~8 MiB parts; hash the ciphertext; upload each
part. A send costs about the time of its slowest stage, in constant memory.

Resuming never reuses a keystream. Before a part is sent, the SHA-256 of the ciphertext up to
its end is appended to a local record. On resume the file is read and sealed again from the
start with the same file key (age's payload is deterministic for a given key, nonce and
plaintext), and every part is checked against that record before anything is sent: if the
source changed, the upload is dropped and the file starts over under a new key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pli.client.api import Api
from pli.client.state import Home
from pli.crypto.age import Encryptor
from pli.crypto.stream import CHUNK_SIZE, SEALED_CHUNK_SIZE
from pli.errors import ConflictError, IntegrityError, PliError, TransportError, UsageError

PART_CHUNKS = 128  # 64 KiB chunks per part: parts of 8 MiB (every part but the last >= 5 MiB)
MAX_PARTS = 9_000  # below S3's 10,000, whatever the file size
READ_CHUNKS = 16  # the reader's batch: 1 MiB
_DEPTH = 2  # buffers in flight per stage


class SourceChangedError(PliError):
    """The file differs from what an interrupted upload already sent: never resumed."""


def chunks_per_part(size: int) -> int:
    chunks = max(1, -(-size // CHUNK_SIZE))
    return max(PART_CHUNKS, -(-chunks // MAX_PARTS))


@dataclass(frozen=True)
class Part:
    number: int  # from 0
    start: int  # offset of its first byte in the encrypted file
    data: memoryview
    digest: str  # SHA-256 of the encrypted file from its first byte to this part's end


@dataclass
class Digests:
    """Filled in by the pipeline. `plain` is the plaintext's SHA-256 when asked for (request
    answers carry it), else None."""

    plain: str | None = None
    cipher: str = ""


class _StopError(Exception):
    """Raised inside a stage when another stage failed or the consumer went away."""


class _Stage(threading.Thread):
    """Runs `work`; an error is kept for the consumer, and `stop` ends every stage."""

    def __init__(self, work: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self._work, self._halt = work, stop
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self._work()
        except _StopError:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self.error = exc
            self._halt.set()


T = TypeVar("T")


class _Queue(Generic[T]):
    """A bounded queue whose waits end when the pipeline stops."""

    def __init__(self, stop: threading.Event, size: int = 0) -> None:
        self._q: queue.Queue[T] = queue.Queue(size)
        self._stop = stop

    def put(self, item: T) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
            except queue.Full:
                continue
            return
        raise _StopError

    def get(self) -> T:
        while not self._stop.is_set():
            try:
                return self._q.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _StopError


class _Pipeline:
    def __init__(
        self,
        path: Path,
        size: int,
        encryptor: Encryptor,
        digests: Digests,
        check: Callable[[Part], None],
        plaintext_digest: bool,
    ) -> None:
        self.path, self.size, self.encryptor, self.digests = path, size, encryptor, digests
        self.check, self.plaintext_digest = check, plaintext_digest
        self.per_part = chunks_per_part(size)
        self.stop = threading.Event()
        self.free_plain: _Queue[bytearray] = _Queue(self.stop)
        for _ in range(_DEPTH + 2):
            self.free_plain.put(bytearray(READ_CHUNKS * CHUNK_SIZE))
        self.free_parts: _Queue[bytearray] = _Queue(self.stop)
        part_size = len(encryptor.prefix) + self.per_part * SEALED_CHUNK_SIZE
        for _ in range(_DEPTH + 1):
            self.free_parts.put(bytearray(part_size))
        self.plain: _Queue[tuple[bytearray, int, bool]] = _Queue(self.stop, _DEPTH + 1)
        self.sealed: _Queue[tuple[memoryview, bool]] = _Queue(self.stop, 1)
        self.parts: _Queue[Part | None] = _Queue(self.stop, _DEPTH - 1)

    def read(self) -> None:
        plain_hash = hashlib.sha256() if self.plaintext_digest else None
        total, last = 0, False
        with self.path.open("rb", buffering=0) as handle:
            while not last:
                buffer = self.free_plain.get()
                want = min(len(buffer), self.size - total)
                n = (handle.readinto(memoryview(buffer)[:want]) or 0) if want else 0
                if n != want:
                    raise UsageError(f"{self.path} changed while it was being sent")
                if plain_hash is not None:
                    plain_hash.update(memoryview(buffer)[:n])
                total += n
                last = total == self.size
                self.plain.put((buffer, n, last))
            if handle.read(1):
                raise UsageError(f"{self.path} changed while it was being sent")
        if plain_hash is not None:
            self.digests.plain = plain_hash.hexdigest()

    def seal(self) -> None:
        sealer, index, last = self.encryptor.sealer(), 0, False
        view = memoryview(self.free_parts.get())
        pos = len(self.encryptor.prefix)
        view[:pos] = self.encryptor.prefix
        while not last:
            buffer, n, last = self.plain.get()
            plain = memoryview(buffer)[:n]
            for at in range(0, max(n, 1), CHUNK_SIZE):
                final = last and at + CHUNK_SIZE >= n
                pos += sealer.seal_into(index, plain[at : at + CHUNK_SIZE], view[pos:], last=final)
                index += 1
                if index % self.per_part == 0 and not final:
                    self.sealed.put((view[:pos], False))
                    view, pos = memoryview(self.free_parts.get()), 0
            self.free_plain.put(buffer)
        self.sealed.put((view[:pos], True))

    def hash(self) -> None:
        """The ciphertext's digest, in a stage of its own: hashing costs twice the sealing."""
        cipher_hash, number, start, final = hashlib.sha256(), 0, 0, False
        while not final:
            view, final = self.sealed.get()
            cipher_hash.update(view)
            part = Part(number, start, view, cipher_hash.hexdigest())
            self.check(part)  # here, so that recording a digest overlaps the upload
            self.parts.put(part)
            number, start = number + 1, start + len(view)
        self.digests.cipher = cipher_hash.hexdigest()
        self.parts.put(None)

    def run(self) -> Iterator[Part]:
        stages = [_Stage(work, self.stop) for work in (self.read, self.seal, self.hash)]
        for stage in stages:
            stage.start()
        previous: Part | None = None
        try:
            while (item := self._next()) is not None:
                if previous is not None:
                    self.free_parts.put(_buffer_of(previous))
                previous = item
                yield item
        finally:
            self.stop.set()
            for stage in stages:
                stage.join()
        for stage in stages:
            if stage.error is not None:
                raise stage.error

    def _next(self) -> Part | None:
        try:
            return self.parts.get()
        except _StopError:
            return None


def _buffer_of(part: Part) -> bytearray:
    owner = part.data.obj
    if not isinstance(owner, bytearray):
        raise TypeError("a part's data is a view of a pooled buffer")
    return owner


def encrypted_parts(
    path: Path,
    size: int,
    encryptor: Encryptor,
    digests: Digests,
    check: Callable[[Part], None] = lambda part: None,
    *,
    plaintext_digest: bool = False,
) -> Iterator[Part]:
    """The encrypted file, part by part; `digests` is filled in once the last part is out
    (the plaintext's only with `plaintext_digest`). `check` sees each part before it is handed
    out. Each part's buffer is reused once the next part is asked for."""
    return _Pipeline(path, size, encryptor, digests, check, plaintext_digest).run()


class SentRecord:
    """The digests of the parts handed to the network, recorded before they go: a resumed
    upload must produce the very same parts, or it must not go on."""

    def __init__(self, recorded: list[str], record: Callable[[str], None]) -> None:
        self.recorded, self._record = recorded, record

    def check(self, part: Part) -> None:
        if part.number < len(self.recorded):
            if self.recorded[part.number] != part.digest:
                raise SourceChangedError(
                    "the file changed since its upload was interrupted: it is sent again "
                    "from the start"
                )
            return
        self._record(part.digest)
        self.recorded.append(part.digest)


def remaining(
    parts: Iterator[Part], offset: int, advance: Callable[[int], None]
) -> Iterator[memoryview]:
    """The bytes from `offset` on; the parts before it are produced (and checked) only."""
    for part in parts:
        end = part.start + len(part.data)
        if end > offset:
            yield part.data[max(0, offset - part.start) :]
        advance(len(part.data))


# --- resumable state under PLI_HOME -----------------------------------------------------------


class SendState:
    """What an interrupted `pli send` leaves under PLI_HOME to resume: one JSON document per
    send (transfer, files, each file's upload address, encrypted header and file key sealed to
    this device), and per file an append-only record of the digests of the parts sent."""

    def __init__(self, home: Home, job: str) -> None:
        self.home, self.job = home, job
        self.data: dict[str, Any] = {}

    @staticmethod
    def for_send(home: Home, facts: list[object]) -> SendState:
        """The state of the send described by `facts`: the same command, on the same
        unchanged files, to the same keys, finds the same state."""
        text = json.dumps(facts, sort_keys=True, default=str)
        return SendState(home, hashlib.sha256(text.encode()).hexdigest()[:32])

    @property
    def _name(self) -> str:
        return f"send-{self.job}.json"

    def _digests_name(self, index: int) -> str:
        return f"send-{self.job}-{index}.parts"

    def load(self) -> bool:
        data = self.home.read_json(self._name)
        self.data = data if isinstance(data, dict) and data.get("version") == 1 else {}
        return bool(self.data)

    def save(self) -> None:
        self.data["version"] = 1
        self.home.write_json(self._name, self.data)

    def digests(self, index: int) -> list[str]:
        raw = self.home.read(self._digests_name(index)) or b""
        return raw.decode("ascii", "replace").split()

    def record(self, index: int, digest: str) -> None:
        self.home.append(self._digests_name(index), digest.encode("ascii") + b"\n")

    def forget_digests(self, index: int) -> None:
        self.home.delete(self._digests_name(index))

    def clear(self) -> None:
        for index in range(len(self.data.get("files", []))):
            self.forget_digests(index)
        self.home.delete(self._name)
        self.data = {}


# --- the protocol -----------------------------------------------------------------------------

OCTETS = "application/offset+octet-stream"


class Uploader:
    """tus requests for one upload, retried across short outages: after a failure it asks
    the server how far it got and carries on from there."""

    def __init__(self, api: Api, path: str, retry_for: float) -> None:
        self.api, self.path, self.retry_for = api, path, retry_for

    @staticmethod
    def create(api: Api, transfer_id: str, file_id: str, length: int) -> str:
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in (("transfer", transfer_id), ("file", file_id))
        )
        headers = api.tus(
            "POST", "/api/v1/uploads", {"upload-length": str(length), "upload-metadata": meta}
        )
        location = str(headers.get("location", ""))
        if not location.startswith("/api/v1/uploads/") or "/" in location[16:]:
            raise IntegrityError("the server answered with a malformed upload address")
        return location

    def offset(self) -> int:
        text = self.api.tus("HEAD", self.path, {}).get("upload-offset", "")
        if not text.isdigit():
            raise IntegrityError("the server answered with a malformed upload offset")
        return int(text)

    def terminate(self) -> None:
        with contextlib.suppress(PliError):
            self.api.tus("DELETE", self.path, {})

    def stream(self, offset: int, body: Iterator[memoryview], length: int) -> None:
        """One PATCH with every byte from `offset` to the end."""
        headers = {"tus-resumable": "1.0.0", "upload-offset": str(offset), "content-type": OCTETS}
        self.api.upload("PATCH", self.path, headers, body, length - offset)


def send_file(
    uploader: Uploader,
    length: int,
    parts: Callable[[], Iterator[Part]],
    advance: Callable[[int], None],
) -> None:
    """Upload one encrypted file, riding out short outages: after a cut, ask the server how
    much it holds and send the rest, sealing the file again from its start (every part is
    checked against the record of what was sent before)."""
    deadline = time.monotonic() + uploader.retry_for
    delay = 0.5
    while True:
        try:
            offset = uploader.offset()
            if offset > length:
                raise IntegrityError("the server claims more bytes than the file has")
            if offset == length:
                return
            uploader.stream(offset, remaining(parts(), offset, advance), length)
        except (TransportError, ConflictError) as exc:
            if time.monotonic() + delay > deadline:
                raise TransportError(
                    f"the upload was interrupted ({exc.message})",
                    hint="run the same command again: it resumes where it stopped",
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return
