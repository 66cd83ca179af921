"""Replays the normative vectors in tests/vectors/ against pli.crypto and the reference `age`.

keys.json and manifest.json are the formats of docs/spec/keys.md and docs/spec/manifest.md in
bytes: the code must reproduce every canonical form, signature and fingerprint exactly, open
every sealed copy, and refuse every invalid case with the stated pli.errors class.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import pli.errors
from pli.crypto import age, signing
from pli.crypto import manifest as mf
from pli.crypto.bundle import BUNDLE_KIND, PublicBundle, fingerprint, parse_bundle
from pli.crypto.identity import PRIVATE_KIND, DeviceIdentity
from pli.errors import DecryptError, PliError, SignatureError
from tests.unit.crypto.vector_inputs import device_of

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def _load(name: str) -> dict[str, Any]:
    data = json.loads((VECTORS / name).read_text(encoding="ascii"))
    assert isinstance(data, dict)
    return data


KEYS = _load("keys.json")
MANIFEST = _load("manifest.json")


ALICE = device_of(KEYS["inputs"])
SENDER = device_of(MANIFEST["sender"]["inputs"])
RECIPIENT = device_of(MANIFEST["recipient"]["inputs"])


def _error(name: str) -> type[PliError]:
    cls = getattr(pli.errors, name)
    assert isinstance(cls, type)
    assert issubclass(cls, PliError)
    return cls


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"the `{name}` CLI is required by these tests"
    return path


def _key_file(tmp_path: Path, identity: str) -> Path:
    path = tmp_path / "identity.txt"
    path.write_text(identity + "\n", encoding="ascii")
    path.chmod(0o600)
    return path


def _age_decrypt(tmp_path: Path, sealed: bytes, identity: str) -> bytes:
    """`age -d -i KEYFILE FILE`: the reference implementation, for X25519-encrypted files."""
    path = tmp_path / "sealed.age"
    path.write_bytes(sealed)
    key = _key_file(tmp_path, identity)
    run = subprocess.run(
        [_tool("age"), "-d", "-i", str(key), str(path)], capture_output=True, check=False
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    return run.stdout


def _age_decrypt_passphrase(tmp_path: Path, sealed: bytes, passphrase: str) -> bytes:
    """`age -d FILE` with the passphrase typed at a terminal: age reads passphrases from a
    terminal only, so it runs in a new session whose standard input is a pseudo-terminal."""
    path, out = tmp_path / "sealed.age", tmp_path / "plain.out"
    path.write_bytes(sealed)
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [_tool("age"), "-d", "-o", str(out), str(path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen, typed = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # the terminal closed: age has exited
                    break
                seen += data
                if not typed and b"passphrase" in seen.lower():
                    os.write(master, passphrase.encode("utf-8") + b"\n")
                    typed = True
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        code = proc.wait(timeout=10)
    finally:
        os.close(master)
    assert typed, seen.decode(errors="replace")
    assert code == 0, seen.decode(errors="replace")
    return out.read_bytes()


# --- keys.json: the public bundle -------------------------------------------------------------


def test_keys_derive_from_the_stated_secrets() -> None:
    derived = KEYS["derived"]
    public = ALICE.signing_key.public_key().public_bytes_raw()
    assert ALICE.age_identity.export() == derived["age_identity"]
    assert str(ALICE.age_identity.recipient) == derived["age_recipient"]
    assert public.hex() == derived["ed25519_public_hex"]
    assert age.b64encode(public) == derived["ed25519_public"]
    assert age.X25519Identity.parse(derived["age_identity"]).export() == derived["age_identity"]


def test_age_keygen_derives_the_same_recipient(tmp_path: Path) -> None:
    key = _key_file(tmp_path, KEYS["derived"]["age_identity"])
    run = subprocess.run(
        [_tool("age-keygen"), "-y", str(key)], capture_output=True, check=True, text=True
    )
    assert run.stdout == KEYS["derived"]["age_recipient"] + "\n"


def test_bundle_canonical_form_is_byte_exact() -> None:
    vector = KEYS["public_bundle"]
    canonical = signing.canonical_json(vector["signed"]["doc"])
    assert canonical == vector["canonical_doc"].encode("utf-8")
    assert vector["signed_message_hex"] == (b"pli/key-bundle/v1\n" + canonical).hex()
    assert vector["context"] == BUNDLE_KIND
    assert signing.canonical_json(vector["signed"]) == vector["stored_form"].encode("utf-8")


def test_bundle_signature_is_reproduced_exactly() -> None:
    vector = KEYS["public_bundle"]
    bundle = ALICE.public_bundle()
    assert bundle.signed == vector["signed"]
    assert age.b64decode(bundle.signed["sig"]).hex() == vector["signature_hex"]
    # Checked once more with the primitive alone, on the stated bytes.
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(KEYS["derived"]["ed25519_public_hex"]))
    key.verify(bytes.fromhex(vector["signature_hex"]), bytes.fromhex(vector["signed_message_hex"]))


def test_bundle_is_accepted_with_its_fingerprint() -> None:
    vector = KEYS["public_bundle"]
    bundle = parse_bundle(vector["signed"])
    inputs, derived = KEYS["inputs"], KEYS["derived"]
    assert (bundle.email, bundle.device, bundle.created) == (
        inputs["email"],
        inputs["device"],
        inputs["created"],
    )
    assert (bundle.age, bundle.ed25519) == (derived["age_recipient"], derived["ed25519_public"])
    assert bundle.fingerprint == vector["fingerprint"]
    assert fingerprint(bundle.age, bundle.ed25519) == vector["fingerprint"]
    digest = hashlib.sha256(vector["fingerprint_input"].encode("ascii")).hexdigest()
    assert vector["fingerprint"] == " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@pytest.mark.parametrize("case", KEYS["invalid_public_bundles"], ids=lambda c: str(c["name"]))
def test_invalid_public_bundle_is_refused(case: dict[str, Any]) -> None:
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        parse_bundle(case["signed"])
    assert refused.type is expected


def test_context_string_is_what_separates_the_signatures() -> None:
    # The cross-context case is a valid signature for its own context: only the context
    # string makes the bundle parser refuse it.
    case = next(
        c for c in KEYS["invalid_public_bundles"] if c["name"] == "signed_under_manifest_context"
    )
    doc = case["signed"]["doc"]
    key = ALICE.signing_key.public_key()
    key.verify(
        age.b64decode(case["signed"]["sig"]),
        mf.MANIFEST_V1.encode() + b"\n" + signing.canonical_json(doc),
    )
    with pytest.raises(SignatureError):
        signing.verify(key, BUNDLE_KIND, case["signed"])


# --- keys.json: the private bundle ------------------------------------------------------------


def test_private_bundle_opens_to_the_stated_document() -> None:
    vector = KEYS["private_bundle"]
    sealed = base64.b64decode(vector["sealed_b64"])
    lines = sealed.split(b"\n")
    salt = age.b64encode(bytes.fromhex(vector["age_params"]["scrypt_salt_hex"]))
    assert lines[0] == b"age-encryption.org/v1"
    assert lines[1] == f"-> scrypt {salt} {vector['work_factor']}".encode("ascii")
    assert vector["work_factor"] == 10

    plain = age.decrypt(sealed, [age.ScryptIdentity(vector["passphrase"])])
    assert plain == vector["plaintext"].encode("utf-8")
    assert plain == signing.canonical_json(vector["doc"])
    assert json.loads(plain) == vector["doc"]
    assert vector["doc"]["kind"] == PRIVATE_KIND

    opened = DeviceIdentity.unseal(sealed, vector["passphrase"])
    assert (opened.email, opened.device, opened.created) == (
        KEYS["inputs"]["email"],
        KEYS["inputs"]["device"],
        KEYS["inputs"]["created"],
    )
    assert opened.age_identity.export() == KEYS["derived"]["age_identity"]
    assert opened.signing_key.private_bytes_raw().hex() == KEYS["inputs"]["ed25519_seed_hex"]
    assert opened.public_bundle().signed == KEYS["public_bundle"]["signed"]


def test_private_bundle_opens_with_the_age_cli(tmp_path: Path) -> None:
    vector = KEYS["private_bundle"]
    sealed = base64.b64decode(vector["sealed_b64"])
    plain = _age_decrypt_passphrase(tmp_path, sealed, vector["passphrase"])
    assert plain == vector["plaintext"].encode("utf-8")


def test_private_bundle_sealed_by_pli_has_the_stated_form() -> None:
    vector = KEYS["private_bundle"]
    sealed = ALICE.seal(vector["passphrase"], vector["work_factor"])
    assert sealed.split(b"\n")[1].startswith(b"-> scrypt ")
    assert sealed.split(b"\n")[1].endswith(b" 10")
    plain = age.decrypt(sealed, [age.ScryptIdentity(vector["passphrase"])])
    assert plain == vector["plaintext"].encode("utf-8")


@pytest.mark.parametrize("case", KEYS["invalid_private_bundles"], ids=lambda c: str(c["name"]))
def test_invalid_private_bundle_is_refused(case: dict[str, Any]) -> None:
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        DeviceIdentity.unseal(base64.b64decode(case["sealed_b64"]), case["passphrase"])
    assert refused.type is expected


def test_work_factor_above_the_limit_is_refused_before_any_derivation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = next(
        c for c in KEYS["invalid_private_bundles"] if c["name"] == "work_factor_above_limit"
    )
    sealed = base64.b64decode(case["sealed_b64"])
    assert sealed.split(b"\n")[1].endswith(b" 21")

    def no_scrypt(passphrase: bytes, salt: bytes, work: int) -> bytes:
        raise AssertionError(f"scrypt was run at 2^{work}")

    monkeypatch.setattr(age, "_scrypt", no_scrypt)
    with pytest.raises(DecryptError):
        DeviceIdentity.unseal(sealed, case["passphrase"])


# --- manifest.json ----------------------------------------------------------------------------


def _sender_bundle() -> PublicBundle:
    return parse_bundle(MANIFEST["sender"]["signed_bundle"])


@pytest.mark.parametrize("who", ["sender", "recipient"])
def test_participants_derive_from_the_stated_secrets(who: str) -> None:
    vector = MANIFEST[who]
    identity = device_of(vector["inputs"])
    assert identity.age_identity.export() == vector["derived"]["age_identity"]
    assert str(identity.age_identity.recipient) == vector["derived"]["age_recipient"]
    assert identity.public_bundle().signed == vector["signed_bundle"]


def test_sender_is_the_key_bundle_vector() -> None:
    assert MANIFEST["sender"]["signed_bundle"] == KEYS["public_bundle"]["signed"]


# The manifest clients write (v2), and the one they still read (v1).
VERSIONS = [("manifest", "pli/manifest/v2"), ("manifest_v1", "pli/manifest/v1")]


def _fields(entry: mf.FileEntry) -> dict[str, Any]:
    return {k: v for k, v in vars(entry).items() if v is not None}


@pytest.mark.parametrize(("name", "kind"), VERSIONS)
def test_manifest_canonical_form_and_signature_are_byte_exact(name: str, kind: str) -> None:
    vector = MANIFEST[name]
    doc = vector["signed"]["doc"]
    canonical = signing.canonical_json(doc)
    assert vector["context"] == kind == doc["kind"]
    assert kind in mf.KINDS
    assert canonical == vector["canonical_doc"].encode("utf-8")
    assert vector["signed_message_hex"] == (kind.encode() + b"\n" + canonical).hex()
    assert SENDER.sign(kind, doc) == vector["signed"]
    assert age.b64decode(vector["signed"]["sig"]).hex() == vector["signature_hex"]
    key = SENDER.signing_key.public_key()
    key.verify(bytes.fromhex(vector["signature_hex"]), bytes.fromhex(vector["signed_message_hex"]))
    assert signing.canonical_json(vector["signed"]) == vector["plaintext"].encode("utf-8")


def test_manifest_sealed_by_pli_carries_the_same_signed_document() -> None:
    manifest = mf.Manifest.of(MANIFEST["manifest"]["signed"]["doc"])
    readers = [RECIPIENT.age_identity.recipient, SENDER.age_identity.recipient]
    sealed = mf.seal(SENDER, manifest, readers)
    plain = age.decrypt(sealed, [RECIPIENT.age_identity])
    assert plain == MANIFEST["manifest"]["plaintext"].encode("utf-8")
    opened, signed = mf.open_sealed(sealed, RECIPIENT.age_identity)
    assert opened == manifest
    assert signed == MANIFEST["manifest"]["signed"]


def test_a_v1_transfer_sealed_again_is_written_as_v2() -> None:
    """Re-sharing a v1 transfer: its entries' plaintext digests are dropped, the rest kept."""
    manifest = mf.Manifest.of(MANIFEST["manifest_v1"]["signed"]["doc"])
    assert all(e.sha256 for e in manifest.files)
    sealed = mf.seal(SENDER, manifest, [RECIPIENT.age_identity.recipient])
    _, signed = mf.open_sealed(sealed, RECIPIENT.age_identity)
    assert signed == MANIFEST["manifest"]["signed"]


