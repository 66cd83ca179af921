"""Every route of the app, for every role, against the real server. A route without an entry
in the table fails the test, so a new route cannot ship without its authorization decided."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from pli.server import webapp
from pli.server.app import create_app
from pli.server.config import Settings
from tests.integration.conftest import PASSWORD, Server, User, make_user, upload_metadata
from tests.integration.test_passkeys import Browser
from tests.passkey_authenticator import Authenticator

ROLES = ("anonymous", "other", "recipient", "sender", "administrator")
SENDER_TOKEN = "the-token-a-request-url-gives-its-senders"
T, F = "{transfer_id}", "{file_id}"
L, R, A = "{link_id}", "{request_id}", "{answer_id}"  # the sender's link and file request
# The web app's page (pli.server.webapp), or 503 on a server where it is not built.
WEB = 200 if (webapp.DIST / "index.html").is_file() else 503
SW = 200 if (webapp.DIST / "assets" / webapp.SERVICE_WORKER).is_file() else 404
# (method, path) -> expected status per role, in ROLES order. Order matters: revoke and
# logout run last because they end the transfer and the session. The administrator (an account
# made with --admin, party to no transfer) is answered like any other user outside the admin API.
# Routes without an account are called with what opens them (a link's download ticket, an
# answer's guest token) whatever the role: an account adds nothing there (see
# test_accounts_open_nothing_without_an_account).
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200, 200),
    ("GET", "/openapi.json"): (200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/login"): (422, 422, 422, 422, 422),  # no credentials in the body
    ("GET", "/api/v1/me"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/me/escrow"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/devices"): (401, 400, 400, 400, 400),  # an empty bundle is refused
    ("GET", "/api/v1/users/{email}/devices"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/me/devices"): (401, 200, 200, 200, 200),
    # The sender's own, active device: not waiting for approval, and an unsigned removal.
    ("POST", "/api/v1/me/devices/{device_id}/approve"): (401, 404, 404, 409, 404),
    ("POST", "/api/v1/me/devices/{device_id}/remove"): (401, 404, 404, 400, 404),
    ("GET", "/api/v1/key-log/head"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/key-log/consistency"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/key-log/entries"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/transfers"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/transfers"): (401, 200, 200, 200, 200),
    ("GET", f"/api/v1/transfers/{T}"): (401, 404, 200, 200, 404),
    ("GET", f"/api/v1/transfers/{T}/files/{F}"): (401, 404, 200, 200, 404),
    ("POST", f"/api/v1/transfers/{T}/receipt"): (401, 404, 204, 403, 404),  # recipients only
    ("POST", f"/api/v1/transfers/{T}/failures"): (401, 404, 204, 403, 404),
    ("POST", f"/api/v1/transfers/{T}/seal"): (401, 404, 403, 409, 404),
    ("DELETE", f"/api/v1/transfers/{T}"): (401, 404, 403, 204, 404),
    ("POST", "/api/v1/me/password"): (401, 400, 400, 400, 400),  # new password == current one
    ("POST", "/api/v1/me/password/verify"): (401, 204, 204, 204, 204),
    ("PUT", "/api/v1/devices/{device_id}/escrow"): (401, 404, 404, 204, 404),  # sender's device
    ("POST", "/api/v1/me/2fa/totp"): (401, 200, 200, 200, 200),  # enrolment starts, pending
    ("POST", "/api/v1/me/2fa/totp/confirm"): (401, 401, 401, 401, 401),  # a wrong code
    ("POST", "/api/v1/me/2fa/totp/disable"): (401, 409, 409, 409, 409),  # none enabled
    ("GET", "/api/v1/me/2fa"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/me/2fa/passkeys/options"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/me/2fa/passkeys"): (401, 410, 410, 410, 410),  # an unknown challenge
    ("POST", "/api/v1/me/2fa/passkeys/assertion-options"): (401, 409, 409, 409, 409),  # none
    # Another account's passkey (see `setting`): no role can remove it, nor learn it exists.
    ("POST", "/api/v1/me/2fa/passkeys/{passkey_id}/remove"): (401, 404, 404, 404, 404),
    ("POST", "/api/v1/auth/passkey/options"): (422, 422, 422, 422, 422),  # no credentials
    ("POST", "/api/v1/tokens"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/tokens"): (401, 200, 200, 200, 200),
    ("GET", "/api/v1/directory"): (401, 200, 200, 200, 200),  # accounts, for picking recipients
    # A group whose founder is the sender, not started yet: an unsigned change is malformed.
    ("GET", "/api/v1/groups/{org}/{group}"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/groups/{org}/{group}/changes"): (401, 403, 403, 400, 403),
    ("GET", "/api/v1/me/groups"): (401, 200, 200, 200, 200),
    ("DELETE", "/api/v1/tokens/{token_id}"): (401, 404, 404, 204, 404),  # the sender's token
    ("GET", "/api/v1/admin/users"): (401, 403, 403, 403, 200),
    ("GET", "/api/v1/admin/policy"): (401, 403, 403, 403, 200),
    ("PATCH", "/api/v1/admin/policy"): (401, 403, 403, 403, 200),
    ("GET", "/api/v1/admin/alerts"): (401, 403, 403, 403, 200),
    ("POST", "/api/v1/admin/alerts/{email}/clear"): (401, 403, 403, 403, 200),
    ("POST", "/api/v1/me/alerts/clear"): (401, 403, 403, 403, 403),  # no second factor here
    ("GET", "/metrics"): (401, 403, 403, 403, 200),  # outside PLI_ADMIN_NETWORKS: test_metrics
    # Resumable uploads: of the sender's transfer that is still being uploaded.
    ("OPTIONS", "/api/v1/uploads"): (204, 204, 204, 204, 204),  # protocol discovery
    ("POST", "/api/v1/uploads"): (401, 404, 404, 201, 404),
    ("HEAD", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 200, 404),
    ("PATCH", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 204, 404),
    ("DELETE", "/api/v1/uploads/{upload_id}"): (401, 404, 404, 204, 404),
    # Share links and file requests: their owner's routes.
    ("POST", "/api/v1/links"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/links"): (401, 200, 200, 200, 200),
    ("POST", "/api/v1/requests"): (401, 201, 201, 201, 201),
    ("GET", "/api/v1/requests"): (401, 200, 200, 200, 200),
    ("GET", f"/api/v1/requests/{R}"): (401, 404, 404, 200, 404),
    ("POST", f"/api/v1/requests/{R}/seal"): (401, 404, 404, 409, 404),  # sealed already
    # ... and those of anyone holding the URL, with no account.
    ("POST", f"/api/v1/public/links/{L}/tickets"): (201, 201, 201, 201, 201),
    ("GET", f"/api/v1/public/links/{L}"): (200, 200, 200, 200, 200),  # with the ticket
    ("GET", f"/api/v1/public/links/{L}/files/{F}"): (200, 200, 200, 200, 200),  # with it too
    ("GET", f"/api/v1/public/requests/{R}"): (200, 200, 200, 200, 200),
    ("POST", f"/api/v1/public/requests/{R}/answers"): (201, 201, 201, 201, 201),
    ("POST", f"/api/v1/public/answers/{A}/seal"): (409, 409, 409, 409, 409),  # not uploaded
    ("GET", f"/l/{L}"): (200, 200, 200, 200, 200),  # the web app, or the landing pages
    ("GET", f"/r/{R}"): (200, 200, 200, 200, 200),
    ("GET", "/"): (WEB, WEB, WEB, WEB, WEB),  # the web app's one page
    ("GET", "/app"): (WEB, WEB, WEB, WEB, WEB),
    ("GET", "/app/{rest:path}"): (WEB, WEB, WEB, WEB, WEB),
    ("GET", "/assets/{name}"): (404, 404, 404, 404, 404),  # a name that was not built
    ("GET", "/sw.js"): (SW, SW, SW, SW, SW),  # the service worker that streams downloads
    ("POST", f"/api/v1/requests/{R}/close"): (401, 404, 404, 200, 404),
    ("DELETE", f"/api/v1/links/{L}"): (401, 404, 404, 204, 404),
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
    # + the link's ticket, the request's sender token and the answer's guest token, in the test
    ("GET", f"/api/v1/public/links/{L}"): {},
    ("GET", f"/api/v1/public/links/{L}/files/{F}"): {},
    ("GET", f"/api/v1/public/requests/{R}"): {"authorization": f"Bearer {SENDER_TOKEN}"},
    ("POST", f"/api/v1/public/requests/{R}/answers"): {"authorization": f"Bearer {SENDER_TOKEN}"},
    ("POST", f"/api/v1/public/answers/{A}/seal"): {},
}
# Path parameters that name something else than `ids` has under the same name.
PATH_IDS = {("GET", f"/api/v1/public/links/{L}/files/{F}"): {"file_id": "link_file_id"}}
QUERIES = {
    ("GET", "/api/v1/directory"): {"q": "example"},
    ("GET", "/api/v1/key-log/consistency"): {"first": "1", "second": "2"},
    ("GET", "/api/v1/key-log/entries"): {"start": "0", "end": "2"},
}
BODIES = {
    ("POST", "/api/v1/devices"): {"bundle": {}},
    ("POST", "/api/v1/me/devices/{device_id}/approve"): {"signed": {}},
    ("POST", "/api/v1/me/devices/{device_id}/remove"): {"signed": {}},
    ("POST", "/api/v1/groups/{org}/{group}/changes"): {"change": {}},
    ("POST", "/api/v1/transfers"): {"recipients": ["bob@example.org"], "files": 1},
    ("POST", f"/api/v1/transfers/{T}/seal"): {"manifest": "AAAA"},
    ("POST", "/api/v1/auth/login"): {},
    ("POST", "/api/v1/me/password"): {"current": PASSWORD, "new": PASSWORD},
    ("POST", "/api/v1/tokens"): {"name": "matrix", "scopes": ["send"]},
    ("POST", "/api/v1/me/2fa/totp/confirm"): {"code": "000000"},
    ("POST", "/api/v1/me/password/verify"): {"password": PASSWORD},
    ("PUT", "/api/v1/devices/{device_id}/escrow"): {"escrow": "AAAA"},
    ("POST", "/api/v1/me/2fa/totp/disable"): {"code": "000000"},
    ("POST", "/api/v1/me/2fa/passkeys"): {"challenge_id": "0" * 32, "credential": {}, "name": "m"},
    ("POST", "/api/v1/me/2fa/passkeys/{passkey_id}/remove"): {"code": "000000"},
    ("POST", "/api/v1/auth/passkey/options"): {},
    ("POST", "/api/v1/me/alerts/clear"): {"code": "000000"},
    ("POST", f"/api/v1/transfers/{T}/failures"): {"reason": "decrypt"},
    ("PATCH", "/api/v1/admin/policy"): {"changes": {"alert_action": "alert"}},
    ("POST", "/api/v1/links"): {"files": 1},
    ("POST", "/api/v1/requests"): {},
    ("POST", f"/api/v1/requests/{R}/seal"): {
        "document": "AAAA",
        "sealed_key": "AAAA",
        "sender_token": SENDER_TOKEN,
    },
    ("POST", f"/api/v1/public/requests/{R}/answers"): {"files": [2]},
    ("POST", f"/api/v1/public/answers/{A}/seal"): {"manifest": "AAAA"},
}


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every operation of the app: those in its OpenAPI document, and any route outside it."""
    app = create_app(Settings(data_dir=tmp_path / "routes"))
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in _flattened(app.routes):
        for method in getattr(route, "methods", None) or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((method, getattr(route, "path", "")))
    return found


