"""pli.crypto.checkpoints: the server's own key and the audit checkpoints it signs."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pli.crypto.age import b64encode
from pli.crypto.checkpoints import CONTEXT, Checkpoint, ServerKey
from pli.errors import ConfigError, SignatureError, UsageError

HEAD = "ab" * 32
NOW = datetime(2025, 3, 1, 8, 0, 5, tzinfo=UTC)


@pytest.fixture
def key() -> ServerKey:
    return ServerKey.generate()


@pytest.fixture
def checkpoint(key: ServerKey) -> Checkpoint:
    return key.checkpoint(1000, HEAD, NOW)


# --- checkpoints ------------------------------------------------------------------------------


def test_round_trip(key: ServerKey, checkpoint: Checkpoint) -> None:
    line = checkpoint.to_json()
    assert "\n" not in line
    assert Checkpoint.from_json(line, key.public_b64) == checkpoint
    assert (checkpoint.length, checkpoint.head, checkpoint.key) == (1000, HEAD, key.public_b64)
    assert checkpoint.time == "2025-03-01T08:00:05.000000Z"


def test_the_line_is_a_signed_document(checkpoint: Checkpoint) -> None:
    signed = json.loads(checkpoint.to_json())
    assert set(signed) == {"doc", "sig"}
    assert signed["doc"]["kind"] == CONTEXT == "pli/audit-checkpoint/v1"
    assert signed["sig"] == checkpoint.signature


def test_time_is_stored_in_utc(key: ServerKey) -> None:
    local = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert key.checkpoint(1, HEAD, local).time == "2025-03-01T08:00:00.000000Z"


def test_another_key_is_refused(checkpoint: Checkpoint) -> None:
    with pytest.raises(SignatureError):
        Checkpoint.from_json(checkpoint.to_json(), ServerKey.generate().public_b64)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("length", 1001),
        ("length", 999),
        ("head", "cd" * 32),
        ("time", "2030-01-01T00:00:00.000000Z"),
        ("kind", "pli/other/v1"),
        ("extra", 1),
    ],
)
def test_an_altered_checkpoint_is_refused(
    key: ServerKey, checkpoint: Checkpoint, field: str, value: object
) -> None:
    signed = json.loads(checkpoint.to_json())
    signed["doc"][field] = value
    with pytest.raises(SignatureError):
        Checkpoint.from_json(json.dumps(signed), key.public_b64)


def test_a_checkpoint_naming_another_key_is_refused(key: ServerKey) -> None:
    """Signed by the trusted key, but claiming another: malformed, so refused."""
    other = ServerKey.generate()
    checkpoint = key.checkpoint(3, HEAD, NOW)
    signed = json.loads(checkpoint.to_json())
    signed["doc"]["key"] = other.public_b64
    with pytest.raises(SignatureError):
        Checkpoint.from_json(json.dumps(signed), key.public_b64)


def test_an_altered_signature_is_refused(key: ServerKey, checkpoint: Checkpoint) -> None:
    signed = json.loads(checkpoint.to_json())
    signed["sig"] = b64encode(bytes(64))
    with pytest.raises(SignatureError):
        Checkpoint.from_json(json.dumps(signed), key.public_b64)


@pytest.mark.parametrize(
    "text", ["", "not json", "[]", "{}", '{"doc": {}, "sig": ""}', "[" * 100_000]
)
def test_garbage_is_refused(key: ServerKey, text: str) -> None:
    with pytest.raises(SignatureError):
        Checkpoint.from_json(text, key.public_b64)


def test_a_malformed_trusted_key_is_refused(checkpoint: Checkpoint) -> None:
    with pytest.raises(SignatureError):
        Checkpoint.from_json(checkpoint.to_json(), "not a key")


@pytest.mark.parametrize(("length", "head"), [(-1, HEAD), (1, "AB" * 32), (1, "ab"), (True, HEAD)])
def test_bad_checkpoint_arguments_are_refused(key: ServerKey, length: int, head: str) -> None:
    with pytest.raises(UsageError):
        key.checkpoint(length, head, NOW)


def test_a_naive_time_is_refused(key: ServerKey) -> None:
    with pytest.raises(UsageError):
        key.checkpoint(1, HEAD, datetime(2025, 1, 1))


# --- the key file -----------------------------------------------------------------------------


def test_save_and_load(key: ServerKey, tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ServerKey.load(path).public_b64 == key.public_b64
    text = path.read_text("ascii")
    assert text.endswith("\n")
    assert len(text.strip()) == 43  # 32 bytes of seed, unpadded base64


def test_a_loaded_key_signs_checkpoints_the_saved_one_accepts(
    key: ServerKey, tmp_path: Path
) -> None:
    path = tmp_path / "server.key"
    key.save(path)
    checkpoint = ServerKey.load(path).checkpoint(7, HEAD, NOW)
    assert Checkpoint.from_json(checkpoint.to_json(), key.public_b64).length == 7


def test_an_existing_file_is_never_overwritten(key: ServerKey, tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    path.write_text("keep me")
    with pytest.raises(ConfigError):
        key.save(path)
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_readable_by_others_is_refused(key: ServerKey, tmp_path: Path, mode: int) -> None:
    path = tmp_path / "server.key"
    key.save(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        ServerKey.load(path)


def test_a_symbolic_link_is_refused(key: ServerKey, tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    key.save(target)
    link = tmp_path / "server.key"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        ServerKey.load(link)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ServerKey.load(tmp_path / "absent.key")


@pytest.mark.parametrize("content", [b"", b"not base64!\n", b64encode(bytes(31)).encode()])
def test_a_malformed_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "server.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError):
        ServerKey.load(path)