@pytest.mark.parametrize("name", [name for name, _ in VERSIONS])
@pytest.mark.parametrize("who", ["recipient", "sender"])
def test_sealed_manifest_opens_and_verifies(who: str, name: str) -> None:
    vector = MANIFEST[name]
    reader = RECIPIENT if who == "recipient" else SENDER
    sealed = base64.b64decode(vector["sealed_b64"])
    assert vector["sealed_to"] == [
        str(RECIPIENT.age_identity.recipient),
        str(SENDER.age_identity.recipient),
    ]
    assert age.decrypt(sealed, [reader.age_identity]) == vector["plaintext"].encode("utf-8")
    opened, signed = mf.open_sealed(sealed, reader.age_identity)
    doc = vector["signed"]["doc"]
    assert opened.transfer == doc["transfer"]
    assert opened.sender == doc["sender"]
    assert opened.recipients == doc["recipients"]
    assert [_fields(f) for f in opened.files] == doc["files"]
    assert (opened.created, opened.expires, opened.message) == (
        doc["created"],
        doc["expires"],
        doc["message"],
    )
    mf.verify_signature(signed, _sender_bundle())


def test_sealed_manifest_is_not_for_other_keys() -> None:
    stranger = device_of({**MANIFEST["recipient"]["inputs"], "x25519_secret_hex": "11" * 32})
    with pytest.raises(DecryptError):
        mf.open_sealed(base64.b64decode(MANIFEST["manifest"]["sealed_b64"]), stranger.age_identity)


