"""The server's own Ed25519 key, and the audit checkpoints it signs.

The server holds no user's private key, only this one: it signs checkpoints, each naming the
audit log's length and head hash at a moment, as the signed document

    {"doc": {"kind": "pli/audit-checkpoint/v1", "length": n, "head": hex, "time": "...Z",
             "key": b64(public key)}, "sig": ...}

written as one line of canonical JSON. Checkpoints are kept outside the server (clients,
files, witnesses), so that an operator holding the key still cannot rewrite history that a
checkpoint already covers.

The key file holds the raw 32-byte seed in base64 and one newline; it is created 0600 with
O_EXCL, never overwritten, and refused when group or others may read it.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pli.crypto import keylog
from pli.crypto.age import b64decode, b64encode
from pli.crypto.signing import canonical_json, public_key, sign, verify
from pli.errors import ConfigError, CryptoError, SignatureError, UsageError

CONTEXT = "pli/audit-checkpoint/v1"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
_FIELDS = {"kind", "length", "head", "time", "key"}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Checkpoint:
    """The audit log had `length` records and head hash `head` at `time`, as signed by `key`."""

    length: int
    head: str
    time: str
    signature: str
    key: str

    def _doc(self) -> dict[str, Any]:
        return {
            "kind": CONTEXT,
            "length": self.length,
            "head": self.head,
            "time": self.time,
            "key": self.key,
        }

    def to_json(self) -> str:
        """One line of canonical JSON, without a trailing newline."""
        return canonical_json({"doc": self._doc(), "sig": self.signature}).decode("utf-8")

    @classmethod
    def from_json(cls, text: str, trusted_key_b64: str) -> Checkpoint:
        """The checkpoint in `text` if it is signed by `trusted_key_b64`; SignatureError on any
        flaw (malformed, another key, altered)."""
        try:
            signed = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise SignatureError("malformed checkpoint") from exc
        doc = verify(public_key(trusted_key_b64), CONTEXT, signed)
        length, head, time, key = (doc.get(name) for name in ("length", "head", "time", "key"))
        if (
            set(doc) != _FIELDS
            or not isinstance(length, int)
            or isinstance(length, bool)
            or length < 0
            or not isinstance(head, str)
            or not _HEX64.fullmatch(head)
            or not isinstance(time, str)
            or not _TIME.fullmatch(time)
            or key != trusted_key_b64
        ):
            raise SignatureError("malformed checkpoint")
        return cls(
            length=length, head=head, time=time, signature=signed["sig"], key=trusted_key_b64
        )


class ServerKey:
    """The server's Ed25519 signing key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> ServerKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed_b64(cls, text: str, where: str) -> ServerKey:
        """The key whose seed `text` holds, as the key file does (base64, no padding);
        ConfigError naming `where` the text came from otherwise."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(b64decode(text.strip())))
        except (CryptoError, ValueError) as exc:
            raise ConfigError(
                f"{where} must be a 32-byte Ed25519 seed in base64 without padding, "
                "as the file DATA/audit-key holds"
            ) from exc

    @property
    def public_b64(self) -> str:
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b64encode(raw)

    def save(self, path: Path) -> None:
        """Write the seed to a new file, 0600; an existing file is never overwritten."""
        seed = self._private.private_bytes_raw()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except FileExistsError as exc:
            raise ConfigError(f"{path} already exists: the server key is never replaced") from exc
        except OSError as exc:
            raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o600)
            handle.write(b64encode(seed).encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path) -> ServerKey:
        """The key in `path`, refused unless it is a regular file only its owner can read."""
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"cannot read the server key {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                raise ConfigError(
                    f"the server key {path} must be a regular file readable by its owner only: "
                    f"run chmod 600 {path}"
                )
            text = handle.read(128)
        try:
            seed = b64decode(text.decode("ascii").strip())
            return cls(Ed25519PrivateKey.from_private_bytes(seed))
        except (UnicodeDecodeError, CryptoError, ValueError) as exc:
            raise ConfigError(f"the server key {path} is not a base64 Ed25519 seed") from exc

    def checkpoint(self, length: int, head: str, time: datetime) -> Checkpoint:
        """Sign that the audit log had `length` records with head hash `head` at `time`."""
        if isinstance(length, bool) or length < 0 or not _HEX64.fullmatch(head):
            raise UsageError("a checkpoint needs a length of 0 or more and a 64-hex head hash")
        if time.utcoffset() is None:
            raise UsageError("a checkpoint time must be timezone-aware")
        stamp = time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doc = {
            "kind": CONTEXT,
            "length": length,
            "head": head,
            "time": stamp,
            "key": self.public_b64,
        }
        signed = sign(self._private, CONTEXT, doc)
        return Checkpoint(
            length=length, head=head, time=stamp, signature=signed["sig"], key=self.public_b64
        )

    @property
    def key_log_id(self) -> str:
        """The id of the key log this key signs heads of (see `keylog.log_id`)."""
        return keylog.log_id(self.public_b64)

    def sign_key_log_head(self, size: int, root: bytes, time: datetime) -> keylog.TreeHead:
        """Sign that the key log had `size` entries with Merkle root `root` at `time`."""
        return keylog.sign_head(self._private, self.key_log_id, size, root, time)
