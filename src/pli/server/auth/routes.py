"""Login, logout, who-am-I, password changes and API tokens."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.durations import parse_duration
from pli.errors import AuthError, ForbiddenError, SecondFactorRequiredError
from pli.server import alerts, deps, policy
from pli.server.auth import service, tokens, totp
from pli.server.ratelimit import LoginGuard
from pli.store import models

router = APIRouter(prefix="/api/v1", tags=["auth"])


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    otp: str | None = Field(default=None, max_length=32, description="TOTP or recovery code")


class Code(BaseModel):
    code: str = Field(max_length=32)


class TotpEnrolment(BaseModel):
    secret: str
    uri: str


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="shown once; each works once")


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    email: str


class Me(BaseModel):
    email: str
    is_admin: bool
    scopes: list[str]


class PasswordCheck(BaseModel):
    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    current: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class Closed(BaseModel):
    closed: int


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=3)
    expires_in: str = Field(default="90d", max_length=16)


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="shown once: the server keeps only an HMAC of it")


@router.post("/auth/login")
async def login(
    body: LoginRequest,
    request: Request,
    session: deps.DB,
    config: deps.Config,
    guard: deps.Guard,
    key: deps.TokenKey,
) -> LoginResponse:

    def check() -> models.User:
        user = service.authenticate(session, body.email, body.password)
        if user.totp_enabled_at is not None:
            _second_factor(session, user, body.otp, key, config.clock())
        return user

    user = await _guarded(request, guard, body.email, check)

    def opened() -> tuple[str, datetime]:
        now = config.clock()
        audit.record(
            session,
            Event.AUTH_LOGIN_SUCCEEDED,
            now=now,
            actor=user.email,
            details={"second_factor": user.totp_enabled_at is not None},
        )
        rules = policy.current(session, config)
        alerts.after(session, user, Event.AUTH_LOGIN_SUCCEEDED, rules, now=now)
        return service.open_session(session, user, now=now, ttl=config.session_ttl)

    token, expires = await run_in_threadpool(opened)
    return LoginResponse(token=token, expires_at=expires, email=user.email)


async def _guarded(
    request: Request, guard: LoginGuard, email: str, check: Callable[[], models.User]
) -> models.User:
    """Run a password (and code) check under the brute-force guard: delayed or refused after
    repeated failures from this address, and every failure counted and recorded."""
    address = deps.client_address(request)
    delay = await run_in_threadpool(guard.before, email, address)
    if delay:
        await asyncio.sleep(delay)  # holds no worker thread while it waits
    try:
        user = await run_in_threadpool(check)
    except SecondFactorRequiredError:
        raise  # the password was right: not a failure to count
    except AuthError as exc:
        await run_in_threadpool(guard.failed, email, address)
        now = deps.settings(request).clock()
        failed = functools.partial(service.login_failed, deps.database(request), email, now=now)
        await run_in_threadpool(failed, exc.message)
        raise
    await run_in_threadpool(guard.succeeded, email, address)
    return user


@router.post("/me/password/verify", status_code=204)
async def verify_password(
    body: PasswordCheck,
    request: Request,
    caller: deps.LoggedIn,
    session: deps.DB,
    guard: deps.Guard,
) -> None:
    """Whether `password` is this account's login password (clients use it to refuse a key
    passphrase equal to it). Guarded like a login: it is a password oracle."""
    email = caller.user.email
    await _guarded(
        request,
        guard,
        email,
        functools.partial(service.authenticate, session, email, body.password),
    )


def _second_factor(
    session: Session, user: models.User, code: str | None, key: bytes, now: datetime
) -> None:
    if not code:
        raise SecondFactorRequiredError("this account needs a one-time code (set PLI_TOTP)")
    totp.verify(session, user, code, key=key, now=now)


@router.post("/me/2fa/totp")
def totp_begin(caller: deps.LoggedIn, session: deps.DB, key: deps.TokenKey) -> TotpEnrolment:
    secret, uri = totp.begin(session, caller.user, key=key)
    return TotpEnrolment(secret=secret, uri=uri)


@router.post("/me/2fa/totp/confirm")
def totp_confirm(
    body: Code, caller: deps.LoggedIn, session: deps.DB, config: deps.Config, key: deps.TokenKey
) -> RecoveryCodes:
    codes = totp.confirm(session, caller.user, body.code, key=key, now=config.clock())
    return RecoveryCodes(recovery_codes=codes)


@router.post("/me/2fa/totp/disable", status_code=204)
def totp_disable(
    body: Code, caller: deps.LoggedIn, session: deps.DB, config: deps.Config, key: deps.TokenKey
) -> None:
    totp.disable(session, caller.user, body.code, key=key, now=config.clock())


@router.post("/me/alerts/clear")
async def clear_alerts(
    body: Code,
    request: Request,
    caller: deps.LoggedIn,
    session: deps.DB,
    config: deps.Config,
    guard: deps.Guard,
    key: deps.TokenKey,
) -> Closed:
    """Clear this account's alerts and lift a suspension of its downloads, with a one-time
    code of its second factor (an attacker holding only the password cannot). Codes are
    guessed under the same guard as logins, and wrong ones recorded."""
    user = caller.user
    if user.totp_enabled_at is None:
        raise ForbiddenError(
            "this account has no second factor: ask an administrator to clear its alerts"
        )

    def check() -> models.User:
        totp.verify(session, user, body.code, key=key, now=config.clock())
        return user

    await _guarded(request, guard, user.email, check)
    cleared = functools.partial(
        alerts.clear, session, user, now=config.clock(), actor=user.email, how="second factor"
    )
    return Closed(closed=await run_in_threadpool(cleared))


@router.post("/auth/logout", status_code=204)
def logout(caller: deps.LoggedIn, session: deps.DB) -> None:
    assert caller.session is not None  # noqa: S101  (LoggedIn guarantees it)
    service.close_session(session, caller.session)


@router.post("/auth/logout-all")
def logout_all(caller: deps.LoggedIn, session: deps.DB) -> Closed:
    return Closed(closed=service.close_all_sessions(session, caller.user))


@router.get("/me")
def me(caller: deps.Caller) -> Me:
    return Me(email=caller.user.email, is_admin=caller.user.is_admin, scopes=sorted(caller.scopes))


@router.post("/me/password", status_code=204)
def change_password(
    body: PasswordChange, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> None:
    service.change_password(
        session, caller.user, body.current, body.new, keep=caller.session, now=config.clock()
    )


def _token_out(row: models.ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        scopes=row.scopes.split(),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenRequest,
    caller: deps.LoggedIn,
    session: deps.DB,
    config: deps.Config,
    key: deps.TokenKey,
) -> NewToken:
    token, row = tokens.create(
        session,
        caller.user,
        name=body.name,
        scopes=body.scopes,
        ttl=parse_duration(body.expires_in),
        now=config.clock(),
        key=key,
    )
    return NewToken(token=token, **_token_out(row).model_dump())


@router.get("/tokens")
def list_tokens(caller: deps.LoggedIn, session: deps.DB) -> list[TokenOut]:
    return [_token_out(row) for row in tokens.of_user(session, caller.user)]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: str, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> None:
    tokens.revoke(session, caller.user, token_id, now=config.clock())
