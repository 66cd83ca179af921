"""pli.server.admin.audit and pli.audit.checkpointer: verifying the audit log in a real database
(SQLite and PostgreSQL) after tampering done with plain SQL, exporting it, and the server's
checkpoint writer with its sinks (a file, real UDP and Unix sockets)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from pli.audit import checkpointer, log
from pli.audit.chain import Event, Record, following, verify
from pli.crypto.age import b64encode
from pli.crypto.checkpoints import Checkpoint, ServerKey
from pli.crypto.signing import canonical_json
from pli.errors import ConfigError, ConflictError, TamperingError, UsageError
from pli.server.admin import audit
from pli.server.config import Settings
from pli.store.db import Database, database_url, make_engine, migrate
from tests.postgres import temporary_database

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
COUNT = 300
EVENTS = list(Event)
KEY = ServerKey.generate()
SEED = b64encode(bytes(range(32)))  # a fixed seed, as PLI_AUDIT_KEY holds one


def fill(engine: Engine, count: int = COUNT) -> list[Record]:
    """`count` records written the way the server writes them, one a minute from START."""
    written = []
    with Database(engine).session() as session:
        for i in range(count):
            entry = log.record(
                session,
                EVENTS[i % len(EVENTS)],
                now=START + timedelta(minutes=i),
                actor=f"user{i % 7}@example.org" if i % 5 else log.SERVER,
                subject=f"transfer-{i}",
                details={"size": i * 1000, "ok": i % 3 == 0, "note": "é✓"},
            )
            written.append(entry)
        session.commit()
    return written


@dataclass(frozen=True)
class Written:
    """A database holding COUNT records, and where the admin verbs find it."""

    engine: Engine
    records: list[Record]
    data: Path
    url: str | None  # PLI_DATABASE_URL, for PostgreSQL


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Written]:
    """One database per backend for the module: each test tampers with it inside a
    transaction (`conn`) that is rolled back afterwards."""
    with contextlib.ExitStack() as stack:
        data = tmp_path_factory.mktemp("audit-data")
        url = stack.enter_context(temporary_database()) if request.param == "postgres" else None
        engine = make_engine(database_url(data, url))
        stack.callback(engine.dispose)
        migrate(engine)
        yield Written(engine, fill(engine), data, url)


@pytest.fixture
def records(written: Written) -> list[Record]:
    return written.records


@pytest.fixture
def conn(written: Written) -> Iterator[Connection]:
    with written.engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def data(written: Written, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory of the shared database, as the admin verbs find it."""
    _clean_env(monkeypatch)
    if written.url is not None:
        monkeypatch.setenv("PLI_DATABASE_URL", written.url)
    return written.data


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An empty SQLite database of its own, in the data directory tmp_path."""
    _clean_env(monkeypatch)
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("PLI_")]:
        monkeypatch.delenv(name)


def sql(conn: Connection, *statements: str, **params: Any) -> None:
    """Tampering as an attacker with database access does it: plain SQL."""
    for statement in statements:
        conn.execute(text(statement), params)


def check(conn: Connection, *checkpoints: Checkpoint) -> audit.Verification:
    with Session(bind=conn) as session:
        return audit.verify_session(session, checkpoints)


def found(conn: Connection, *checkpoints: Checkpoint) -> tuple[str, int | None]:
    result = check(conn, *checkpoints)
    assert result.problem is not None, "the tampering went unnoticed"
    return result.problem.kind, result.problem.seq


def insert(conn: Connection, record: Record) -> None:
    sql(
        conn,
        "INSERT INTO audit_log (seq, time, event, actor, subject, address, details, prev, hash)"
        " VALUES (:seq, :time, :event, :actor, :subject, :address, :details, :prev, :hash)",
        **{**record.to_dict(), "details": canonical_json(record.details).decode()},
    )


def renumber(conn: Connection, where: str, shift: int) -> None:
    """Add `shift` to the seq of the rows `where` selects, in two steps: the seq is the
    primary key, and each row's new value may still be another's."""
    sql(
        conn,
        f"UPDATE audit_log SET seq = -(seq + :shift) WHERE {where}",  # noqa: S608  (ours)
        "UPDATE audit_log SET seq = -seq WHERE seq < 0",
        shift=shift,
    )


# --- an intact log ----------------------------------------------------------------------------


def test_an_untouched_log_verifies(conn: Connection, records: list[Record]) -> None:
    checkpoints = [KEY.checkpoint(n, records[n - 1].hash, START) for n in (1, 150, COUNT)]
    result = check(conn, *checkpoints)
    assert result.ok, result.problem
    assert (result.records, result.head, result.checkpoints) == (COUNT, records[-1].hash, 3)
    assert result.summary() == (
        f"audit log intact: {COUNT} records, head {records[-1].hash} (3 checkpoints checked)"
    )


def test_an_empty_log_verifies(fresh: Engine) -> None:
    with Database(fresh).session() as session:
        result = audit.verify_session(session)
    assert result.ok
    assert result.records == 0


# --- tampering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "mallory@example.org"),
        ("subject", "transfer-999"),
        ("address", "203.0.113.9"),
        ("time", "2026-11-01T09:58:30.000000Z"),
        ("event", "auth.login.succeeded"),
        ("details", '{"note":"é✓","ok":false,"size":0}'),
        ("prev", "f" * 64),
        ("hash", "e" * 64),
    ],
)
def test_a_modified_field_is_found(
    conn: Connection, records: list[Record], column: str, value: str
) -> None:
    sql(conn, f"UPDATE audit_log SET {column} = :value WHERE seq = 120", value=value)  # noqa: S608
    assert found(conn) == ("modified", 120)


def test_a_deleted_row_is_found(conn: Connection, records: list[Record]) -> None:
    sql(conn, "DELETE FROM audit_log WHERE seq = 120")
    assert found(conn) == ("deleted", 120)


def test_deleted_rows_are_found_when_the_rest_are_renumbered(
    conn: Connection, records: list[Record]
) -> None:
    sql(conn, "DELETE FROM audit_log WHERE seq IN (120, 121)")
    renumber(conn, "seq > 121", -2)
    sql(conn, "UPDATE audit_head SET seq = 298")
    assert found(conn) == ("deleted", 120)


def test_rows_cut_off_the_end_are_found_through_the_head_row(
    conn: Connection, records: list[Record]
) -> None:
    sql(conn, "DELETE FROM audit_log WHERE seq > 250")
    result = check(conn)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("truncated", 251)
    assert "records 251 to 300 were removed" in result.problem.message


def test_rows_cut_off_the_end_with_the_head_row_rewound_need_a_checkpoint(
    conn: Connection, records: list[Record]
) -> None:
    sql(
        conn,
        "DELETE FROM audit_log WHERE seq > 250",
        "UPDATE audit_head SET seq = 250, hash = :head",
        head=records[249].hash,
    )
    assert check(conn).ok  # consistent: only a checkpoint kept elsewhere remembers more
    assert found(conn, KEY.checkpoint(COUNT, records[-1].hash, START)) == ("truncated", 251)


def test_a_forged_row_inserted_with_the_rest_renumbered_is_found(
    conn: Connection, records: list[Record]
) -> None:
    forged = following(
        119,
        records[118].hash,
        time=START + timedelta(minutes=119, seconds=30),
        event=Event.ADMIN_ACTION,
        actor="mallory@example.org",
        subject=None,
        address=None,
    )
    renumber(conn, "seq >= 120", 1)
    insert(conn, forged)
    sql(conn, "UPDATE audit_head SET seq = 301")
    assert found(conn) == ("inserted", 120)


def test_a_forged_row_appended_without_chaining_is_found(
    conn: Connection, records: list[Record]
) -> None:
    forged = following(
        COUNT, "a" * 64, time=START, event=Event.ADMIN_ACTION, actor="x", subject=None, address=None
    )
    insert(conn, forged)
    assert found(conn) == ("modified", COUNT + 1)


@pytest.mark.parametrize(("first", "second"), [(50, 180), (120, 121), (1, COUNT)])
def test_two_swapped_rows_are_found(
    conn: Connection, records: list[Record], first: int, second: int
) -> None:
    sql(
        conn,
        "UPDATE audit_log SET seq = -1 WHERE seq = :first",
        "UPDATE audit_log SET seq = :first WHERE seq = :second",
        "UPDATE audit_log SET seq = :second WHERE seq = -1",
        first=first,
        second=second,
    )
    assert found(conn) == ("reordered", first)


def _rewrite_tail(conn: Connection, records: list[Record], start: int, *, head_row: bool) -> None:
    """Rewrite records `start`.. with other content and fresh, consistent hashes."""
    seq, head = start - 1, records[start - 2].hash
    for record in records[start - 1 :]:
        forged = following(
            seq,
            head,
            time=START + timedelta(minutes=seq),
            event=record.event,
            actor="mallory@example.org",
            subject=record.subject,
            address=record.address,
            details=record.details,
        )
        sql(
            conn,
            "UPDATE audit_log SET actor = :actor, prev = :prev, hash = :hash WHERE seq = :seq",
            actor=forged.actor,
            prev=forged.prev,
            hash=forged.hash,
            seq=forged.seq,
        )
        seq, head = forged.seq, forged.hash
    if head_row:
        sql(conn, "UPDATE audit_head SET hash = :head", head=head)


def test_a_consistently_rewritten_tail_is_found_only_with_a_checkpoint(
    conn: Connection, records: list[Record]
) -> None:
    _rewrite_tail(conn, records, 261, head_row=True)
    assert check(conn).ok
    early = KEY.checkpoint(200, records[199].hash, START)
    assert check(conn, early).ok  # a checkpoint before the rewrite cannot see it
    assert found(conn, early, KEY.checkpoint(280, records[279].hash, START)) == (
        "rewritten",
        280,
    )


def test_a_rewritten_tail_without_the_head_row_is_found(
    conn: Connection, records: list[Record]
) -> None:
    _rewrite_tail(conn, records, 261, head_row=False)
    assert found(conn) == ("rewritten", COUNT)


# --- the verb, from the data directory ----------------------------------------------------------


def _checkpoint_file(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_verify_log_reads_checkpoints_signed_with_the_servers_key(
    records: list[Record], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLI_AUDIT_KEY", SEED)
    key = checkpointer.server_key(Settings.from_env(data))
    lines = [key.checkpoint(n, records[n - 1].hash, START).to_json() for n in (10, COUNT)]
    cps = _checkpoint_file(tmp_path / "checkpoints", lines[0], "", lines[1], lines[1])
    result = audit.verify_log(data, checkpoints=cps)
    assert result.ok, result.problem
    assert result.checkpoints == 3
    assert audit.verify_log(data, checkpoints=cps, key=key.public_b64).ok


@pytest.mark.parametrize("forgery", ["other key", "altered length", "not json"])
def test_a_forged_checkpoint_line_is_reported_with_its_number(
    records: list[Record], data: Path, tmp_path: Path, forgery: str
) -> None:
    good = KEY.checkpoint(COUNT, records[-1].hash, START)
    bad = {
        "other key": ServerKey.generate().checkpoint(COUNT, records[-1].hash, START).to_json(),
        "altered length": good.to_json().replace(f'"length":{COUNT}', '"length":400'),
        "not json": "length=300",
    }[forgery]
    cps = _checkpoint_file(tmp_path / "checkpoints", good.to_json(), good.to_json(), bad)
    result = audit.verify_log(data, checkpoints=cps, key=KEY.public_b64)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.line) == ("forged", 3)
    assert "line 3 of" in result.problem.message
    with pytest.raises(TamperingError, match="checkpoint line 3") as raised:
        result.raise_for_problem()
    assert raised.value.exit_code == 3


def test_verify_needs_a_key_for_checkpoints(fresh: Engine, tmp_path: Path) -> None:
    cps = _checkpoint_file(tmp_path / "checkpoints")
    with pytest.raises(ConfigError, match="pass --key"):
        audit.verify_log(tmp_path, checkpoints=cps)
    assert not (tmp_path / checkpointer.KEY_FILE).exists()  # verify never makes a key
    with pytest.raises(UsageError, match="--key"):
        audit.verify_log(tmp_path, checkpoints=cps, key="not a key")


def test_verify_refuses_a_directory_without_a_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no pli database"):
        audit.verify_log(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_the_json_report_names_the_problem(conn: Connection, records: list[Record]) -> None:
    sql(conn, "DELETE FROM audit_log WHERE seq = 7")
    report = check(conn).to_dict()
    assert report["ok"] is False
    assert report["records"] == 6
    assert report["problem"]["kind"] == "deleted"
    assert report["problem"]["seq"] == 7
    json.dumps(report)


# --- export -----------------------------------------------------------------------------------


def _export(data: Path, since: str, until: str, fmt: str) -> str:
    out = io.StringIO()
    audit.export_log(data, since=since, until=until, fmt=fmt, output=None, stdout=out)
    return out.getvalue()


def test_export_returns_the_window_as_json_lines(records: list[Record], data: Path) -> None:
    lines = _export(data, "2026-11-01T09:00:00Z", "2026-11-01T10:00:00+00:00", "jsonl")
    exported = [json.loads(line) for line in lines.splitlines()]
    assert exported == [r.to_dict() for r in records[60:120]]
    assert lines.splitlines()[0] == canonical_json(records[60].to_dict()).decode()


def test_an_export_from_the_first_record_verifies(records: list[Record], data: Path) -> None:
    lines = _export(data, "2026-11-01T08:00:00Z", "2026-11-01T10:00:00Z", "jsonl")
    read = [_record(json.loads(line)) for line in lines.splitlines()]
    report = verify(read)
    assert report.ok
    assert (report.count, report.head) == (120, records[119].hash)


def _record(fields: dict[str, Any]) -> Record:
    return Record(**{**fields, "event": Event(fields["event"])})


def test_export_as_csv_neutralises_formulas(fresh: Engine, tmp_path: Path) -> None:
    with Database(fresh).session() as session:
        for i, actor in enumerate(("=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "plain")):
            log.record(session, Event.ADMIN_ACTION, now=START + timedelta(seconds=i), actor=actor)
        session.commit()
    rows = list(
        csv.reader(io.StringIO(_export(tmp_path, "2026-11-01T00:00Z", "2026-11-02T00:00Z", "csv")))
    )
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert [row[3] for row in rows[1:]] == ["'=HYPERLINK(1)", "'+1", "'-1", "'@SUM(A1)", "plain"]
    assert rows[1][6] == "{}"
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("cell", "inert"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\t=1", "'\t=1"),
        ("a=1", "a=1"),
    ],
)
def test_neutralise(cell: str, inert: str) -> None:
    assert audit.neutralise(cell) == inert


def test_export_to_a_file_makes_a_new_private_file(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    count = audit.export_log(
        data,
        since="2026-11-01T08:00Z",
        until="2026-11-01T08:10Z",
        fmt="jsonl",
        output=target,
        stdout=io.StringIO(),
    )
    assert count == 10
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(target.read_text().splitlines()) == 10
    with pytest.raises(ConflictError, match="already exists"):
        audit.export_log(
            data,
            since="2026-11-01T08:00Z",
            until="2026-11-01T08:10Z",
            fmt="csv",
            output=target,
            stdout=io.StringIO(),
        )
    assert len(target.read_text().splitlines()) == 10


@pytest.mark.parametrize(
    ("since", "until", "fmt", "message"),
    [
        ("1 Nov 2026", "2026-11-02T00:00Z", "jsonl", "--since"),
        ("2026-11-01T00:00Z", "tomorrow", "jsonl", "--until"),
        ("2026-11-02T00:00Z", "2026-11-01T00:00Z", "jsonl", "before"),
        ("2026-11-01T00:00Z", "2026-11-02T00:00Z", "xlsx", "--format"),
    ],
)
def test_export_refuses_bad_options(
    tmp_path: Path, since: str, until: str, fmt: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        audit.export_log(
            tmp_path, since=since, until=until, fmt=fmt, output=None, stdout=io.StringIO()
        )


# --- the server's key and checkpoint writer ---------------------------------------------------


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(data_dir=tmp_path, clock=lambda: START, **changes)


def test_the_server_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert checkpointer.public_key(settings) is None
    made = checkpointer.server_key(settings)
    assert stat.S_IMODE((tmp_path / "audit-key").stat().st_mode) == 0o600
    assert checkpointer.server_key(settings).public_b64 == made.public_b64
    assert checkpointer.public_key(settings) == made.public_b64


def test_the_server_key_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ServerKey.generate().save(tmp_path / "seed")
    seed = (tmp_path / "seed").read_text().strip()
    monkeypatch.setenv("PLI_AUDIT_KEY", seed)
    settings = Settings.from_env(tmp_path / "data")
    assert (
        checkpointer.server_key(settings).public_b64 == ServerKey.load(tmp_path / "seed").public_b64
    )
    assert not (tmp_path / "data" / "audit-key").exists()
    assert seed not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PLI_AUDIT_CHECKPOINT_INTERVAL", "often", "PLI_AUDIT_CHECKPOINT_INTERVAL"),
        ("PLI_AUDIT_CHECKPOINTS", "/no/such/dir/cps", "existing directory"),
        ("PLI_AUDIT_CHECKPOINTS", "/tmp", "existing directory"),
        ("PLI_AUDIT_SYSLOG", "tcp://127.0.0.1:514", "udp://HOST:PORT"),
        ("PLI_AUDIT_SYSLOG", "udp://127.0.0.1", "udp://HOST:PORT"),
        ("PLI_AUDIT_SYSLOG", "unix:dev/log", "unix:/PATH"),
        ("PLI_AUDIT_KEY", "c2VlZA", "PLI_AUDIT_KEY"),
    ],
)
def test_bad_audit_settings_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(tmp_path)


def test_good_audit_settings_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLI_AUDIT_CHECKPOINT_INTERVAL", "1s")
    monkeypatch.setenv("PLI_AUDIT_CHECKPOINTS", str(tmp_path / "cps"))
    monkeypatch.setenv("PLI_AUDIT_SYSLOG", "udp://[::1]:5514")
    settings = Settings.from_env(tmp_path)
    assert settings.audit_checkpoint_interval == timedelta(seconds=1)
    assert settings.audit_checkpoints == tmp_path / "cps"
    assert settings.audit_syslog == "udp://[::1]:5514"


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        yield receiver


def test_the_writer_signs_and_writes_each_new_length(
    fresh: Engine, tmp_path: Path, udp: socket.socket
) -> None:
    port = udp.getsockname()[1]
    settings = _settings(
        tmp_path, audit_checkpoints=tmp_path / "cps", audit_syslog=f"udp://127.0.0.1:{port}"
    )
    key = checkpointer.server_key(settings)
    writer = checkpointer.Checkpointer(
        Database(fresh), key, checkpointer.sinks(settings), settings.clock
    )
    first = writer.write()
    assert first is not None
    assert first.length == 0
    assert writer.write() is None  # the same length again: skipped
    records = fill(fresh, 5)
    second = writer.write()
    assert second is not None
    assert (second.length, second.head) == (5, records[-1].hash)

    lines = (tmp_path / "cps").read_text().splitlines()
    assert [Checkpoint.from_json(line, key.public_b64) for line in lines] == [first, second]
    assert stat.S_IMODE((tmp_path / "cps").stat().st_mode) == 0o600
    for expected in (first, second):
        message = udp.recv(65536).decode()
        header, _, body = message.partition(" - ")
        assert header.startswith("<38>1 2026-11-01T08:00:00.000000Z ")  # auth.info, RFC 5424
        assert header.endswith(" checkpoint")
        assert body == expected.to_json()


def test_the_writer_sends_to_a_local_syslog_socket(fresh: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(5)
        settings = _settings(tmp_path, audit_syslog=f"unix:{path}")
        writer = checkpointer.Checkpointer(
            Database(fresh), KEY, checkpointer.sinks(settings), settings.clock
        )
        written = writer.write()
        assert written is not None
        assert receiver.recv(65536).decode().endswith(" - " + written.to_json())


def test_a_failing_sink_does_not_keep_the_checkpoint_from_the_others(
    fresh: Engine, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path,
        audit_checkpoints=tmp_path / "cps",
        audit_syslog=f"unix:{tmp_path / 'nobody-listens'}",
    )
    writer = checkpointer.Checkpointer(
        Database(fresh), KEY, checkpointer.sinks(settings), settings.clock
    )
    assert writer.write() is not None
    assert writer.write() is not None  # not every sink took it: written again
    assert len((tmp_path / "cps").read_text().splitlines()) == 2


def test_without_sinks_nothing_is_written(fresh: Engine) -> None:
    writer = checkpointer.Checkpointer(Database(fresh), KEY, [], lambda: START)
    assert writer.write() is None
