"""The REST API over httpx, with the server's problem objects turned back into PliErrors."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from pli import __version__
from pli.errors import (
    ERRORS_BY_STATUS,
    AuthError,
    ConfigError,
    PliError,
    SecondFactorRequiredError,
    TransportError,
    UsageError,
)

TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def check_url(url: str, *, allow_http: bool) -> str:
    """Refuse plain http:// to anything but loopback unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not a server address: write it like https://pli.example.org")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise UsageError(
            f"refusing plain http:// to {parts.hostname}: passwords and tokens would cross the "
            "network unprotected",
            hint="use https://, or pass --insecure-http if you really mean it",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_verification() -> ssl.SSLContext | bool:
    """Server certificates are always verified: against the CA certificates in the file named
    by PLI_CA_BUNDLE (a private CA) when it is set, else against the default trusted ones."""
    bundle = os.environ.get("PLI_CA_BUNDLE")
    if not bundle:
        return True
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"PLI_CA_BUNDLE: cannot read CA certificates from {bundle}") from exc


def _certificate_hint(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    for _ in range(8):  # the chain of causes, bounded
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the server's certificate did not verify; for a private CA, set PLI_CA_BUNDLE"
        cause = cause.__cause__ or cause.__context__
    return None


def error_from(response: httpx.Response) -> PliError:
    detail, title = f"the server answered {response.status_code}", ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail, title = body["detail"], str(body.get("title", ""))
    except ValueError:
        pass
    cls = ERRORS_BY_STATUS.get(response.status_code, TransportError)
    if cls is AuthError and title == SecondFactorRequiredError.title:
        cls = SecondFactorRequiredError
    err = cls(detail)
    err.status = response.status_code
    return err


class Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"user-agent": f"pli/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=TIMEOUT, verify=tls_verification()
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"could not reach the server: {type(exc).__name__}", hint=_certificate_hint(exc)
            ) from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response.json() if response.content else None

    def upload(self, path: str, body: Iterable[bytes], length: int) -> Any:
        headers = {"content-length": str(length), "content-type": "application/octet-stream"}
        return self.request("PUT", path, content=body, headers=headers)

    @contextmanager
    def download(self, path: str) -> Iterator[Iterator[bytes]]:
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response)
                yield response.iter_raw()
        except httpx.HTTPError as exc:
            raise TransportError(f"the download failed: {type(exc).__name__}") from exc