@pytest.mark.parametrize("name", [name for name, _ in VERSIONS])
@pytest.mark.parametrize("who", ["recipient", "sender"])
def test_sealed_manifest_opens_with_the_age_cli(tmp_path: Path, who: str, name: str) -> None:
    vector = MANIFEST[name]
    sealed = base64.b64decode(vector["sealed_b64"])
    plain = _age_decrypt(tmp_path, sealed, MANIFEST[who]["derived"]["age_identity"])
    assert plain == vector["plaintext"].encode("utf-8")


@pytest.mark.parametrize("index", [0, 1])
def test_files_match_the_signed_manifest(tmp_path: Path, index: int) -> None:
    blob = MANIFEST["files"][index]
    entry = MANIFEST["manifest"]["signed"]["doc"]["files"][index]
    v1_entry = MANIFEST["manifest_v1"]["signed"]["doc"]["files"][index]
    assert v1_entry == {**entry, "sha256": v1_entry["sha256"]}  # v2 is v1 without it
    assert "sha256" not in entry
    ciphertext = base64.b64decode(blob["ciphertext_b64"])
    plaintext = base64.b64decode(blob["plaintext_b64"])
    assert blob["id"] == entry["id"]
    assert (len(ciphertext), hashlib.sha256(ciphertext).hexdigest()) == (
        entry["ciphertext_size"],
        entry["ciphertext_sha256"],
    )
    assert (len(plaintext), hashlib.sha256(plaintext).hexdigest()) == (
        entry["size"],
        v1_entry["sha256"],
    )
    assert age.decrypt(ciphertext, [RECIPIENT.age_identity]) == plaintext
    assert _age_decrypt(tmp_path, ciphertext, MANIFEST["recipient"]["derived"]["age_identity"]) == (
        plaintext
    )


