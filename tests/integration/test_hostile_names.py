"""A malicious sender chooses any file names it likes; the recipient saves each file under a
safe name inside the output directory, never elsewhere and never over another file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pli.client.sdk import Client, Progress
from pli.client.upload import SendState
from pli.crypto import manifest as mf
from pli.crypto.age import Recipient
from tests.integration.conftest import PASSPHRASE, Server, make_user

HOSTILE = [
    "../../x",
    "/etc/passwd",
    "a\x00b.txt",
    "n" * 10_000 + ".csv",
    "\uff0e\uff0e\uff0fescape",  # fullwidth "../"
    "\u2215tmp\u2215y",  # DIVISION SLASH look-alikes
    "CON",
    "\u202egnp.exe",  # right-to-left override
    "..",
    "line\nbreak",
]


class HostileSender(Client):
    """A sender whose manifest claims names no file system would give it."""

    def __init__(self, home: Path, names: list[str]) -> None:
        super().__init__(home_path=home)
        self._names = list(names)

    def _send_file(
        self, job: SendState, index: int, path: Path, keys: list[Recipient], progress: Progress
    ) -> mf.FileEntry:
        entry = super()._send_file(job, index, path, keys, progress)
        return dataclasses.replace(entry, name=self._names.pop(0))


def test_hostile_names_are_saved_safely_inside_the_output_directory(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    sources = []
    for i in range(len(HOSTILE)):
        path = tmp_path / f"src{i}"
        path.write_bytes(f"content {i}".encode())
        sources.append(path)
    sender = HostileSender(alice.home, HOSTILE)
    sender.unlock(PASSPHRASE)
    transfer = sender.send(sources, [bob.email])
    sender.close()

    work = tmp_path / "work"
    work.mkdir()
    top_before = sorted(tmp_path.iterdir())
    out = work / "out"
    saved = bob.ok("get", transfer, "-o", str(out)).stdout.splitlines()

    assert len(saved) == len(HOSTILE)
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(s).name for s in saved)
    for i, line in enumerate(saved):
        path = Path(line)
        assert path.parent == out
        assert path.read_bytes() == f"content {i}".encode()
        name = path.name
        assert name not in (".", "..", "")
        assert not any(c in name for c in "/\\\x00\n\u202e")
        assert len(name.encode()) <= 210
    names = [Path(s).name for s in saved]
    assert names[6] == "_CON"
    assert names[3].endswith(".csv")
    # Nothing was written anywhere but the output directory.
    assert sorted(tmp_path.iterdir()) == top_before
    assert list(work.iterdir()) == [out]
    escaped = {"x", "passwd", "escape", "y"}
    assert [
        p for p in tmp_path.parent.rglob("*") if p.name in escaped and out not in p.parents
    ] == []


def test_a_hostile_message_cannot_drive_the_terminal(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    source = tmp_path / "note.txt"
    source.write_bytes(b"x")
    message = "\x1b]0;pwned\x07\x1b[2J hello \u202e(key verified)\nabc  from x@y to z@w"
    alice.send(source, to=bob.email, extra=("--message", message))
    shown = bob.ok("inbox").stdout
    assert "hello" in shown
    assert not any(c in shown for c in "\x1b\x07\u202e")
    # A line break in the message cannot start a line that looks like a listing entry.
    assert next(line for line in shown.splitlines() if "abc" in line).startswith(" " * 13)
    assert bob.ok("inbox", "--json").json()[0]["message"] == message
