"""pli.crypto.links: share-link and file-request fragments, request documents, request keys and
answers (docs/spec/links.md).

- tests/vectors/links/vectors.json replayed: every fixed value decodes, derives and verifies to
  what the file states, and every invalid case is refused with the stated pli.errors class;
- round trips of every function, and their refusals;
- truncated and altered fragments, systematically and under hypothesis: refused with a pli
  error, never another exception, and never opened to another key;
- the reference `age` CLI: it decrypts a link's files with the fragment as its identity file,
  and a passphrase-wrapped fragment is an age passphrase-encrypted identity file, both ways.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pli.errors
from pli.crypto import age, signing
from pli.crypto import links as lk
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.identity import DeviceIdentity
from pli.crypto.manifest import FileEntry, key_entry
from pli.errors import (
    CryptoError,
    DecryptError,
    IntegrityError,
    PliError,
    UsageError,
)
from tests.unit.crypto.vector_inputs import device_of

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
GENERATOR = VECTORS / "links" / "generate_links.py"
V: dict[str, Any] = json.loads((VECTORS / "links" / "vectors.json").read_text(encoding="ascii"))
WORK = 10  # a scrypt work factor cheap enough for tests
HEX = "ab" * 32
_BECH32_UPPER = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# What an altered fragment may raise: that it is incomplete or altered, or (passphrase form,
# payload changed) that it does not decrypt, which a wrong passphrase cannot be told from.
ALTERED = (IntegrityError, DecryptError)
SLOW = settings(
    derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _error(name: str) -> type[PliError]:
    cls = getattr(pli.errors, name)
    assert isinstance(cls, type)
    assert issubclass(cls, PliError)
    return cls


REQUESTER = device_of(V["requester"])
REQUESTER_BUNDLE = parse_bundle(V["requester"]["signed_bundle"])
REQUEST_ID = V["request"]["id"]
TRANSFER_ID = V["answer"]["transfer"]
REQUEST_KEYS = lk.RequestKeys(
    age.X25519Identity(bytes.fromhex(V["request"]["x25519_secret_hex"])),
    bytes.fromhex(V["request"]["secret_hex"]),
)


def _hkdf(secret: bytes, info: str) -> bytes:
    """HKDF-SHA256 with an empty salt, computed here without pli's helper."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode("ascii"))
    return kdf.derive(secret)


def _outcome(attempt: Callable[[], str]) -> str | PliError:
    """What `attempt` returns, or the pli error it raises; any other exception propagates."""
    try:
        return attempt()
    except PliError as exc:
        return exc


def _one_line(exc: PliError) -> None:
    assert exc.message
    assert "\n" not in exc.message


# --- the `age` CLI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def age_cli() -> str:
    path = shutil.which("age")
    if path is None:
        pytest.fail("the reference `age` CLI is needed: run scripts/system-deps.sh")
    return path


@pytest.fixture(scope="module")
def age_keygen() -> str:
    path = shutil.which("age-keygen")
    if path is None:
        pytest.fail("`age-keygen` comes with the age package: run scripts/system-deps.sh")
    return path


