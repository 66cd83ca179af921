"""The one place where errors become `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pli.errors import PliError

PROBLEM = "application/problem+json"
log = logging.getLogger("pli.server")


def problem(status: int, title: str, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _pli_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, PliError):
        return await _unexpected(_request, exc)
    if exc.status >= 500:
        log.error("server error: %s", type(exc).__name__)
    return problem(exc.status, exc.title, exc.message)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        return await _unexpected(_request, exc)
    return problem(exc.status_code, "Error", str(exc.detail))


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
