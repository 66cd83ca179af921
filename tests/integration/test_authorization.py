"""Every route of the app, for every role, against the real server. A route without an entry
in the table fails the test, so a new route cannot ship without its authorization decided."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pli.server.app import create_app
from pli.server.config import Settings
from tests.integration.conftest import Server, User, make_user

ROLES = ("anonymous", "other", "recipient", "sender")
T, F = "{transfer_id}", "{file_id}"
# (method, path) -> expected status per role, in ROLES order. Order matters: revoke and
# logout run last because they end the transfer and the session.
MATRIX: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200),
    ("GET", "/openapi.json"): (200, 200, 200, 200),
    ("POST", "/api/v1/auth/login"): (422, 422, 422, 422),  # no credentials in the body
    ("GET", "/api/v1/me"): (401, 200, 200, 200),
    ("GET", "/api/v1/me/escrow"): (401, 200, 200, 200),
    ("POST", "/api/v1/devices"): (401, 400, 400, 400),  # an empty bundle is refused
    ("GET", "/api/v1/users/{email}/devices"): (401, 200, 200, 200),
    ("POST", "/api/v1/transfers"): (401, 201, 201, 201),
    ("GET", "/api/v1/transfers"): (401, 200, 200, 200),
    ("GET", f"/api/v1/transfers/{T}"): (401, 404, 200, 200),
    ("GET", f"/api/v1/transfers/{T}/files/{F}"): (401, 404, 200, 200),
    ("PUT", f"/api/v1/transfers/{T}/files/{F}"): (401, 404, 403, 409),
    ("POST", f"/api/v1/transfers/{T}/seal"): (401, 404, 403, 409),
    ("DELETE", f"/api/v1/transfers/{T}"): (401, 404, 403, 204),
    ("POST", "/api/v1/auth/logout"): (401, 204, 204, 204),
}
BODIES = {
    ("POST", "/api/v1/devices"): {"bundle": {}},
    ("POST", "/api/v1/transfers"): {"recipients": ["bob@example.org"], "files": 1},
    ("POST", f"/api/v1/transfers/{T}/seal"): {"manifest": "AAAA"},
    ("POST", "/api/v1/auth/login"): {},
}


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every operation of the app: those in its OpenAPI document, and any route outside it."""
    app = create_app(Settings(data_dir=tmp_path / "routes"))
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((method, getattr(route, "path", "")))
    return found


def test_every_route_has_an_entry(tmp_path: Path) -> None:
    assert _routes(tmp_path) == set(MATRIX)


@pytest.fixture
def setting(sqlite_server: Server, tmp_path: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    carol = make_user(sqlite_server, tmp_path, "carol")
    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    transfer = alice.send(source, to=bob.email)
    files = bob.ok("get", transfer, "-o", str(tmp_path / "o"))
    assert files.returncode == 0
    listed = httpx.get(
        f"{sqlite_server.url}/api/v1/transfers/{transfer}", headers=_auth(_token(bob))
    ).json()
    tokens = {
        "anonymous": None,
        "other": _token(carol),
        "recipient": _token(bob),
        "sender": _token(alice),
    }
    ids = {"transfer_id": transfer, "file_id": listed["files"][0]["id"], "email": alice.email}
    return tokens, ids


def _token(user: User) -> str:
    return (user.home / "session").read_text()


def _auth(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def test_authorization_matrix(
    sqlite_server: Server, setting: tuple[dict[str, str | None], dict[str, str]]
) -> None:
    tokens, ids = setting
    failures = []
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        for (method, template), expected in MATRIX.items():
            path = template.format(**ids)
            for role, status in zip(ROLES, expected, strict=True):
                kwargs: dict[str, object] = {"headers": _auth(tokens[role])}
                if (method, template) in BODIES:
                    kwargs["json"] = BODIES[(method, template)]
                elif method == "PUT":
                    kwargs["content"] = b"x"
                got = http.request(method, path, **kwargs)  # type: ignore[arg-type]
                if got.status_code != status:
                    failures.append(f"{method} {template} as {role}: {got.status_code} != {status}")
                if got.status_code >= 400:
                    assert got.headers["content-type"] == "application/problem+json"
        # After revocation, even the recipient is told the transfer is gone.
        gone = http.get(f"/api/v1/transfers/{ids['transfer_id']}", headers=_auth(tokens["sender"]))
        assert gone.status_code in (401, 410)
    assert failures == []
