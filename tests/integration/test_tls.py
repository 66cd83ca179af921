"""`pli serve --tls-cert/--tls-key`: HTTPS with HSTS, certificates verified by the client (a
private CA through PLI_CA_BUNDLE). The certificate is made here, for 127.0.0.1."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.certificates import self_signed
from tests.integration.conftest import PLI, Server, User, free_port, stop_server

HSTS = "max-age=63072000; includeSubDomains"


class TlsServer(Server):
    """A real `pli serve` over HTTPS; `cert` is its certificate, which is also its own CA."""

    cert: Path
    context: ssl.SSLContext


def _start_tls(tmp: Path) -> TlsServer:
    cert, key = self_signed(tmp)
    data, log, port = tmp / "server-data", tmp / "server.log", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    args = ["--data", str(data), "--port", str(port)]
    args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PLI, "serve", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = TlsServer(f"https://127.0.0.1:{port}", data, log, env, process, None)
    server.cert, server.context = cert, ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pli serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", verify=server.context, timeout=1).is_success:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"pli serve did not become healthy:\n{log.read_text()}")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    server = _start_tls(tmp_path)
    yield server
    stop_server(server)


def test_https_with_hsts(tls_server: TlsServer) -> None:
    with httpx.Client(base_url=tls_server.url, verify=tls_server.context, timeout=10) as http:
        answers = [http.get("/healthz"), http.get("/nothing-here"), http.get("/api/v1/me")]
    assert [a.status_code for a in answers] == [200, 404, 401]
    for answer in answers:
        assert answer.headers["strict-transport-security"] == HSTS
        assert answer.headers["x-content-type-options"] == "nosniff"
    # The server prints the https address to log in to.
    assert f"pli is serving on {tls_server.url}" in tls_server.log.read_text()


def test_certificate_is_verified(tls_server: TlsServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/healthz", timeout=10)  # default trust: no test CA in it


def test_plain_http_is_not_served_on_the_tls_port(tls_server: TlsServer) -> None:
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=5)


def test_cli_verifies_the_certificate_and_accepts_a_private_ca(
    tls_server: TlsServer, tmp_path: Path
) -> None:
    created = tls_server.admin("create-user", "ada@example.org")
    assert created.returncode == 0, created.stderr
    user = User("ada@example.org", tmp_path / "home", tls_server)
    # Default trust: the self-signed certificate is refused, and nothing is stored.
    refused = user.run("login", tls_server.url, "--email", user.email)
    assert refused.returncode == 1
    assert "PLI_CA_BUNDLE" in refused.stderr
    assert not (user.home / "session").exists()
    # Trusting the private CA: login, then an authenticated request (publishing keys).
    user.extra_env["PLI_CA_BUNDLE"] = str(tls_server.cert)
    user.ok("login", tls_server.url, "--email", user.email)
    user.ok("keys", "init")
    # A CA bundle that is not one is a configuration error, not a silent fallback.
    user.extra_env["PLI_CA_BUNDLE"] = str(tmp_path / "missing.pem")
    broken = user.run("keys", "show", "--json")
    assert broken.returncode == 0  # local only: no connection, so the bundle is not read
    missing = user.run("inbox")
    assert missing.returncode == 1
    assert "PLI_CA_BUNDLE" in missing.stderr


def test_tls_flags_go_together(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    alone = subprocess.run(
        [PLI, "serve", "--data", str(tmp_path / "d"), "--port", "1", "--tls-cert", str(cert)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert alone.returncode == 2
    assert "--tls-key" in alone.stderr
