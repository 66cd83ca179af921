"""The audit log end to end: the real `pli admin audit verify` and `export` on SQLite and
PostgreSQL after tampering done with plain SQL, and a running `pli serve` writing signed
checkpoints to a file and to a real syslog receiver."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from pli.audit import log
from pli.audit.chain import Event, Record, verify
from pli.crypto.checkpoints import Checkpoint, ServerKey
from pli.store.db import Database, database_url, make_engine, migrate
from tests.integration.conftest import PLI, Server, start_server, stop_server

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
COUNT = 300
EVENTS = list(Event)
FORMULAS = {7: ("=HYPERLINK(1)", "@SUM(A1)"), 8: ("+1", "-1")}  # index: actor, subject


def fill(engine: Engine, count: int = COUNT, start: datetime = START) -> list[Record]:
    """`count` records written the way the server writes them, one a minute from `start`."""
    written = []
    with Database(engine).session() as session:
        for i in range(count):
            actor, subject = FORMULAS.get(i, (f"user{i % 7}@example.org", f"transfer-{i}"))
            entry = log.record(
                session,
                EVENTS[i % len(EVENTS)],
                now=start + timedelta(minutes=i),
                actor=actor,
                subject=subject,
                details={"size": i * 1000, "note": "é✓"},
            )
            written.append(entry)
        session.commit()
    return written


@dataclass
class Site:
    """A server's data directory holding COUNT records and its audit key, as an operator
    runs the admin verbs against it."""

    data: Path
    env: dict[str, str]
    engine: Engine
    records: list[Record]
    key: ServerKey

    def audit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLI, "admin", "audit", *args, "--data", str(self.data)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def sql(self, *statements: str, **params: Any) -> None:
        """Tampering as an attacker with database access does it: plain SQL."""
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)

    def checkpoints(self, *lengths: int) -> Path:
        """A checkpoint file as the server writes it, one line per length."""
        path = self.data.parent / "checkpoints.jsonl"
        lines = (self.checkpoint(n).to_json() + "\n" for n in lengths)
        path.write_text("".join(lines))
        return path

    def checkpoint(self, length: int) -> Checkpoint:
        return self.key.checkpoint(length, self.records[length - 1].hash, START)


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    url = None
    if request.param == "postgres":
        url = env["PLI_DATABASE_URL"] = request.getfixturevalue("fresh_postgres")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = make_engine(database_url(data, url))
    migrate(engine)
    key = ServerKey.generate()
    key.save(data / "audit-key")
    yield Site(data, env, engine, fill(engine), key)
    engine.dispose()


# --- verify -----------------------------------------------------------------------------------


def test_an_untouched_log_verifies(site: Site) -> None:
    done = site.audit("verify", "--checkpoints", str(site.checkpoints(1, 100, COUNT)))
    assert done.returncode == 0, done.stderr
    head = site.records[-1].hash
    summary = f"audit log intact: {COUNT} records, head {head} (3 checkpoints checked)"
    assert done.stdout == summary + "\n"

    as_json = site.audit("verify", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "ok": True,
        "records": COUNT,
        "head": head,
        "checkpoints": 0,
        "problem": None,
    }


def _modify(site: Site) -> None:
    site.sql("UPDATE audit_log SET actor = 'mallory@example.org' WHERE seq = 120")


def _truncate_and_rewind(site: Site) -> None:
    site.sql(
        "DELETE FROM audit_log WHERE seq > 250",
        "UPDATE audit_head SET seq = 250, hash = :head",
        head=site.records[249].hash,
    )


def _swap(site: Site) -> None:
    site.sql(
        "UPDATE audit_log SET seq = -1 WHERE seq = 40",
        "UPDATE audit_log SET seq = 40 WHERE seq = 41",
        "UPDATE audit_log SET seq = 41 WHERE seq = -1",
    )


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_modify, "tampering at seq 120 (modified): record 120 does not match its hash"),
        (_truncate_and_rewind, "tampering at seq 251 (truncated): a signed checkpoint covers"),
        (_swap, "tampering at seq 40 (reordered): record 41 sits at seq 40"),
    ],
)
def test_tampering_is_reported(site: Site, tamper: Callable[[Site], None], expected: str) -> None:
    tamper(site)
    done = site.audit("verify", "--checkpoints", str(site.checkpoints(COUNT)), "--json")
    assert done.returncode == 3, done.stderr
    error = json.loads(done.stderr)
    assert error["title"] == "Tampering detected"
    assert error["detail"].startswith(expected)
    problem = json.loads(done.stdout)["problem"]
    assert expected.startswith(f"tampering at seq {problem['seq']} ({problem['kind']})")


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
@pytest.mark.parametrize("forgery", ["other key", "altered length"])
def test_a_forged_checkpoint_line_is_reported(site: Site, forgery: str) -> None:
    genuine = site.checkpoint(COUNT).to_json()
    forged = (
        ServerKey.generate().checkpoint(COUNT, site.records[-1].hash, START).to_json()
        if forgery == "other key"
        else genuine.replace(f'"length":{COUNT}', '"length":310')
    )
    path = site.data.parent / "forged.jsonl"
    path.write_text(f"{genuine}\n{forged}\n")
    done = site.audit("verify", "--checkpoints", str(path), "--key", site.key.public_b64)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith("error: tampering at checkpoint line 2 (forged): line 2 of")


# --- export -----------------------------------------------------------------------------------


def test_export_returns_exactly_the_window(site: Site) -> None:
    window = ("--since", "2026-11-01T08:05:00Z", "--until", "2026-11-01T09:05:00+00:00")
    jsonl = site.audit("export", *window)
    assert jsonl.returncode == 0, jsonl.stderr
    assert [json.loads(line) for line in jsonl.stdout.splitlines()] == [
        r.to_dict() for r in site.records[5:65]
    ]

    target = site.data.parent / "export.csv"
    done = site.audit("export", *window, "--format", "csv", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(target.read_text(), newline="")))
    assert [int(row["seq"]) for row in rows] == list(range(6, 66))
    assert (rows[2]["actor"], rows[2]["subject"]) == ("'=HYPERLINK(1)", "'@SUM(A1)")
    assert (rows[3]["actor"], rows[3]["subject"]) == ("'+1", "'-1")
    assert json.loads(rows[0]["details"]) == site.records[5].details
    assert rows[0]["hash"] == site.records[5].hash


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_an_export_from_the_first_record_verifies(site: Site) -> None:
    done = site.audit("export", "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T10:00Z")
    assert done.returncode == 0, done.stderr
    read = [json.loads(line) for line in done.stdout.splitlines()]
    report = verify(Record(**{**r, "event": Event(r["event"])}) for r in read)
    assert report.ok
    assert (report.count, report.head) == (120, site.records[119].hash)


# --- a running server -------------------------------------------------------------------------


@pytest.fixture
def syslog() -> Iterator[socket.socket]:
    """A syslog receiver: a UDP socket on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        yield receiver