def _open_and_verify(sealed: bytes) -> mf.Manifest:
    """What a receiving client does with a sealed manifest before any check against the
    server's claims (those are Client._verified_manifest's, docs/spec/manifest.md)."""
    manifest, signed = mf.open_sealed(sealed, RECIPIENT.age_identity)
    mf.verify_signature(signed, _sender_bundle())
    return manifest


@pytest.mark.parametrize("case", MANIFEST["invalid_manifests"], ids=lambda c: str(c["name"]))
def test_invalid_manifest_is_refused(case: dict[str, Any]) -> None:
    sealed = base64.b64decode(case["sealed_b64"])
    # The sealed copy holds exactly the stated plaintext: the refusal is about its content.
    assert age.decrypt(sealed, [RECIPIENT.age_identity]) == case["plaintext"].encode("utf-8")
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        _open_and_verify(sealed)
    assert refused.type is expected
    with pytest.raises(expected):
        mf.verify_signature(case["signed"], _sender_bundle())


def test_deeply_nested_manifest_is_refused_without_a_crash() -> None:
    sealed = age.encrypt(b"[" * 100_000, [RECIPIENT.age_identity.recipient])
    with pytest.raises(SignatureError):
        mf.open_sealed(sealed, RECIPIENT.age_identity)


def test_vector_files_are_what_the_generator_writes() -> None:
    run = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
