"""pli.crypto.age: round trips, interoperability with the `age` CLI and pyrage, and refusals."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import bech32
import pyrage
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.crypto import age
from pli.crypto.stream import (
    CHUNK_SIZE,
    FILE_KEY_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    TAG_SIZE,
    PayloadEncryptor,
    payload_key,
)
from pli.errors import CryptoError, DecryptError

MIB = 1 << 20
SIZES = [0, 1, 65535, 65536, 65537, 2 * 65536, 2 * 65536 + 1, 3 * MIB + 7]
WORK = 10  # a scrypt work factor cheap enough for tests
# bech32's alphabet, upper-cased for secret keys as age-keygen writes them.
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
RECIPIENT_RE = re.compile(f"age1[{_BECH32}]{{58}}")
SECRET_RE = re.compile(f"AGE-SECRET-KEY-1[{_BECH32.upper()}]{{58}}")


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(size * 7919 + seed).randbytes(size)


def header_length(sealed: bytes) -> int:
    end = age.find_header_end(sealed)
    assert end is not None
    return end


def pieces(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        yield data[pos : pos + sizes[i % len(sizes)]]
        pos += sizes[i % len(sizes)]
        i += 1


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def to_pyrage(identity: age.X25519Identity) -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.from_str(identity.export())


@pytest.fixture(scope="module")
def age_cli() -> str:
    path = shutil.which("age")
    if path is None:
        pytest.fail("the reference `age` CLI is needed: run scripts/system-deps.sh")
    return path


@pytest.fixture
def identity() -> age.X25519Identity:
    return age.X25519Identity.generate()


@pytest.fixture
def key_file(tmp_path: Path, identity: age.X25519Identity) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(identity.export() + "\n")
    path.chmod(0o600)
    return path


def run(*argv: str, stdin: bytes = b"") -> bytes:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int, identity: age.X25519Identity) -> None:
    plain = data_of(size)
    sealed = age.encrypt(plain, [identity.recipient])
    assert sealed.startswith(age.INTRO)
    assert age.decrypt(sealed, [identity]) == plain


@pytest.mark.parametrize("size", [0, 1, 65536, 65537])
def test_passphrase_round_trip(size: int) -> None:
    plain = data_of(size)
    sealed = age.encrypt_with_passphrase(plain, "correct horse", WORK)
    assert b"\n-> scrypt " in sealed[: header_length(sealed)]
    assert age.decrypt(sealed, [age.ScryptIdentity("correct horse")]) == plain


def test_encryption_is_randomised(identity: age.X25519Identity) -> None:
    plain = b"same plaintext"
    one = age.encrypt(plain, [identity.recipient])
    two = age.encrypt(plain, [identity.recipient])
    assert one != two
    assert plain not in one


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("count", [1, 3])
def test_ciphertext_size_is_the_real_length(size: int, count: int) -> None:
    recipients = [age.X25519Identity.generate().recipient for _ in range(count)]
    enc = age.Encryptor.to_recipients(recipients)
    predicted = enc.ciphertext_size(size)
    sealed = enc.update(data_of(size)) + enc.finish()
    assert len(sealed) == predicted
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(sealed) == header_length(sealed) + NONCE_SIZE + size + chunks * TAG_SIZE


def test_ciphertext_size_with_passphrase() -> None:
    enc = age.Encryptor.with_passphrase("pw", WORK)
    predicted = enc.ciphertext_size(100_000)
    assert len(enc.update(data_of(100_000)) + enc.finish()) == predicted


def test_a_full_last_chunk_is_not_followed_by_an_empty_one() -> None:
    enc = age.Encryptor.to_recipients([age.X25519Identity.generate().recipient])
    # 64 KiB is one chunk, flagged last: the same size class as 1 byte, not a second chunk.
    assert enc.ciphertext_size(CHUNK_SIZE) - enc.ciphertext_size(0) == CHUNK_SIZE
    assert enc.ciphertext_size(CHUNK_SIZE + 1) - enc.ciphertext_size(CHUNK_SIZE) == 1 + TAG_SIZE


def test_encrypt_needs_a_recipient() -> None:
    with pytest.raises(CryptoError):
        age.encrypt(b"data", [])


# --- interoperability: the age CLI -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 2 * 65536 + 1, 3 * MIB + 7])
def test_age_cli_decrypts_ours(
    size: int, identity: age.X25519Identity, key_file: Path, age_cli: str
) -> None:
    plain = data_of(size)
    sealed = age.encrypt(plain, [identity.recipient])
    assert run(age_cli, "-d", "-i", str(key_file), stdin=sealed) == plain


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 2 * 65536 + 1, 3 * MIB + 7])
def test_we_decrypt_age_cli(size: int, identity: age.X25519Identity, age_cli: str) -> None:
    plain = data_of(size)
    sealed = run(age_cli, "-r", str(identity.recipient), stdin=plain)
    assert age.decrypt(sealed, [identity]) == plain


def test_age_keygen_keys_parse(tmp_path: Path) -> None:
    keygen = shutil.which("age-keygen")
    assert keygen is not None, "age-keygen comes with the age package"
    path = tmp_path / "generated.txt"
    run(keygen, "-o", str(path))
    lines = path.read_text().splitlines()
    public = next(x.split(": ")[1] for x in lines if x.startswith("# public key: "))
    secret = next(x for x in lines if not x.startswith("#"))
    parsed = age.X25519Identity.parse(secret)
    assert str(parsed.recipient) == public
    assert parsed.export() == secret


def test_export_looks_like_age_keygen(identity: age.X25519Identity, key_file: Path) -> None:
    exported = identity.export()
    assert SECRET_RE.fullmatch(exported)
    assert RECIPIENT_RE.fullmatch(str(identity.recipient))
    keygen = shutil.which("age-keygen")
    assert keygen is not None
    # age-keygen -y derives the recipient from a key file: it must read ours and agree.
    derived = run(keygen, "-y", str(key_file)).decode().strip()
    assert derived == str(identity.recipient)


def test_multiple_recipients(age_cli: str, tmp_path: Path) -> None:
    people = [age.X25519Identity.generate() for _ in range(3)]
    outsider = age.X25519Identity.generate()
    plain = data_of(70_000)
    sealed = age.encrypt(plain, [p.recipient for p in people])
    assert len(age.parse_header(sealed[: header_length(sealed)]).stanzas) == 3
    for person in people:
        assert age.decrypt(sealed, [person]) == plain
    assert age.decrypt(sealed, [outsider, people[2]]) == plain
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [outsider])
    key = tmp_path / "second.txt"
    key.write_text(people[1].export() + "\n")
    assert run(age_cli, "-d", "-i", str(key), stdin=sealed) == plain
    assert pyrage.decrypt(sealed, [to_pyrage(people[0])]) == plain


def test_multiple_recipients_from_age_cli(age_cli: str) -> None:
    people = [age.X25519Identity.generate() for _ in range(3)]
    plain = data_of(1000)
    argv = [age_cli]
    for person in people:
        argv += ["-r", str(person.recipient)]
    sealed = run(*argv, stdin=plain)
    for person in people:
        assert age.decrypt(sealed, [person]) == plain


# --- interoperability: pyrage -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 2 * 65536 + 1])
def test_pyrage_decrypts_ours(size: int, identity: age.X25519Identity) -> None:
    plain = data_of(size)
    assert pyrage.decrypt(age.encrypt(plain, [identity.recipient]), [to_pyrage(identity)]) == plain


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 2 * 65536 + 1])
def test_we_decrypt_pyrage(size: int, identity: age.X25519Identity) -> None:
    plain = data_of(size)
    recipient = pyrage.x25519.Recipient.from_str(str(identity.recipient))
    assert age.decrypt(pyrage.encrypt(plain, [recipient]), [identity]) == plain


def test_keys_agree_with_pyrage(identity: age.X25519Identity) -> None:
    theirs = to_pyrage(identity)
    assert str(theirs) == identity.export()
    assert str(theirs.to_public()) == str(identity.recipient)
    generated = pyrage.x25519.Identity.generate()
    ours = age.X25519Identity.parse(str(generated))
    assert ours.export() == str(generated)
    assert str(ours.recipient) == str(generated.to_public())
    assert age.Recipient.parse(str(generated.to_public())) == ours.recipient


def test_pyrage_decrypts_our_passphrase_files() -> None:
    plain = data_of(70_000)
    sealed = age.encrypt_with_passphrase(plain, "a long passphrase", WORK)
    assert pyrage.passphrase.decrypt(sealed, "a long passphrase") == plain


def test_we_decrypt_pyrage_passphrase_files() -> None:
    # pyrage picks its own work factor (about a second of scrypt): one small file only.
    sealed = pyrage.passphrase.encrypt(b"from rage", "a long passphrase")
    header = age.parse_header(sealed[: header_length(sealed)])
    (stanza,) = header.stanzas
    assert stanza.type == "scrypt"
    limit = max(age.MAX_SCRYPT_WORK_FACTOR, int(stanza.args[1]))
    identity = age.ScryptIdentity("a long passphrase", max_work_factor=limit)
    assert age.decrypt(sealed, [identity]) == b"from rage"


# --- push-style streaming ---------------------------------------------------------------------


def test_push_style_in_odd_pieces(identity: age.X25519Identity) -> None:
    plain = data_of(5 * CHUNK_SIZE + 12_345)
    enc = age.Encryptor.to_recipients([identity.recipient])
    sealed = bytearray()
    for n, piece in enumerate(pieces(plain, [1, 7, 4093, 65535, 65537, 100_003, 0])):
        kinds: tuple[bytes | bytearray | memoryview, ...] = (
            piece,
            bytearray(piece),
            memoryview(piece),
        )
        sealed += enc.update(kinds[n % 3])
    sealed += enc.finish()
    assert len(sealed) == enc.ciphertext_size(len(plain))
    assert pyrage.decrypt(bytes(sealed), [to_pyrage(identity)]) == plain

    dec = age.Decryptor([identity])
    out = bytearray()
    for piece in pieces(bytes(sealed), [3, 1, 65551, 80_000, 17]):
        out += dec.update(piece)
    # Streaming: everything but the held-back last chunk is out before the end.
    assert len(out) >= len(plain) - CHUNK_SIZE
    out += dec.finish()
    assert out == plain


def test_decryptor_fed_byte_by_byte(identity: age.X25519Identity) -> None:
    plain = data_of(300)
    sealed = age.encrypt(plain, [identity.recipient])
    dec = age.Decryptor([identity])
    out = b"".join(dec.update(sealed[i : i + 1]) for i in range(len(sealed)))
    assert out + dec.finish() == plain


def test_encryptor_empty_updates(identity: age.X25519Identity) -> None:
    enc = age.Encryptor.to_recipients([identity.recipient])
    sealed = enc.update(b"") + enc.update(b"") + enc.finish()
    assert len(sealed) == enc.ciphertext_size(0)
    assert age.decrypt(sealed, [identity]) == b""


# --- refusals ---------------------------------------------------------------------------------


def test_wrong_key_is_refused(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"secret", [identity.recipient])
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [age.X25519Identity.generate()])
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [age.ScryptIdentity("guess")])
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [])


def test_wrong_passphrase_is_refused() -> None:
    sealed = age.encrypt_with_passphrase(b"secret", "right", WORK)
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [age.ScryptIdentity("wrong")])


@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_every_flipped_header_byte_is_refused(identity: age.X25519Identity, mask: int) -> None:
    sealed = age.encrypt(b"payload", [identity.recipient])
    assert age.decrypt(sealed, [identity]) == b"payload"
    for index in range(header_length(sealed)):
        with pytest.raises(DecryptError):
            age.decrypt(flip(sealed, index, mask), [identity])


def test_every_flipped_payload_byte_is_refused(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"a short payload", [identity.recipient])
    for index in range(header_length(sealed), len(sealed)):
        with pytest.raises(DecryptError):
            age.decrypt(flip(sealed, index), [identity])


@pytest.mark.parametrize("chunk", [0, 1, 2])
@pytest.mark.parametrize("offset", [0, 1000, SEALED_CHUNK_SIZE - 1])
def test_flipped_byte_in_each_chunk_is_refused(
    identity: age.X25519Identity, chunk: int, offset: int
) -> None:
    sealed = age.encrypt(data_of(2 * CHUNK_SIZE + 5000), [identity.recipient])
    start = header_length(sealed) + NONCE_SIZE
    index = min(start + chunk * SEALED_CHUNK_SIZE + offset, len(sealed) - 1)
    with pytest.raises(DecryptError):
        age.decrypt(flip(sealed, index), [identity])


def test_changed_mac_is_refused(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    end = header_length(sealed)
    mac_line = sealed[: end - 1].rsplit(b"\n", 1)[1]
    mac = age.b64decode(mac_line[4:].decode())
    forged = b"--- " + age.b64encode(flip(mac, 0)).encode()
    with pytest.raises(DecryptError):
        age.decrypt(sealed.replace(mac_line, forged), [identity])


def test_added_stanza_breaks_the_mac(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    tampered = sealed.replace(b"\n--- ", b"\n-> pli-extra arg\nAAAA\n--- ", 1)
    assert tampered != sealed
    with pytest.raises(DecryptError):
        age.decrypt(tampered, [identity])


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_truncated_at_a_chunk_boundary(identity: age.X25519Identity, chunks: int) -> None:
    sealed = age.encrypt(data_of(3 * CHUNK_SIZE + 100), [identity.recipient])
    cut = header_length(sealed) + NONCE_SIZE + chunks * SEALED_CHUNK_SIZE
    assert cut < len(sealed)
    with pytest.raises(DecryptError):
        age.decrypt(sealed[:cut], [identity])


def test_truncated_before_the_payload(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    end = header_length(sealed)
    for cut in (0, 10, end - 1, end, end + NONCE_SIZE - 1, end + NONCE_SIZE):
        with pytest.raises(DecryptError):
            age.decrypt(sealed[:cut], [identity])


@pytest.mark.parametrize("cut", [1, 5, TAG_SIZE, TAG_SIZE + 1, 40_000, SEALED_CHUNK_SIZE + 7])
def test_truncated_mid_chunk(identity: age.X25519Identity, cut: int) -> None:
    sealed = age.encrypt(data_of(2 * CHUNK_SIZE + 50_000), [identity.recipient])
    with pytest.raises(DecryptError):
        age.decrypt(sealed[:-cut], [identity])


@pytest.mark.parametrize("size", [100, CHUNK_SIZE, 2 * CHUNK_SIZE + 3])
@pytest.mark.parametrize("extra", [b"\x00", b"\n", bytes(TAG_SIZE), bytes(SEALED_CHUNK_SIZE)])
def test_trailing_bytes_are_refused(identity: age.X25519Identity, size: int, extra: bytes) -> None:
    sealed = age.encrypt(data_of(size), [identity.recipient])
    with pytest.raises(DecryptError):
        age.decrypt(sealed + extra, [identity])


def _file_with_chunks(
    identity: age.X25519Identity, chunks: list[tuple[bytes, bool]]
) -> tuple[bytes, bytes]:
    """An age file whose payload chunks are sealed by hand, with the given last flags."""
    file_key = bytes(range(FILE_KEY_SIZE))
    nonce = bytes(range(NONCE_SIZE))
    header = age.encode_header([age.x25519_stanza(identity.recipient, file_key)], file_key)
    aead = ChaCha20Poly1305(payload_key(file_key, nonce))
    body = b"".join(
        aead.encrypt(i.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), chunk, None)
        for i, (chunk, last) in enumerate(chunks)
    )
    return header + nonce + body, b"".join(c for c, _ in chunks)


def test_extra_empty_final_chunk_is_refused(identity: age.X25519Identity) -> None:
    full = data_of(CHUNK_SIZE)
    good, plain = _file_with_chunks(identity, [(full, True)])
    assert age.decrypt(good, [identity]) == plain  # the hand-made framing is right
    bad, _ = _file_with_chunks(identity, [(full, False), (b"", True)])
    with pytest.raises(DecryptError):
        age.decrypt(bad, [identity])
    with pytest.raises(pyrage.DecryptError):  # the reference implementations agree
        pyrage.decrypt(bad, [to_pyrage(identity)])


def test_short_chunk_before_the_last_is_refused(identity: age.X25519Identity) -> None:
    bad, _ = _file_with_chunks(identity, [(b"short", False), (b"tail", True)])
    with pytest.raises(DecryptError):
        age.decrypt(bad, [identity])


def test_last_flag_on_an_early_chunk_is_refused(identity: age.X25519Identity) -> None:
    full = data_of(CHUNK_SIZE)
    bad, _ = _file_with_chunks(identity, [(full, True), (b"more", True)])
    with pytest.raises(DecryptError):
        age.decrypt(bad, [identity])


def test_only_an_empty_chunk_is_an_empty_file(identity: age.X25519Identity) -> None:
    empty, _ = _file_with_chunks(identity, [(b"", True)])
    assert age.decrypt(empty, [identity]) == b""
    no_chunk, _ = _file_with_chunks(identity, [])
    with pytest.raises(DecryptError):
        age.decrypt(no_chunk, [identity])


def _mixed_file(identity: age.X25519Identity, passphrase: str) -> bytes:
    file_key = bytes(FILE_KEY_SIZE)
    stanzas = [
        age.x25519_stanza(identity.recipient, file_key),
        age.scrypt_stanza(passphrase, file_key, WORK),
    ]
    enc = age.Encryptor(stanzas, file_key)
    return enc.update(b"mixed") + enc.finish()


def test_scrypt_with_another_stanza_is_refused(identity: age.X25519Identity) -> None:
    sealed = _mixed_file(identity, "pw")
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [age.ScryptIdentity("pw")])
    # Whichever identity would open it: age requires the scrypt stanza to stand alone.
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [identity])
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [to_pyrage(identity)])


def test_two_scrypt_stanzas_are_refused() -> None:
    file_key = bytes(FILE_KEY_SIZE)
    stanzas = [age.scrypt_stanza("pw", file_key, WORK), age.scrypt_stanza("pw", file_key, WORK)]
    enc = age.Encryptor(stanzas, file_key)
    with pytest.raises(DecryptError):
        age.decrypt(enc.update(b"x") + enc.finish(), [age.ScryptIdentity("pw")])


def _scrypt_file(work: str) -> bytes:
    file_key = bytes(FILE_KEY_SIZE)
    stanza = age.Stanza("scrypt", (age.b64encode(bytes(16)), work), bytes(FILE_KEY_SIZE + 16))
    return age.encode_header([stanza], file_key) + bytes(NONCE_SIZE) + bytes(TAG_SIZE)


@pytest.mark.parametrize("work", ["21", "22", "64", "99"])
def test_scrypt_work_factor_above_the_limit(work: str) -> None:
    # Refused before any scrypt runs: 2**64 would never return, 2**22 would take 4 GiB.
    with pytest.raises(DecryptError):
        age.decrypt(_scrypt_file(work), [age.ScryptIdentity("pw")])


@pytest.mark.parametrize("work", ["0", "010", "100", "+9", "0x10", "1e1", ""])
def test_scrypt_work_factor_malformed(work: str) -> None:
    with pytest.raises(DecryptError):
        age.decrypt(_scrypt_file(work), [age.ScryptIdentity("pw")])


def test_scrypt_limit_is_configurable() -> None:
    sealed = age.encrypt_with_passphrase(b"x", "pw", 12)
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [age.ScryptIdentity("pw", max_work_factor=11)])
    assert age.decrypt(sealed, [age.ScryptIdentity("pw", max_work_factor=12)]) == b"x"


@pytest.mark.parametrize("work", [0, -1, age.MAX_SCRYPT_WORK_FACTOR + 1])
def test_scrypt_work_factor_refused_when_encrypting(work: int) -> None:
    with pytest.raises(CryptoError):
        age.encrypt_with_passphrase(b"x", "pw", work)


def _noncanonical(text: str) -> str:
    """Same bytes under a lenient decoder: set the unused low bits of the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert len(text) % 4 in (2, 3)
    return text[:-1] + alphabet[alphabet.index(text[-1]) | 1]


