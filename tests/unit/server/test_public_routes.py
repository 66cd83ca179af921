"""Share links and file requests over HTTP, in process: the whole exchange as the API speaks it
(owner routes, resumable uploads with a guest token, tickets, ranges), the rate limit on routes
without an account, and the landing pages."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from pli.server.app import create_app
from pli.server.auth import service as auth
from pli.server.config import Settings
from pli.server.links.service import GONE as LINK_GONE
from pli.server.requests.service import GONE as REQUEST_GONE
from pli.server.security import DEFAULT_CSP, harden
from pli.store.db import Database
from tests.unit.server.exchange import SENDER

PASSWORD = "a long enough password"
TUS = {"tus-resumable": "1.0.0"}


class Http:
    """A client of an ASGI application in process, called synchronously."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
        self._client = httpx.AsyncClient(transport=transport, base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@dataclass
class Api:
    http: Http
    owner: dict[str, str]  # the owner's bearer header


def _client(settings: Settings) -> Http:
    app = create_app(settings)
    database: Database = app.state.db
    with database.session() as session:
        auth.create_user(
            session, "alice@example.org", PASSWORD, is_admin=False, now=settings.clock()
        )
    return Http(app, "https://pli.example")


def _login(http: Http) -> dict[str, str]:
    body = {"email": "alice@example.org", "password": PASSWORD}
    answer = http.post("/api/v1/auth/login", json=body)
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    http = _client(Settings(data_dir=tmp_path))
    yield Api(http, _login(http))
    http.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _upload(http: Http, bearer: dict[str, str], transfer: str, file: str, data: bytes) -> int:
    """Upload a file whole with tus: the status of the first refusal, else 204."""
    meta = f"transfer {_b64(transfer.encode())},file {_b64(file.encode())}"
    headers = {**bearer, **TUS, "upload-length": str(len(data)), "upload-metadata": meta}
    made = http.post("/api/v1/uploads", headers=headers)
    if made.status_code != 201:
        return made.status_code
    patch = {
        **bearer,
        **TUS,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
    }
    return http.patch(made.headers["location"], headers=patch, content=data).status_code


def _link(api: Api, data: bytes, **body: object) -> dict[str, object]:
    made = api.http.post("/api/v1/links", json={"files": 1, **body}, headers=api.owner)
    assert made.status_code == 201, made.text
    link = made.json()
    file_id = link["transfer"]["files"][0]["id"]
    assert _upload(api.http, api.owner, link["id"], file_id, data) == 204
    sealed = api.http.post(
        f"/api/v1/transfers/{link['id']}/seal", json={"manifest": "AAAA"}, headers=api.owner
    )
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["kind"] == "link"
    return dict(link)


def test_a_link_is_made_uploaded_sealed_and_downloaded(api: Api) -> None:
    http = api.http
    link = _link(api, b"0123456789", max_downloads=2)
    assert link["url"] == f"https://pli.example/l/{link['id']}"
    assert link["state"] == "uploading"
    transfer = link["transfer"]
    assert isinstance(transfer, dict)
    assert (transfer["kind"], transfer["recipients"], transfer["request"]) == ("link", [], None)
    taken = http.post(f"/api/v1/public/links/{link['id']}/tickets")
    assert taken.status_code == 201, taken.text
    ticket = taken.json()["ticket"]
    assert ticket.startswith("pli_ticket_")
    assert set(taken.json()["transfer"]) == {"id", "created_at", "expires_at", "files", "manifest"}
    holder = {"authorization": f"Bearer {ticket}"}
    shown = http.get(f"/api/v1/public/links/{link['id']}", headers=holder)
    assert shown.status_code == 200
    assert shown.json()["ticket"] is None
    file_id = shown.json()["transfer"]["files"][0]["id"]
    files = f"/api/v1/public/links/{link['id']}/files/{file_id}"
    whole = http.get(files, headers=holder)
    assert (whole.status_code, whole.content) == (200, b"0123456789")
    part = http.get(
        files, headers={**holder, "range": "bytes=4-", "if-range": whole.headers["etag"]}
    )
    assert (part.status_code, part.content) == (206, b"456789")
    assert part.headers["content-range"] == "bytes 4-9/10"
    stale = http.get(files, headers={**holder, "range": "bytes=4-", "if-range": '"old"'})
    assert (stale.status_code, stale.content) == (200, b"0123456789")
    past = http.get(files, headers={**holder, "range": "bytes=10-"})
    assert (past.status_code, past.headers["content-range"]) == (416, "bytes */10")
    listed = http.get("/api/v1/links", headers=api.owner).json()["items"]
    assert [(i["id"], i["state"], i["downloads"], i["downloads_left"]) for i in listed] == [
        (link["id"], "active", 1, 1)
    ]
    assert http.get("/api/v1/transfers?box=outbox", headers=api.owner).json()["items"] == []
    assert http.delete(f"/api/v1/links/{link['id']}", headers=api.owner).status_code == 204
    assert http.delete(f"/api/v1/links/{link['id']}", headers=api.owner).status_code == 204
    gone = http.get(files, headers=holder)
    assert (gone.status_code, gone.json()["detail"]) == (404, LINK_GONE)
    assert http.delete(f"/api/v1/links/{'0' * 32}", headers=api.owner).status_code == 404


def test_every_failure_of_a_public_link_route_reads_the_same(api: Api) -> None:
    http = api.http
    link = _link(api, b"x", max_downloads=1)
    ticket = http.post(f"/api/v1/public/links/{link['id']}/tickets").json()["ticket"]
    answers = [
        http.post(f"/api/v1/public/links/{link['id']}/tickets"),  # exhausted
        http.post(f"/api/v1/public/links/{'0' * 32}/tickets"),
        http.post("/api/v1/public/links/%00%2e%2e/tickets"),
        http.get(f"/api/v1/public/links/{link['id']}"),  # no ticket
        http.get(f"/api/v1/public/links/{link['id']}", headers=api.owner),  # not a ticket
        http.get(
            f"/api/v1/public/links/{link['id']}/files/{'0' * 32}",
            headers={"authorization": f"Bearer {ticket}"},
        ),
    ]
    assert [(a.status_code, a.json()["detail"]) for a in answers] == [(404, LINK_GONE)] * 6


def test_a_request_is_answered_by_a_guest_into_the_inbox(api: Api) -> None:
    http = api.http
    made = http.post("/api/v1/requests", json={"max_files": 3, "max_bytes": 100}, headers=api.owner)
    assert made.status_code == 201, made.text
    request = made.json()
    assert (request["state"], request["url"]) == ("draft", f"https://pli.example/r/{request['id']}")
    rid = request["id"]
    sender = {"authorization": f"Bearer {SENDER}"}
    assert http.get(f"/api/v1/public/requests/{rid}", headers=sender).json()["detail"] == (
        REQUEST_GONE
    )
    bad = http.post(
        f"/api/v1/requests/{rid}/seal",
        json={"document": "%%%", "sealed_key": "AAAA", "sender_token": SENDER},
        headers=api.owner,
    )
    assert bad.status_code == 400
    huge = {
        "document": _b64(bytes(64 << 10)) + "AAAA",
        "sealed_key": "AAAA",
        "sender_token": SENDER,
    }
    too_large = http.post(f"/api/v1/requests/{rid}/seal", json=huge, headers=api.owner)
    assert too_large.status_code == 400
    body = {"document": _b64(b"document"), "sealed_key": _b64(b"key"), "sender_token": SENDER}
    sealed = http.post(f"/api/v1/requests/{rid}/seal", json=body, headers=api.owner)
    assert (sealed.status_code, sealed.json()["state"]) == (200, "open")
    again = http.post(f"/api/v1/requests/{rid}/seal", json=body, headers=api.owner)
    assert again.status_code == 409
    # The id alone opens nothing: the sender token, from the URL's secret, is needed too.
    for without in ({}, {"authorization": "Bearer another-token-of-the-same-length-as-ours"}):
        assert http.get(f"/api/v1/public/requests/{rid}", headers=without).json() == (
            http.get(f"/api/v1/public/requests/{'0' * 32}", headers=sender).json()
        )
        refused = http.post(
            f"/api/v1/public/requests/{rid}/answers", json={"files": [4]}, headers=without
        )
        assert (refused.status_code, refused.json()["detail"]) == (404, REQUEST_GONE)
    public = http.get(f"/api/v1/public/requests/{rid}", headers=sender).json()
    assert public == {
        "id": rid,
        "document": _b64(b"document"),
        "expires_at": request["expires_at"],
        "files_left": 3,
        "bytes_left": 100,
    }
    answered = http.post(
        f"/api/v1/public/requests/{rid}/answers", json={"files": [4]}, headers=sender
    )
    assert answered.status_code == 201, answered.text
    token, transfer = answered.json()["token"], answered.json()["transfer"]
    assert token.startswith("pli_guest_")
    # Nothing of the requester reaches the sender: no email, no kind of account.
    assert set(transfer) == {"id", "state", "created_at", "expires_at", "files"}
    guest = {"authorization": f"Bearer {token}"}
    file_id = transfer["files"][0]["id"]
    assert _upload(http, guest, transfer["id"], file_id, b"five!") == 400  # not the size given
    seal = f"/api/v1/public/answers/{transfer['id']}/seal"
    assert http.post(seal, json={"manifest": "AAAA"}, headers=guest).status_code == 409
    assert _upload(http, guest, transfer["id"], file_id, b"four") == 204
    done = http.post(seal, json={"manifest": "AAAA"}, headers=guest)
    assert (done.status_code, done.json()["state"]) == (200, "sealed")
    assert http.post(seal, json={"manifest": "AAAA"}, headers=guest).status_code == 401
    assert _upload(http, guest, transfer["id"], file_id, b"four") == 401
    closed = http.post(f"/api/v1/requests/{rid}/close", headers=api.owner)
    assert (closed.status_code, closed.json()["state"], closed.json()["files_used"]) == (
        200,
        "closed",
        1,
    )
    inbox = http.get("/api/v1/transfers?box=inbox", headers=api.owner).json()["items"]
    assert [(t["id"], t["kind"], t["sender"], t["request"]) for t in inbox] == [
        (transfer["id"], "answer", "", rid)
    ]
    fetched = http.get(f"/api/v1/transfers/{transfer['id']}/files/{file_id}", headers=api.owner)
    assert fetched.content == b"four"
    mine = http.get(f"/api/v1/requests/{rid}", headers=api.owner).json()
    assert (mine["state"], mine["sealed_key"]) == ("closed", _b64(b"key"))
    assert http.get("/api/v1/requests", headers=api.owner).json()["items"][0]["id"] == rid
    assert http.get(f"/api/v1/public/requests/{rid}", headers=sender).json()["detail"] == (
        REQUEST_GONE
    )


def test_links_and_requests_are_addressed_at_the_public_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="https://files.example.org")
    http = _client(settings)
    owner = _login(http)
    link = http.post("/api/v1/links", json={"files": 1}, headers=owner).json()
    assert link["url"] == f"https://files.example.org/l/{link['id']}"
    request = http.post("/api/v1/requests", json={}, headers=owner).json()
    assert request["url"] == f"https://files.example.org/r/{request['id']}"
    assert request["max_bytes"] == settings.max_file_size
    assert request["max_files"] == 10
    http.close()


