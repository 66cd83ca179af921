"""age v1 (age-encryption.org/v1): header, X25519 and scrypt recipients, over `cryptography`.

Why not pyrage for everything: pyrage holds the GIL while it works and cannot set the scrypt
work factor, and resuming an upload needs the file key, which it never exposes. The format is
small and published; this module implements it on vetted primitives only, and the tests hold it
to the C2SP CCTV test vectors, and to the `age` CLI and pyrage in both directions.

    header  = "age-encryption.org/v1\\n" stanza* "--- " b64(HMAC(key, header to "---")) "\\n"
    stanza  = "-> " type args... "\\n" b64(body) wrapped at 64 columns, last line shorter than 64
    payload = nonce(16) || STREAM chunks (see pli.crypto.stream)

pli itself writes binary files only; `dearmor` reads the spec's optional ASCII armor.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import bech32
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pli.crypto.stream import (
    CHUNK_SIZE,
    FILE_KEY_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    ChunkSealer,
    PayloadDecryptor,
    PayloadEncryptor,
    hkdf_sha256,
    sealed_size,
)
from pli.errors import CryptoError, DecryptError, UsageError

INTRO = b"age-encryption.org/v1\n"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = b"\x00" * 12
_MAX_HEADER = 1 << 20  # far above any real recipient list; bounds what a hostile sender costs us
_ARG = re.compile(rb"[\x21-\x7e]+")
_B64 = re.compile(r"[A-Za-z0-9+/]*")
DEFAULT_SCRYPT_WORK_FACTOR = 18
# Decrypting scrypt with an attacker-chosen work factor is a memory bomb: 2**20 costs 1 GiB.
MAX_SCRYPT_WORK_FACTOR = 20
_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_ARMOR_COLUMNS = 64


# --- encodings --------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """age's base64: standard alphabet, no padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Strict and canonical: no padding, no stray characters, no non-zero trailing bits."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise CryptoError("malformed base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise CryptoError("malformed base64") from exc
    if b64encode(data) != text:
        raise CryptoError("non-canonical base64")
    return data


def _header_b64decode(text: bytes | str) -> bytes:
    """base64 read from an encrypted file: any flaw is the file's, so a DecryptError."""
    try:
        return b64decode(text.decode("ascii") if isinstance(text, bytes) else text)
    except (CryptoError, UnicodeDecodeError) as exc:
        raise DecryptError("malformed age header") from exc


def dearmor(data: bytes) -> bytes:
    """The age file inside ASCII armor: strict PEM (RFC 7468, Figure 3) labelled
    "AGE ENCRYPTED FILE", with 64-column lines and canonical, padded base64. Only whitespace
    around the block and CRLF line ends are tolerated, so an armored file has one encoding."""
    lines = [line.removesuffix(b"\r") for line in data.strip().split(b"\n")]
    if len(lines) < 2 or lines[0] != _ARMOR_BEGIN or lines[-1] != _ARMOR_END:
        raise DecryptError("malformed ASCII armor")
    body = lines[1:-1]
    if any(len(line) != _ARMOR_COLUMNS for line in body[:-1]) or (
        body and not 0 < len(body[-1]) <= _ARMOR_COLUMNS
    ):
        raise DecryptError("malformed ASCII armor")
    text = b"".join(body)
    try:
        decoded = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise DecryptError("malformed ASCII armor") from exc
    if base64.b64encode(decoded) != text:
        raise DecryptError("malformed ASCII armor")
    return decoded


def _bech32_encode(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5, True)
    if words is None:
        raise CryptoError("cannot encode this key")
    return str(bech32.bech32_encode(hrp, words))


def _bech32_decode(text: str, hrp: str) -> bytes:
    got_hrp, words = bech32.bech32_decode(text)
    if got_hrp != hrp or words is None:
        raise CryptoError("malformed age key")
    data = bech32.convertbits(words, 5, 8, False)
    if data is None or len(data) != 32:
        raise CryptoError("malformed age key")
    return bytes(data)


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """An age X25519 public key (`age1…`)."""

    public: bytes

    @classmethod
    def parse(cls, text: str) -> Recipient:
        if text != text.lower():
            raise CryptoError("malformed age recipient")
        public = _bech32_decode(text, "age")
        # A small-order point gives an all-zero shared secret, which age forbids: refused here,
        # when the key is read, rather than when someone first tries to encrypt to it.
        _exchange_with(X25519PrivateKey.generate(), public)
        return cls(public)

    def __str__(self) -> str:
        return _bech32_encode("age", self.public)


@dataclass(frozen=True)
class Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes


