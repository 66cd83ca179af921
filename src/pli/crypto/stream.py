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


class PayloadDecryptor:
    """Opens ciphertext pushed in pieces of any size; refuses truncation and trailing data."""

    def __init__(self, file_key: bytes, nonce: bytes) -> None:
        self._aead = ChaCha20Poly1305(payload_key(file_key, nonce))
        self._index = 0
        self._chunks = _Chunker(SEALED_CHUNK_SIZE)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out = bytearray()
        for chunk in self._chunks.feed(data):
            out += self._open(chunk, last=False)
        return bytes(out)

    def finish(self) -> bytes:
        rest = self._chunks.rest()
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
