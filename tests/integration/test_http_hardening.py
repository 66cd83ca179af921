"""HTTP hardening against the real `pli serve`: security headers on every answer, no CORS, body
size limits, header size and count limits, and time limits against slow clients (raw sockets
where an HTTP client would not misbehave on purpose). Every slow-client test is bounded by a
deadline of a few seconds: the server runs with 1-second header and body timeouts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Server, make_user, start_server, stop_server, upload_metadata

MIB = 1 << 20
MAX_FILE = 12 * MIB
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PLI_HEADER_TIMEOUT": "1s", "PLI_BODY_TIMEOUT": "1s", "PLI_MAX_FILE_SIZE": str(MAX_FILE)}
    srv = start_server(tmp_path_factory.mktemp("hardening"), None, env)
    yield srv
    stop_server(srv)


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


class Raw:
    """A raw TCP connection to the server, to behave as no HTTP client library would."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(_address(server), timeout=5)
        self.started = time.monotonic()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, deadline: float = 5.0) -> tuple[bytes, bool]:
        """Everything the server sends within `deadline` seconds, and whether it then closed."""
        received = b""
        end = time.monotonic() + deadline
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def close(self) -> None:
        self.sock.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _head_and_body(answer: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return headers, body


def _assert_security_headers(headers: httpx.Headers | dict[str, str], what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{what}: {name} is {headers.get(name)!r}"
    assert "strict-transport-security" not in headers, f"{what}: HSTS over plain http"
    assert not [h for h in headers if h.lower().startswith("access-control-")], what


def test_security_headers_on_every_answer(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        answers = {
            "ok": http.get("/healthz"),
            "openapi": http.get("/openapi.json"),
            "unknown path": http.get("/nothing-here"),
            "no session": http.get("/api/v1/me"),
            "invalid body": http.post("/api/v1/auth/login", json={}),
            "bad credentials": http.post(
                "/api/v1/auth/login", json={"email": "x@example.org", "password": "p" * 12}
            ),
            "wrong method": http.delete("/healthz"),
        }
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "ok": 200,
        "openapi": 200,
        "unknown path": 404,
        "no session": 401,
        "invalid body": 422,
        "bad credentials": 401,
        "wrong method": 405,
    }
    for what, answer in answers.items():
        _assert_security_headers(answer.headers, what)


def test_no_cors(server: Server) -> None:
    origin = {"origin": "https://attacker.example"}
    preflight = {
        **origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    with httpx.Client(base_url=server.url, timeout=10) as http:
        answers = [
            http.options("/api/v1/transfers", headers=preflight),
            http.options("/api/v1/auth/login", headers=preflight),
            http.get("/healthz", headers=origin),
            http.post("/api/v1/auth/login", json={}, headers=origin),
        ]
    assert [a.status_code for a in answers] == [405, 405, 200, 422]
    for answer in answers:
        assert not [h for h in answer.headers if h.startswith("access-control-")], answer.headers


def test_oversized_json_body_refused(server: Server) -> None:
    head = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: pli\r\nContent-Type: application/json\r\n"
    # Declared too large: refused before the body is read.
    raw = Raw(server)
    raw.send(head + b"Content-Length: %d\r\n\r\n" % (8 * MIB + 1) + b" " * 1024)
    answer, closed = raw.answer()
    raw.close()
    headers, body = _head_and_body(answer)
    assert _status(answer) == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    assert closed  # the rest of that body is not waited for
    _assert_security_headers(headers, "413")
    # Not declared (chunked): refused once more than 8 MiB has arrived.
    raw = Raw(server)
    raw.send(head + b"Transfer-Encoding: chunked\r\n\r\n")
    raw.send(b"%x\r\n" % (8 * MIB + 1) + b" " * (8 * MIB + 1) + b"\r\n")
    answer, _ = raw.answer()
    raw.close()
    headers, body = _head_and_body(answer)
    assert _status(answer) == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    # At the limit, the body is read and judged on its content.
    got = httpx.post(
        f"{server.url}/api/v1/auth/login",
        content=b" " * (8 * MIB),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert got.status_code == 422


@pytest.fixture(scope="module")
def upload_slot(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A session token of a sender and the metadata of an empty file slot of theirs."""
    tmp = tmp_path_factory.mktemp("people")
    alice = make_user(server, tmp, "alice")
    make_user(server, tmp, "bob")
    token = (alice.home / "session").read_text()
    created = httpx.post(
        f"{server.url}/api/v1/transfers",
        json={"recipients": ["bob@example.org"], "files": 1},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    transfer = created.json()
    meta = upload_metadata(transfer["id"], transfer["files"][0]["id"])
    return token, meta


def test_upload_is_bounded_by_the_file_size_limit_not_the_json_limit(
    server: Server, upload_slot: tuple[str, str]
) -> None:
    token, meta = upload_slot
    tus = {"authorization": f"Bearer {token}", "tus-resumable": "1.0.0", "upload-metadata": meta}
    # Larger than any JSON body may be, within the server's file size: streamed and stored.
    body = b"\x01" * (9 * MIB)
    made = httpx.post(
        f"{server.url}/api/v1/uploads", headers={**tus, "upload-length": str(len(body))}
    )
    assert made.status_code == 201, made.text
    stored = httpx.patch(
        f"{server.url}{made.headers['location']}",
        content=body,
        headers={**tus, "upload-offset": "0", "content-type": "application/offset+octet-stream"},
        timeout=60,
    )
    assert stored.status_code == 204, stored.text
    assert stored.headers["upload-offset"] == str(len(body))
    # Declared larger than the server's file size: refused before a byte is sent.
    too_big = httpx.post(
        f"{server.url}/api/v1/uploads", headers={**tus, "upload-length": str(MAX_FILE + 1)}
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert too_big.json()["detail"] == "the file is larger than this server accepts (12M)"
    # A body without a declared length is refused before it is read.
    small = httpx.post(f"{server.url}/api/v1/uploads", headers={**tus, "upload-length": "10"})
    raw = Raw(server)
    head = (
        f"PATCH {small.headers['location']} HTTP/1.1\r\nHost: pli\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    raw.send(head.encode() + b"1\r\n\x02\r\n")
    answer, _ = raw.answer()
    raw.close()
    assert _status(answer) == 400
    assert _head_and_body(answer)[0]["content-type"] == "application/problem+json"


def test_oversized_headers_refused(server: Server) -> None:
    # Over 64 KiB of request line and headers, still unfinished: 431 without waiting for more.
    raw = Raw(server)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: pli\r\nX-Big: " + b"a" * (65 * 1024))
    answer, closed = raw.answer()
    raw.close()
    headers, body = _head_and_body(answer)
    assert _status(answer) == 431
    assert closed
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 431
    _assert_security_headers(headers, "431")
    # More than 100 headers.
    raw = Raw(server)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(100))
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: pli\r\n" + many + b"\r\n")
    answer, closed = raw.answer()
    raw.close()
    assert _status(answer) == 431
    assert closed
    # Within both limits, the request is served.
    within = httpx.get(
        f"{server.url}/healthz",
        headers={"x-big": "a" * (48 * 1024), **{f"x-h{i}": "v" for i in range(90)}},
        timeout=10,
    )
    assert within.status_code == 200


def test_silent_connection_is_closed(server: Server) -> None:
    raw = Raw(server)
    answer, closed = raw.answer(deadline=4)
    elapsed = raw.elapsed()
    raw.close()
    assert closed
    assert answer == b""
    assert elapsed < 3


def test_slow_headers_are_cut_off(server: Server) -> None:
    raw = Raw(server)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: pli\r\n")
    answer, closed = b"", False
    for i in range(20):  # one header line every 0.25 s, never finishing: 5 s at most
        try:
            raw.send(b"X-Slow-%d: v\r\n" % i)
        except OSError:
            break
        chunk, closed = raw.answer(deadline=0.25)
        answer += chunk
        if closed:
            break
    elapsed = raw.elapsed()
    raw.close()
    assert closed
    assert _status(answer) == 408
    assert elapsed < 3


def test_slow_body_is_cut_off(server: Server) -> None:
    raw = Raw(server)
    raw.send(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: pli\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    answer, closed = b"", False
    for _ in range(20):  # one byte every 0.25 s: far below the minimum rate; 5 s at most
        try:
            raw.send(b" ")
        except OSError:
            break
        chunk, closed = raw.answer(deadline=0.25)
        answer += chunk
        if closed:
            break
    elapsed = raw.elapsed()
    raw.close()
    headers, body = _head_and_body(answer)
    assert closed
    assert _status(answer) == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["status"] == 408
    assert elapsed < 4


def test_unread_body_cannot_hold_the_connection(server: Server) -> None:
    # A route that answers without reading the body; the client keeps trickling it.
    raw = Raw(server)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: pli\r\nContent-Length: 100000\r\n\r\n")
    answer, closed = b"", False
    for _ in range(12):  # 3 s at most
        try:
            raw.send(b"x")
        except OSError:
            closed = True
            break
        chunk, closed = raw.answer(deadline=0.25)
        answer += chunk
        if closed:
            break
    raw.close()
    assert _status(answer) == 200
    assert closed


def test_kept_alive_connection_is_not_cut_by_the_header_timeout(server: Server) -> None:
    raw = Raw(server)
    request = b"GET /healthz HTTP/1.1\r\nHost: pli\r\n\r\n"
    raw.send(request)
    first, _ = raw.answer(deadline=0.5)
    time.sleep(1.5)  # idle longer than the header timeout, shorter than keep-alive (30 s)
    raw.send(request)
    second, _ = raw.answer(deadline=0.5)
    raw.close()
    assert _status(first) == 200
    assert _status(second) == 200


def test_server_still_serves_after_the_abuse(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_invalid_limits_stop_the_server(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="PLI_MAX_FILE_SIZE"):
        start_server(tmp_path, None, {"PLI_MAX_FILE_SIZE": "lots"})
