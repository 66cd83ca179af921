"""The whole flow through the real CLI against a real `pli serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import PASSWORD, Server, User, make_user


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_send_list_get_revoke(people: tuple[User, User, User], tmp_path: Path) -> None:
    alice, bob, carol = people
    report = _write(tmp_path / "résultats labo 2026-11.csv", b"nom;nir\nDupont;185057800608436\n")
    scan = _write(tmp_path / "scan.bin", bytes(range(256)) * 5000)
    transfer = alice.send(report, scan, to=bob.email, extra=("--message", "pour la veille"))

    inbox = bob.ok("inbox", "--json").json()
    assert [t["id"] for t in inbox] == [transfer]
    assert inbox[0]["sender"] == alice.email
    assert inbox[0]["recipients"] == [bob.email]
    assert [f["name"] for f in inbox[0]["files"]] == [report.name, scan.name]
    assert inbox[0]["message"] == "pour la veille"
    assert [t["id"] for t in alice.ok("outbox", "--json").json()] == [transfer]
    assert alice.ok("inbox", "--json").json() == []

    out = tmp_path / "bob-out"
    bob.ok("get", transfer, "-o", str(out))
    assert (out / report.name).read_bytes() == report.read_bytes()
    assert (out / scan.name).read_bytes() == scan.read_bytes()
    # The sender can read back what they sent (encrypted to their own device too).
    alice.ok("get", transfer, "-o", str(tmp_path / "alice-out"))
    assert (tmp_path / "alice-out" / scan.name).read_bytes() == scan.read_bytes()

    refused = carol.run("get", transfer, "-o", str(tmp_path / "carol-out"))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: no such transfer")
    assert "Traceback" not in refused.stderr
    assert carol.ok("inbox", "--json").json() == []

    alice.ok("revoke", transfer)
    gone = bob.run("get", transfer, "-o", str(tmp_path / "after"))
    assert gone.returncode == 1
    assert "revoked" in gone.stderr
    assert bob.ok("inbox", "--json").json() == []
    assert not (tmp_path / "after").exists() or not any((tmp_path / "after").iterdir())
    blobs = alice.server.data / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file()] == []


def test_raw_ciphertext_decrypts_with_the_age_cli(
    people: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = people
    source = _write(tmp_path / "export.csv", b"x" * 200_000)
    transfer = alice.send(source, to=bob.email)
    raw = tmp_path / "raw"
    bob.ok("get", transfer, "-o", str(raw), "--raw")
    key = tmp_path / "bob.key"
    key.write_text(bob.ok("keys", "export-identity").stdout)
    plain = subprocess.run(
        ["age", "-d", "-i", str(key), str(raw / "export.csv.age")],
        capture_output=True,
        check=True,
    ).stdout
    assert plain == source.read_bytes()


def test_expired_transfer_is_refused_and_purged(
    people: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = people
    source = _write(tmp_path / "once.txt", b"one-off")
    transfer = alice.send(source, to=bob.email, extra=("--expires", "2s"))
    time.sleep(2.5)
    result = bob.run("get", transfer, "-o", str(tmp_path / "late"))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: this transfer has expired"
    assert bob.ok("inbox", "--json").json() == []


def test_expiry_above_the_maximum_is_refused(
    people: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = people
    result = alice.run(
        "send", str(_write(tmp_path / "f", b"1")), "--to", bob.email, "--expires", "31d"
    )
    assert result.returncode != 0
    assert "maximum of 30d" in result.stderr


def test_sending_to_unknown_or_keyless_accounts_is_refused_with_advice(
    server: Server, tmp_path: Path
) -> None:
    alice = make_user(server, tmp_path, "alice")
    make_user(server, tmp_path, "dave", keys=False)
    source = _write(tmp_path / "f.txt", b"data")
    unknown = alice.run("send", str(source), "--to", "nobody@example.org")
    assert unknown.returncode == 1
    assert "there is no account for nobody@example.org" in unknown.stderr
    keyless = alice.run("send", str(source), "--to", "dave@example.org")
    assert keyless.returncode == 1
    assert "pli keys init" in keyless.stderr
    assert alice.ok("outbox", "--json").json() == []


def test_session_token_is_private_and_stored_hashed_on_the_server(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    token_file = alice.home / "session"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(alice.home.stat().st_mode) == 0o700
    token = token_file.read_bytes()
    with sqlite3.connect(sqlite_server.data / "pli.db") as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert stored == [hashlib.sha256(token).hexdigest()]
    assert token not in b"".join(p.read_bytes() for p in sqlite_server.data.glob("pli.db*"))
    alice.ok("logout")
    assert not token_file.exists()
    assert alice.run("inbox").returncode == 1


def test_login_failures_are_one_line(sqlite_server: Server, tmp_path: Path) -> None:
    make_user(sqlite_server, tmp_path, "alice", keys=False)
    stranger = User(
        "alice@example.org",
        tmp_path / "stranger",
        sqlite_server,
        {"PLI_PASSWORD": "not-the-password!"},
    )
    wrong = stranger.run("login", sqlite_server.url, "--email", "alice@example.org")
    assert (wrong.returncode, wrong.stderr.strip()) == (1, "error: wrong email or password")
    remote = stranger.run("login", "http://pli.example.org", "--email", "alice@example.org")
    assert remote.returncode == 2
    assert "refusing plain http://" in remote.stderr
    as_json = stranger.run("inbox", "--json")
    assert as_json.returncode == 1
    assert '"status": 400' in as_json.stderr


def test_escrow_requires_a_strong_passphrase_that_is_not_the_password(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    alice.extra_env["PLI_KDF_WORK_FACTOR"] = "18"
    alice.extra_env["PLI_PASSPHRASE"] = PASSWORD
    same = alice.run("keys", "init", "--escrow")
    assert same.returncode == 2
    assert "must not be your login password" in same.stderr
    alice.extra_env["PLI_PASSPHRASE"] = "Summer2026!"
    weak = alice.run("keys", "init", "--escrow")
    assert weak.returncode == 2
    assert "too weak" in weak.stderr
    alice.extra_env["PLI_KDF_WORK_FACTOR"] = "10"
    cheap = alice.run("keys", "init", "--escrow", "--generate")
    assert cheap.returncode == 2
    assert "full work factor" in cheap.stderr
    alice.extra_env["PLI_KDF_WORK_FACTOR"] = "18"
    generated = alice.run("keys", "init", "--escrow", "--generate")
    assert generated.returncode == 0, generated.stderr
    phrase = generated.stderr.splitlines()[1].strip()
    assert len(phrase.split()) == 6
    # The escrowed copy on the server is ciphertext that only the phrase opens.
    alice.extra_env["PLI_PASSPHRASE"] = phrase
    key = alice.ok("keys", "export-identity").stdout.strip()
    assert key.startswith("AGE-SECRET-KEY-1")
    assert key.encode() not in b"".join(p.read_bytes() for p in sqlite_server.data.glob("pli.db*"))


def test_admin_create_user_refuses_duplicates_and_short_passwords(sqlite_server: Server) -> None:
    assert sqlite_server.admin("create-user", "erin@example.org").returncode == 0
    again = sqlite_server.admin("create-user", "ERIN@example.org")
    assert (again.returncode, "already exists" in again.stderr) == (1, True)
    short = sqlite_server.admin("create-user", "frank@example.org", password="short")
    assert short.returncode == 2
    assert "at least 12 characters" in short.stderr