def test_routes_without_an_account_are_rate_limited_per_address(tmp_path: Path) -> None:
    http = _client(Settings(data_dir=tmp_path, public_rate_limit=3))
    guessed = [
        ("GET", f"/api/v1/public/requests/{'0' * 32}"),
        ("POST", f"/api/v1/public/requests/{'0' * 32}/answers"),
        ("POST", f"/api/v1/public/links/{'0' * 32}/tickets"),
    ]
    answers = [http.request(m, p, json={"files": [1]} if m == "POST" else None) for m, p in guessed]
    assert [a.status_code for a in answers] == [404, 404, 404]
    refused = http.post(f"/api/v1/public/links/{'0' * 32}/tickets")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["content-type"] == "application/problem+json"
    # What a ticket or a guest token opens is not counted: a link of many files is many
    # requests, each with a capability no one guesses.
    ticketed = [
        f"/api/v1/public/links/{'0' * 32}",
        f"/api/v1/public/links/{'1' * 32}/files/{'2' * 32}",
    ]
    assert [http.get(p).status_code for p in ticketed * 3] == [404] * 6
    sealing = http.post(f"/api/v1/public/answers/{'3' * 32}/seal", json={"manifest": "AAAA"})
    assert sealing.status_code == 401
    assert http.get("/healthz").status_code == 200  # only routes without an account count
    assert http.get("/l/anything").status_code == 200
    http.close()


def test_the_landing_pages_are_static_and_echo_nothing(tmp_path: Path) -> None:
    (tmp_path / "no-web-app").mkdir()  # they are what /l/ and /r/ show when it is not built
    settings = Settings(data_dir=tmp_path, web_dist=tmp_path / "no-web-app")
    app = harden(create_app(settings), settings)
    http = Http(app, "http://pli")
    try:
        for kind, command in (("l", "pli link get"), ("r", "pli request send")):
            pages = [http.get(f"/{kind}/{ident}") for ident in ("a" * 32, "<script>alert(1)")]
            assert pages[0].status_code == pages[1].status_code == 200
            assert pages[0].content == pages[1].content
            page = pages[0].text
            assert command in page
            assert "a" * 32 not in page
            assert "<script" not in page
            assert "style" not in page
            assert "#" in page
            assert 'lang="fr"' in page
            assert pages[0].headers["content-type"] == "text/html; charset=utf-8"
            assert pages[0].headers["content-security-policy"] == DEFAULT_CSP
    finally:
        http.close()
    paths = create_app(Settings(data_dir=tmp_path / "schema")).openapi()["paths"]
    assert not [p for p in paths if p.startswith(("/l/", "/r/"))]