@pytest.mark.parametrize("where", ["share", "body", "mac"])
def test_noncanonical_base64_is_refused(identity: age.X25519Identity, where: str) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    end = header_length(sealed)
    lines = sealed[:end].decode().split("\n")  # intro, stanza, body, mac, ""
    assert lines[1].startswith("-> X25519 ")
    assert lines[3].startswith("--- ")
    if where == "share":
        lines[1] = "-> X25519 " + _noncanonical(lines[1].split(" ")[2])
    elif where == "body":
        lines[2] = _noncanonical(lines[2])
    else:
        lines[3] = "--- " + _noncanonical(lines[3][4:])
    with pytest.raises(DecryptError):
        age.decrypt("\n".join(lines).encode() + sealed[end:], [identity])


@pytest.mark.parametrize("line", [1, 2, 3])
def test_base64_padding_is_refused(identity: age.X25519Identity, line: int) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    end = header_length(sealed)
    lines = sealed[:end].split(b"\n")
    lines[line] += b"="
    with pytest.raises(DecryptError):
        age.decrypt(b"\n".join(lines) + sealed[end:], [identity])


def test_header_without_the_mac_line(identity: age.X25519Identity) -> None:
    sealed = age.encrypt(b"data", [identity.recipient])
    end = header_length(sealed)
    header = sealed[:end]
    without = header[: header.rindex(b"--- ")]
    with pytest.raises(DecryptError):
        age.parse_header(without)
    with pytest.raises(DecryptError):
        age.decrypt(without + sealed[end:], [identity])
    with pytest.raises(DecryptError):
        age.parse_header(without + b"-- " + header[header.rindex(b"--- ") + 4 :])


