"""The C2SP CCTV age test vectors (npm package cctv-age, pinned in tests/vectors/cctv), replayed
against pli.crypto.age.

Each vector is an age file and what decrypting it must do: succeed with a payload of a given
SHA-256, or fail with a given kind of failure. Every vector runs two ways:

- end to end through `Decryptor`, fed in uneven pieces and then all at once: it must succeed
  exactly when the vector says so, and whatever plaintext it released, even before refusing,
  must match the vector's payload hash;
- stage by stage through pli's own functions, which tells which check refused the file, and so
  which kind of failure pli saw. pli raises `DecryptError` for every one of them on purpose
  (pli.errors: crypto errors never say which check failed), so the kinds are told apart by the
  stage that refuses:

      armor failure    `dearmor`
      header failure   `find_header_end`/`parse_header` (the header, then the payload nonce),
                       an identity's `unwrap` (a malformed stanza of a type it reads), or
                       `unwrap_file_key` on a rule of the header (an scrypt stanza not alone)
      no match         `unwrap_file_key`, with no identity recognising any stanza
      HMAC failure     `unwrap_file_key`, with a file key whose header MAC does not verify
      payload failure  `PayloadDecryptor`

ASCII armor: pli implements the spec's strict armor decoding (`age.dearmor`), so the armored
vectors run like the others, with `dearmor` as their first stage.

Hybrid post-quantum recipients (`mlkem768x25519`, `AGE-SECRET-KEY-PQ-1…` identities) are not
implemented by pli. The vectors that expect success with them are not applicable, listed in
HYBRID_SUCCESS and counted so that the list cannot silently grow; every other hybrid vector
must still be refused, as its expected kind or as "no match" (a stanza of a type no identity
reads is ignored, as age requires, so a malformed hybrid stanza leaves pli with no match).

The vectors come from npm, not from this tree: `make pytest` installs them (or
`npm ci --prefix tests/vectors/cctv --no-audit --no-fund`); without them these tests fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pli.crypto import age
from pli.crypto.stream import FILE_KEY_SIZE, NONCE_SIZE, PayloadDecryptor
from pli.errors import DecryptError

PIN = "0.2.0"
PACKAGE = Path(__file__).resolve().parents[2] / "vectors" / "cctv" / "node_modules" / "cctv-age"
INSTALL = "run `make pytest`, or `npm ci --prefix tests/vectors/cctv --no-audit --no-fund`"
KINDS = ("success", "no match", "HMAC failure", "header failure", "payload failure")
ARMOR_KIND = "armor failure"
HYBRID_PREFIX = "AGE-SECRET-KEY-PQ-1"
# Vectors that expect success with a hybrid identity only: not applicable to pli (see above).
HYBRID_SUCCESS = frozenset(
    {"armor_hybrid", "hybrid", "hybrid_and_x25519", "hybrid_grease", "hybrid_multiple_recipients"}
)
# What cctv-age 0.2.0 holds, per expectation: a changed pin must be looked at, not absorbed.
EXPECTED_COUNTS = {
    "success": 26,
    "no match": 13,
    "HMAC failure": 1,
    "header failure": 62,
    "payload failure": 19,
    "armor failure": 22,
}
# Uneven pieces, some far from the 64 KiB + 16 chunk size, to exercise every buffering path.
PIECES = (1, 7, 100, 4096, 65552, 65553, 200_000)

# The package is the bundle esbuild makes of the testdata directory: one base64 constant per
# vector file, each after a comment naming the file.
_ENTRY = re.compile(
    r'^// \.\./testdata/([A-Za-z0-9_]+)\nvar \1_default = __toBinary\("([A-Za-z0-9+/=]*)"\);$',
    re.MULTILINE,
)
_EXPORT = re.compile(r"^  ([A-Za-z0-9_]+)_default as \1,?$", re.MULTILINE)


@dataclass(frozen=True)
class Vector:
    name: str
    expect: str
    payload_sha256: str | None
    identities: tuple[str, ...]
    passphrases: tuple[str, ...]
    armored: bool
    file: bytes  # the age file, decompressed

    @property
    def hybrid(self) -> bool:
        return any(i.startswith(HYBRID_PREFIX) for i in self.identities)

    def pli_identities(self) -> list[age.Identity]:
        """The identities pli implements, in the vector's order (X25519, then passphrases)."""
        found: list[age.Identity] = [
            age.X25519Identity.parse(i) for i in self.identities if not i.startswith(HYBRID_PREFIX)
        ]
        found += [age.ScryptIdentity(p) for p in self.passphrases]
        return found


