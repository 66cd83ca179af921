"""The REST API over httpx (large downloads over http.client), with the server's problem objects
turned back into PliErrors."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import re
import socket
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
    try:
        body = response.json()
    except ValueError:
        body = None
    return problem_error(response.status_code, body)


def problem_error(status: int, body: object) -> PliError:
    """The PliError for an answer with this status and (problem+json) body."""
    detail, title = f"the server answered {status}", ""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail, title = body["detail"], str(body.get("title", ""))
    cls = ERRORS_BY_STATUS.get(status, TransportError)
    if cls is AuthError and title == SecondFactorRequiredError.title:
        methods = body.get("methods") if isinstance(body, dict) else None
        listed = [m for m in methods if isinstance(m, str)] if isinstance(methods, list) else []
        err: PliError = SecondFactorRequiredError(detail, methods=listed)
        err.status = status
        return err
    err = cls(detail)
    err.status = status
    return err


class Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"user-agent": f"pli/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        # One TLS context for both clients: downloads verify the server exactly as httpx does.
        self._tls = httpx.create_ssl_context(verify=tls_verification())
        self._base, self._headers = urlsplit(base_url.rstrip("/")), headers
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=TIMEOUT, verify=self._tls
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def tus(self, method: str, path: str, headers: dict[str, str]) -> httpx.Headers:
        """One request of the resumable-upload protocol; its answer's headers."""
        return self._send(method, path, headers={"tus-resumable": "1.0.0", **headers}).headers

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"could not reach the server: {type(exc).__name__}", hint=_certificate_hint(exc)
            ) from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response

    @contextmanager
    def download(
        self, path: str, *, start: int = 0, stop: int | None = None, if_range: str | None = None
    ) -> Iterator[Download]:
        """GET a large body over `http.client` (see `Download`): bytes [start, stop) of it,
        or all of it when the server ignores the range or `if_range` no longer matches."""
        headers = {**self._headers, "accept-encoding": "identity"}
        if start or stop is not None:
            headers["range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
            if if_range:
                headers["if-range"] = if_range
        connection = self._connection()
        try:
            try:
                connection.connect()
                if connection.sock is not None:
                    connection.sock.settimeout(TIMEOUT.read)
                connection.request("GET", self._base.path + path, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(
                    f"could not reach the server: {type(exc).__name__}",
                    hint=_certificate_hint(exc),
                ) from exc
            if response.status >= 400:
                raise problem_error(response.status, _json(_read_some(response)))
            yield Download(connection, response)
        finally:
            connection.close()

    def upload(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Iterable[bytes | bytearray | memoryview],
        length: int,
    ) -> http.client.HTTPMessage:
        """Stream a large request body (exactly `length` bytes) over `http.client`: each buffer
        goes to the socket with `sendall`, without httpx's copies; the answer's headers."""
        connection = self._connection()
        try:
            connection.putrequest(method, self._base.path + path, skip_accept_encoding=True)
            for name, value in {**self._headers, **headers}.items():
                connection.putheader(name, value)
            connection.putheader("content-length", str(length))
            connection.endheaders()
            try:
                for chunk in body:
                    connection.send(chunk)
            except OSError as exc:
                # The server may have answered (and closed) before the end: say what it said.
                raise _answer_or(connection, exc) from exc
            return _answer(connection)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(
                f"the upload was interrupted: {type(exc).__name__}", hint=_certificate_hint(exc)
            ) from exc
        finally:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._base.hostname or "", self._base.port
        if self._base.scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT.connect, context=self._tls
            )
        return http.client.HTTPConnection(host, port, timeout=TIMEOUT.connect)


class RangeAnswerError(TransportError):
    """The answer to a range request is not the part asked for (a server or proxy that gets
    ranges wrong): the download is better started over without one."""


class Download:
    """The answer to one GET: `readinto` fills a caller's buffer straight from the socket and
    releases the GIL while it waits, so receiving overlaps the decryption running beside it
    (httpx's download loop copies each piece and holds the GIL in between).

    `start` is the offset of the body's first byte in the whole blob; `length` the body's size
    when the server stated it; `etag` the blob's validator, for `If-Range`."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self._connection, self._response = connection, response
        self.status = response.status
        self.etag = response.getheader("etag")
        declared = response.getheader("content-length")
        self.length = int(declared) if declared and declared.isdigit() else None
        self.start = 0
        if self.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.getheader("content-range") or "")
            if match is None:
                raise RangeAnswerError("the server answered a range request with no valid range")
            first, last = int(match.group(1)), int(match.group(2))
            if last < first or self.length not in (None, last - first + 1):
                raise RangeAnswerError("the server answered a range request with no valid range")
            self.start, self.length = first, last - first + 1
        elif self.status != 200:
            raise TransportError(f"the server answered {self.status} to a download")

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` as far as the body goes; 0 at its end. Blocking."""
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # ValueError: the connection was closed under the read by `abort`.
            raise TransportError(f"the download was interrupted: {type(exc).__name__}") from exc

    def abort(self) -> None:
        """Make a `readinto` blocked in another thread return: for a reader that must stop."""
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,30})-([0-9]{1,30})/(?:[0-9]{1,30}|\*)", re.ASCII)


def _answer(connection: http.client.HTTPConnection) -> http.client.HTTPMessage:
    response = connection.getresponse()
    body = _read_some(response)
    if response.status >= 400:
        raise problem_error(response.status, _json(body))
    return response.headers


def _answer_or(connection: http.client.HTTPConnection, exc: OSError) -> PliError:
    try:
        _answer(connection)
    except PliError as error:
        return error
    except (OSError, http.client.HTTPException):
        pass
    return TransportError(f"the upload was interrupted: {type(exc).__name__}")


def _read_some(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read(1 << 16)
    except (OSError, http.client.HTTPException):
        return b""


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