def test_mac_line_that_never_ends_is_bounded() -> None:
    dec = age.Decryptor([age.X25519Identity.generate()])
    with pytest.raises(DecryptError):
        dec.update(age.INTRO + b"--- " + b"A" * (2 * MIB))


def test_header_that_never_ends_is_bounded() -> None:
    dec = age.Decryptor([age.X25519Identity.generate()])
    with pytest.raises(DecryptError):
        dec.update(age.INTRO + b"-> X25519 " + b"A" * (2 * MIB))


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"age-encryption.org/v2\n-> X25519 AAAA\nAAAA\n--- AAAA\n",
        age.INTRO + b"--- " + age.b64encode(bytes(32)).encode() + b"\n",  # no stanza
        age.INTRO + b"-> \nAAAA\n--- AAAA\n",  # no stanza type
        age.INTRO + b"-> X25519  AAAA\nAAAA\n--- AAAA\n",  # empty argument
        age.INTRO + b"-> X25519 AAAA\r\nAAAA\r\n--- AAAA\r\n",  # CRLF
        age.INTRO + b"-> X25519 AAAA\n" + b"A" * 65 + b"\n--- AAAA\n",  # body line too long
        age.INTRO + b"-> X25519 AAAA\n" + b"A" * 64 + b"\n--- AAAA\n",  # no short final line
        age.INTRO + b"-> X25519 \xff\nAAAA\n--- AAAA\n",  # non-ASCII argument
        age.INTRO + b"-> X25519 AAAA\n\xff\xfe\n--- AAAA\n",  # non-ASCII body
        age.INTRO + b"-> X25519 AAAA\nAAAA\n--- \xff\n",  # non-ASCII MAC
        age.INTRO + b"-> X25519 AAAA\nAAAA\n---  AAAA\n",  # extra space
        age.INTRO + b"-> X25519 AAAA\nAAAA\n--- AAAA\nextra\n",  # junk after the MAC line
    ],
)
def test_malformed_headers_are_refused(header: bytes) -> None:
    with pytest.raises(DecryptError):
        age.parse_header(header)
    with pytest.raises(DecryptError):
        age.decrypt(header + bytes(NONCE_SIZE + TAG_SIZE), [age.X25519Identity.generate()])


