"""Email notifications through a real SMTP server (aiosmtpd, on 127.0.0.1) from a real SQLite
database: what is queued and what the emails say, retries while the server is down, one
delivery under concurrent senders, header injection, TLS, authentication, and the settings."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select

from pli.errors import ConfigError, UsageError
from pli.server import notify
from pli.server.config import Settings, SmtpSettings
from pli.server.transfers import service as transfers
from pli.server.transfers.service import TransferView
from pli.store import models
from pli.store.blobs import LocalBlobStore
from pli.store.db import Database, make_engine, migrate
from tests.certificates import self_signed
from tests.unit.server.exchange import DAY, NOW, blob, user

FROM = "pli@example.org"
PUBLIC_URL = "https://pli.example.org"
PASSWORD = "a-very-secret-smtp-password"
MINUTE = dt.timedelta(minutes=1)


@dataclass
class Received:
    sender: str | None
    recipients: list[str]
    message: EmailMessage
    login: bytes | None


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, _server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, bytes) else None
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, login))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.messages if r.recipients == [address]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _smtp_server(port: int, inbox: Inbox | None = None, **options: Any) -> Iterator[Inbox]:
    inbox = Inbox() if inbox is None else inbox
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def _check_login(
    _server: SMTP, _session: SmtpSession, _envelope: Envelope, _mechanism: str, data: object
) -> AuthResult:
    if isinstance(data, LoginPassword) and data == (b"pli", PASSWORD.encode()):
        return AuthResult(success=True, auth_data=data.login)
    return AuthResult(success=False, handled=False)


def _settings(
    tmp_path: Path,
    port: int,
    *,
    security: str = "none",
    username: str | None = None,
    password: str | None = None,
) -> Settings:
    smtp = SmtpSettings("127.0.0.1", FROM, port, security, username, password)
    return Settings(data_dir=tmp_path, public_url=PUBLIC_URL, smtp=smtp)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    yield Database(engine)
    engine.dispose()


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def inbox(port: int) -> Iterator[Inbox]:
    with _smtp_server(port) as server:
        yield server


@pytest.fixture
def view(db: Database, tmp_path: Path) -> TransferView:
    """A transfer of two files (1000 and 2000 bytes of ciphertext) from alice to bob and carol."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    with db.session() as session:
        alice = user(session, "alice")
        user(session, "bob")
        user(session, "carol")
        made = transfers.create(
            session,
            alice,
            ["bob@example.org", "carol@example.org"],
            2,
            DAY,
            now=NOW,
            max_expiry=30 * DAY,
        )
        for row, size in zip(made.files, (1000, 2000), strict=True):
            transfers.attach_blob(session, blobs, row, blob(blobs, b"c" * size), size)
        return transfers.view_of(session, made.transfer)


def _arrived(db: Database, settings: Settings, view: TransferView) -> None:
    with db.session() as session:
        notify.transfer_arrived(session, settings, view, now=NOW)
        session.commit()


def _rows(db: Database) -> list[models.Notification]:
    with db.session() as session:
        return list(session.scalars(select(models.Notification).order_by(models.Notification.id)))