def _serve(tmp_path: Path, interval: str, receiver: socket.socket) -> Server:
    return start_server(
        tmp_path,
        None,
        {
            "PLI_AUDIT_CHECKPOINT_INTERVAL": interval,
            "PLI_AUDIT_CHECKPOINTS": str(tmp_path / "checkpoints.jsonl"),
            "PLI_AUDIT_SYSLOG": f"udp://127.0.0.1:{receiver.getsockname()[1]}",
        },
    )


def _announced_key(server: Server) -> str:
    found = re.search(r"audit checkpoints with key (\S+):", server.log.read_text())
    assert found, server.log.read_text()
    return found.group(1)


def _heads(path: Path, key: str) -> list[str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [Checkpoint.from_json(line, key).head for line in lines]


def _received(receiver: socket.socket) -> list[str]:
    receiver.setblocking(False)
    messages = []
    while True:
        try:
            messages.append(receiver.recv(65536).decode())
        except BlockingIOError:
            return messages


def test_a_running_server_writes_signed_checkpoints(tmp_path: Path, syslog: socket.socket) -> None:
    server = _serve(tmp_path, "1s", syslog)
    try:
        key = _announced_key(server)
        engine = make_engine(database_url(server.data, None))
        written = fill(engine, 20)
        engine.dispose()
        deadline = time.monotonic() + 30
        while written[-1].hash not in _heads(tmp_path / "checkpoints.jsonl", key):
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.2)
    finally:
        stop_server(server)

    path = tmp_path / "checkpoints.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    checkpoints = [Checkpoint.from_json(line, key) for line in lines]
    assert len(checkpoints) >= 2  # the one written at start, then at least one more
    assert (checkpoints[-1].length, checkpoints[-1].head) == (written[-1].seq, written[-1].hash)
    assert len({c.length for c in checkpoints}) == len(checkpoints)  # no repeat of a length

    messages = _received(syslog)
    assert all(m.startswith("<38>1 ") for m in messages), messages  # facility auth, RFC 5424
    assert [m.split(" - ", 1)[1] for m in messages] == lines

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    command = [PLI, "admin", "audit", "verify", "--data", str(server.data), "--key", key]
    done = subprocess.run(
        [*command, "--checkpoints", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"({len(lines)} checkpoints checked)\n")


def test_a_server_writes_a_checkpoint_when_it_stops(tmp_path: Path, syslog: socket.socket) -> None:
    server = _serve(tmp_path, "1h", syslog)
    try:
        key = _announced_key(server)
        assert len(_heads(tmp_path / "checkpoints.jsonl", key)) == 1  # written at start
        engine = make_engine(database_url(server.data, None))
        written = fill(engine, 5)
        engine.dispose()
    finally:
        stop_server(server)
    last = Checkpoint.from_json((tmp_path / "checkpoints.jsonl").read_text().splitlines()[-1], key)
    assert (last.length, last.head) == (written[-1].seq, written[-1].hash)