def test_low_order_share_is_refused(identity: age.X25519Identity) -> None:
    stanza = age.Stanza("X25519", (age.b64encode(bytes(32)),), bytes(FILE_KEY_SIZE + 16))
    sealed = age.encode_header([stanza], bytes(FILE_KEY_SIZE)) + bytes(NONCE_SIZE + TAG_SIZE)
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [identity])


@pytest.mark.parametrize("body_size", [0, 1, 47, 48, 49, 96, 100])
def test_stanza_bodies_survive_the_header_encoding(body_size: int) -> None:
    stanzas = [
        age.Stanza("pli-test", ("a", "b"), data_of(body_size)),
        age.Stanza("other", (), b"x"),
    ]
    header = age.encode_header(stanzas, bytes(FILE_KEY_SIZE))
    assert age.find_header_end(header + b"payload") == len(header)
    assert age.parse_header(header).stanzas == tuple(stanzas)


# --- key encoding -----------------------------------------------------------------------------


def test_identity_round_trips_through_its_text(identity: age.X25519Identity) -> None:
    again = age.X25519Identity.parse(identity.export())
    assert again.export() == identity.export()
    assert again.recipient == identity.recipient
    assert age.Recipient.parse(str(identity.recipient)) == identity.recipient


def test_uppercase_recipient_is_refused(identity: age.X25519Identity) -> None:
    text = str(identity.recipient)
    with pytest.raises(CryptoError):
        age.Recipient.parse(text.upper())
    with pytest.raises(CryptoError):
        age.Recipient.parse("AGE1" + text[4:])


