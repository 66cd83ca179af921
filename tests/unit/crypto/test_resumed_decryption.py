"""Decryption into reused buffers, and resumed part-way through a file: what `pli get` uses to
carry on an interrupted download (pli.crypto.stream.PayloadDecryptor.update_into,
pli.crypto.age.Decryptor's `first_chunk`, `update_into` and `replay`)."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.crypto import age
from pli.crypto.stream import (
    CHUNK_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    PayloadDecryptor,
    PayloadEncryptor,
    sealed_size,
)
from pli.errors import DecryptError

FILE_KEY = bytes(range(16))
NONCE = bytes(range(16, 32))
IDENTITY = age.X25519Identity(bytes(range(32)))


def data_of(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def seal(plain: bytes) -> bytes:
    enc = PayloadEncryptor(FILE_KEY, NONCE)
    return enc.update(plain) + enc.finish()


def encrypted(plain: bytes) -> tuple[bytes, int]:
    """An age file of `plain` and the length of its header and nonce."""
    sealed = age.encrypt(plain, [IDENTITY.recipient])
    return sealed, len(sealed) - sealed_size(len(plain)) + NONCE_SIZE


def open_into(dec: PayloadDecryptor, sealed: bytes, piece: int) -> bytes:
    out = memoryview(bytearray(piece + SEALED_CHUNK_SIZE))
    plain = bytearray()
    for at in range(0, len(sealed), piece):
        n = dec.update_into(sealed[at : at + piece], out)
        plain += out[:n]
    return bytes(plain + dec.finish())


@given(
    size=st.sampled_from([0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 7]),
    piece=st.sampled_from([1, 1000, SEALED_CHUNK_SIZE, 1 << 20]),
)
@settings(max_examples=30, deadline=None)
def test_update_into_matches_update(size: int, piece: int) -> None:
    plain = data_of(size)
    assert open_into(PayloadDecryptor(FILE_KEY, NONCE), seal(plain), piece) == plain


def test_update_into_wants_room_for_a_held_back_chunk() -> None:
    dec = PayloadDecryptor(FILE_KEY, NONCE)
    with pytest.raises(ValueError, match="too small"):
        dec.update_into(b"x" * 100, memoryview(bytearray(100)))


def test_update_into_refuses_tampering_and_truncation() -> None:
    sealed = bytearray(seal(data_of(3 * CHUNK_SIZE)))
    sealed[SEALED_CHUNK_SIZE + 5] ^= 1
    with pytest.raises(DecryptError):
        open_into(PayloadDecryptor(FILE_KEY, NONCE), bytes(sealed), 1 << 20)
    whole = seal(data_of(3 * CHUNK_SIZE))
    with pytest.raises(DecryptError):
        open_into(PayloadDecryptor(FILE_KEY, NONCE), whole[: 2 * SEALED_CHUNK_SIZE], 1 << 20)


@pytest.mark.parametrize("first", [1, 2, 4])
def test_payload_resumed_from_a_chunk_opens_the_tail(first: int) -> None:
    plain = data_of(4 * CHUNK_SIZE + 100)
    sealed = seal(plain)
    dec = PayloadDecryptor(FILE_KEY, NONCE, first_chunk=first)
    tail = open_into(dec, sealed[first * SEALED_CHUNK_SIZE :], 1 << 20)
    assert tail == plain[first * CHUNK_SIZE :]


def test_a_resumed_payload_still_refuses_truncation() -> None:
    plain = data_of(2 * CHUNK_SIZE)
    sealed = seal(plain)
    # Resumed after the last chunk: nothing is left, which is a truncation, not an empty file.
    dec = PayloadDecryptor(FILE_KEY, NONCE, first_chunk=2)
    with pytest.raises(DecryptError):
        open_into(dec, sealed[2 * SEALED_CHUNK_SIZE :], 1 << 20)


@pytest.mark.parametrize("chunks", [1, 3])
def test_replay_rebuilds_the_digests_of_the_skipped_part(chunks: int) -> None:
    plain = data_of(4 * CHUNK_SIZE + 12345)
    sealed, prefix = encrypted(plain)
    dec = age.Decryptor([IDENTITY], first_chunk=chunks)
    assert dec.update(sealed[:prefix]) == b""
    cipher, clear = hashlib.sha256(sealed[:prefix]), hashlib.sha256()
    for plain_chunk, sealed_chunk in dec.replay(io.BytesIO(plain[: chunks * CHUNK_SIZE])):
        clear.update(plain_chunk)
        cipher.update(sealed_chunk)
    skipped = prefix + chunks * SEALED_CHUNK_SIZE
    out = memoryview(bytearray(len(sealed) + SEALED_CHUNK_SIZE))
    n = dec.update_into(sealed[skipped:], out)
    tail = bytes(out[:n]) + dec.finish()
    cipher.update(sealed[skipped:])
    clear.update(tail)
    assert cipher.hexdigest() == hashlib.sha256(sealed).hexdigest()
    assert clear.hexdigest() == hashlib.sha256(plain).hexdigest()


def test_replay_of_an_altered_partial_gives_another_digest() -> None:
    plain = data_of(3 * CHUNK_SIZE)
    sealed, prefix = encrypted(plain)
    altered = bytearray(plain[:CHUNK_SIZE])
    altered[100] ^= 1
    dec = age.Decryptor([IDENTITY], first_chunk=1)
    dec.update(sealed[:prefix])
    cipher = hashlib.sha256(sealed[:prefix])
    for _, sealed_chunk in dec.replay(io.BytesIO(bytes(altered))):
        cipher.update(sealed_chunk)
    cipher.update(sealed[prefix + SEALED_CHUNK_SIZE :])
    assert cipher.hexdigest() != hashlib.sha256(sealed).hexdigest()


def test_replay_refuses_a_short_partial_and_a_missing_header() -> None:
    plain = data_of(3 * CHUNK_SIZE)
    sealed, prefix = encrypted(plain)
    dec = age.Decryptor([IDENTITY], first_chunk=2)
    with pytest.raises(DecryptError):
        list(dec.replay(io.BytesIO(plain)))  # the header is not in yet
    dec.update(sealed[:prefix])
    with pytest.raises(DecryptError, match="shorter"):
        list(dec.replay(io.BytesIO(plain[: CHUNK_SIZE + 10])))
    with pytest.raises(DecryptError):
        list(age.Decryptor([IDENTITY]).replay(io.BytesIO(plain)))  # not resuming


def test_decryptor_update_into_reads_the_header_then_the_payload() -> None:
    plain = data_of(2 * CHUNK_SIZE + 3)
    sealed, _ = encrypted(plain)
    dec = age.Decryptor([IDENTITY])
    out = memoryview(bytearray(1000 + SEALED_CHUNK_SIZE))
    got = bytearray()
    for at in range(0, len(sealed), 1000):
        n = dec.update_into(sealed[at : at + 1000], out)
        got += out[:n]
    assert bytes(got) + dec.finish() == plain
