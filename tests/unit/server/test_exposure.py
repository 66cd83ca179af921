"""pli.server.admin.exposure: the breach report of a window, from a scripted history played
through the services on a real database (SQLite and PostgreSQL), at fixed times and addresses."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import ConfigError, NotFoundError, UsageError
from pli.server import main
from pli.server.admin import exposure
from pli.server.auth import service as auth
from pli.server.links import service as links
from pli.server.requests import service as requests
from pli.server.transfers import service as transfers
from pli.store import models
from pli.store.blobs import BlobStore, LocalBlobStore
from pli.store.db import Database, database_url, make_engine, migrate
from tests.postgres import temporary_database
from tests.unit.server.exchange import SENDER, SETTINGS, blob, sealed

SINCE = datetime(2026, 11, 10, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, tzinfo=UTC)
MONTH = timedelta(days=30)
HOSPITAL, HOME, CAFE, SCANNER = "192.0.2.10", "198.51.100.7", "203.0.113.5", "203.0.113.66"
ESCROW = b"age-encryption.org/v1\n-> scrypt salt 18\n(an escrowed bundle)"


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def stamp(day: int, hour: int = 12, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00.000000Z"


@dataclass(frozen=True)
class History:
    old: str  # alice to bob, expired and purged before the window
    revoked: str  # alice to bob, revoked in the window
    direct: str  # alice to bob and carol, two files, downloaded by bob
    link: str  # alice's share link, downloaded once
    request: str  # carol's file request
    answer: str  # its answer, from someone without an account
    later: str  # carol to alice, after the window


def person(session: Session, name: str, day: int, **columns: Any) -> models.User:
    user = auth.create_user(
        session, f"{name}@example.org", "a long enough password", is_admin=False, now=at(day)
    )
    for column, value in columns.items():
        setattr(user, column, value)
    device = models.Device(id=transfers.new_id(), user_id=user.id, bundle="{}", created_at=at(day))
    device.escrow = ESCROW if name == "alice" else None
    session.add(device)
    session.commit()
    return user


def send(
    session: Session,
    blobs: BlobStore,
    sender: models.User,
    to: list[models.User],
    sizes: list[int],
    when: datetime,
    lasts: timedelta = timedelta(days=14),
) -> transfers.TransferView:
    view = transfers.create(
        session, sender, [u.email for u in to], len(sizes), lasts, now=when, max_expiry=MONTH
    )
    for row, size in zip(view.files, sizes, strict=True):
        transfers.attach_blob(session, blobs, row, blob(blobs, b"c" * size), size)
    return transfers.seal(
        session, sender, view.transfer.id, b"manifest", now=when, settings=SETTINGS
    )


def logged_in(session: Session, user: models.User, when: datetime, address: str) -> None:
    with audit.at_address(address):
        audit.record(
            session,
            Event.AUTH_LOGIN_SUCCEEDED,
            now=when,
            actor=user.email,
            details={"second_factor": False},
        )
    session.commit()


def download(
    session: Session,
    user: models.User | None,
    view: transfers.TransferView,
    when: datetime,
    **kw: int,
) -> None:
    file = view.files[kw.pop("file", 0)]
    transfers.record_download(session, user, view.transfer.id, file.id, now=when, **kw)
    session.commit()


def play(database: Database, session: Session, blobs: BlobStore) -> History:
    alice = person(session, "alice", 1)
    bob = person(session, "bob", 1, totp_secret=b"a sealed seed")
    carol = person(session, "carol", 1)

    old = send(session, blobs, alice, [bob], [50], at(2), lasts=timedelta(days=3))
    transfers.purge_expired(session, blobs, now=at(6))
    logged_in(session, alice, at(5), HOME)
    revoked = send(session, blobs, alice, [bob], [100], at(8))

    logged_in(session, alice, at(11, 8), HOSPITAL)
    logged_in(session, alice, at(12, 8), HOSPITAL)
    logged_in(session, alice, at(13, 20), HOME)
    logged_in(session, bob, at(11, 13), HOSPITAL)
    direct = send(session, blobs, alice, [bob, carol], [1000, 500], at(11, 10))
    with audit.at_address(HOSPITAL):
        download(session, bob, direct, at(11, 14, 0), first=0, sent=1000)
        download(session, bob, direct, at(11, 14, 5), first=500, sent=500)
        download(session, bob, direct, at(11, 14, 6), file=1, first=0, sent=500)
        transfers.receive(session, bob, direct.transfer.id, now=at(11, 14, 10), settings=SETTINGS)
    with audit.at_address(HOME):
        transfers.revoke(session, blobs, alice, revoked.transfer.id, now=at(12))

    made = links.create(session, alice, 1, timedelta(days=7), None, now=at(12, 9), max_expiry=MONTH)
    link = made.view
    transfers.attach_blob(session, blobs, link.files[0], blob(blobs, b"l" * 300), 300)
    transfers.seal(session, alice, link.transfer.id, b"manifest", now=at(12, 9), settings=SETTINGS)
    with audit.at_address(CAFE):
        links.take_ticket(session, link.transfer.id, now=at(13, 10))
        download(session, None, link, at(13, 10, 1), first=0, sent=300)

    request = requests.create(
        session,
        carol,
        expires_in=timedelta(days=7),
        max_files=10,
        max_bytes=1000,
        now=at(14),
        max_expiry=MONTH,
    )
    requests.seal(session, carol, request.id, sealed(b"document", b"sealed key"), now=at(14))
    with audit.at_address(SCANNER):
        requests.open_request(session, request.id, SENDER, now=at(15, 9))
        _token, answer = requests.answer(
            session,
            request.id,
            SENDER,
            [200],
            now=at(15, 9, 1),
            lifetime=timedelta(days=7),
            max_file_size=1000,
        )
        transfers.attach_blob(session, blobs, answer.files[0], blob(blobs, b"a" * 200), 200)
        guest = transfers.Guest(answer.transfer.id)
        transfers.seal(
            session, guest, answer.transfer.id, b"manifest", now=at(15, 9, 2), settings=SETTINGS
        )

    with audit.at_address(SCANNER):
        auth.login_failed(
            database, "mallory@example.org", "wrong email or password", now=at(16, 3, 0)
        )
        auth.login_failed(
            database, "mallory@example.org", "wrong email or password", now=at(16, 3, 1)
        )
        auth.login_failed(
            database, "alice@example.org", "wrong email or password", now=at(16, 3, 5)
        )
    audit.record(
        session,
        Event.ALERT_RAISED,
        now=at(16, 3, 10),
        actor=audit.SERVER,
        subject=alice.email,
        details={"kind": "failed_logins", "amount": 3, "threshold": 2, "suspended": False},
    )
    session.commit()

    later = send(session, blobs, carol, [alice], [70], at(21))
    logged_in(session, bob, at(21), HOSPITAL)
    person(session, "dave", 25)
    return History(
        old.transfer.id,
        revoked.transfer.id,
        direct.transfer.id,
        link.transfer.id,
        request.id,
        answer.transfer.id,
        later.transfer.id,
    )


@dataclass(frozen=True)
class Played:
    engine: Engine
    data: Path  # the data directory: DATA/pli.db on SQLite
    history: History


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def played(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    """The history, played once per backend: the reports only read it."""
    data = tmp_path_factory.mktemp("exposure")
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{data / 'pli.db'}"
        if request.param == "postgres":
            url = stack.enter_context(temporary_database())
        engine = make_engine(database_url(data, url))
        stack.callback(engine.dispose)
        migrate(engine)
        database = Database(engine)
        with database.session() as session:
            history = play(database, session, LocalBlobStore(data / "blobs"))
        yield Played(engine, data, history)


@pytest.fixture
def history(played: Played) -> Iterator[tuple[Session, History]]:
    with Database(played.engine).session() as session:
        yield session, played.history


def reported(session: Session, account: str | None = None) -> dict[str, Any]:
    found = exposure.report(session, SINCE, UNTIL, account)
    as_json: dict[str, Any] = json.loads(exposure.to_json(found))
    return as_json


def transfer(
    id: str,
    sender: str,
    recipients: list[str],
    created: str,
    expires: str,
    files: int,
    size: int,
    *,
    kind: str = "direct",
    state: str = "sealed",
    purged_at: str | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "kind": kind,
        "sender": sender,
        "recipients": recipients,
        "created": created,
        "expires": expires,
        "state": state,
        "purged_at": purged_at,
        "files": files,
        "bytes": size,
        "stored_at_end": purged_at is None,
        "request": request,
    }


def access(
    event: str, actor: str, subject: str, address: str, n: int, size: int, first: str, last: str
) -> dict[str, Any]:
    keys = ("event", "actor", "subject", "address", "requests", "bytes", "first", "last")
    return dict(zip(keys, (event, actor, subject, address, n, size, first, last), strict=True))


ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"


def test_the_report_holds_exactly_what_the_window_saw(history: tuple[Session, History]) -> None:
    session, h = history

    got = reported(session)

    assert got["since"] == "2026-11-10T00:00:00.000000Z"
    assert got["until"] == "2026-11-20T00:00:00.000000Z"
    assert got["account"] is None
    assert got["transfers"] == [
        transfer(
            h.revoked,
            ALICE,
            [BOB],
            stamp(8),
            stamp(22),
            1,
            100,
            state="revoked",
            purged_at=stamp(12),
        ),
        transfer(h.direct, ALICE, [BOB, CAROL], stamp(11, 10), stamp(25, 10), 2, 1500),
        transfer(h.link, ALICE, [], stamp(12, 9), stamp(19, 9), 1, 300, kind="link"),
        transfer(
            h.answer,
            "anonymous",
            [CAROL],
            stamp(15, 9, 1),
            stamp(22, 9, 1),
            1,
            200,
            kind="answer",
            request=h.request,
        ),
    ]
    assert got["accesses"] == [
        access(
            "transfer.downloaded", BOB, h.direct, HOSPITAL, 3, 2000, stamp(11, 14), stamp(11, 14, 6)
        ),
        access(
            "transfer.received", BOB, h.direct, HOSPITAL, 1, 0, stamp(11, 14, 10), stamp(11, 14, 10)
        ),
        access("link.accessed", "anonymous", h.link, CAFE, 1, 0, stamp(13, 10), stamp(13, 10)),
        access(
            "transfer.downloaded",
            "anonymous",
            h.link,
            CAFE,
            1,
            300,
            stamp(13, 10, 1),
            stamp(13, 10, 1),
        ),
        access(
            "request.accessed", "anonymous", h.request, SCANNER, 1, 0, stamp(15, 9), stamp(15, 9)
        ),
    ]
    assert got["logins"] == [
        {
            "account": ALICE,
            "count": 3,
            "addresses": [
                {"address": HOSPITAL, "count": 2, "first": stamp(11, 8), "last": stamp(12, 8)},
                {"address": HOME, "count": 1, "first": stamp(13, 20), "last": stamp(13, 20)},
            ],
        },
        {
            "account": BOB,
            "count": 1,
            "addresses": [
                {"address": HOSPITAL, "count": 1, "first": stamp(11, 13), "last": stamp(11, 13)}
            ],
        },
    ]
    assert got["failed_logins"] == [
        {
            "address": SCANNER,
            "account": None,
            "count": 2,
            "first": stamp(16, 3),
            "last": stamp(16, 3, 1),
        },
        {
            "address": SCANNER,
            "account": ALICE,
            "count": 1,
            "first": stamp(16, 3, 5),
            "last": stamp(16, 3, 5),
        },
    ]
    assert got["alerts"] == [
        {
            "time": stamp(16, 3, 10),
            "account": ALICE,
            "kind": "failed_logins",
            "details": {"kind": "failed_logins", "amount": 3, "threshold": 2, "suspended": False},
        }
    ]
    assert got["server_copy"] == {
        "would_have": {
            "accounts": 3,  # dave came after the window
            "transfers": 5,  # the old one's metadata too; not the later one
            # old 4, alice's first login 1, revoked 4, direct 6, logins 4, link 4, request 4,
            # failures 3, alert 1
            "audit_records": 31,
            "client_addresses": 4,
            "password_hashes": 3,
            "escrowed_keys": 1,
            "totp_seeds": 1,
            "ciphertext_transfers": 4,
            "ciphertext_bytes": 2100,
            "still_stored_transfers": 3,
            "still_stored_bytes": 2000,
        },
        "would_not_have": {"devices": 3, "links": 1, "file_requests": 1},
    }


def test_an_account_keeps_its_own_transfers_and_events(history: tuple[Session, History]) -> None:
    session, h = history

    got = reported(session, " BOB@example.org")

    assert got["account"] == BOB
    assert [t["id"] for t in got["transfers"]] == [h.revoked, h.direct]
    assert got["accesses"] == [
        access(
            "transfer.downloaded", BOB, h.direct, HOSPITAL, 3, 2000, stamp(11, 14), stamp(11, 14, 6)
        ),
        access(
            "transfer.received", BOB, h.direct, HOSPITAL, 1, 0, stamp(11, 14, 10), stamp(11, 14, 10)
        ),
    ]
    assert [entry["account"] for entry in got["logins"]] == [BOB]
    assert got["failed_logins"] == []
    assert got["alerts"] == []
    assert got["server_copy"] == {
        "would_have": {
            "accounts": 3,  # bob, and alice and carol he exchanged with
            "transfers": 3,  # old, revoked, direct
            "audit_records": 15,  # old 4, revoked 4, direct 6, his login 1
            "client_addresses": 2,  # his downloads, alice's revocation
            "password_hashes": 1,
            "escrowed_keys": 0,
            "totp_seeds": 1,
            "ciphertext_transfers": 2,
            "ciphertext_bytes": 1600,
            "still_stored_transfers": 1,
            "still_stored_bytes": 1500,
        },
        "would_not_have": {"devices": 1, "links": 0, "file_requests": 0},
    }


def test_an_account_sees_the_failures_alerts_and_requests_about_it(
    history: tuple[Session, History],
) -> None:
    session, h = history

    alice, carol = reported(session, ALICE), reported(session, CAROL)

    assert [f["account"] for f in alice["failed_logins"]] == [ALICE]  # not mallory's
    assert [a["account"] for a in alice["alerts"]] == [ALICE]
    assert [t["id"] for t in alice["transfers"]] == [h.revoked, h.direct, h.link]
    assert [t["id"] for t in carol["transfers"]] == [h.direct, h.answer]
    assert [(a["event"], a["subject"]) for a in carol["accesses"]] == [
        ("transfer.downloaded", h.direct),  # bob's download of a transfer carol received
        ("transfer.received", h.direct),
        ("request.accessed", h.request),
    ]


def test_an_unknown_account_is_not_found(history: tuple[Session, History]) -> None:
    session, _h = history
    with pytest.raises(NotFoundError):
        exposure.report(session, SINCE, UNTIL, "nobody@example.org")


def test_the_markdown_draft_names_the_facts(history: tuple[Session, History]) -> None:
    session, h = history

    text = exposure.to_markdown(exposure.report(session, SINCE, UNTIL))

    for heading in (
        "# Personal data breach: draft notification to the supervisory authority",
        "## 1. Nature of the breach",
        "## 2. Contact point",
        "## 3. Categories and approximate number of data subjects and records concerned",
        "## 4. Likely consequences",
        "## 5. Measures taken or proposed",
        "## 6. Facts from the server's records",
        "### Transfers that existed in the window",
        "### Accesses in the window",
        "### Successful logins",
        "### Failed logins",
        "### Alerts raised",
    ):
        assert f"\n{heading}\n" in f"\n{text}", heading
    assert text.count("_To be completed by the administrator") == 5
    assert "- the email addresses of 3 accounts;" in text
    assert "the argon2id password hashes of 3 accounts" in text
    assert "- 1 escrowed private key (age, scrypt-wrapped" in text
    assert "the ciphertext of 4 transfers stored during the window (2100 bytes), 3 of them" in text
    assert "the private keys of 3 devices stay on those devices" in text
    assert f"| {h.direct} | direct | {ALICE} | {BOB}, {CAROL} | {stamp(11, 10)} |" in text
    assert f"| transfer.downloaded | anonymous | {h.link} | {CAFE} | 1 | 300 |" in text
    assert f"| {SCANNER} | (no such account) | 2 |" in text


def test_table_cells_are_inert(engine: Engine) -> None:
    with Database(engine).session() as session, audit.at_address("10.0.0.1|\n| forged | row"):
        audit.record(session, Event.AUTH_LOGIN_FAILED, now=at(12), actor=None, details={})
        session.commit()
        text = exposure.to_markdown(exposure.report(session, SINCE, UNTIL))
    assert "| 10.0.0.1\\|?\\| forged \\| row | (no such account) | 1 |" in text
    assert "\n| forged" not in text
    assert "### Accesses in the window\n\n_None._" in text


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (
            "2026-11-01",
            "2026-11-02",
            (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),
        ),
        (
            "2026-11-01T09:30:00+01:00",
            " 2026-11-01T08:31:00Z ",
            (datetime(2026, 11, 1, 8, 30, tzinfo=UTC), datetime(2026, 11, 1, 8, 31, tzinfo=UTC)),
        ),
    ],
)
def test_windows_are_read_in_utc(
    since: str, until: str, expected: tuple[datetime, datetime]
) -> None:
    assert exposure.parse_window(since, until) == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2026-11-02", "2026-11-01", "--since must be before --until"),
        ("2026-11-01", "2026-11-01T00:00:00Z", "--since must be before --until"),
        (
            "2026-11-01T09:30:00",
            "2026-11-02",
            "--since '2026-11-01T09:30:00' is not a time with a zone",
        ),
        ("2026-11-01", "yesterday", "--until 'yesterday' is not a time with a zone"),
        ("2026-02-30", "2026-11-01", "--since '2026-02-30' is not a time with a zone"),
    ],
)
def test_bad_windows_are_usage_errors(since: str, until: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        exposure.parse_window(since, until)


def test_the_admin_verb_reads_the_servers_database(
    played: Played, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, engine, tmp_path = played.history, played.engine, played.data
    if engine.dialect.name == "sqlite":
        monkeypatch.delenv("PLI_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("PLI_DATABASE_URL", engine.url.render_as_string(hide_password=False))

    text = main.exposure(
        tmp_path, "2026-11-10", "2026-11-20T01:00:00+01:00", account=None, fmt="json"
    )

    assert [t["id"] for t in json.loads(text)["transfers"]] == [
        h.revoked,
        h.direct,
        h.link,
        h.answer,
    ]
    draft = main.exposure(
        tmp_path, "2026-11-10", "2026-11-20", account="carol@example.org", fmt="markdown"
    )
    assert draft.startswith("# Personal data breach")
    assert f"| {h.answer} | answer | anonymous | carol@example.org |" in draft


def test_the_admin_verb_needs_a_database_and_a_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLI_DATABASE_URL", raising=False)
    nothing = tmp_path / "nothing"
    with pytest.raises(ConfigError, match="no pli database in"):
        main.exposure(nothing, "2026-11-10", "2026-11-20", account=None, fmt="json")
    assert not nothing.exists()
    with pytest.raises(UsageError, match="--format must be one of markdown, json"):
        main.exposure(nothing, "2026-11-10", "2026-11-20", account=None, fmt="pdf")