def test_lowercase_identity_is_refused(identity: age.X25519Identity) -> None:
    with pytest.raises(CryptoError):
        age.X25519Identity.parse(identity.export().lower())


def test_bad_checksum_is_refused(identity: age.X25519Identity) -> None:
    text = str(identity.recipient)
    other = "q" if text[-1] != "q" else "p"
    with pytest.raises(CryptoError):
        age.Recipient.parse(text[:-1] + other)
    secret = identity.export()
    changed = "Q" if secret[-1] != "Q" else "P"  # its own last character: never left as it was
    with pytest.raises(CryptoError):
        age.X25519Identity.parse(secret[:-1] + changed)


def test_keys_of_the_wrong_kind_are_refused(identity: age.X25519Identity) -> None:
    with pytest.raises(CryptoError):
        age.Recipient.parse(identity.export().lower())
    with pytest.raises(CryptoError):
        age.X25519Identity.parse(str(identity.recipient).upper())
    for junk in ("", "age1", "age1qqqq", "not a key", "AGE-SECRET-KEY-1"):
        with pytest.raises(CryptoError):
            age.Recipient.parse(junk)
        with pytest.raises(CryptoError):
            age.X25519Identity.parse(junk.upper())


@pytest.mark.parametrize("size", [31, 33])
def test_keys_of_the_wrong_length_are_refused(size: int) -> None:
    words = bech32.convertbits(bytes(size), 8, 5, True)
    assert words is not None
    with pytest.raises(CryptoError):
        age.Recipient.parse(bech32.bech32_encode("age", words))