def _parse(name: str, raw: bytes) -> Vector:
    """The testkit format: `key: value` lines, an empty line, then the (maybe zlib) age file."""
    text, sep, body = raw.partition(b"\n\n")
    assert sep, f"{name}: no empty line after the vector's header"
    values: dict[str, list[str]] = {}
    for line in text.decode("utf-8").split("\n"):
        key, colon, value = line.partition(": ")
        assert colon, f"{name}: malformed header line {line!r}"
        values.setdefault(key, []).append(value)
    known = {"expect", "payload", "identity", "passphrase", "armored", "compressed", "file key"}
    unknown = set(values) - known - {"comment"}
    # The format says to ignore such vectors; with a pinned package, a new key is new semantics
    # to read up on before the pin moves.
    assert not unknown, f"{name}: header keys this test does not know: {sorted(unknown)}"
    [expect] = values["expect"]
    assert expect in (*KINDS, ARMOR_KIND), f"{name}: unknown expectation {expect!r}"
    compressed = values.get("compressed", [""])[0]
    assert compressed in ("", "zlib"), f"{name}: unknown compression {compressed!r}"
    return Vector(
        name=name,
        expect=expect,
        payload_sha256=values.get("payload", [None])[0],
        identities=tuple(values.get("identity", [])),
        passphrases=tuple(values.get("passphrase", [])),
        armored=values.get("armored", ["no"])[0] == "yes",
        file=zlib.decompress(body) if compressed == "zlib" else body,
    )


def _load() -> dict[str, bytes]:
    """Every vector file by name, as raw bytes; empty when the package is not installed."""
    try:
        source = (PACKAGE / "index.js").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    entries = {name: base64.b64decode(b64, validate=True) for name, b64 in _ENTRY.findall(source)}
    exported = set(_EXPORT.findall(source))
    # A bundle laid out differently must not quietly shrink the suite.
    assert exported == set(entries), f"unreadable vectors: {sorted(exported ^ set(entries))}"
    return entries


RAW = _load()
VECTORS = {name: _parse(name, raw) for name, raw in RAW.items()}
NAMES = sorted(VECTORS) or ["cctv-age-not-installed"]


def _vector(name: str) -> Vector:
    if name not in VECTORS:
        pytest.fail(f"the CCTV age vectors are not installed in {PACKAGE}: {INSTALL}")
    return VECTORS[name]


def pieces(data: bytes) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        size = PIECES[i % len(PIECES)]
        yield data[pos : pos + size]
        pos, i = pos + size, i + 1


# --- pli's reading of a file --------------------------------------------------------------------


def end_to_end(
    data: bytes, identities: Sequence[age.Identity], *, whole: bool = False
) -> tuple[bool, bytes]:
    """Whether `Decryptor` accepts the file, and the plaintext it released before deciding."""
    dec = age.Decryptor(identities)
    released = bytearray()
    try:
        for piece in [data] if whole else pieces(data):
            released += dec.update(piece)
        released += dec.finish()
    except DecryptError:
        return False, bytes(released)
    return True, bytes(released)


def _header_stage(data: bytes) -> tuple[age.Header, int] | None:
    """The header and where it ends, or None if pli refuses it (or the payload nonce is cut)."""
    try:
        end = age.find_header_end(data)
        if end is None or len(data) < end + NONCE_SIZE:
            return None
        return age.parse_header(data[:end]), end
    except DecryptError:
        return None


def _key_stage(
    header: age.Header, signed: bytes, identities: Sequence[age.Identity]
) -> str | bytes:
    """The file key, or the kind of refusal."""
    # As unwrap_file_key does: the first identity that recognises a stanza decides.
    found: bytes | None = None
    for identity in identities:
        try:
            found = identity.unwrap(header.stanzas)
        except DecryptError:
            return "header failure"  # a malformed stanza of a type this identity reads
        if found is not None:
            break
    try:
        file_key = age.unwrap_file_key(header, identities)
    except DecryptError:
        scrypt_not_alone = len(header.stanzas) != 1 and any(
            s.type == "scrypt" for s in header.stanzas
        )
        if scrypt_not_alone or (found is not None and len(found) != FILE_KEY_SIZE):
            return "header failure"
        if found is None:
            return "no match"
        # The header parsed strictly, so it re-encodes to the same bytes under the right MAC.
        assert age.encode_header(header.stanzas, found) != signed, "refused a valid header"
        return "HMAC failure"
    assert file_key == found
    return file_key


