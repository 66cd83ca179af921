"""Client state under PLI_HOME: server address, session token, sealed identity, pinned keys.

Every file is written atomically with mode 0600 inside a 0700 directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from pli.errors import ConfigError


def default_home() -> Path:
    env = os.environ.get("PLI_HOME")
    return Path(env) if env else Path(platformdirs.user_config_dir("pli"))


class Home:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_home()

    def _file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self._file(name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def private_dir(self) -> Path:
        """This home, made if need be, readable by its owner alone: where plaintext may sit
        for a moment."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.path

    def append(self, name: str, data: bytes) -> None:
        """Append and make durable: for records that only grow."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(
            self._file(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes | None:
        try:
            return self._file(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        self._file(name).unlink(missing_ok=True)

    def read_json(self, name: str) -> Any:
        raw = self.read(name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{self._file(name)} is corrupted; remove it and try again") from exc

    def write_json(self, name: str, value: Any) -> None:
        self.write(name, json.dumps(value, indent=2, sort_keys=True).encode("utf-8"))