# --- property tests ---------------------------------------------------------------------------

_SIZES = st.one_of(
    st.integers(0, 300),
    st.integers(CHUNK_SIZE - 20, CHUNK_SIZE + 20),
    st.integers(2 * CHUNK_SIZE - 20, 2 * CHUNK_SIZE + 20),
)
_ROUND_TRIP_KEY = age.X25519Identity.generate()


@settings(derandomize=True, max_examples=100, deadline=None)
@given(size=_SIZES, seed=st.integers(0, 2**32), cuts=st.lists(st.integers(1, 70_000), max_size=8))
def test_property_round_trip(size: int, seed: int, cuts: list[int]) -> None:
    plain = data_of(size, seed)
    enc = age.Encryptor.to_recipients([_ROUND_TRIP_KEY.recipient])
    sealed = b"".join(enc.update(p) for p in pieces(plain, cuts or [size or 1])) + enc.finish()
    assert len(sealed) == enc.ciphertext_size(size)
    dec = age.Decryptor([_ROUND_TRIP_KEY])
    out = b"".join(dec.update(p) for p in pieces(sealed, list(reversed(cuts)) or [1000]))
    assert out + dec.finish() == plain


# Deterministic files to mutate (fixed keys and nonces), so CI explores the same inputs.
_FUZZ_KEY = bytes(range(100, 100 + FILE_KEY_SIZE))
_FUZZ_NONCE = bytes(range(200, 200 + NONCE_SIZE))
_FUZZ_IDENTITY = age.X25519Identity(bytes(range(32)))


