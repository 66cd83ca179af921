"""age's STREAM payload (age-encryption.org/v1, "Payload") over ChaCha20-Poly1305.

The plaintext is cut into 64 KiB chunks; chunk i is sealed with the nonce
`i as 11 bytes big-endian || last-flag byte`, under a key derived from the file key and a
16-byte random nonce written before the first chunk. `cryptography`'s AEAD releases the GIL,
which is why bulk data goes through here and not through pyrage.

Both directions are push-style (`update` then `finish`), so the same code serves files,
pipes and HTTP bodies, and memory stays bounded by one batch whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pli.errors import DecryptError

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
NONCE_SIZE = 16
FILE_KEY_SIZE = 16
_LAST = b"\x01"
_NOT_LAST = b"\x00"
# The counter is 11 bytes; no file pli can store comes near 2**88 chunks, but the check
# keeps a nonce from ever wrapping around and repeating under the same key.
_MAX_CHUNKS = 1 << 88


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return hkdf_sha256(file_key, nonce, b"payload")


def _chunk_nonce(index: int, last: bool) -> bytes:
    if index >= _MAX_CHUNKS:
        raise DecryptError("the payload is too long")
    return index.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def sealed_size(plaintext_size: int) -> int:
    """Size of the STREAM payload (nonce included) for a plaintext of this size."""
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return NONCE_SIZE + plaintext_size + chunks * TAG_SIZE


class _Chunker:
    """Cuts a pushed byte stream into fixed-size chunks, always holding back the latest one:
    STREAM flags the last chunk, so a full chunk is only released once a byte follows it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._held = bytearray()

    def feed(
        self, data: bytes | bytearray | memoryview
    ) -> Iterator[bytes | bytearray | memoryview]:
        view = memoryview(data).cast("B")
        pos = 0
        if self._held:
            pos = min(self._size - len(self._held), len(view))
            self._held += view[:pos]
            if len(self._held) < self._size or pos == len(view):
                return
            yield self._held
            self._held = bytearray()
        while len(view) - pos > self._size:
            yield view[pos : pos + self._size]
            pos += self._size
        self._held += view[pos:]

    def rest(self) -> bytes:
        held, self._held = bytes(self._held), bytearray()
        return held


class PayloadEncryptor:
    """Seals plaintext pushed in pieces of any size."""

    def __init__(self, file_key: bytes, nonce: bytes, *, first_chunk: int = 0) -> None:
        self._aead = ChaCha20Poly1305(payload_key(file_key, nonce))
        self._index = first_chunk
        self._chunks = _Chunker(CHUNK_SIZE)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out = bytearray()
        for chunk in self._chunks.feed(data):
            out += self._aead.encrypt(_chunk_nonce(self._index, False), chunk, None)
            self._index += 1
        return bytes(out)

    def finish(self) -> bytes:
        return self._aead.encrypt(_chunk_nonce(self._index, True), self._chunks.rest(), None)


class ChunkSealer:
    """Seals one chunk at a given index, into a caller's buffer: for encryption that runs in
    a pipeline, or resumes part-way through a file.

    Callers must seal a given index only ever with the same plaintext: the nonce is the index,
    so two different plaintexts at one index under one key would share a keystream. (pli's
    uploads guarantee this by checking the source against digests recorded before sending.)
    """

    def __init__(self, file_key: bytes, nonce: bytes) -> None:
        self._aead = ChaCha20Poly1305(payload_key(file_key, nonce))

    def seal_into(
        self, index: int, plaintext: bytes | bytearray | memoryview, out: memoryview, *, last: bool
    ) -> int:
        """Write the sealed chunk at the start of `out`; returns its length."""
        size = len(plaintext)
        if size > CHUNK_SIZE or (not last and size != CHUNK_SIZE) or (last and index and not size):
            raise ValueError("a chunk is 64 KiB, but the last, which is empty only when alone")
        self._aead.encrypt_into(_chunk_nonce(index, last), plaintext, None, out[: size + TAG_SIZE])
        return size + TAG_SIZE


