"""The admin API against the real server: administrators only, and only from the networks in
PLI_ADMIN_NETWORKS (loopback by default), judged on the socket's peer, never on headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from pli.server.app import create_app
from pli.server.config import Settings
from tests.integration.conftest import PASSWORD, Server, start_server, stop_server

ADMIN, USER = "root@example.org", "user@example.org"
SPOOFED = {"x-forwarded-for": "10.1.2.3", "forwarded": "for=10.1.2.3", "x-real-ip": "10.1.2.3"}


def _accounts(server: Server) -> dict[str, str]:
    """An administrator and an ordinary account, each with a session token."""
    assert server.admin("create-user", ADMIN, "--admin").returncode == 0
    assert server.admin("create-user", USER).returncode == 0
    tokens = {}
    for email in (ADMIN, USER):
        login = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        tokens[email] = login.json()["token"]
    return tokens


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _admin_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """Every route of the app under /api/v1/admin."""
    app = create_app(Settings(data_dir=tmp_path / "routes"))
    return sorted(
        (method, path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/admin/")
        for method in (m.upper() for m in operations)
    )


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Server]:
    """A server whose admin network excludes the loopback address the tests connect from."""
    srv = start_server(tmp_path, None, {"PLI_ADMIN_NETWORKS": "10.0.0.0/8, 192.168.0.0/16"})
    yield srv
    stop_server(srv)


def test_administrators_list_accounts(sqlite_server: Server) -> None:
    tokens = _accounts(sqlite_server)
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        listed = http.get("/api/v1/admin/users", headers=_auth(tokens[ADMIN]))
        by_user = http.get("/api/v1/admin/users", headers=_auth(tokens[USER]))
        anonymous = http.get("/api/v1/admin/users")
        # A header naming another client changes nothing: the socket's peer is loopback.
        spoofed = http.get("/api/v1/admin/users", headers={**_auth(tokens[ADMIN]), **SPOOFED})
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["email"], r["is_admin"]) for r in rows] == [(ADMIN, True), (USER, False)]
    for row in rows:
        assert set(row) == {"email", "is_admin", "created_at"}
        assert datetime.fromisoformat(row["created_at"]).tzinfo is not None
    assert by_user.status_code == 403
    assert by_user.json()["detail"] == "this needs an administrator account"
    assert anonymous.status_code == 401
    assert spoofed.status_code == 200


def test_admin_api_refused_outside_its_networks(outside: Server, tmp_path: Path) -> None:
    tokens = _accounts(outside)
    routes = _admin_routes(tmp_path)
    assert ("GET", "/api/v1/admin/users") in routes
    with httpx.Client(base_url=outside.url, timeout=30) as http:
        for method, path in routes:
            for headers in (_auth(tokens[ADMIN]), {**_auth(tokens[ADMIN]), **SPOOFED}, {}):
                got = http.request(method, path, headers=headers)
                assert got.status_code == 403, (method, path, headers.keys())
                assert got.headers["content-type"] == "application/problem+json"
                assert "not reachable from this address" in got.json()["detail"]
        # Everything else still works for the same administrator, from the same address.
        me = http.get("/api/v1/me", headers=_auth(tokens[ADMIN]))
        assert me.status_code == 200
        assert me.json()["is_admin"] is True
        assert http.get("/healthz").status_code == 200


def test_invalid_admin_network_stops_the_server(tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match=re.escape("'10.0.0.0/33' in PLI_ADMIN_NETWORKS is not a network")
    ):
        start_server(tmp_path, None, {"PLI_ADMIN_NETWORKS": "10.0.0.0/33"})


def test_empty_admin_networks_close_the_admin_api(tmp_path: Path) -> None:
    srv = start_server(tmp_path, None, {"PLI_ADMIN_NETWORKS": ""})
    try:
        tokens = _accounts(srv)
        got = httpx.get(f"{srv.url}/api/v1/admin/users", headers=_auth(tokens[ADMIN]), timeout=30)
    finally:
        stop_server(srv)
    assert got.status_code == 403
