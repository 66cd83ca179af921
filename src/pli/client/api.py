"""The REST API over httpx, with the server's problem objects turned back into PliErrors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from pli import __version__
from pli.errors import ERRORS_BY_STATUS, PliError, TransportError, UsageError

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


def error_from(response: httpx.Response) -> PliError:
    detail = f"the server answered {response.status_code}"
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail = body["detail"]
    except ValueError:
        pass
    cls = ERRORS_BY_STATUS.get(response.status_code, TransportError)
    err = cls(detail)
    err.status = response.status_code
    return err


class Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"user-agent": f"pli/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"could not reach the server: {type(exc).__name__}") from exc
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