def by_stage(
    data: bytes, identities: Sequence[age.Identity], *, armored: bool
) -> tuple[str, bytes]:
    """The kind of the first refusal ("success" if none) and the plaintext released."""
    if armored:
        try:
            data = age.dearmor(data)
        except DecryptError:
            return ARMOR_KIND, b""
    opened = _header_stage(data)
    if opened is None:
        return "header failure", b""
    header, end = opened
    file_key = _key_stage(header, data[:end], identities)
    if isinstance(file_key, str):
        return file_key, b""
    payload = PayloadDecryptor(file_key, data[end : end + NONCE_SIZE])
    released = bytearray()
    try:
        for piece in pieces(data[end + NONCE_SIZE :]):
            released += payload.update(piece)
        released += payload.finish()
    except DecryptError:
        return "payload failure", bytes(released)
    return "success", bytes(released)


# --- the vectors ----------------------------------------------------------------------------------


def test_the_vectors_are_installed_at_the_pin() -> None:
    if not VECTORS:
        pytest.fail(f"the CCTV age vectors are not installed in {PACKAGE}: {INSTALL}")
    installed = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert installed["version"] == PIN, f"cctv-age {installed['version']} is installed: {INSTALL}"
    assert Counter(v.expect for v in VECTORS.values()) == EXPECTED_COUNTS


def test_not_applicable_vectors_are_only_the_hybrid_successes() -> None:
    if not VECTORS:
        pytest.fail(f"the CCTV age vectors are not installed in {PACKAGE}: {INSTALL}")
    listed = {n for n, v in VECTORS.items() if v.hybrid and v.expect == "success"}
    assert listed == HYBRID_SUCCESS
    assert len(HYBRID_SUCCESS) == 5


@pytest.mark.parametrize("name", NAMES)
def test_vector(name: str) -> None:
    vector = _vector(name)
    if name in HYBRID_SUCCESS:
        return  # not applicable: pli has no hybrid identities (module docstring)
    identities = vector.pli_identities()
    kind, released = by_stage(vector.file, identities, armored=vector.armored)
    if kind == ARMOR_KIND:
        accepted, streamed = False, b""
    else:
        data = age.dearmor(vector.file) if vector.armored else vector.file
        accepted, streamed = end_to_end(data, identities)
        whole = end_to_end(data, identities, whole=True)
        assert whole == (accepted, streamed), f"{name}: the outcome depends on the pieces fed"

    # Never accept a file the vectors say to refuse, by either path.
    assert accepted == (vector.expect == "success"), f"{name}: accepted={accepted}"
    assert (kind == "success") == accepted, f"{name}: stages say {kind!r}"
    if vector.hybrid and vector.expect != "success":
        assert kind in (vector.expect, "no match"), f"{name}: refused as {kind!r}"
    else:
        assert kind == vector.expect, f"{name}: refused as {kind!r}"
    assert streamed == released, f"{name}: the two paths released different plaintext"
    if vector.payload_sha256 is not None:
        assert hashlib.sha256(released).hexdigest() == vector.payload_sha256, name
    else:
        assert released == b"", f"{name}: released plaintext the vector does not describe"


# --- ASCII armor and the age CLI ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 47, 48, 49, 70_000])
def test_dearmor_reads_age_cli_armor(size: int) -> None:
    age_cli = shutil.which("age")
    if age_cli is None:
        pytest.fail("the reference `age` CLI is needed: run scripts/system-deps.sh")
    identity = age.X25519Identity.generate()
    plain = bytes(range(256)) * (size // 256) + bytes(size % 256)
    argv = [age_cli, "--armor", "-r", str(identity.recipient)]
    proc = subprocess.run(argv, input=plain, capture_output=True, check=True, timeout=60)
    armored = proc.stdout
    assert age.decrypt(age.dearmor(armored), [identity]) == plain
    assert age.decrypt(age.dearmor(armored.replace(b"\n", b"\r\n")), [identity]) == plain
    with pytest.raises(DecryptError):
        age.dearmor(armored.replace(b"\n", b"\n\n", 1))
