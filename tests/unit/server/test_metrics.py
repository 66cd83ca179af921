"""GET /metrics in process, on each backend: what is read from the database at each scrape
(transfers by state, stored bytes, purge lag, audit counts) with a fixed clock and no purge
running, and the labels of the request histogram. Uploads and downloads counted through the real
server: tests/integration/test_metrics.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine, update

from pli.audit.chain import Event
from pli.audit.log import record
from pli.server.app import create_app
from pli.server.auth import service as auth
from pli.server.config import Settings
from pli.store import models
from pli.store.db import Database

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ADMIN, PASSWORD = "root@example.org", "a long enough password"
STATES = ("uploading", "sealed", "revoked", "expired", "exhausted")


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> Iterator[FastAPI]:
    """An app on each backend whose clock stands still: nothing expires while a test runs,
    and without its lifespan no purge runs either."""
    url = engine.url.render_as_string(hide_password=False)
    made = create_app(Settings(data_dir=tmp_path / "server", database_url=url, clock=lambda: NOW))
    with _db(made).session() as session:
        auth.create_user(session, ADMIN, PASSWORD, is_admin=True, now=NOW)
    yield made
    _db(made).engine.dispose()


def _db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


def _call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://pli.example") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(call())


def _admin(app: FastAPI) -> dict[str, str]:
    body = {"email": ADMIN, "password": PASSWORD}
    login = _call(app, "POST", "/api/v1/auth/login", json=body)
    assert login.status_code == 200, login.text
    return {"authorization": f"Bearer {login.json()['token']}"}


def _scrape(app: FastAPI, admin: dict[str, str]) -> tuple[list[Sample], str]:
    answer = _call(app, "GET", "/metrics", headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(answer.text)
    return [sample for family in families for sample in family.samples], answer.text


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0]


def _transfer(
    app: FastAPI, state: str, expires_at: datetime, files: tuple[tuple[str | None, int], ...]
) -> str:
    """A transfer in `state` with files of (blob key or None once purged, size)."""
    made = secrets.token_hex(16)
    with _db(app).session() as session:
        row = models.Transfer(
            id=made, state=state, created_at=NOW - DAY, expires_at=expires_at, sender_id=None
        )
        session.add(row)
        session.flush()
        for position, (key, size) in enumerate(files):
            session.add(
                models.TransferFile(
                    id=secrets.token_hex(16),
                    transfer_id=made,
                    position=position,
                    blob_key=key,
                    size=size,
                )
            )
        session.commit()
    return made


def test_transfers_by_state_and_stored_bytes_are_read_at_each_scrape(app: FastAPI) -> None:
    admin = _admin(app)
    empty, _ = _scrape(app, admin)
    assert [_value(empty, "pli_transfers", state=state) for state in STATES] == [0] * 5
    assert _value(empty, "pli_stored_bytes") == 0
    later = NOW + DAY
    _transfer(app, "uploading", later, (("a" * 64, 10), (None, 0)))  # one file still to come
    _transfer(app, "sealed", later, (("b" * 64, 100), ("c" * 64, 23)))
    _transfer(app, "sealed", later, ())
    for ended in ("revoked", "expired", "exhausted"):
        _transfer(app, ended, later, ((None, 50),))  # its blob deleted, its size kept
    samples, _ = _scrape(app, admin)
    by_state = {state: _value(samples, "pli_transfers", state=state) for state in STATES}
    assert by_state == {"uploading": 1, "sealed": 2, "revoked": 1, "expired": 1, "exhausted": 1}
    assert _value(samples, "pli_stored_bytes") == 133
    assert _value(samples, "pli_purge_lag_seconds") == 0


def test_purge_lag_is_the_age_of_the_oldest_overdue_expiry(app: FastAPI) -> None:
    admin = _admin(app)
    _transfer(app, "expired", NOW - 7 * DAY, ())  # purged already: no lag
    _transfer(app, "uploading", NOW + DAY, ())  # not due yet
    overdue = _transfer(app, "sealed", NOW - timedelta(seconds=90), (("d" * 64, 5),))
    _transfer(app, "uploading", NOW - timedelta(seconds=30), ())
    samples, _ = _scrape(app, admin)
    assert _value(samples, "pli_purge_lag_seconds") == 90
    with _db(app).session() as session:
        purged = update(models.Transfer).where(models.Transfer.id == overdue)
        session.execute(purged.values(state="expired"))
        session.commit()
    samples, _ = _scrape(app, admin)
    assert _value(samples, "pli_purge_lag_seconds") == 30


def test_failed_logins_and_alerts_are_counted_from_the_audit_log(app: FastAPI) -> None:
    admin = _admin(app)
    before, _ = _scrape(app, admin)
    with _db(app).session() as session:
        for event in (Event.AUTH_LOGIN_FAILED, Event.AUTH_LOGIN_FAILED, Event.ALERT_RAISED):
            record(session, event, now=NOW, actor=ADMIN)
        record(session, Event.AUTH_LOGIN_SUCCEEDED, now=NOW, actor=ADMIN)
        session.commit()
    after, _ = _scrape(app, admin)
    for name, added in (("pli_failed_logins_total", 2), ("pli_alerts_total", 1)):
        assert _value(after, name) == _value(before, name) + added


def test_request_durations_are_labelled_by_route_template(app: FastAPI) -> None:
    admin = _admin(app)
    unknown = secrets.token_hex(16)
    assert _call(app, "GET", f"/api/v1/transfers/{unknown}", headers=admin).status_code == 404
    assert _call(app, "GET", f"/no/such/{unknown}").status_code == 404
    assert _call(app, "BREW", "/healthz").status_code == 405
    assert _call(app, "GET", "/healthz").status_code == 200
    samples, text = _scrape(app, admin)
    counted = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in samples
        if s.name == "pli_http_request_duration_seconds_count"
    }
    assert counted == {
        ("POST", "/api/v1/auth/login", "2xx"): 1,
        ("GET", "/api/v1/transfers/{transfer_id}", "4xx"): 1,
        ("GET", "other", "4xx"): 1,  # no route: the path asked for is no label
        ("other", "/healthz", "4xx"): 1,  # nor is a method outside the standard ones
        ("GET", "/healthz", "2xx"): 1,
    }
    assert unknown not in text
    assert "BREW" not in text


def test_metrics_are_for_administrators(app: FastAPI) -> None:
    with _db(app).session() as session:
        auth.create_user(session, "user@example.org", PASSWORD, is_admin=False, now=NOW)
    body = {"email": "user@example.org", "password": PASSWORD}
    token = _call(app, "POST", "/api/v1/auth/login", json=body).json()["token"]
    assert _call(app, "GET", "/metrics").status_code == 401
    user = {"authorization": f"Bearer {token}"}
    assert _call(app, "GET", "/metrics", headers=user).status_code == 403


def test_each_app_has_a_registry_of_its_own(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    first, second = (
        create_app(Settings(data_dir=tmp_path / name, database_url=url)) for name in "ab"
    )
    assert first.state.metrics.registry is not second.state.metrics.registry
    for made in (first, second):
        _db(made).engine.dispose()