class _FixedKeyIdentity:
    """An age identity for a stanza type of its own, opening the fuzz files."""

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes | None:
        return _FUZZ_KEY if any(s.type == "pli-fuzz" for s in stanzas) else None


_FUZZ_IDENTITIES: list[age.Identity] = [
    _FUZZ_IDENTITY,
    age.ScryptIdentity("pw", max_work_factor=3),
    _FixedKeyIdentity(),
]


def _fuzz_file(plain: bytes) -> bytes:
    stanzas = [
        # well-formed, for a key nobody here holds: parsed, tried, skipped
        age.Stanza("X25519", (age.b64encode(bytes(range(1, 33))),), bytes(FILE_KEY_SIZE + 16)),
        age.Stanza("pli-fuzz", ("arg",), b"body"),
    ]
    payload = PayloadEncryptor(_FUZZ_KEY, _FUZZ_NONCE)
    return (
        age.encode_header(stanzas, _FUZZ_KEY)
        + _FUZZ_NONCE
        + payload.update(plain)
        + payload.finish()
    )


_FUZZ_PLAIN = [data_of(0), data_of(50), data_of(CHUNK_SIZE + 3)]
_FUZZ_FILES = [_fuzz_file(p) for p in _FUZZ_PLAIN]


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, bytes]:
    which = draw(st.integers(0, len(_FUZZ_FILES) - 1))
    data = bytearray(_FUZZ_FILES[which])
    header_end = header_length(_FUZZ_FILES[which])
    for _ in range(draw(st.integers(1, 3))):
        # Mostly in the header, where the parsing is.
        limit = draw(st.sampled_from([header_end, len(data)]))
        pos = draw(st.integers(0, max(0, min(limit, len(data)) - 1)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from(b"\n -=>A/+\x00\xff"))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data), _FUZZ_PLAIN[which]