def _pli_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What pli logged (the SMTP server's own logs are not ours to judge)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pli"))


def test_arrival_emails_reach_each_recipient(
    db: Database, view: TransferView, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    settings = _settings(tmp_path, port)
    _arrived(db, settings, view)
    assert notify.send_pending(db, settings, now=NOW) == 2
    transfer_id = view.transfer.id
    for address in ("bob@example.org", "carol@example.org"):
        (message,) = inbox.to(address)
        assert message["Subject"] == "alice@example.org sent you 2 file(s) on pli"
        assert message["From"] == FROM
        assert message["To"] == address
        body = message.get_content()
        assert f"pli get {transfer_id}" in body
        assert "2026-11-29 12:00 UTC" in body  # the expiry, a day after NOW
        assert "2.9 KiB" in body
        assert "2,9 Kio" in body
        assert "vous a envoyé 2 fichier(s)" in body
        assert PUBLIC_URL in body
        # The server's own handles on the files are not for the recipients either.
        for row in view.files:
            assert row.id not in body
            assert row.blob_key is not None
            assert row.blob_key not in body
    assert all(r.sender == FROM for r in inbox.messages)
    assert notify.send_pending(db, settings, now=NOW + MINUTE) == 0
    assert len(inbox.messages) == 2
    assert all(r.sent_at == NOW and r.attempts == 1 for r in _rows(db))


def test_queueing_is_left_to_the_callers_commit(
    db: Database, view: TransferView, tmp_path: Path, port: int
) -> None:
    with db.session() as session:
        notify.transfer_arrived(session, _settings(tmp_path, port), view, now=NOW)
        session.rollback()
    assert _rows(db) == []


def test_a_receipt_goes_to_the_sender(
    db: Database, view: TransferView, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    settings = _settings(tmp_path, port)
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    assert notify.send_pending(db, settings, now=NOW) == 1
    (message,) = inbox.to("alice@example.org")
    assert message["Subject"] == f"bob@example.org downloaded transfer {view.transfer.id}"
    body = message.get_content()
    assert f"bob@example.org downloaded transfer {view.transfer.id}" in body
    assert "a téléchargé" in body
    assert "2026-11-28 12:00 UTC" in body


def test_nothing_is_queued_without_smtp(db: Database, view: TransferView, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with db.session() as session:
        notify.transfer_arrived(session, settings, view, now=NOW)
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    assert _rows(db) == []
    assert notify.send_pending(db, settings, now=NOW) == 0


def test_a_server_down_is_retried_later_and_later_then_delivered(
    db: Database, view: TransferView, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, port)
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    assert notify.send_pending(db, settings, now=NOW) == 0
    (row,) = _rows(db)
    assert (row.attempts, row.next_attempt_at, row.sent_at) == (1, NOW + MINUTE, None)
    assert "attempt 1 of" in _pli_logs(caplog)
    assert notify.send_pending(db, settings, now=NOW + 30 * dt.timedelta(seconds=1)) == 0
    assert _rows(db)[0].attempts == 1  # not due yet: not tried
    assert notify.send_pending(db, settings, now=NOW + MINUTE) == 0
    (row,) = _rows(db)
    assert (row.attempts, row.next_attempt_at) == (2, NOW + 6 * MINUTE)
    with _smtp_server(port) as inbox:
        assert notify.send_pending(db, settings, now=NOW + 6 * MINUTE) == 1
    assert len(inbox.to("alice@example.org")) == 1
    assert _rows(db)[0].sent_at == NOW + 6 * MINUTE


def test_delivery_is_given_up_after_bounded_attempts_and_rows_are_deleted(
    db: Database, view: TransferView, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, port)
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    for hour in range(notify.MAX_ATTEMPTS + 3):
        notify.send_pending(db, settings, now=NOW + hour * dt.timedelta(hours=6))
    (row,) = _rows(db)
    assert (row.attempts, row.sent_at) == (notify.MAX_ATTEMPTS, None)
    given_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 1
    assert given_up[0].levelno == logging.ERROR
    assert "alice@example.org" not in _pli_logs(caplog)  # the id says which row, not the address
    notify.send_pending(db, settings, now=NOW + notify.KEEP_ANY + MINUTE)
    assert _rows(db) == []


def test_sent_rows_are_deleted_after_a_few_days(
    db: Database, view: TransferView, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    settings = _settings(tmp_path, port)
    _arrived(db, settings, view)
    notify.send_pending(db, settings, now=NOW)
    notify.send_pending(db, settings, now=NOW + notify.KEEP_SENT - MINUTE)
    assert len(_rows(db)) == 2
    notify.send_pending(db, settings, now=NOW + notify.KEEP_SENT + MINUTE)
    assert _rows(db) == []
    assert len(inbox.messages) == 2


class RefusesBob(Inbox):
    async def handle_RCPT(  # noqa: N802 (the name aiosmtpd calls)
        self,
        _server: SMTP,
        _session: SmtpSession,
        envelope: Envelope,
        address: str,
        _options: list[str],
    ) -> str:
        if address == "bob@example.org":
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_recipient_does_not_hold_back_the_others(
    db: Database, view: TransferView, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, port)
    _arrived(db, settings, view)
    with _smtp_server(port, RefusesBob()) as inbox:
        assert notify.send_pending(db, settings, now=NOW) == 1
    assert len(inbox.to("carol@example.org")) == 1
    assert inbox.to("bob@example.org") == []
    refused = [r for r in _rows(db) if r.recipient == "bob@example.org"]
    assert [(r.attempts, r.next_attempt_at, r.sent_at) for r in refused] == [
        (1, NOW + MINUTE, None)
    ]
    assert "SMTP [550]" in _pli_logs(caplog)


def test_concurrent_senders_deliver_each_email_once(
    db: Database, view: TransferView, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    settings = _settings(tmp_path, port)
    with db.session() as session:
        for i in range(30):
            notify.transfer_received(session, settings, view, f"r{i}@example.org", now=NOW)
        session.commit()
    start = threading.Barrier(2)
    counts: list[int] = []

    def send() -> None:
        start.wait()
        counts.append(notify.send_pending(db, settings, now=NOW))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 30
    subjects = sorted(str(m["Subject"]) for m in inbox.to("alice@example.org"))
    assert len(subjects) == 30
    assert len(set(subjects)) == 30
    assert all(r.attempts == 1 and r.sent_at is not None for r in _rows(db))


@pytest.mark.parametrize(
    "address", ["bob@example.org\r\nBcc: eve@example.org", "bob@example.org\nX: y", "no-at-sign"]
)
def test_an_address_with_a_line_break_is_refused(
    db: Database, view: TransferView, tmp_path: Path, port: int, address: str
) -> None:
    with db.session() as session, pytest.raises(UsageError):
        notify.transfer_received(session, _settings(tmp_path, port), view, address, now=NOW)
    with pytest.raises(ConfigError):
        SmtpSettings(host="127.0.0.1", sender=address, security="none")


def test_a_row_with_a_line_break_is_never_sent(
    db: Database, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    with db.session() as session:
        for recipient, subject in (
            ("bob@example.org\r\nBcc: eve@example.org", "hello"),
            ("bob@example.org", "hello\r\nBcc: eve@example.org"),
        ):
            session.add(
                models.Notification(
                    recipient=recipient,
                    subject=subject,
                    body="body",
                    created_at=NOW,
                    attempts=0,
                    next_attempt_at=NOW,
                )
            )
        session.commit()
    assert notify.send_pending(db, _settings(tmp_path, port), now=NOW) == 0
    assert inbox.messages == []
    assert all(r.attempts == notify.MAX_ATTEMPTS and r.sent_at is None for r in _rows(db))


def test_authentication_with_a_username_and_password(
    db: Database, view: TransferView, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    good = _settings(tmp_path, port, username="pli", password=PASSWORD)
    bad = _settings(tmp_path, port, username="pli", password=PASSWORD + "-wrong")
    with db.session() as session:
        notify.transfer_received(session, good, view, "bob@example.org", now=NOW)
        session.commit()
    caplog.set_level(logging.DEBUG)
    with _smtp_server(port, authenticator=_check_login, auth_require_tls=False) as inbox:
        assert notify.send_pending(db, bad, now=NOW) == 0
        assert "535" in _pli_logs(caplog)
        assert notify.send_pending(db, good, now=NOW + MINUTE) == 1
    assert [r.login for r in inbox.messages] == [b"pli"]
    logged = _pli_logs(caplog)
    for secret in (PASSWORD, base64.b64encode(f"\0pli\0{PASSWORD}-wrong".encode()).decode()):
        assert secret not in logged
        assert secret not in caplog.text


def test_the_password_is_never_logged_when_the_server_is_down(
    db: Database, view: TransferView, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, port, username="pli", password=PASSWORD)
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    caplog.set_level(logging.DEBUG)
    notify.send_pending(db, settings, now=NOW)
    assert "not sent" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(settings)


@pytest.fixture
def server_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server side of TLS; its certificate is trusted by the default client context."""
    cert, key = self_signed(tmp_path, "pli test mail server")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_starttls_is_required_and_used(
    db: Database, view: TransferView, tmp_path: Path, port: int, server_tls: ssl.SSLContext
) -> None:
    settings = _settings(tmp_path, port, security="starttls", username="pli", password=PASSWORD)
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    # A server that does not offer STARTTLS gets nothing, not even a clear-text attempt.
    with _smtp_server(port) as clear:
        assert notify.send_pending(db, settings, now=NOW) == 0
    assert clear.messages == []
    assert _rows(db)[0].attempts == 1
    with _smtp_server(
        port, authenticator=_check_login, tls_context=server_tls, require_starttls=True
    ) as inbox:
        assert notify.send_pending(db, settings, now=NOW + MINUTE) == 1
    assert [r.login for r in inbox.messages] == [b"pli"]


def test_implicit_tls(
    db: Database, view: TransferView, tmp_path: Path, port: int, server_tls: ssl.SSLContext
) -> None:
    settings = _settings(tmp_path, port, security="tls")
    with db.session() as session:
        notify.transfer_received(session, settings, view, "bob@example.org", now=NOW)
        session.commit()
    with _smtp_server(port, ssl_context=server_tls) as inbox:
        assert notify.send_pending(db, settings, now=NOW) == 1
    assert len(inbox.to("alice@example.org")) == 1


def test_the_loop_sends_in_the_background(
    db: Database, view: TransferView, inbox: Inbox, tmp_path: Path, port: int
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        smtp=SmtpSettings(host="127.0.0.1", port=port, security="none", sender=FROM),
        clock=lambda: NOW,
    )
    _arrived(db, settings, view)

    async def run() -> None:
        task = asyncio.create_task(notify.notify_loop(db, settings))
        for _ in range(200):
            if len(inbox.messages) == 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(inbox.messages) == 2


SMTP_VARIABLES = (
    "PLI_SMTP_HOST",
    "PLI_SMTP_PORT",
    "PLI_SMTP_SECURITY",
    "PLI_SMTP_USERNAME",
    "PLI_SMTP_PASSWORD",
    "PLI_SMTP_FROM",
)


def _from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    for name in SMTP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env(tmp_path)


def test_smtp_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _from_env(monkeypatch, tmp_path).smtp is None
    smtp = _from_env(
        monkeypatch, tmp_path, PLI_SMTP_HOST="smtp.example.org", PLI_SMTP_FROM=FROM
    ).smtp
    assert smtp == SmtpSettings(host="smtp.example.org", sender=FROM)
    assert (smtp.port, smtp.security) == (587, "starttls")
    tls = _from_env(
        monkeypatch,
        tmp_path,
        PLI_SMTP_HOST="smtp.example.org",
        PLI_SMTP_FROM=FROM,
        PLI_SMTP_SECURITY="tls",
        PLI_SMTP_USERNAME="pli",
        PLI_SMTP_PASSWORD=PASSWORD,
    ).smtp
    assert tls is not None
    assert (tls.port, tls.security, tls.username, tls.password) == (465, "tls", "pli", PASSWORD)
    for host in ("127.0.0.1", "::1", "localhost"):
        clear = _from_env(
            monkeypatch,
            tmp_path,
            PLI_SMTP_HOST=host,
            PLI_SMTP_FROM=FROM,
            PLI_SMTP_SECURITY="none",
            PLI_SMTP_PORT="25",
        ).smtp
        assert clear is not None
        assert (clear.security, clear.port) == ("none", 25)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_SECURITY": "none"}, "loopback"),
        ({"PLI_SMTP_HOST": "10.0.0.1", "PLI_SMTP_SECURITY": "none"}, "loopback"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_SECURITY": "ssl"}, "starttls"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_FROM": ""}, "PLI_SMTP_FROM"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_PORT": "70000"}, "PLI_SMTP_PORT"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_PORT": "smtp"}, "PLI_SMTP_PORT"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_PASSWORD": PASSWORD}, "USERNAME"),
        ({"PLI_SMTP_HOST": "smtp.example.org", "PLI_SMTP_USERNAME": "pli"}, "PASSWORD"),
        ({"PLI_SMTP_HOST": "", "PLI_SMTP_PASSWORD": PASSWORD}, "PLI_SMTP_HOST"),
    ],
)
def test_unusable_smtp_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint) as refused:
        _from_env(monkeypatch, tmp_path, **{"PLI_SMTP_FROM": FROM, **env})
    assert PASSWORD not in str(refused.value)