class Identity(Protocol):
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key if one of the stanzas is for this identity, else None."""


class X25519Identity:
    """An age X25519 secret key (`AGE-SECRET-KEY-1…`)."""

    def __init__(self, secret: bytes) -> None:
        self._key = X25519PrivateKey.from_private_bytes(secret)
        self.recipient = Recipient(self._key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        if text != text.upper():
            raise CryptoError("malformed age identity")
        return cls(_bech32_decode(text.lower(), "age-secret-key-"))

    def export(self) -> str:
        return _bech32_encode("age-secret-key-", self._key.private_bytes_raw()).upper()

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "X25519":
                continue
            if len(stanza.args) != 1 or len(stanza.body) != FILE_KEY_SIZE + 16:
                raise DecryptError("malformed X25519 recipient stanza")
            share = _header_b64decode(stanza.args[0])
            if len(share) != 32:
                raise DecryptError("malformed X25519 recipient stanza")
            shared = _exchange(self._key, share)
            key = hkdf_sha256(shared, share + self.recipient.public, _X25519_INFO)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue  # for another recipient
        return None


def _exchange(key: X25519PrivateKey, share: bytes) -> bytes:
    try:
        # cryptography refuses low-order points (an all-zero shared secret), as age requires.
        return key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError as exc:
        raise DecryptError("malformed X25519 recipient stanza") from exc


def _exchange_with(key: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # a small-order point: the shared secret would be all zeros
        raise CryptoError("unusable age recipient") from exc


def x25519_stanza(recipient: Recipient, file_key: bytes) -> Stanza:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = _exchange_with(ephemeral, recipient.public)
    key = hkdf_sha256(shared, share + recipient.public, _X25519_INFO)
    body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza("X25519", (b64encode(share),), body)


class ScryptIdentity:
    """A passphrase, for files encrypted with an age scrypt stanza."""

    def __init__(self, passphrase: str, *, max_work_factor: int = MAX_SCRYPT_WORK_FACTOR) -> None:
        self._passphrase = _passphrase_bytes(passphrase)
        self._max = max_work_factor

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        scrypt = [s for s in stanzas if s.type == "scrypt"]
        if not scrypt:
            return None
        # A scrypt stanza must stand alone, or a passphrase file could be silently re-shared.
        if len(stanzas) != 1:
            raise DecryptError("a passphrase-encrypted file must have exactly one recipient")
        salt, work = _scrypt_args(scrypt[0])
        if work > self._max:
            raise DecryptError(f"the passphrase work factor 2^{work} is above the limit")
        key = _scrypt(self._passphrase, salt, work)
        try:
            return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, scrypt[0].body, None)
        except InvalidTag:
            return None  # another passphrase: no match, as for a key the file is not for


def _scrypt_args(stanza: Stanza) -> tuple[bytes, int]:
    if len(stanza.args) != 2 or len(stanza.body) != FILE_KEY_SIZE + 16:
        raise DecryptError("malformed scrypt stanza")
    salt = _header_b64decode(stanza.args[0])
    if len(salt) != 16 or not re.fullmatch(r"[1-9][0-9]?", stanza.args[1]):
        raise DecryptError("malformed scrypt stanza")
    return salt, int(stanza.args[1])


def _passphrase_bytes(passphrase: str) -> bytes:
    try:
        return passphrase.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, from bytes that were not UTF-8
        raise UsageError("the passphrase is not valid text (UTF-8)") from exc


def _scrypt(passphrase: bytes, salt: bytes, work: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work, r=8, p=1)
    return kdf.derive(passphrase)


def scrypt_stanza(passphrase: str, file_key: bytes, work_factor: int) -> Stanza:
    if not 1 <= work_factor <= MAX_SCRYPT_WORK_FACTOR:
        raise CryptoError(f"the work factor must be between 1 and {MAX_SCRYPT_WORK_FACTOR}")
    salt = os.urandom(16)
    key = _scrypt(_passphrase_bytes(passphrase), salt, work_factor)
    body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza("scrypt", (b64encode(salt), str(work_factor)), body)


# --- header -----------------------------------------------------------------------------------


def _header_mac(file_key: bytes, header: bytes) -> bytes:
    mac = crypto_hmac.HMAC(hkdf_sha256(file_key, b"", b"header"), hashes.SHA256())
    mac.update(header)
    return mac.finalize()


def _encode_stanza(stanza: Stanza) -> bytes:
    line = " ".join(("->", stanza.type, *stanza.args)).encode("ascii") + b"\n"
    body = b64encode(stanza.body)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")  # the body ends with the first line shorter than 64 columns
    return line + "".join(f"{chunk}\n" for chunk in lines).encode("ascii")


def encode_header(stanzas: Iterable[Stanza], file_key: bytes) -> bytes:
    header = INTRO + b"".join(_encode_stanza(s) for s in stanzas) + b"---"
    return header + b" " + b64encode(_header_mac(file_key, header)).encode("ascii") + b"\n"


@dataclass(frozen=True)
class Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    signed_part: bytes  # everything the MAC covers


def find_header_end(buffer: bytes | bytearray) -> int | None:
    """Length of the header at the start of `buffer`, or None while it is incomplete."""
    start = buffer.find(b"\n--- ")
    end = -1 if start < 0 else buffer.find(b"\n", start + 1)
    if end < 0:
        # Bounded whether or not the MAC line has begun: "--- " then no newline, ever, must
        # not make us buffer without end either.
        if len(buffer) > _MAX_HEADER:
            raise DecryptError("the encrypted file has no valid header")
        return None
    return end + 1


def parse_header(data: bytes) -> Header:
    if not data.startswith(INTRO):
        raise DecryptError("not an age file, or an unsupported version")
    lines = data[len(INTRO) :].split(b"\n")
    stanzas: list[Stanza] = []
    i = 0
    while lines[i].startswith(b"-> "):
        stanza, i = _parse_stanza(lines, i)
        stanzas.append(stanza)
    mac_line = lines[i]
    if not mac_line.startswith(b"--- ") or i != len(lines) - 2 or lines[-1] != b"":
        raise DecryptError("malformed age header")
    if not stanzas:
        raise DecryptError("malformed age header")
    mac = _header_b64decode(mac_line[4:])
    if len(mac) != 32:  # a malformed header, not merely a MAC that fails to verify
        raise DecryptError("malformed age header")
    return Header(tuple(stanzas), mac, data[: len(data) - len(mac_line) + 3 - 1])


def _parse_stanza(lines: list[bytes], i: int) -> tuple[Stanza, int]:
    parts = lines[i][3:].split(b" ")
    if not all(_ARG.fullmatch(p) for p in parts):
        raise DecryptError("malformed age header")
    body = b""
    while True:
        i += 1
        if i >= len(lines) - 1:
            raise DecryptError("malformed age header")
        body += lines[i]
        if len(lines[i]) > 64:
            raise DecryptError("malformed age header")
        if len(lines[i]) < 64:
            break
    decoded = _header_b64decode(body)
    args = tuple(p.decode("ascii") for p in parts)
    return Stanza(args[0], args[1:], decoded), i + 1


def unwrap_file_key(header: Header, identities: Sequence[Identity]) -> bytes:
    # age: a scrypt stanza must stand alone whichever identity opens the file, so that a
    # passphrase-encrypted file keeps meaning "made by someone who knows the passphrase".
    if len(header.stanzas) != 1 and any(s.type == "scrypt" for s in header.stanzas):
        raise DecryptError("a passphrase-encrypted file must have exactly one recipient")
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            if len(file_key) != FILE_KEY_SIZE:
                raise DecryptError("malformed age header")
            if not hmac.compare_digest(_header_mac(file_key, header.signed_part), header.mac):
                raise DecryptError("the encrypted file's header was tampered with")
            return file_key
    raise DecryptError("this file was not encrypted to your keys")


# --- whole streams ----------------------------------------------------------------------------


class Encryptor:
    """age encryption, push-style: `update()` then `finish()`; output is a standard age file."""

    def __init__(self, stanzas: Sequence[Stanza], file_key: bytes) -> None:
        self._start(encode_header(stanzas, file_key) + os.urandom(NONCE_SIZE), file_key)

    def _start(self, prefix: bytes, file_key: bytes) -> None:
        self.file_key = file_key
        self.nonce = prefix[-NONCE_SIZE:]
        self.prefix = prefix  # header and payload nonce: the first bytes of the file
        self._prefix = prefix
        self._prefix_size = len(prefix)
        self._payload = PayloadEncryptor(file_key, self.nonce)

    def sealer(self) -> ChunkSealer:
        """Chunk-level access to the payload, for pipelined or resumed encryption."""
        return ChunkSealer(self.file_key, self.nonce)

    def export_secret(self, to: Recipient) -> bytes:
        """The file key, encrypted to `to`: what resuming this encryption later needs."""
        return encrypt(self.file_key, [to])

    @classmethod
    def resume(cls, prefix: bytes, secret: bytes, identities: Sequence[Identity]) -> Encryptor:
        """The encryption whose file starts with `prefix`, from its exported secret; the
        prefix's header must authenticate under that file key."""
        file_key = decrypt(secret, identities)
        end = find_header_end(prefix)
        if end is None or len(prefix) != end + NONCE_SIZE or len(file_key) != FILE_KEY_SIZE:
            raise DecryptError("this upload's saved state is damaged")
        header = parse_header(prefix[:end])
        if not hmac.compare_digest(_header_mac(file_key, header.signed_part), header.mac):
            raise DecryptError("this upload's saved state is damaged")
        encryptor = cls.__new__(cls)
        encryptor._start(prefix, file_key)
        return encryptor

    def ciphertext_size(self, plaintext_size: int) -> int:
        """Exact size of the age file this encryptor makes from `plaintext_size` bytes."""
        return self._prefix_size - NONCE_SIZE + sealed_size(plaintext_size)

    @classmethod
    def to_recipients(cls, recipients: Sequence[Recipient]) -> Encryptor:
        if not recipients:
            raise CryptoError("no recipients to encrypt to")
        file_key = os.urandom(FILE_KEY_SIZE)
        return cls([x25519_stanza(r, file_key) for r in recipients], file_key)

    @classmethod
    def with_passphrase(cls, passphrase: str, work_factor: int) -> Encryptor:
        file_key = os.urandom(FILE_KEY_SIZE)
        return cls([scrypt_stanza(passphrase, file_key, work_factor)], file_key)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out = self._payload.update(data)
        if self._prefix:
            out, self._prefix = self._prefix + out, b""
        return out

    def finish(self) -> bytes:
        out = self._prefix + self._payload.finish()
        self._prefix = b""
        return out


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Decryptor:
    """age decryption, push-style. Output is unauthenticated until `finish()` returns:
    callers write it to a temporary file and keep that file only afterwards.

    Resuming (`first_chunk`): the caller pushes the header and payload nonce, then the
    ciphertext from payload chunk `first_chunk` on; `replay` rebuilds what the skipped chunks
    were, from the plaintext an interrupted attempt wrote."""

    def __init__(self, identities: Sequence[Identity], *, first_chunk: int = 0) -> None:
        self._identities = identities
        self._buffer = bytearray()
        self._payload: PayloadDecryptor | None = None
        self._first_chunk = first_chunk
        self._sealer: ChunkSealer | None = None

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._payload is not None:
            return self._payload.update(data)
        payload, rest = self._open_header(data)
        return b"" if payload is None else payload.update(rest)

    def update_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> int:
        """As `update`, with the plaintext written at the start of `out`; returns its length.
        `out` must hold `len(data) + SEALED_CHUNK_SIZE` bytes."""
        if self._payload is not None:
            return self._payload.update_into(data, out)
        payload, rest = self._open_header(data)
        return 0 if payload is None else payload.update_into(rest, out)

    def _open_header(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[PayloadDecryptor | None, bytes]:
        self._buffer += data
        end = find_header_end(self._buffer)
        if end is None or len(self._buffer) < end + NONCE_SIZE:
            return None, b""
        header = parse_header(bytes(self._buffer[:end]))
        file_key = unwrap_file_key(header, self._identities)
        nonce = bytes(self._buffer[end : end + NONCE_SIZE])
        self._payload = PayloadDecryptor(file_key, nonce, first_chunk=self._first_chunk)
        if self._first_chunk:
            self._sealer = ChunkSealer(file_key, nonce)
        rest = bytes(self._buffer[end + NONCE_SIZE :])
        self._buffer = bytearray()
        return self._payload, rest

    def replay(self, plaintext: Readable) -> Iterator[tuple[memoryview, memoryview]]:
        """For a resumed decryption, once the header is in: reads the `first_chunk` full
        plaintext chunks an earlier attempt wrote, and yields each with its ciphertext, sealed
        again (STREAM is deterministic given the file key, the nonce and the chunk index), so
        the caller can rebuild the digests of the whole file. Both views are valid until the
        next one. The sealed bytes are for hashing only: they never leave the caller.

        A damaged or altered plaintext makes another ciphertext, which the caller's digest
        then refuses; a short one raises DecryptError."""
        if self._sealer is None:
            raise DecryptError("nothing to replay before the header, or when not resuming")
        plain = bytearray(CHUNK_SIZE)
        sealed = memoryview(bytearray(SEALED_CHUNK_SIZE))
        view = memoryview(plain)
        for index in range(self._first_chunk):
            got = 0
            while got < CHUNK_SIZE and (n := plaintext.readinto(view[got:])):
                got += n
            if got != CHUNK_SIZE:
                raise DecryptError("the partial file is shorter than expected")
            self._sealer.seal_into(index, view, sealed, last=False)
            yield view, sealed

    def finish(self) -> bytes:
        if self._payload is None:
            raise DecryptError("the encrypted file is truncated")
        return self._payload.finish()


def encrypt(data: bytes, recipients: Sequence[Recipient]) -> bytes:
    """For small objects (manifests, key bundles); files go through Encryptor in batches."""
    enc = Encryptor.to_recipients(recipients)
    return enc.update(data) + enc.finish()


def encrypt_with_passphrase(data: bytes, passphrase: str, work_factor: int) -> bytes:
    enc = Encryptor.with_passphrase(passphrase, work_factor)
    return enc.update(data) + enc.finish()


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    dec = Decryptor(identities)
    return dec.update(data) + dec.finish()
