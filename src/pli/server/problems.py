"""The one place where errors become `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from pli.errors import PliError, RateLimitedError

PROBLEM = "application/problem+json"
log = logging.getLogger("pli.server")


class Problem(BaseModel):
    """An error, as RFC 9457 describes it: every 4xx and 5xx answer of the API has this body."""

    type: str
    title: str
    status: int
    detail: str
    # An extension member (RFC 9457, section 3.2), in "Second factor required" answers only.
    methods: list[Literal["totp", "passkey"]] | None = Field(
        default=None,
        description="401 Second factor required: the second factors the account can use "
        "(a recovery code goes where a TOTP code would, whichever they are)",
    )


# The statuses the API answers with a problem, declared once for every operation (see app.py),
# so the OpenAPI document describes the error answers as well as the successful ones.
_STATUSES = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found, or not yours to know about",
    409: "Conflict with the current state",
    410: "Expired or revoked",
    412: "Unsupported protocol version (resumable uploads: send Tus-Resumable: 1.0.0)",
    413: "Too large",
    415: "Wrong content type (resumable uploads: application/offset+octet-stream)",
    422: "Invalid request",
    423: "Busy: another request is writing to this upload; try again shortly",
    429: "Too many attempts: try again later",
    460: "Checksum mismatch (resumable uploads: the bytes do not match Upload-Checksum)",
    500: "Internal error",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM: {"schema": Problem.model_json_schema()}},
    }
    for status, description in _STATUSES.items()
}


def problem(
    status: int, title: str, detail: str, extensions: Mapping[str, object] | None = None
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _pli_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, PliError):
        return await _unexpected(_request, exc)
    if exc.status >= 500:
        log.error("server error: %s", type(exc).__name__)
    answer = problem(exc.status, exc.title, exc.message, exc.problem_extensions())
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        answer.headers["retry-after"] = str(exc.retry_after)
    return answer


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        return await _unexpected(_request, exc)
    return problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        return await _unexpected(_request, exc)
    # Field locations only: echoing submitted values could copy secrets into responses.
    where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
    return problem(422, "Invalid request", where[:500])


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected server error: %s", type(exc).__name__)
    return problem(500, "Internal error", "the server failed; the error has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(PliError, _pli_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