_B64_SAMPLES = [
    "",
    "AAAA",
    "A",
    "AB",
    "AAAA=",
    age.b64encode(bytes(16)),
    age.b64encode(bytes(32)),
    age.b64encode(bytes(range(1, 33))),
    age.b64encode(bytes(48)),
]


@st.composite
def _header_like(draw: st.DrawFn) -> bytes:
    """Text shaped like an age header, built from pieces that reach deep into the parser."""
    words = st.one_of(
        st.sampled_from(
            ["X25519", "scrypt", "pli-fuzz", "1", "2", "3", "21", "010", *_B64_SAMPLES]
        ),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=6),
    )
    lines: list[bytes] = [age.INTRO.rstrip(b"\n")]
    for _ in range(draw(st.integers(0, 3))):
        args = draw(st.lists(words, min_size=1, max_size=3))
        lines.append(("-> " + " ".join(args)).encode())
        lines.append(draw(st.sampled_from(_B64_SAMPLES)).encode())
    lines.append(b"--- " + draw(st.sampled_from(_B64_SAMPLES)).encode())
    data = b"\n".join(lines) + b"\n"
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.binary(max_size=4)) + data[pos:]
    return data + draw(st.binary(max_size=40))


_HOSTILE = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: age.INTRO + b),
    _header_like(),
    _mutated().map(lambda pair: pair[0]),
)


@settings(derandomize=True, max_examples=1500, deadline=None)
@given(data=_HOSTILE, cuts=st.lists(st.integers(1, 300), max_size=4))
def test_property_hostile_bytes_only_raise_decrypt_errors(data: bytes, cuts: list[int]) -> None:
    dec = age.Decryptor(_FUZZ_IDENTITIES)
    try:
        for piece in pieces(data, cuts or [len(data) or 1]):
            dec.update(piece)
        dec.finish()
    except DecryptError:
        pass
    end = age.find_header_end(data)
    if end is not None:
        try:
            header = age.parse_header(data[:end])
            age.unwrap_file_key(header, _FUZZ_IDENTITIES)
        except DecryptError:
            pass


@settings(derandomize=True, max_examples=800, deadline=None)
@given(pair=_mutated())
def test_property_tampered_files_never_yield_other_plaintext(pair: tuple[bytes, bytes]) -> None:
    data, original = pair
    try:
        out = age.decrypt(data, _FUZZ_IDENTITIES)
    except DecryptError:
        return
    assert out == original


def test_fuzz_files_are_valid() -> None:
    # The property tests above start from these: they must decrypt when left alone.
    for sealed, plain in zip(_FUZZ_FILES, _FUZZ_PLAIN, strict=True):
        assert age.decrypt(sealed, _FUZZ_IDENTITIES) == plain
