"""Alerts counted from the audit log's last hour, on each backend: raised once per kind while
open, suspending downloads only when the policy says so, and cleared with a record."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pli.audit import log
from pli.audit.chain import Event
from pli.errors import ForbiddenError
from pli.server import alerts, policy
from pli.server.config import Settings
from pli.store import models
from pli.store.db import Database
from tests.unit.server.exchange import NOW, user

RULES = dataclasses.replace(
    policy.defaults(Settings(data_dir=Path("pli-data"))), alert_login_addresses_per_hour=2
)


def _login(database: Database, email: str, address: str, minutes: int) -> None:
    now = NOW + timedelta(minutes=minutes)
    with log.at_address(address), database.session() as session:
        account = session.scalars(select(models.User).where(models.User.email == email)).one()
        log.record(session, Event.AUTH_LOGIN_SUCCEEDED, now=now, actor=email)
        alerts.after(session, account, Event.AUTH_LOGIN_SUCCEEDED, RULES, now=now)
        session.commit()


def _raised(database: Database) -> list[tuple[str | None, str | None, str]]:
    with database.session() as session:
        return [
            (str(r.event), r.subject, r.address or "")
            for r in log.records(session)
            if r.event == Event.ALERT_RAISED
        ]


@pytest.fixture
def database(engine: Engine) -> Database:
    return Database(engine)


def test_logins_from_many_addresses_raise_one_alert(database: Database) -> None:
    with database.session() as session:
        user(session, "alice")
    for minute, address in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"]):
        _login(database, "alice@example.org", address, minute)
    assert _raised(database) == [("alert.raised", "alice@example.org", "10.0.0.3")]
    _login(database, "alice@example.org", "10.0.0.4", 5)  # still open: not raised again
    assert len(_raised(database)) == 1
    with database.session() as session:
        found = alerts.open_alerts(session)
        assert [(a.kind, a.cleared_at) for a in found] == [("login-addresses", None)]
        account = session.get_one(models.User, found[0].user_id)
        assert account.downloads_suspended_at is None  # the default only alerts
        alerts.check_downloads(account)


def test_an_hour_later_the_count_starts_again(database: Database) -> None:
    with database.session() as session:
        user(session, "alice")
    for minute, address in [(0, "10.0.0.1"), (1, "10.0.0.2"), (70, "10.0.0.3"), (71, "10.0.0.1")]:
        _login(database, "alice@example.org", address, minute)
    assert _raised(database) == []


def test_a_suspension_holds_until_cleared(database: Database) -> None:
    suspend = dataclasses.replace(RULES, alert_action="suspend")
    with database.session() as session:
        account = user(session, "bob")
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            with log.at_address(address):
                log.record(session, Event.AUTH_LOGIN_SUCCEEDED, now=NOW, actor=account.email)
        alerts.after(session, account, Event.AUTH_LOGIN_SUCCEEDED, suspend, now=NOW)
        session.commit()
        with pytest.raises(ForbiddenError, match="downloads from this account are suspended"):
            alerts.check_downloads(account)
        assert alerts.clear(session, account, now=NOW, actor="local:root", how="administrator") == 1
        alerts.check_downloads(account)
        assert alerts.open_alerts(session) == []
        cleared = [r for r in log.records(session) if r.event == Event.ALERT_CLEARED]
        assert [(r.actor, r.details) for r in cleared] == [
            ("local:root", {"alerts": 1, "suspension_lifted": True, "by": "administrator"})
        ]


def test_downloads_are_counted_by_transfer_and_by_byte(database: Database) -> None:
    rules = dataclasses.replace(RULES, alert_downloads_per_hour=5, alert_bytes_per_hour=1000)
    with database.session() as session:
        account = user(session, "bob")
        for subject, sent in [("t1", 300), ("t1", 300), ("t2", 300), ("t3", 0)]:
            log.record(
                session,
                Event.TRANSFER_DOWNLOADED,
                now=NOW,
                actor=account.email,
                subject=subject,
                details={"file": "f", "first": 0, "bytes": sent},
            )
        since = "2000-01-01T00:00:00.000000Z"
        assert alerts._transfers(session, account.email, since) == 3
        assert alerts._bytes(session, account.email, since) == 900
        alerts.after(session, account, Event.TRANSFER_DOWNLOADED, rules, now=NOW)
        assert alerts.open_alerts(session) == []
        log.record(
            session,
            Event.TRANSFER_DOWNLOADED,
            now=NOW,
            actor=account.email,
            subject="t2",
            details={"file": "f", "first": 300, "bytes": 101},
        )
        alerts.after(session, account, Event.TRANSFER_DOWNLOADED, rules, now=NOW)
        assert [a.kind for a in alerts.open_alerts(session)] == ["bytes"]
