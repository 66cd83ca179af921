"""The server's checkpoint writer: at start, every PLI_AUDIT_CHECKPOINT_INTERVAL and at
shutdown, it signs the audit log's length and head hash with the server's key and writes the
checkpoint, one JSON line, to each sink outside the database (a file, syslog).

An attacker who can rewrite the database can rewrite the whole tail of the chain consistently;
what they cannot rewrite is a line already appended to a file on another disk or received by
a syslog server elsewhere. `pli admin audit verify --checkpoints FILE` checks the log against
those lines.

The key: PLI_AUDIT_KEY (its seed, shared by every instance of one server) or DATA/audit-key,
made at the first start. Its public half is printed by `pli serve` for the operator to record:
whoever verifies checkpoints should pin that key, not trust the one the server holds today.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pli.audit import log
from pli.crypto.checkpoints import Checkpoint, ServerKey
from pli.errors import ConfigError
from pli.server.config import Settings, syslog_address
from pli.store.db import Database

KEY_FILE = "audit-key"
SYSLOG_PRIORITY = 4 * 8 + 6  # facility auth (4), severity informational (6): RFC 5424 PRI

logger = logging.getLogger("pli.audit")
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def server_key(settings: Settings) -> ServerKey:
    """PLI_AUDIT_KEY, else the key file in the data directory, made on first use."""
    if settings.audit_key_b64:
        return ServerKey.from_seed_b64(settings.audit_key_b64, "PLI_AUDIT_KEY")
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        try:
            ServerKey.generate().save(path)
        except ConfigError:
            # Another instance starting at the same moment won the race: give it the moment
            # it needs to write the key it made, then load that one.
            time.sleep(0.2)
    return ServerKey.load(path)


def public_key(settings: Settings) -> str | None:
    """The public key of the server's key, without making one; None if there is none yet."""
    if settings.audit_key_b64 or (settings.data_dir / KEY_FILE).exists():
        return server_key(settings).public_b64
    return None


class Sink(Protocol):
    name: str

    def write(self, line: str, time: str) -> None: ...


class FileSink:
    """Appends each line to a file, flushed to disk before the write counts as done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def write(self, line: str, time: str) -> None:
        # Opened for each line, so that a rotated file is picked up; O_APPEND keeps lines of
        # several instances writing to one file whole.
        fd = os.open(self.path, _APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


class SyslogSink:
    """Sends each line as an RFC 5424 message, facility auth: over UDP, or to a local socket."""

    def __init__(self, url: str) -> None:
        self.name = url
        self._address = syslog_address(url)
        self._host = socket.gethostname().encode("ascii", "replace")[:255].decode() or "-"

    def message(self, line: str, time: str) -> bytes:
        header = f"<{SYSLOG_PRIORITY}>1 {time} {self._host} pli {os.getpid()} checkpoint -"
        return f"{header} {line}".encode()

    def write(self, line: str, time: str) -> None:
        message = self.message(line, time)
        if isinstance(self._address, str):
            _send_unix(self._address, message)
            return
        host, port = self._address
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.sendto(message, address)


def _send_unix(path: str, message: bytes) -> None:
    """/dev/log is a datagram socket on most systems, a stream socket on some."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.send(message)
    except OSError as exc:
        if exc.errno != errno.EPROTOTYPE:
            raise
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            sock.sendall(message + b"\n")


def sinks(settings: Settings) -> list[Sink]:
    found: list[Sink] = []
    if settings.audit_checkpoints is not None:
        found.append(FileSink(settings.audit_checkpoints))
    if settings.audit_syslog is not None:
        found.append(SyslogSink(settings.audit_syslog))
    return found


class Checkpointer:
    """Writes checkpoints of one database's log; safe to call from several threads."""

    def __init__(
        self,
        db: Database,
        key: ServerKey,
        sinks: Sequence[Sink],
        clock: Callable[[], datetime],
    ) -> None:
        self._db, self._key, self._sinks, self._clock = db, key, sinks, clock
        self._lock = threading.Lock()
        self._written: int | None = None  # the length of the last checkpoint every sink took

    def write(self) -> Checkpoint | None:
        """Sign and write a checkpoint; None when there is no sink or the log has not grown
        since the last one."""
        if not self._sinks:
            return None
        with self._lock:
            with self._db.session() as session:
                length, head = log.head(session)
            if length == self._written:
                return None
            checkpoint = self._key.checkpoint(length, head, self._clock())
            if self._send(checkpoint):
                self._written = length
            return checkpoint

    def _send(self, checkpoint: Checkpoint) -> bool:
        """True if every sink took it. One failing sink does not keep it from the others."""
        line, delivered = checkpoint.to_json(), True
        for sink in self._sinks:
            try:
                sink.write(line, checkpoint.time)
            except OSError:
                delivered = False
                logger.exception("audit checkpoint not written to %s", sink.name)
        return delivered


@contextlib.asynccontextmanager
async def running(db: Database, key: ServerKey, settings: Settings) -> AsyncIterator[None]:
    """A checkpoint now, one every interval while the block runs, and one when it ends."""
    writer = Checkpointer(db, key, sinks(settings), settings.clock)
    await _write(writer)
    task = asyncio.create_task(_loop(writer, settings.audit_checkpoint_interval.total_seconds()))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _write(writer)


async def _loop(writer: Checkpointer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _write(writer)


async def _write(writer: Checkpointer) -> None:
    try:
        await asyncio.to_thread(writer.write)
    except Exception:  # a failed round (database down) must not stop the next one
        logger.exception("audit checkpoint failed")
