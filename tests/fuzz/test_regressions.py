"""The server errors the fuzzer found, kept as plain regression tests on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import PASSWORD, Server, make_user, start_server, stop_server


@pytest.fixture(params=["sqlite", "postgres"])
def logged_in(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    url = request.getfixturevalue("fresh_postgres") if request.param == "postgres" else None
    server = start_server(tmp_path, url)
    try:
        user = make_user(server, tmp_path, "alice", keys=False)
        body = {"email": user.email, "password": PASSWORD}
        token = httpx.post(f"{server.url}/api/v1/auth/login", json=body).json()["token"]
        yield server, token
    finally:
        stop_server(server)
    assert "Traceback" not in server.log.read_text()


def test_hostile_text_is_a_bad_request(logged_in: tuple[Server, str]) -> None:
    server, token = logged_in
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=auth, timeout=30) as api:
        answers = [
            # base64 fields holding non-ASCII text: a ValueError, not a binascii.Error
            api.post("/devices", json={"bundle": {}, "escrow": "é"}),
            api.post("/transfers/" + "0" * 32 + "/seal", json={"manifest": "é"}),
            # U+0000 in text that reaches a query: PostgreSQL refuses to run it
            api.post("/auth/login", json={"email": "a\x00@example.org", "password": PASSWORD}),
            api.get("/users/a%00@example.org/devices"),
            api.get("/transfers/a%00b"),
            api.post("/transfers", json={"recipients": ["b\x00@example.org"], "files": 1}),
        ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