class PayloadDecryptor:
    """Opens ciphertext pushed in pieces of any size; refuses truncation and trailing data.

    Each chunk is released as soon as it authenticates, as the age reference does: a full chunk
    is opened as a middle chunk or, failing that, as the last one, after which no byte may
    follow; a shorter chunk can only be the last, and waits for `finish()`. When a chunk is
    refused, `update` still returns the plaintext that authenticated before it, and the refusal
    is raised by the next call.

    `first_chunk` resumes part-way through a payload: the ciphertext pushed then starts at
    that chunk (the earlier chunks were opened before, by an interrupted attempt)."""

    def __init__(self, file_key: bytes, nonce: bytes, *, first_chunk: int = 0) -> None:
        self._aead = ChaCha20Poly1305(payload_key(file_key, nonce))
        self._index = first_chunk
        self._held = bytearray()  # the start of the next chunk
        self._ended = False  # a full last chunk was opened
        self._refusal: DecryptError | None = None

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out = bytearray(len(data) + SEALED_CHUNK_SIZE)
        return bytes(out[: self.update_into(data, memoryview(out))])

    def update_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> int:
        """As `update`, with the plaintext written at the start of `out` (reused buffers, no
        allocation); returns its length. `out` must hold `len(data) + SEALED_CHUNK_SIZE`."""
        if len(out) < len(data) + SEALED_CHUNK_SIZE:
            raise ValueError("the output buffer is too small for this input")
        if self._refusal is not None:
            raise self._refusal
        written = 0
        try:
            for sealed in self._full_chunks(memoryview(data).cast("B")):
                written += self._open_full_into(sealed, out[written:])
        except DecryptError as exc:
            self._refusal = exc
            if not written:
                raise
        return written

    def _full_chunks(self, view: memoryview) -> Iterator[bytearray | memoryview]:
        if self._held:
            take = min(SEALED_CHUNK_SIZE - len(self._held), len(view))
            self._held += view[:take]
            view = view[take:]
            if len(self._held) < SEALED_CHUNK_SIZE:
                return
            yield self._held
            self._held = bytearray()
        while len(view) >= SEALED_CHUNK_SIZE:
            yield view[:SEALED_CHUNK_SIZE]
            view = view[SEALED_CHUNK_SIZE:]
        if view and self._ended:
            raise DecryptError("the encrypted file goes on after its last chunk")
        self._held += view

    def _open_full_into(self, sealed: bytearray | memoryview, out: memoryview) -> int:
        if self._ended:
            raise DecryptError("the encrypted file goes on after its last chunk")
        size = len(sealed) - TAG_SIZE
        for last in (False, True):
            try:
                self._aead.decrypt_into(_chunk_nonce(self._index, last), sealed, None, out[:size])
            except InvalidTag:
                continue
            self._index += 1
            self._ended = last
            return size
        raise DecryptError("the encrypted file is corrupted or was tampered with")

    def finish(self) -> bytes:
        if self._refusal is not None:
            raise self._refusal
        rest, self._held = bytes(self._held), bytearray()
        if self._ended:
            return b""
        if len(rest) < TAG_SIZE:
            raise DecryptError("the encrypted file is truncated")
        plaintext = self._open(rest, last=True)
        # An empty last chunk is only valid as the first one: otherwise a truncation at a
        # chunk boundary could pass for a complete file.
        if not plaintext and self._index > 1:
            raise DecryptError("the encrypted file is malformed")
        return plaintext

    def _open(self, sealed: bytes | bytearray | memoryview, *, last: bool) -> bytes:
        try:
            plain = self._aead.decrypt(_chunk_nonce(self._index, last), sealed, None)
        except InvalidTag as exc:
            raise DecryptError("the encrypted file is corrupted or was tampered with") from exc
        self._index += 1
        return plain