def _flattened(routes: Iterable[object]) -> Iterator[object]:
    """Every route, including those of the routers the app includes (which FastAPI keeps
    behind one entry each, with the router as `original_router`)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is None:
            yield route
        else:
            yield from _flattened(inner.routes)


# Every route reachable without authentication, counted on purpose: pre-authentication code is
# where file-transfer servers get broken into, so adding to this list must be a decision.
PRE_AUTHENTICATION = {
    ("OPTIONS", "/api/v1/uploads"),  # says which protocol version and size limit, nothing else
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("POST", "/api/v1/auth/login"),
    # The challenge for a login with a passkey: after the password, under the login guard, so
    # that an email address alone discloses no credential id (pli.server.auth.routes).
    ("POST", "/api/v1/auth/passkey/options"),
    # Share links and file requests, for people without an account: rate-limited per address,
    # and every failure answers one uniform 404 (pli.server.links, pli.server.requests).
    ("POST", f"/api/v1/public/links/{L}/tickets"),
    ("GET", f"/api/v1/public/links/{L}"),
    ("GET", f"/api/v1/public/links/{L}/files/{F}"),
    ("GET", f"/api/v1/public/requests/{R}"),
    ("POST", f"/api/v1/public/requests/{R}/answers"),
    ("POST", f"/api/v1/public/answers/{A}/seal"),  # with the answer's guest token
    ("GET", f"/l/{L}"),  # static pages: no lookup, nothing echoed
    ("GET", f"/r/{R}"),
    # The web app: the same static page, and the assets its build listed (pli.server.webapp).
    ("GET", "/"),
    ("GET", "/app"),
    ("GET", "/app/{rest:path}"),
    ("GET", "/assets/{name}"),
    ("GET", "/sw.js"),
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
    erin = make_user(sqlite_server, tmp_path, "erin", keys=False)  # a passkey, no role
    erins = Browser(sqlite_server, erin)
    try:
        passkey = erins.enrol(Authenticator(sqlite_server.url))["passkey"]
    finally:
        erins.close()
    assert sqlite_server.admin("create-org", "ars-idf", "--name", "ARS").returncode == 0
    made_group = sqlite_server.admin(
        "create-group", "ars-idf/veille", "--title", "Veille", "--founder", alice.email
    )
    assert made_group.returncode == 0, made_group.stderr
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
        "passkey_id": passkey["id"],
        "device_id": json.loads((alice.home / "device.json").read_text())["doc"]["device"],
        "other": carol.email,
        "recipient": bob.email,
        "sender": alice.email,
        "administrator": dave.email,
        **_external(sqlite_server.url, _auth(_token(alice))),
        "org": "ars-idf",
        "group": "veille",
        "rest": "inbox",  # an address inside the web app
        "name": "app-0000000000000000.js",  # an asset no build made
    }
    return tokens, ids


def _external(url: str, owner: dict[str, str]) -> dict[str, str]:
    """The sender's sealed share link, with a download ticket, and open file request, with an
    answer being uploaded: their ids (the ticket and guest token go into HEADERS)."""
    with httpx.Client(base_url=url, headers=owner, timeout=30) as http:
        link = http.post("/api/v1/links", json={"files": 1}).json()
        link_file = link["transfer"]["files"][0]["id"]
        meta = upload_metadata(link["id"], link_file)
        tus = {**TUS, "upload-length": "1", "upload-metadata": meta}
        location = http.post("/api/v1/uploads", headers=tus).headers["location"]
        patch = {**TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"}
        assert http.patch(location, headers=patch, content=b"x").status_code == 204
        sealed = http.post(f"/api/v1/transfers/{link['id']}/seal", json={"manifest": "AAAA"})
        assert sealed.status_code == 200, sealed.text
        request = http.post("/api/v1/requests", json={"max_files": 10}).json()
        body = {"document": "AAAA", "sealed_key": "AAAA", "sender_token": SENDER_TOKEN}
        assert http.post(f"/api/v1/requests/{request['id']}/seal", json=body).status_code == 200
    with httpx.Client(base_url=url, timeout=30) as public:
        ticket = public.post(f"/api/v1/public/links/{link['id']}/tickets").json()["ticket"]
        answered = public.post(
            f"/api/v1/public/requests/{request['id']}/answers",
            json={"files": [2]},
            headers={"authorization": f"Bearer {SENDER_TOKEN}"},
        ).json()
    for route in (
        ("GET", f"/api/v1/public/links/{L}"),
        ("GET", f"/api/v1/public/links/{L}/files/{F}"),
    ):
        HEADERS[route]["authorization"] = f"Bearer {ticket}"
    HEADERS[("POST", f"/api/v1/public/answers/{A}/seal")]["authorization"] = (
        f"Bearer {answered['token']}"
    )
    return {
        "link_id": link["id"],
        "link_file_id": link_file,
        "request_id": request["id"],
        "answer_id": answered["transfer"]["id"],
    }


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
            renamed = {k: ids[v] for k, v in PATH_IDS.get((method, template), {}).items()}
            path = template.replace(":path}", "}").format(**{**ids, **renamed})
            for role, status in zip(ROLES, expected, strict=True):
                token = tokens[role]
                if token and (method, template) in FRESH_SESSION:
                    token = _fresh_session(http, ids[role])
                headers = {**_auth(token), **HEADERS.get((method, template), {})}
                kwargs: dict[str, object] = {"headers": headers}
                if (method, template) in QUERIES:
                    kwargs["params"] = QUERIES[(method, template)]
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


LINK_GONE = "this link does not exist or is no longer available"
REQUEST_GONE = "this request does not exist or is no longer open"
UNKNOWN = "0" * 32
# Routes without an account, called with each role's own session instead of what opens them,
# or on something unknown: (status, detail when it is a uniform refusal).
WITHOUT_CAPABILITY: dict[tuple[str, str], tuple[int, str | None]] = {
    ("POST", f"/api/v1/public/links/{UNKNOWN}/tickets"): (404, LINK_GONE),
    ("POST", "/api/v1/public/links/..%00/tickets"): (404, LINK_GONE),
    ("GET", f"/api/v1/public/links/{L}"): (404, LINK_GONE),
    ("GET", f"/api/v1/public/links/{L}/files/{{link_file_id}}"): (404, LINK_GONE),
    ("GET", f"/api/v1/public/requests/{UNKNOWN}"): (404, REQUEST_GONE),
    ("POST", f"/api/v1/public/requests/{UNKNOWN}/answers"): (404, REQUEST_GONE),
    # A request that is open, but a session is not the sender token its URL gives.
    ("GET", f"/api/v1/public/requests/{R}"): (404, REQUEST_GONE),
    ("POST", f"/api/v1/public/requests/{R}/answers"): (404, REQUEST_GONE),
    ("POST", f"/api/v1/public/answers/{A}/seal"): (401, None),
}


def test_accounts_open_nothing_without_an_account(
    sqlite_server: Server, setting: tuple[dict[str, str | None], dict[str, str]]
) -> None:
    tokens, ids = setting
    failures = []
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        for (method, template), (status, detail) in WITHOUT_CAPABILITY.items():
            for role in ROLES:
                body = {"files": [2]} if template.endswith("/answers") else {"manifest": "AAAA"}
                got = http.request(
                    method,
                    template.format(**ids),
                    headers=_auth(tokens[role]),
                    json=body if method == "POST" else None,
                )
                ok = got.status_code == status
                if not ok or (detail is not None and got.json()["detail"] != detail):
                    failures.append(f"{method} {template} as {role}: {got.status_code} {got.text}")
        # What opens a route without an account opens no other route.
        ticket = HEADERS[("GET", f"/api/v1/public/links/{L}")]["authorization"]
        guest = HEADERS[("POST", f"/api/v1/public/answers/{A}/seal")]["authorization"]
        for bearer in (ticket, guest):
            assert http.get("/api/v1/me", headers={"authorization": bearer}).status_code == 401
            assert http.get("/api/v1/links", headers={"authorization": bearer}).status_code == 401
        # A guest token reaches its answer's uploads, not an account's.
        upload = f"/api/v1/uploads/{ids['upload_id']}"
        assert http.head(upload, headers={**TUS, "authorization": guest}).status_code == 404
        other_link = f"/api/v1/public/links/{ids['link_id']}"
        assert http.get(other_link, headers={"authorization": guest}).status_code == 404
    assert failures == []


# Routes of one transfer, for a transfer that has ended: parties are told it is gone (410),
# anyone else that it does not exist (404). In ("other", "recipient", "sender") order.
ENDED: dict[tuple[str, str], tuple[int, int, int]] = {
    ("GET", f"/api/v1/transfers/{T}"): (404, 410, 410),
    ("GET", f"/api/v1/transfers/{T}/files/{F}"): (404, 410, 410),
    ("POST", f"/api/v1/transfers/{T}/seal"): (404, 410, 410),
    ("POST", f"/api/v1/transfers/{T}/receipt"): (404, 410, 410),
    ("POST", f"/api/v1/transfers/{T}/failures"): (404, 410, 410),
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