def _run(*argv: str) -> bytes:
    proc = subprocess.run(list(argv), capture_output=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _with_terminal(argv: list[str], passphrase: str) -> None:
    """Run `age` with a pseudo-terminal as its standard input, typing `passphrase` at each of
    its prompts: age reads passphrases from a terminal only, never from a pipe, a flag or the
    environment. A new session, so that the pseudo-terminal is the one it finds."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen, typed = b"", 0
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
                if seen.lower().count(b"passphrase") > typed:
                    os.write(master, passphrase.encode("utf-8") + b"\n")
                    typed += 1
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        code = proc.wait(timeout=10)
    finally:
        os.close(master)
    assert typed, seen.decode(errors="replace")
    assert code == 0, seen.decode(errors="replace")


# --- vectors: share links ---------------------------------------------------------------------


def test_link_vector_fragment_is_the_identity() -> None:
    vector = V["link"]
    identity = age.X25519Identity(bytes.fromhex(vector["x25519_secret_hex"]))
    assert identity.export() == vector["identity"] == vector["fragment"]
    assert str(identity.recipient) == vector["recipient"]
    assert lk.link_fragment(identity) == vector["fragment"]
    parsed = lk.parse_link_fragment(vector["fragment"])
    assert not parsed.needs_passphrase
    assert parsed.open().export() == vector["identity"]
    assert lk.link_recipient_entry(identity.recipient) == vector["recipient_entry"]
    assert vector["recipient_entry"] == {
        "email": "",
        "device": "",
        "age": vector["recipient"],
        "ed25519": "",
    }


def test_link_vector_url() -> None:
    vector = V["link"]
    parts = urlsplit(vector["url"])
    assert parts.path == f"/l/{vector['id']}"
    assert parts.fragment == vector["fragment"]
    assert (parts.query, parts.netloc) == ("", "pli.example.org")


def test_link_vector_file_opens_with_pli() -> None:
    vector = V["link"]
    sealed = base64.b64decode(vector["file"]["sealed_b64"])
    identity = lk.parse_link_fragment(vector["fragment"]).open()
    assert age.decrypt(sealed, [identity]) == base64.b64decode(vector["file"]["plaintext_b64"])


def test_link_vector_opens_with_age_and_the_fragment(tmp_path: Path, age_cli: str) -> None:
    vector = V["link"]
    key = tmp_path / "fragment.txt"
    key.write_text(vector["fragment"], encoding="ascii")
    sealed = tmp_path / "file.age"
    sealed.write_bytes(base64.b64decode(vector["file"]["sealed_b64"]))
    plain = _run(age_cli, "-d", "-i", str(key), str(sealed))
    assert plain == base64.b64decode(vector["file"]["plaintext_b64"])


def test_link_vector_recipient_by_age_keygen(tmp_path: Path, age_keygen: str) -> None:
    key = tmp_path / "fragment.txt"
    key.write_text(V["link"]["fragment"] + "\n", encoding="ascii")
    assert _run(age_keygen, "-y", str(key)).decode() == V["link"]["recipient"] + "\n"


def test_wrapped_vector_opens_to_the_identity() -> None:
    vector = V["wrapped_link"]
    wrapped = base64.b64decode(vector["wrapped_b64"])
    assert vector["fragment"] == "p1." + lk.b64url(wrapped)
    assert vector["work_factor"] == 10
    salt = age.b64encode(bytes.fromhex(vector["age_params"]["scrypt_salt_hex"]))
    lines = wrapped.split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    assert lines[1] == f"-> scrypt {salt} 10".encode("ascii")
    assert lines[3].startswith(b"--- ")

    parsed = lk.parse_link_fragment(vector["fragment"])
    assert parsed.needs_passphrase
    assert parsed.wrapped == wrapped
    identity = parsed.open(vector["passphrase"])
    assert identity.export() == vector["opens_to_identity"] == V["link"]["identity"]
    assert str(identity.recipient) == vector["opens_to_recipient"] == V["link"]["recipient"]
    plain = age.decrypt(wrapped, [age.ScryptIdentity(vector["passphrase"])])
    assert plain == vector["plaintext"].encode("ascii") == V["link"]["identity"].encode("ascii")


def test_wrapped_vector_decrypts_with_age(tmp_path: Path, age_cli: str) -> None:
    vector = V["wrapped_link"]
    wrapped, out = tmp_path / "wrapped.age", tmp_path / "identity.txt"
    wrapped.write_bytes(base64.b64decode(vector["wrapped_b64"]))
    _with_terminal([age_cli, "-d", "-o", str(out), str(wrapped)], vector["passphrase"])
    assert out.read_bytes() == vector["plaintext"].encode("ascii")


def test_wrapped_vector_is_an_age_identity_file(tmp_path: Path, age_cli: str) -> None:
    """age takes a passphrase-encrypted file as an identity file: the decoded fragment is one,
    and with it age decrypts the link's file after asking for the passphrase."""
    vector = V["wrapped_link"]
    wrapped, sealed, out = tmp_path / "wrapped.age", tmp_path / "file.age", tmp_path / "out"
    wrapped.write_bytes(lk.b64url_decode(vector["fragment"].removeprefix("p1.")))
    sealed.write_bytes(base64.b64decode(V["link"]["file"]["sealed_b64"]))
    argv = [age_cli, "-d", "-i", str(wrapped), "-o", str(out), str(sealed)]
    _with_terminal(argv, vector["passphrase"])
    assert out.read_bytes() == base64.b64decode(V["link"]["file"]["plaintext_b64"])


@pytest.mark.parametrize("case", V["invalid_link_fragments"], ids=lambda c: str(c["name"]))
def test_invalid_link_fragment_is_refused(case: dict[str, Any]) -> None:
    expected = _error(case["error"])
    if case["stage"] == "open":
        parsed = lk.parse_link_fragment(case["fragment"])
        assert parsed.needs_passphrase
        with pytest.raises(expected) as refused:
            parsed.open(case["passphrase"])
    else:
        with pytest.raises(expected) as refused:
            lk.parse_link_fragment(case["fragment"])
    assert refused.type is expected
    _one_line(refused.value)


# --- vectors: file requests -------------------------------------------------------------------


def test_request_vector_fragment() -> None:
    vector = V["request"]
    identity = age.X25519Identity(bytes.fromhex(vector["x25519_secret_hex"]))
    assert identity.export() == vector["identity"]
    assert str(identity.recipient) == vector["recipient"]
    secret = bytes.fromhex(vector["secret_hex"])
    assert len(secret) == lk.SECRET_SIZE == 32
    text = f"{vector['recipient']}.{lk.b64url(secret)}"
    assert text == vector["fragment"] == str(REQUEST_KEYS.fragment)
    parsed = lk.parse_request_fragment(vector["fragment"])
    assert (str(parsed.recipient), parsed.secret) == (vector["recipient"], secret)
    parts = urlsplit(vector["url"])
    assert (parts.path, parts.fragment) == (f"/r/{vector['id']}", vector["fragment"])


def test_request_vector_derivations() -> None:
    vector = V["request"]
    secret = bytes.fromhex(vector["secret_hex"])
    assert vector["document_info"] == "pli/request/v1 document"
    assert vector["answer_info"] == "pli/request/v1 answer"
    document_secret = _hkdf(secret, vector["document_info"])
    assert document_secret.hex() == vector["document_x25519_secret_hex"]
    document = age.X25519Identity(document_secret)
    assert document.export() == vector["document_identity"]
    assert str(document.recipient) == vector["document_recipient"]
    derived = lk.parse_request_fragment(vector["fragment"]).document_identity
    assert derived.export() == vector["document_identity"]
    assert _hkdf(secret, vector["answer_info"]).hex() == vector["answer_mac_key_hex"]
    assert vector["sender_info"] == "pli/request/v1 sender"
    token = base64.urlsafe_b64encode(_hkdf(secret, vector["sender_info"])).rstrip(b"=").decode()
    assert token == vector["sender_token"]
    assert lk.parse_request_fragment(vector["fragment"]).sender_token == vector["sender_token"]


def test_request_vector_answer_mac() -> None:
    vector = V["answer"]
    doc = vector["doc"]
    canonical = signing.canonical_json(doc)
    assert canonical == vector["canonical_doc"].encode("utf-8")
    message = b"pli/answer/v1\n" + canonical
    assert message.hex() == vector["mac_message_hex"]
    key = bytes.fromhex(V["request"]["answer_mac_key_hex"])
    assert hmac.new(key, message, hashlib.sha256).hexdigest() == vector["mac_hex"]
    fragment = lk.parse_request_fragment(V["request"]["fragment"])
    assert fragment.mac(doc).hex() == vector["mac_hex"]
    assert vector["envelope"] == {
        "doc": doc,
        "mac": age.b64encode(bytes.fromhex(vector["mac_hex"])),
    }
    assert signing.canonical_json(vector["envelope"]) == vector["plaintext"].encode("utf-8")


@pytest.mark.parametrize("case", V["invalid_request_fragments"], ids=lambda c: str(c["name"]))
def test_invalid_request_fragment_is_refused(case: dict[str, Any]) -> None:
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        lk.parse_request_fragment(case["fragment"])
    assert refused.type is expected
    _one_line(refused.value)


def test_requester_is_the_key_bundle_vector() -> None:
    keys = json.loads((VECTORS / "keys.json").read_text(encoding="ascii"))
    assert V["requester"]["signed_bundle"] == keys["public_bundle"]["signed"]
    assert REQUESTER.public_bundle().signed == V["requester"]["signed_bundle"]


def test_request_document_vector() -> None:
    vector = V["request_document"]
    doc = vector["signed"]["doc"]
    canonical = signing.canonical_json(doc)
    assert canonical == vector["canonical_doc"].encode("utf-8")
    assert vector["signed_message_hex"] == (b"pli/request/v1\n" + canonical).hex()
    assert REQUESTER.sign(lk.REQUEST_KIND, doc) == vector["signed"]
    assert age.b64decode(vector["signed"]["sig"]).hex() == vector["signature_hex"]
    assert doc["requester"] == key_entry(REQUESTER_BUNDLE)
    assert doc["recipient"] == V["request"]["recipient"]
    assert vector["sealed_to"] == [V["request"]["document_recipient"]]

    sealed = base64.b64decode(vector["sealed_b64"])
    document = age.X25519Identity.parse(V["request"]["document_identity"])
    assert age.decrypt(sealed, [document]) == vector["plaintext"].encode("utf-8")
    fragment = lk.parse_request_fragment(V["request"]["fragment"])
    opened = lk.open_document(sealed, REQUEST_ID, fragment)
    assert opened == lk.RequestDocument(REQUEST_ID, doc["requester"], doc["title"], doc["created"])
    assert opened.fingerprint == vector["requester_fingerprint"] == REQUESTER_BUNDLE.fingerprint


def test_request_document_vector_opens_with_age(tmp_path: Path, age_cli: str) -> None:
    key, sealed = tmp_path / "document-key.txt", tmp_path / "document.age"
    key.write_text(V["request"]["document_identity"] + "\n", encoding="ascii")
    sealed.write_bytes(base64.b64decode(V["request_document"]["sealed_b64"]))
    plain = _run(age_cli, "-d", "-i", str(key), str(sealed))
    assert plain == V["request_document"]["plaintext"].encode("utf-8")


@pytest.mark.parametrize(
    "case", V["request_document"]["invalid_in_context"], ids=lambda c: str(c["name"])
)
def test_request_document_refused_in_another_context(case: dict[str, Any]) -> None:
    sealed = base64.b64decode(V["request_document"]["sealed_b64"])
    fragment = lk.parse_request_fragment(case["fragment"])
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        lk.open_document(sealed, case["request_id"], fragment)
    assert refused.type is expected


@pytest.mark.parametrize(
    "case", V["request_document"]["invalid_documents"], ids=lambda c: str(c["name"])
)
def test_invalid_request_document_is_refused(case: dict[str, Any]) -> None:
    sealed = base64.b64decode(case["sealed_b64"])
    fragment = lk.parse_request_fragment(V["request"]["fragment"])
    assert age.decrypt(sealed, [fragment.document_identity]) == case["plaintext"].encode("utf-8")
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        lk.open_document(sealed, REQUEST_ID, fragment)
    assert refused.type is expected


def test_request_key_vector() -> None:
    vector = V["request_key"]
    doc = vector["signed"]["doc"]
    canonical = signing.canonical_json(doc)
    assert canonical == vector["canonical_doc"].encode("utf-8")
    assert vector["signed_message_hex"] == (b"pli/request-key/v1\n" + canonical).hex()
    assert REQUESTER.sign(lk.REQUEST_KEY_KIND, doc) == vector["signed"]
    assert doc["identity"] == V["request"]["identity"]
    assert age.b64decode(doc["secret"]).hex() == V["request"]["secret_hex"]
    assert vector["sealed_to"] == [str(REQUESTER.age_identity.recipient)]
    sealed = base64.b64decode(vector["sealed_b64"])
    keys, title = lk.open_request_key(sealed, REQUESTER, REQUEST_ID, [REQUESTER_BUNDLE])
    assert keys.identity.export() == V["request"]["identity"]
    assert keys.secret.hex() == V["request"]["secret_hex"]
    assert str(keys.fragment) == V["request"]["fragment"]
    assert title == doc["title"] == V["request_document"]["signed"]["doc"]["title"]


@pytest.mark.parametrize(
    "case", V["request_key"]["invalid_request_keys"], ids=lambda c: str(c["name"])
)
def test_invalid_request_key_is_refused(case: dict[str, Any]) -> None:
    sealed = base64.b64decode(case["sealed_b64"])
    assert age.decrypt(sealed, [REQUESTER.age_identity]) == case["plaintext"].encode("utf-8")
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        lk.open_request_key(sealed, REQUESTER, REQUEST_ID, [REQUESTER_BUNDLE])
    assert refused.type is expected
    _one_line(refused.value)


def test_answer_vector() -> None:
    vector = V["answer"]
    sealed = base64.b64decode(vector["sealed_b64"])
    assert vector["sealed_to"] == [V["request"]["recipient"]]
    assert age.decrypt(sealed, [REQUEST_KEYS.identity]) == vector["plaintext"].encode("utf-8")
    answer = lk.open_answer(sealed, REQUEST_KEYS, REQUEST_ID, TRANSFER_ID)
    doc = vector["doc"]
    assert answer == lk.Answer(
        REQUEST_ID,
        TRANSFER_ID,
        doc["name"],
        doc["message"],
        [FileEntry(**f) for f in doc["files"]],
        doc["created"],
    )
    ciphertext = base64.b64decode(vector["file"]["ciphertext_b64"])
    plaintext = base64.b64decode(vector["file"]["plaintext_b64"])
    entry = answer.files[0]
    assert (entry.ciphertext_size, entry.ciphertext_sha256) == (
        len(ciphertext),
        hashlib.sha256(ciphertext).hexdigest(),
    )
    assert (entry.size, entry.sha256) == (len(plaintext), hashlib.sha256(plaintext).hexdigest())
    assert age.decrypt(ciphertext, [REQUEST_KEYS.identity]) == plaintext


def test_answer_vector_opens_with_age(tmp_path: Path, age_cli: str) -> None:
    key, sealed = tmp_path / "request-key.txt", tmp_path / "file.age"
    key.write_text(V["request"]["identity"] + "\n", encoding="ascii")
    sealed.write_bytes(base64.b64decode(V["answer"]["file"]["ciphertext_b64"]))
    plain = _run(age_cli, "-d", "-i", str(key), str(sealed))
    assert plain == base64.b64decode(V["answer"]["file"]["plaintext_b64"])


@pytest.mark.parametrize("case", V["answer"]["invalid_answers"], ids=lambda c: str(c["name"]))
def test_invalid_answer_is_refused(case: dict[str, Any]) -> None:
    sealed = base64.b64decode(case["sealed_b64"])
    assert age.decrypt(sealed, [REQUEST_KEYS.identity]) == case["plaintext"].encode("utf-8")
    expected = _error(case["error"])
    with pytest.raises(expected) as refused:
        lk.open_answer(sealed, REQUEST_KEYS, REQUEST_ID, TRANSFER_ID)
    assert refused.type is expected
    _one_line(refused.value)


def test_vector_file_is_what_the_generator_writes() -> None:
    run = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


# --- link fragments: round trips --------------------------------------------------------------


def test_link_fragment_round_trip() -> None:
    identity = lk.new_link()
    fragment = lk.link_fragment(identity)
    assert fragment == identity.export()
    assert fragment.startswith("AGE-SECRET-KEY-1")
    assert len(fragment) == 74
    parsed = lk.parse_link_fragment(fragment)
    assert not parsed.needs_passphrase
    assert parsed.open().export() == fragment
    assert parsed.open("ignored when there is no wrapping").export() == fragment


@pytest.mark.parametrize("passphrase", ["a link passphrase", "é 🧪 ünïcode", " spaces "])
def test_link_fragment_with_passphrase_round_trip(passphrase: str) -> None:
    identity = lk.new_link()
    fragment = lk.link_fragment(identity, passphrase, work_factor=WORK)
    assert fragment.startswith(lk.WRAPPED_PREFIX)
    assert set(fragment[3:]) <= set(_B64URL)
    assert identity.export() not in fragment
    parsed = lk.parse_link_fragment(fragment)
    assert parsed.needs_passphrase
    assert parsed.identity is None
    assert parsed.open(passphrase).export() == identity.export()


def test_wrapped_fragment_is_an_age_file_of_the_identity_alone() -> None:
    identity = lk.new_link()
    parsed = lk.parse_link_fragment(lk.link_fragment(identity, "pw", work_factor=WORK))
    assert parsed.wrapped is not None
    end = age.find_header_end(parsed.wrapped)
    assert end is not None
    header = age.parse_header(parsed.wrapped[:end])
    assert [(s.type, s.args[1]) for s in header.stanzas] == [("scrypt", str(WORK))]
    plain = age.decrypt(parsed.wrapped, [age.ScryptIdentity("pw")])
    assert plain == identity.export().encode("ascii")


def test_wrapping_uses_work_factor_18_by_default() -> None:
    parsed = lk.parse_link_fragment(lk.link_fragment(lk.new_link(), "pw"))
    assert parsed.wrapped is not None
    assert parsed.wrapped.split(b"\n")[1].endswith(b" 18")


def test_wrapping_is_randomised() -> None:
    identity = lk.new_link()
    one = lk.link_fragment(identity, "pw", work_factor=WORK)
    two = lk.link_fragment(identity, "pw", work_factor=WORK)
    assert one != two


def test_empty_passphrase_is_refused_when_wrapping() -> None:
    with pytest.raises(UsageError):
        lk.link_fragment(lk.new_link(), "")


@pytest.mark.parametrize("given_passphrase", [None, ""])
def test_a_wrapped_fragment_asks_for_its_passphrase(given_passphrase: str | None) -> None:
    parsed = lk.parse_link_fragment(lk.link_fragment(lk.new_link(), "pw", work_factor=WORK))
    with pytest.raises(UsageError) as refused:
        parsed.open(given_passphrase)
    _one_line(refused.value)


@pytest.mark.parametrize("guess", ["wrong", "pw ", "PW", "p", "pw\n"])
def test_wrong_passphrase_is_one_decrypt_error(guess: str) -> None:
    parsed = lk.parse_link_fragment(lk.link_fragment(lk.new_link(), "pw", work_factor=WORK))
    with pytest.raises(DecryptError) as refused:
        parsed.open(guess)
    assert refused.type is DecryptError
    assert refused.value.message == "wrong passphrase for this link (or the link was altered)"
    _one_line(refused.value)


def test_a_wrapping_of_something_else_is_refused() -> None:
    """A well-formed passphrase file whose plaintext is not exactly an identity: refused as an
    altered link once opened, or, when its size differs, at once."""
    identity = lk.new_link().export()
    for plain, stage in [
        (identity.lower().encode("ascii"), "open"),  # same length, not an identity
        ((identity[:-1] + "\n").encode("ascii"), "open"),
        ((identity + "\n").encode("ascii"), "parse"),
        (b"", "parse"),
    ]:
        text = lk.WRAPPED_PREFIX + lk.b64url(age.encrypt_with_passphrase(plain, "pw", WORK))
        with pytest.raises(IntegrityError) as refused:
            lk.parse_link_fragment(text).open("pw")
        _one_line(refused.value)
        if stage == "parse":
            with pytest.raises(IntegrityError):
                lk.parse_link_fragment(text)


def test_work_factor_above_the_limit_is_refused_as_a_wrong_passphrase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapped = base64.b64decode(V["wrapped_link"]["wrapped_b64"])
    end = age.find_header_end(wrapped)
    assert end is not None
    stanza = age.parse_header(wrapped[:end]).stanzas[0]
    file_key = bytes.fromhex(V["wrapped_link"]["age_params"]["file_key_hex"])
    costly = age.Stanza("scrypt", (stanza.args[0], "21"), stanza.body)
    text = lk.WRAPPED_PREFIX + lk.b64url(age.encode_header([costly], file_key) + wrapped[end:])

    def no_scrypt(passphrase: bytes, salt: bytes, work: int) -> bytes:
        raise AssertionError(f"scrypt was run at 2^{work}")

    monkeypatch.setattr(age, "_scrypt", no_scrypt)
    with pytest.raises(DecryptError):
        lk.parse_link_fragment(text).open(V["wrapped_link"]["passphrase"])


def test_empty_link_fragment_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as refused:
        lk.parse_link_fragment("")
    assert refused.type is UsageError


# --- link fragments: truncated and altered ----------------------------------------------------


PLAIN_FRAGMENT = V["link"]["fragment"]
WRAPPED_FRAGMENT = V["wrapped_link"]["fragment"]
PASSPHRASE = V["wrapped_link"]["passphrase"]
LINK_IDENTITY = V["link"]["identity"]


def _attempt_link(text: str) -> str | None:
    """The identity an altered fragment opens to (with the vector's passphrase), or None when
    it is refused; anything but a pli error propagates and fails the test."""
    outcome = _outcome(lambda: lk.parse_link_fragment(text).open(PASSPHRASE).export())
    if isinstance(outcome, str):
        return outcome
    assert isinstance(outcome, ALTERED if text else UsageError), f"{outcome!r} for {text!r}"
    _one_line(outcome)
    return None


def _substituted(text: str, index: int) -> str:
    old = text[index]
    alphabet = _BECH32_UPPER if old in _BECH32_UPPER else _B64URL
    if old not in alphabet:
        alphabet = "X" + old
    new = alphabet[(alphabet.index(old) + 1) % len(alphabet)]
    return text[:index] + new + text[index + 1 :]


@pytest.mark.parametrize("form", ["plain", "wrapped"])
def test_every_truncation_is_refused(form: str) -> None:
    fragment = PLAIN_FRAGMENT if form == "plain" else WRAPPED_FRAGMENT
    for length in range(len(fragment)):
        assert _attempt_link(fragment[:length]) is None, length
        assert _attempt_link(fragment[len(fragment) - length :]) is None, length


@pytest.mark.parametrize("form", ["plain", "wrapped"])
def test_every_dropped_character_is_refused(form: str) -> None:
    fragment = PLAIN_FRAGMENT if form == "plain" else WRAPPED_FRAGMENT
    for index in range(len(fragment)):
        assert _attempt_link(fragment[:index] + fragment[index + 1 :]) is None, index


@pytest.mark.parametrize("form", ["plain", "wrapped"])
def test_every_changed_character_is_refused(form: str) -> None:
    fragment = PLAIN_FRAGMENT if form == "plain" else WRAPPED_FRAGMENT
    for index in range(len(fragment)):
        altered = _substituted(fragment, index)
        assert altered != fragment
        assert _attempt_link(altered) is None, index


@pytest.mark.parametrize("form", ["plain", "wrapped"])
def test_swapped_neighbours_are_refused(form: str) -> None:
    fragment = PLAIN_FRAGMENT if form == "plain" else WRAPPED_FRAGMENT
    for index in range(len(fragment) - 1):
        a, b = fragment[index], fragment[index + 1]
        if a != b:
            altered = fragment[:index] + b + a + fragment[index + 2 :]
            assert _attempt_link(altered) is None, index


def test_the_unaltered_vectors_open() -> None:
    # The starting point of the alterations above and below is itself valid.
    assert _attempt_link(PLAIN_FRAGMENT) == LINK_IDENTITY
    assert _attempt_link(WRAPPED_FRAGMENT) == LINK_IDENTITY


_FRAGMENT_CHARS = st.sampled_from(_B64URL + _BECH32_UPPER.lower() + ".=+/#%- \n\x00é€🧪")


@st.composite
def _altered(draw: st.DrawFn, original: str) -> str:
    text = list(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate", "case"]))
        pos = draw(st.integers(0, max(0, len(text) - 1)))
        if op == "set" and text:
            text[pos] = draw(_FRAGMENT_CHARS)
        elif op == "insert":
            text[pos:pos] = draw(st.lists(_FRAGMENT_CHARS, min_size=1, max_size=4))
        elif op == "delete":
            del text[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del text[pos:]
        elif text:
            text[pos] = text[pos].swapcase()
    return "".join(text)


@SLOW
@given(text=st.one_of(_altered(PLAIN_FRAGMENT), _altered(WRAPPED_FRAGMENT)))
def test_property_altered_link_fragments_raise_only_pli_errors(text: str) -> None:
    opened = _attempt_link(text)
    # Whatever survives the alterations is the original: nothing opens to another key.
    assert opened is None or (
        opened == LINK_IDENTITY and text in (PLAIN_FRAGMENT, WRAPPED_FRAGMENT)
    )


@settings(derandomize=True, max_examples=300, deadline=None)
@given(text=st.text(max_size=120) | st.text(_FRAGMENT_CHARS, max_size=400).map("p1.".__add__))
def test_property_any_text_is_a_fragment_or_a_pli_error(text: str) -> None:
    try:
        parsed = lk.parse_link_fragment(text)
    except PliError:
        return
    if parsed.needs_passphrase:
        with pytest.raises(PliError):
            parsed.open("a passphrase")


# --- b64url -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 31, 32, 33])
def test_b64url_round_trip(size: int) -> None:
    data = bytes(range(250, 250 - size, -1))
    text = lk.b64url(data)
    assert "=" not in text
    if size:
        assert lk.b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    ["", "A", "AAA=", "AA==", "AA+A", "AA/A", "AB", "AAB", "A.AA", "AAAA\n", "ÀAAA", "AA A"],
)
def test_b64url_decoding_is_strict(text: str) -> None:
    with pytest.raises(CryptoError):
        lk.b64url_decode(text)


# --- request fragments ------------------------------------------------------------------------


def test_request_keys_round_trip() -> None:
    keys = lk.RequestKeys.generate()
    assert len(keys.secret) == 32
    text = str(keys.fragment)
    recipient, dot, secret = text.partition(".")
    assert (recipient, dot) == (str(keys.identity.recipient), ".")
    assert set(secret) <= set(_B64URL)
    assert len(secret) == 43
    parsed = lk.parse_request_fragment(text)
    assert parsed == keys.fragment
    assert parsed.document_identity.export() == keys.fragment.document_identity.export()


def test_request_keys_differ() -> None:
    one, two = lk.RequestKeys.generate(), lk.RequestKeys.generate()
    assert one.secret != two.secret
    assert one.identity.export() != two.identity.export()


def test_request_derivations_are_distinct_and_not_the_secret() -> None:
    fragment = REQUEST_KEYS.fragment
    document = fragment.document_identity
    mac_key = bytes.fromhex(V["request"]["answer_mac_key_hex"])
    assert document.export() != REQUEST_KEYS.identity.export()
    assert (
        len({fragment.secret, mac_key, bytes.fromhex(V["request"]["document_x25519_secret_hex"])})
        == 3
    )


def test_a_small_order_recipient_is_refused() -> None:
    zero = age._bech32_encode("age", bytes(32))
    with pytest.raises(IntegrityError):
        lk.parse_request_fragment(f"{zero}.{lk.b64url(bytes(32))}")


def _attempt_request(text: str) -> str | None:
    """The title an altered request fragment reads, or None when it is refused: a fragment
    that parses must still open the vector's document, or be refused."""
    sealed = base64.b64decode(V["request_document"]["sealed_b64"])
    outcome = _outcome(
        lambda: lk.open_document(sealed, REQUEST_ID, lk.parse_request_fragment(text)).title
    )
    if isinstance(outcome, str):
        return outcome
    assert isinstance(outcome, IntegrityError if text else UsageError), f"{outcome!r} for {text!r}"
    _one_line(outcome)
    return None


def test_every_changed_character_of_a_request_fragment_is_refused() -> None:
    fragment = V["request"]["fragment"]
    assert _attempt_request(fragment) == V["request_document"]["signed"]["doc"]["title"]
    for index in range(len(fragment)):
        old = fragment[index]
        alphabet = _BECH32_UPPER.lower() if index < fragment.index(".") else _B64URL
        if old not in alphabet:
            alphabet = "x" + old
        new = alphabet[(alphabet.index(old) + 1) % len(alphabet)]
        assert _attempt_request(fragment[:index] + new + fragment[index + 1 :]) is None, index
        assert _attempt_request(fragment[:index] + fragment[index + 1 :]) is None, index
        assert _attempt_request(fragment[:index]) is None, index


@SLOW
@given(text=_altered(V["request"]["fragment"]))
def test_property_altered_request_fragments_raise_only_pli_errors(text: str) -> None:
    title = _attempt_request(text)
    assert title is None or text == V["request"]["fragment"]


# --- request documents ------------------------------------------------------------------------


ME = DeviceIdentity.generate("requester@example.org")
OTHER = DeviceIdentity.generate("other@example.org")


@pytest.mark.parametrize("title", ["", "Bilan 2026", 'é\n\t"\\ 🧪'])
def test_document_round_trip(title: str) -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_document(ME, "req1", title, keys)
    opened = lk.open_document(sealed, "req1", keys.fragment)
    assert opened.title == title
    assert opened.request == "req1"
    assert opened.requester == key_entry(ME.public_bundle())
    assert opened.fingerprint == ME.public_bundle().fingerprint
    assert opened.created.endswith("Z")
    # Readable with the fragment's derived identity alone, not with the request's key.
    with pytest.raises(DecryptError):
        age.decrypt(sealed, [keys.identity])


def test_document_of_another_request_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_document(ME, "req1", "t", keys)
    with pytest.raises(IntegrityError) as refused:
        lk.open_document(sealed, "req2", keys.fragment)
    assert refused.value.message == lk._ALTERED_REQUEST


def test_document_with_another_recipient_in_the_fragment_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_document(ME, "req1", "t", keys)
    swapped = lk.RequestFragment(lk.new_link().recipient, keys.secret)
    # The document still decrypts (its key comes from the secret alone): the signed recipient
    # is what tells the sender that answers would go to someone else.
    age.decrypt(sealed, [swapped.document_identity])
    with pytest.raises(IntegrityError):
        lk.open_document(sealed, "req1", swapped)


def test_document_with_another_secret_in_the_fragment_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_document(ME, "req1", "t", keys)
    with pytest.raises(IntegrityError):
        lk.open_document(sealed, "req1", lk.RequestFragment(keys.fragment.recipient, bytes(32)))


def _document(keys: lk.RequestKeys, who: DeviceIdentity, **changes: Any) -> dict[str, Any]:
    return {
        "kind": lk.REQUEST_KIND,
        "request": "req1",
        "requester": key_entry(who.public_bundle()),
        "title": "t",
        "recipient": str(keys.identity.recipient),
        "created": "2026-01-01T00:00:00Z",
        **changes,
    }


def _seal_for(fragment: lk.RequestFragment, value: Any) -> bytes:
    return age.encrypt(json.dumps(value).encode(), [fragment.document_identity.recipient])


def test_document_signed_by_another_key_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    signed = OTHER.sign(lk.REQUEST_KIND, _document(keys, ME))  # names ME, signed by OTHER
    with pytest.raises(IntegrityError):
        lk.open_document(_seal_for(keys.fragment, signed), "req1", keys.fragment)


def test_document_is_self_signed_and_names_its_signer() -> None:
    """Whoever holds the secret can sign a document with their own key: the sender is shown
    that key's fingerprint, so a made-up requester is told apart by it."""
    keys = lk.RequestKeys.generate()
    signed = OTHER.sign(lk.REQUEST_KIND, _document(keys, OTHER))
    opened = lk.open_document(_seal_for(keys.fragment, signed), "req1", keys.fragment)
    assert opened.fingerprint == OTHER.public_bundle().fingerprint
    assert opened.fingerprint != ME.public_bundle().fingerprint


@pytest.mark.parametrize(
    "changes",
    [
        {"title": 5},
        {"created": None},
        {"recipient": ["age1"]},
        {"extra": ""},
        {"requester": {"email": "", "device": "", "age": ""}},
        {"kind": lk.REQUEST_KEY_KIND},
    ],
    ids=["title", "created", "recipient", "extra", "requester", "kind"],
)
def test_malformed_documents_are_refused(changes: dict[str, Any]) -> None:
    keys = lk.RequestKeys.generate()
    doc = _document(keys, ME, **changes)
    message = (
        doc["kind"].encode()
        + b"\n"
        + json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    )
    signed = {"doc": doc, "sig": age.b64encode(ME.signing_key.sign(message))}
    with pytest.raises(IntegrityError):
        lk.open_document(_seal_for(keys.fragment, signed), "req1", keys.fragment)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_HOSTILE_KEYS = lk.RequestKeys.generate()


@SLOW
@given(value=JSON, signed=st.booleans(), field=st.sampled_from(["", "doc", "title", "requester"]))
def test_property_hostile_documents_raise_only_integrity_errors(
    value: Any, signed: bool, field: str
) -> None:
    keys = _HOSTILE_KEYS
    if field == "":
        envelope = value
    elif field == "doc":
        envelope = {"doc": value, "sig": ""}
    else:
        doc = _document(keys, ME, **{field: value})
        envelope = {"doc": doc, "sig": ""}
        if signed:
            try:
                envelope = ME.sign(lk.REQUEST_KIND, doc)
            except CryptoError:  # floats and such have no canonical form: nothing to sign
                signed = False
    try:
        lk.open_document(_seal_for(keys.fragment, envelope), "req1", keys.fragment)
    except IntegrityError:
        return
    assert (field, signed) == ("title", True)
    assert isinstance(value, str)


@settings(derandomize=True, max_examples=100, deadline=None)
@given(plain=st.binary(max_size=200))
def test_property_any_bytes_as_a_document_are_refused(plain: bytes) -> None:
    sealed = age.encrypt(plain, [_HOSTILE_KEYS.fragment.document_identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_document(sealed, "req1", _HOSTILE_KEYS.fragment)


def test_oversized_document_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    with pytest.raises(IntegrityError):
        lk.open_document(b"x" * (lk.MAX_SEALED + 1), "req1", keys.fragment)


# --- request keys -----------------------------------------------------------------------------


def test_request_key_round_trip() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(ME, "req1", "Bilan", keys, [ME.age_identity.recipient])
    got, title = lk.open_request_key(sealed, ME, "req1", [ME.public_bundle()])
    assert (got.identity.export(), got.secret, title) == (
        keys.identity.export(),
        keys.secret,
        "Bilan",
    )
    assert str(got.fragment) == str(keys.fragment)


def test_request_key_opens_on_another_device_of_the_account() -> None:
    second = DeviceIdentity.generate(ME.email)
    keys = lk.RequestKeys.generate()
    readers = [ME.age_identity.recipient, second.age_identity.recipient]
    sealed = lk.seal_request_key(ME, "req1", "", keys, readers)
    own = [second.public_bundle(), ME.public_bundle()]
    got, _ = lk.open_request_key(sealed, second, "req1", own)
    assert got.secret == keys.secret


def test_request_key_signed_by_a_device_not_among_ours_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(OTHER, "req1", "", keys, [ME.age_identity.recipient])
    with pytest.raises(IntegrityError) as refused:
        lk.open_request_key(sealed, ME, "req1", [ME.public_bundle()])
    assert "not yours" in refused.value.message
    with pytest.raises(IntegrityError):
        lk.open_request_key(sealed, ME, "req1", [])


def test_request_key_of_a_device_whose_keys_changed_is_refused() -> None:
    """Same device id and email, other keys: only the exact pinned keys vouch for a key."""
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(ME, "req1", "", keys, [ME.age_identity.recipient])
    impostor = DeviceIdentity(
        ME.email, ME.device, ME.age_identity, Ed25519PrivateKey.generate(), ME.created
    )
    with pytest.raises(IntegrityError):
        lk.open_request_key(sealed, ME, "req1", [impostor.public_bundle()])


def test_request_key_of_another_request_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(ME, "req1", "", keys, [ME.age_identity.recipient])
    with pytest.raises(IntegrityError) as refused:
        lk.open_request_key(sealed, ME, "req2", [ME.public_bundle()])
    assert "another request" in refused.value.message


def test_request_key_not_for_this_device_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(ME, "req1", "", keys, [OTHER.age_identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_request_key(sealed, ME, "req1", [ME.public_bundle()])


def test_request_key_with_a_forged_signature_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_request_key(ME, "req1", "", keys, [ME.age_identity.recipient])
    signed = json.loads(age.decrypt(sealed, [ME.age_identity]))
    signed["doc"]["secret"] = age.b64encode(bytes(32))
    forged = age.encrypt(json.dumps(signed).encode(), [ME.age_identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_request_key(forged, ME, "req1", [ME.public_bundle()])


_OWN: list[PublicBundle] = [ME.public_bundle()]


@SLOW
@given(value=JSON, field=st.sampled_from(["", "doc", "signer", "identity", "secret", "title"]))
def test_property_hostile_request_keys_raise_only_pli_errors(value: Any, field: str) -> None:
    if field == "":
        envelope = value
    elif field == "doc":
        envelope = {"doc": value, "sig": ""}
    else:
        doc = {
            "kind": lk.REQUEST_KEY_KIND,
            "request": "req1",
            "signer": key_entry(ME.public_bundle()),
            "identity": lk.new_link().export(),
            "secret": age.b64encode(bytes(32)),
            "title": "",
            "created": "",
            field: value,
        }
        envelope = {"doc": doc, "sig": ""}  # unsigned: refused before any field is read
    sealed = age.encrypt(json.dumps(envelope).encode(), [ME.age_identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_request_key(sealed, ME, "req1", _OWN)


# --- answers ----------------------------------------------------------------------------------


def _entry(name: str = "scan.pdf", file_id: str = "f1") -> FileEntry:
    return FileEntry(file_id, name, 10, 200, HEX, sha256=HEX)


def _answer(**changes: Any) -> lk.Answer:
    fields: dict[str, Any] = {
        "request": "req1",
        "transfer": "t1",
        "name": "Dr Martin",
        "message": "voici",
        "files": [_entry(), _entry("b.txt", "f2")],
        "created": "2026-01-01T00:00:00Z",
        **changes,
    }
    return lk.Answer(**fields)


@pytest.mark.parametrize(
    "answer",
    [_answer(), _answer(files=[]), _answer(name="", message="é\n🧪")],
    ids=["two-files", "no-file", "empty-name"],
)
def test_answer_round_trip(answer: lk.Answer) -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_answer(keys.fragment, answer)
    assert lk.open_answer(sealed, keys, "req1", "t1") == answer


def test_answer_made_without_the_secret_is_refused() -> None:
    """A server that knows the request's recipient but not its secret: the answer decrypts,
    the MAC does not verify."""
    keys = lk.RequestKeys.generate()
    forger = lk.RequestFragment(keys.fragment.recipient, os.urandom(32))
    sealed = lk.seal_answer(forger, _answer())
    age.decrypt(sealed, [keys.identity])
    with pytest.raises(IntegrityError) as refused:
        lk.open_answer(sealed, keys, "req1", "t1")
    assert "made up by the server" in refused.value.message


def test_answer_to_another_recipient_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    other = lk.RequestFragment(lk.new_link().recipient, keys.secret)
    with pytest.raises(IntegrityError):
        lk.open_answer(lk.seal_answer(other, _answer()), keys, "req1", "t1")


@pytest.mark.parametrize(("request_id", "transfer_id"), [("req2", "t1"), ("req1", "t2")])
def test_answer_for_another_request_or_transfer_is_refused(
    request_id: str, transfer_id: str
) -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_answer(keys.fragment, _answer())
    with pytest.raises(IntegrityError) as refused:
        lk.open_answer(sealed, keys, request_id, transfer_id)
    assert "another request or transfer" in refused.value.message


def test_answer_changed_after_its_mac_is_refused() -> None:
    keys = lk.RequestKeys.generate()
    sealed = lk.seal_answer(keys.fragment, _answer())
    envelope = json.loads(age.decrypt(sealed, [keys.identity]))
    envelope["doc"]["files"][0]["name"] = "other.pdf"
    changed = age.encrypt(json.dumps(envelope).encode(), [keys.identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_answer(changed, keys, "req1", "t1")


def _answer_doc(**changes: Any) -> dict[str, Any]:
    return {
        "kind": lk.ANSWER_KIND,
        "request": "req1",
        "transfer": "t1",
        "name": "",
        "message": "",
        "files": [vars(_entry())],
        "created": "",
        **changes,
    }


@pytest.mark.parametrize(
    "doc",
    [
        _answer_doc(kind=lk.REQUEST_KIND),
        _answer_doc(name=None),
        _answer_doc(files={}),
        _answer_doc(files=[{**vars(_entry()), "size": -1}]),
        _answer_doc(files=[{**vars(_entry()), "size": True}]),
        _answer_doc(files=[{**vars(_entry()), "sha256": "AB" * 32}]),
        _answer_doc(extra=""),
        {k: v for k, v in _answer_doc().items() if k != "message"},
        [],
        "doc",
    ],
    ids=["kind", "name", "files", "size", "bool", "hash", "extra", "missing", "list", "str"],
)
def test_malformed_answers_with_a_valid_mac_are_refused(doc: Any) -> None:
    keys = lk.RequestKeys.generate()
    envelope = {"doc": doc, "mac": age.b64encode(keys.fragment.mac(doc))}
    sealed = age.encrypt(json.dumps(envelope).encode(), [keys.identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_answer(sealed, keys, "req1", "t1")


_ANSWER_KEYS = lk.RequestKeys.generate()


@SLOW
@given(
    value=JSON,
    field=st.sampled_from(["", "envelope-doc", "mac", *sorted(lk._ANSWER_FIELDS)]),
    mac=st.booleans(),
)
def test_property_hostile_answers_raise_only_integrity_errors(
    value: Any, field: str, mac: bool
) -> None:
    keys = _ANSWER_KEYS
    doc = _answer_doc()
    envelope: Any
    if field == "":
        envelope = value
    elif field == "envelope-doc":
        envelope = {"doc": value, "mac": ""}
    elif field == "mac":
        envelope = {"doc": doc, "mac": value}
    else:
        doc[field] = value
        try:
            tag = age.b64encode(keys.fragment.mac(doc)) if mac else ""
        except CryptoError:  # floats and such have no canonical form: nothing to MAC
            tag = ""
        envelope = {"doc": doc, "mac": tag}
    sealed = age.encrypt(json.dumps(envelope).encode(), [keys.identity.recipient])
    try:
        answer = lk.open_answer(sealed, keys, "req1", "t1")
    except IntegrityError as exc:
        _one_line(exc)
        return
    # Accepted: then well-typed, and validly authenticated.
    assert mac
    assert all(isinstance(v, str) for v in (answer.name, answer.message, answer.created))
    assert all(isinstance(f, FileEntry) for f in answer.files)


@pytest.mark.parametrize(
    "plain",
    [b"[" * 100_000, b'{"doc":' * 500 + b"1" + b"}" * 500, b"NaN", b"\xff", b""],
    ids=["deep", "nested", "nan", "not-utf8", "empty"],
)
def test_hostile_answer_plaintexts_are_refused(plain: bytes) -> None:
    keys = lk.RequestKeys.generate()
    sealed = age.encrypt(plain, [keys.identity.recipient])
    with pytest.raises(IntegrityError):
        lk.open_answer(sealed, keys, "req1", "t1")


# --- a link being created ---------------------------------------------------------------------


def test_kept_link_round_trip() -> None:
    link = lk.new_link()
    assert lk.kept_link(lk.keep_link(link, ME), ME).export() == link.export()


def test_damaged_kept_link_is_refused() -> None:
    kept = bytearray(lk.keep_link(lk.new_link(), ME))
    kept[-1] ^= 1
    with pytest.raises(IntegrityError):
        lk.kept_link(bytes(kept), ME)
    with pytest.raises(IntegrityError):
        lk.kept_link(lk.keep_link(lk.new_link(), OTHER), ME)


# --- interoperability with the `age` CLI ------------------------------------------------------


@pytest.mark.parametrize("newline", [False, True])
def test_age_decrypts_a_link_file_with_the_fragment(
    tmp_path: Path, age_cli: str, newline: bool
) -> None:
    link = lk.new_link()
    plain = os.urandom(70_000)
    sealed, key = tmp_path / "file.age", tmp_path / "fragment.txt"
    enc = age.Encryptor.to_recipients([link.recipient, ME.age_identity.recipient])
    sealed.write_bytes(enc.update(plain) + enc.finish())
    key.write_text(lk.link_fragment(link) + ("\n" if newline else ""), encoding="ascii")
    assert _run(age_cli, "-d", "-i", str(key), str(sealed)) == plain


def test_age_uses_a_wrapped_fragment_as_an_identity_file(tmp_path: Path, age_cli: str) -> None:
    link = lk.new_link()
    parsed = lk.parse_link_fragment(lk.link_fragment(link, "told by phone", work_factor=WORK))
    assert parsed.wrapped is not None
    wrapped, sealed, out = tmp_path / "wrapped.age", tmp_path / "file.age", tmp_path / "out"
    wrapped.write_bytes(parsed.wrapped)
    sealed.write_bytes(age.encrypt(b"for the link", [link.recipient]))
    _with_terminal(
        [age_cli, "-d", "-i", str(wrapped), "-o", str(out), str(sealed)], "told by phone"
    )
    assert out.read_bytes() == b"for the link"


def test_age_passphrase_encrypted_identity_is_a_wrapped_fragment(
    tmp_path: Path, age_cli: str
) -> None:
    """The other way: an identity encrypted by `age -p` (its own salt, work factor 18), written
    as "p1." and base64url, is a fragment pli opens."""
    link = lk.new_link()
    plain, wrapped = tmp_path / "identity.txt", tmp_path / "identity.age"
    plain.write_text(link.export(), encoding="ascii")  # no newline: the identity alone
    _with_terminal([age_cli, "-p", "-o", str(wrapped), str(plain)], "told by phone")
    data = wrapped.read_bytes()
    assert data.split(b"\n")[1].startswith(b"-> scrypt ")
    fragment = lk.WRAPPED_PREFIX + lk.b64url(data)
    assert lk.parse_link_fragment(fragment).open("told by phone").export() == link.export()


def test_a_passphrase_that_is_not_text_is_a_usage_error() -> None:
    """A passphrase from the environment that was not UTF-8 holds lone surrogates."""
    wrapped = lk.parse_link_fragment(
        lk.link_fragment(age.X25519Identity.generate(), "ok", work_factor=10)
    )
    with pytest.raises(UsageError, match="not valid text"):
        wrapped.open("caf\udce9")
    with pytest.raises(UsageError, match="not valid text"):
        lk.link_fragment(age.X25519Identity.generate(), "caf\udce9", work_factor=10)
