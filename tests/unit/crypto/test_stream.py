"""pli.crypto.stream: age's STREAM payload, chunk by chunk."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pli.crypto.stream import (
    CHUNK_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    TAG_SIZE,
    PayloadDecryptor,
    PayloadEncryptor,
    payload_key,
    sealed_size,
)
from pli.errors import DecryptError

FILE_KEY = bytes(range(16))
NONCE = bytes(range(16, 32))


def data_of(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def seal(plain: bytes, *, first_chunk: int = 0) -> bytes:
    enc = PayloadEncryptor(FILE_KEY, NONCE, first_chunk=first_chunk)
    return enc.update(plain) + enc.finish()


def open_payload(sealed: bytes) -> bytes:
    dec = PayloadDecryptor(FILE_KEY, NONCE)
    return dec.update(sealed) + dec.finish()


def chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def test_constants_match_age() -> None:
    assert CHUNK_SIZE == 65536
    assert TAG_SIZE == 16
    assert SEALED_CHUNK_SIZE == 65552
    assert NONCE_SIZE == 16


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 16 + 16),
        (1, 16 + 1 + 16),
        (65535, 16 + 65535 + 16),
        (65536, 16 + 65536 + 16),
        (65537, 16 + 65537 + 32),
        (2 * 65536, 16 + 2 * 65536 + 32),
        (2 * 65536 + 1, 16 + 2 * 65536 + 1 + 48),
        (10 * 65536, 16 + 10 * 65536 + 160),
    ],
)
def test_sealed_size(size: int, expected: int) -> None:
    assert sealed_size(size) == expected
    # sealed_size counts the 16-byte payload nonce; the encryptor writes the chunks only.
    assert len(seal(data_of(size))) == expected - NONCE_SIZE


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 2 * 65536, 2 * 65536 + 1])
def test_chunks_follow_the_age_spec(size: int) -> None:
    """Each chunk opens with the spec's own nonce: counter, then 1 on the last chunk only."""
    plain = data_of(size)
    sealed = seal(plain)
    aead = ChaCha20Poly1305(payload_key(FILE_KEY, NONCE))
    count = max(1, -(-size // CHUNK_SIZE))
    out = b""
    for i in range(count):
        chunk = sealed[i * SEALED_CHUNK_SIZE : (i + 1) * SEALED_CHUNK_SIZE]
        out += aead.decrypt(chunk_nonce(i, i == count - 1), chunk, None)
    assert out == plain
    assert len(sealed) == size + count * TAG_SIZE


def test_full_chunk_is_held_back_until_more_arrives() -> None:
    enc = PayloadEncryptor(FILE_KEY, NONCE)
    assert enc.update(data_of(CHUNK_SIZE)) == b""  # might be the last chunk: not sealed yet
    first = enc.update(b"x")
    assert len(first) == SEALED_CHUNK_SIZE  # a byte followed: it was not the last
    assert len(enc.finish()) == 1 + TAG_SIZE


def test_exact_multiple_ends_with_a_full_last_chunk() -> None:
    enc = PayloadEncryptor(FILE_KEY, NONCE)
    out = enc.update(data_of(2 * CHUNK_SIZE))
    assert len(out) == SEALED_CHUNK_SIZE
    last = enc.finish()
    assert len(last) == SEALED_CHUNK_SIZE
    aead = ChaCha20Poly1305(payload_key(FILE_KEY, NONCE))
    assert aead.decrypt(chunk_nonce(1, True), last, None) == data_of(2 * CHUNK_SIZE)[CHUNK_SIZE:]


@pytest.mark.parametrize("piece", [1, 999, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 200_000])
def test_output_does_not_depend_on_piece_sizes(piece: int) -> None:
    plain = data_of(3 * CHUNK_SIZE + 777)
    whole = seal(plain)
    enc = PayloadEncryptor(FILE_KEY, NONCE)
    pieced = b"".join(enc.update(plain[i : i + piece]) for i in range(0, len(plain), piece))
    assert pieced + enc.finish() == whole

    dec = PayloadDecryptor(FILE_KEY, NONCE)
    out = b"".join(dec.update(whole[i : i + piece]) for i in range(0, len(whole), piece))
    assert out + dec.finish() == plain


def test_accepts_bytearray_and_memoryview() -> None:
    plain = data_of(CHUNK_SIZE + 10)
    enc = PayloadEncryptor(FILE_KEY, NONCE)
    sealed = enc.update(bytearray(plain[:100])) + enc.update(memoryview(plain)[100:]) + enc.finish()
    assert sealed == seal(plain)
    dec = PayloadDecryptor(FILE_KEY, NONCE)
    out = dec.update(bytearray(sealed[:5])) + dec.update(memoryview(sealed)[5:])
    assert out + dec.finish() == plain


def test_decryptor_releases_all_but_the_last_chunk() -> None:
    plain = data_of(4 * CHUNK_SIZE + 1)
    sealed = seal(plain)
    dec = PayloadDecryptor(FILE_KEY, NONCE)
    out = dec.update(sealed)
    assert out == plain[: 4 * CHUNK_SIZE]
    assert dec.finish() == plain[4 * CHUNK_SIZE :]


def test_resuming_from_a_chunk_reproduces_the_tail() -> None:
    """An interrupted upload re-encrypts from chunk k: the bytes must be the same."""
    plain = data_of(5 * CHUNK_SIZE + 123)
    whole = seal(plain)
    for k in (1, 3, 5):
        tail = seal(plain[k * CHUNK_SIZE :], first_chunk=k)
        assert tail == whole[k * SEALED_CHUNK_SIZE :]


def test_different_nonce_or_key_changes_everything() -> None:
    plain = data_of(1000)
    base = seal(plain)
    other_nonce = PayloadEncryptor(FILE_KEY, bytes(16))
    assert other_nonce.update(plain) + other_nonce.finish() != base
    other_key = PayloadEncryptor(bytes(16), NONCE)
    assert other_key.update(plain) + other_key.finish() != base
    assert payload_key(FILE_KEY, NONCE) != payload_key(FILE_KEY, bytes(16))
    wrong = PayloadDecryptor(FILE_KEY, bytes(16))
    assert wrong.update(base) == b""  # one chunk, held back as possibly the last
    with pytest.raises(DecryptError):
        wrong.finish()


def test_empty_payload_is_one_empty_chunk() -> None:
    sealed = seal(b"")
    assert len(sealed) == TAG_SIZE
    assert open_payload(sealed) == b""


@pytest.mark.parametrize("sealed", [b"", b"x", bytes(TAG_SIZE - 1)])
def test_no_chunk_at_all_is_refused(sealed: bytes) -> None:
    with pytest.raises(DecryptError):
        open_payload(sealed)


@pytest.mark.parametrize("chunks", [1, 2])
def test_truncation_at_a_chunk_boundary_is_refused(chunks: int) -> None:
    sealed = seal(data_of(3 * CHUNK_SIZE))
    with pytest.raises(DecryptError):
        open_payload(sealed[: chunks * SEALED_CHUNK_SIZE])


def test_reordered_chunks_are_refused() -> None:
    sealed = seal(data_of(3 * CHUNK_SIZE + 5))
    first, second = sealed[:SEALED_CHUNK_SIZE], sealed[SEALED_CHUNK_SIZE : 2 * SEALED_CHUNK_SIZE]
    swapped = second + first + sealed[2 * SEALED_CHUNK_SIZE :]
    with pytest.raises(DecryptError):
        open_payload(swapped)
    repeated = first + first + sealed[2 * SEALED_CHUNK_SIZE :]
    with pytest.raises(DecryptError):
        open_payload(repeated)


def test_dropped_middle_chunk_is_refused() -> None:
    sealed = seal(data_of(3 * CHUNK_SIZE + 5))
    with pytest.raises(DecryptError):
        open_payload(sealed[:SEALED_CHUNK_SIZE] + sealed[2 * SEALED_CHUNK_SIZE :])


def test_empty_last_chunk_after_a_full_one_is_refused() -> None:
    aead = ChaCha20Poly1305(payload_key(FILE_KEY, NONCE))
    full = data_of(CHUNK_SIZE)
    good = aead.encrypt(chunk_nonce(0, True), full, None)
    assert open_payload(good) == full
    bad = aead.encrypt(chunk_nonce(0, False), full, None) + aead.encrypt(
        chunk_nonce(1, True), b"", None
    )
    with pytest.raises(DecryptError):
        open_payload(bad)


@pytest.mark.parametrize("extra", [b"\x00", bytes(TAG_SIZE), bytes(SEALED_CHUNK_SIZE)])
def test_trailing_data_is_refused(extra: bytes) -> None:
    for size in (10, CHUNK_SIZE, CHUNK_SIZE + 10):
        with pytest.raises(DecryptError):
            open_payload(seal(data_of(size)) + extra)


def test_chunk_counter_never_wraps() -> None:
    last_index = (1 << 88) - 1  # the largest 11-byte counter
    enc = PayloadEncryptor(FILE_KEY, NONCE, first_chunk=last_index)
    assert len(enc.finish()) == TAG_SIZE
    over = PayloadEncryptor(FILE_KEY, NONCE, first_chunk=1 << 88)
    with pytest.raises(DecryptError):
        over.finish()
