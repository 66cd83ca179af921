"""Every route of the app, for every role, against the real server. A route without an entry
in the table fails the test, so a new route cannot ship without its authorization decided."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from pli.server.app import create_app
from pli.server.config import Settings
from tests.integration.conftest import PASSWORD, Server, User, make_user, upload_metadata

ROLES = ("anonymous", "other", "recipient", "sender", "administrator")
T, F = "{transfer_id}", "{file_id}"
# (method, path) -> expected status per role, in ROLES order. Order matters: revoke and
# logout run last because they end the transfer and the session. The administrator (an account
# made with --admin, party to no transfer) is answered like any other user outside the admin API.
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200, 200),
    ("GET", "/openapi.json"): (200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/login"): (422, 422, 422, 422, 422),  # no credentials in the body
    ("GET", "/api/v1/me"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/me/escrow"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/devices"): (401, 400, 400, 400, 400),  # an empty bundle is refused
    ("GET", "/api/v1/users/{email}/devices"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/transfers"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/transfers"): (401, 200, 200, 200, 200),
    ("GET", f"/api/v1/transfers/{T}"): (401, 404, 200, 200, 404),
    ("GET", f"/api/v1/transfers/{T}/files/{F}"): (401, 404, 200, 200, 404),
    ("POST", f"/api/v1/transfers/{T}/seal"): (401, 404, 403, 409, 404),
    ("DELETE", f"/api/v1/transfers/{T}"): (401, 404, 403, 204, 404),
    ("POST", "/api/v1/me/password"): (401, 400, 400, 400, 400),  # new password == current one
    ("POST", "/api/v1/me/password/verify"): (401, 204, 204, 204, 204),
    ("PUT", "/api/v1/devices/{device_id}/escrow"): (401, 404, 404, 204, 404),  # sender's device
    ("POST", "/api/v1/me/2fa/totp"): (401, 200, 200, 200, 200),  # enrolment starts, pending
    ("POST", "/api/v1/me/2fa/totp/confirm"): (401, 401, 401, 401, 401),  # a wrong code
    ("POST", "/api/v1/me/2fa/totp/disable"): (401, 409, 409, 409, 409),  # none enabled
    ("POST", "/api/v1/tokens"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/tokens"): (401, 200, 200, 200, 200),
    ("DELETE", "/api/v1/tokens/{token_id}"): (401, 404, 404, 204, 404),  # the sender's token
    ("GET", "/api/v1/admin/users"): (401, 403, 403, 403, 200),
    # Resumable uploads: of the sender's transfer that is still being uploaded.
    ("OPTIONS", "/api/v1/uploads"): (204, 204, 204, 204, 204),  # protocol discovery
    ("POST", "/api/v1/uploads"): (401, 404, 404, 201, 404),
    ("HEAD", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 200, 404),
    ("PATCH", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 204, 404),
    ("DELETE", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 204, 404),
    ("POST", "/api/v1/auth/logout-all"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/logout"): (401, 204, 204, 204, 204),
}
# These end sessions: each role uses a session opened for the purpose.
FRESH_SESSION = {("POST", "/api/v1/auth/logout-all"), ("POST", "/api/v1/auth/logout")}
TUS = {"tus-resumable": "1.0.0"}
HEADERS = {
    ("POST", "/api/v1/uploads"): {**TUS, "upload-length": "2"},  # + metadata, in the test
    ("HEAD", "/api/v1/uploads/{upload_id}"): TUS,
    ("PATCH", "/api/v1/uploads/{upload_id}"): {
        **TUS,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
    },
    ("DELETE", "/api/v1/uploads/{upload_id}"): TUS,
}
BODIES = {
    ("POST", "/api/v1/devices"): {"bundle": {}},
    ("POST", "/api/v1/transfers"): {"recipients": ["bob@example.org"], "files": 1},
    ("POST", f"/api/v1/transfers/{T}/seal"): {"manifest": "AAAA"},
    ("POST", "/api/v1/auth/login"): {},
    ("POST", "/api/v1/me/password"): {"current": PASSWORD, "new": PASSWORD},
    ("POST", "/api/v1/tokens"): {"name": "matrix", "scopes": ["send"]},
    ("POST", "/api/v1/me/2fa/totp/confirm"): {"code": "000000"},
    ("POST", "/api/v1/me/password/verify"): {"password": PASSWORD},
    ("PUT", "/api/v1/devices/{device_id}/escrow"): {"escrow": "AAAA"},
    ("POST", "/api/v1/me/2fa/totp/disable"): {"code": "000000"},
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


# Every route reachable without authentication, counted on purpose: pre-authentication code is
# where file-transfer servers get broken into, so adding to this list must be a decision.
PRE_AUTHENTICATION = {
    ("OPTIONS", "/api/v1/uploads"),  # says which protocol version and size limit, nothing else
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("POST", "/api/v1/auth/login"),
}


def test_the_pre_authentication_surface_is_counted() -> None:
    reachable = {route for route, expected in MATRIX.items() if expected[0] not in (401, 403)}
    assert reachable == PRE_AUTHENTICATION


def test_every_route_has_an_entry(tmp_path: Path) -> None:
    assert _routes(tmp_path) == set(MATRIX)


@pytest.fixture
def setting(sqlite_server: Server, tmp_path: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    carol = make_user(sqlite_server, tmp_path, "carol")
    dave = make_user(sqlite_server, tmp_path, "dave", admin=True)
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
        "administrator": _token(dave),
    }
    made = httpx.post(
        f"{sqlite_server.url}/api/v1/tokens",
        json={"name": "sender's", "scopes": ["send"]},
        headers=_auth(_token(alice)),
    ).json()
    pending = httpx.post(
        f"{sqlite_server.url}/api/v1/transfers",
        json={"recipients": [bob.email], "files": 1},
        headers=_auth(_token(alice)),
    ).json()
    meta = upload_metadata(pending["id"], pending["files"][0]["id"])
    HEADERS[("POST", "/api/v1/uploads")]["upload-metadata"] = meta
    created = httpx.post(
        f"{sqlite_server.url}/api/v1/uploads",
        headers={**_auth(_token(alice)), **TUS, "upload-length": "2", "upload-metadata": meta},
    )
    assert created.status_code == 201, created.text
    ids = {
        "upload_id": created.headers["location"].rsplit("/", 1)[1],
        "transfer_id": transfer,
        "file_id": listed["files"][0]["id"],
        "email": alice.email,
        "token_id": made["id"],
        "device_id": json.loads((alice.home / "device.json").read_text())["doc"]["device"],
        "other": carol.email,
        "recipient": bob.email,
        "sender": alice.email,
        "administrator": dave.email,
    }
    return tokens, ids


def _fresh_session(http: httpx.Client, email: str) -> str:
    answer = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    token: str = answer.json()["token"]
    return token


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
                token = tokens[role]
                if token and (method, template) in FRESH_SESSION:
                    token = _fresh_session(http, ids[role])
                headers = {**_auth(token), **HEADERS.get((method, template), {})}
                kwargs: dict[str, object] = {"headers": headers}
                if (method, template) in BODIES:
                    kwargs["json"] = BODIES[(method, template)]
                elif method == "PATCH":
                    kwargs["content"] = b"x"
                got = http.request(method, path, **kwargs)  # type: ignore[arg-type]
                if got.status_code != status:
                    failures.append(f"{method} {template} as {role}: {got.status_code} != {status}")
                if got.status_code >= 400 and method != "HEAD":
                    assert got.headers["content-type"] == "application/problem+json"
        # After revocation, even the recipient is told the transfer is gone.
        gone = http.get(f"/api/v1/transfers/{ids['transfer_id']}", headers=_auth(tokens["sender"]))
        assert gone.status_code in (401, 410)
    assert failures == []


# Routes of one transfer, for a transfer that has ended: parties are told it is gone (410),
# anyone else that it does not exist (404). In ("other", "recipient", "sender") order.
ENDED: dict[tuple[str, str], tuple[int, int, int]] = {
    ("GET", f"/api/v1/transfers/{T}"): (404, 410, 410),
    ("GET", f"/api/v1/transfers/{T}/files/{F}"): (404, 410, 410),
    ("POST", f"/api/v1/transfers/{T}/seal"): (404, 410, 410),
    ("DELETE", f"/api/v1/transfers/{T}"): (404, 410, 410),
}


def test_every_transfer_route_has_an_entry_for_ended_transfers() -> None:
    assert set(ENDED) == {route for route in MATRIX if "{transfer_id}" in route[1]}


@pytest.mark.parametrize("ending", ["revoked", "expired"])
def test_ended_transfers(sqlite_server: Server, tmp_path: Path, ending: str) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    carol = make_user(sqlite_server, tmp_path, "carol")
    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    transfer = alice.send(source, to=bob.email, extra=("--expires", "2s"))
    shown = httpx.get(
        f"{sqlite_server.url}/api/v1/transfers/{transfer}", headers=_auth(_token(bob))
    ).json()
    ids = {"transfer_id": transfer, "file_id": shown["files"][0]["id"]}
    if ending == "revoked":
        alice.ok("revoke", transfer)
    else:
        time.sleep(2.5)
    failures = []
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        for (method, template), expected in ENDED.items():
            for user, status in zip((carol, bob, alice), expected, strict=True):
                got = http.request(
                    method,
                    template.format(**ids),
                    headers=_auth(_token(user)),
                    json=BODIES.get((method, template)),
                )
                if got.status_code != status:
                    failures.append(f"{method} {template} as {user.email}: {got.status_code}")
    assert failures == []
