"""Login, logout, who-am-I, password changes, second factors (TOTP, passkeys) and API
tokens."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import passkeys as webauthn
from pli.durations import parse_duration
from pli.errors import AuthError, ForbiddenError, SecondFactorRequiredError, UsageError
from pli.server import alerts, deps, policy
from pli.server.auth import passkeys, recovery, service, tokens, totp
from pli.server.config import Settings
from pli.server.ratelimit import LoginGuard
from pli.store import models

router = APIRouter(prefix="/api/v1", tags=["auth"])
T = TypeVar("T")
# WebAuthn's JSON forms, as the browser makes them (base64url without padding): checked by
# pli.crypto.passkeys, not here.
WebAuthnJSON = dict[str, Any]


class PasskeyAssertion(BaseModel):
    challenge_id: str = Field(max_length=64)
    credential: WebAuthnJSON = Field(
        description="AuthenticationResponseJSON: the browser's PublicKeyCredential.toJSON()"
    )


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    otp: str | None = Field(default=None, max_length=32, description="TOTP or recovery code")
    passkey: PasskeyAssertion | None = Field(
        default=None, description="an assertion made with POST /auth/passkey/options' challenge"
    )


class PasswordLogin(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class Code(BaseModel):
    code: str = Field(max_length=32)


class TotpEnrolment(BaseModel):
    secret: str
    uri: str


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="shown once; each works once")


class PasskeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class SecondFactors(BaseModel):
    totp: bool
    passkeys: list[PasskeyOut]
    recovery_codes_left: int


class PasskeyOptions(BaseModel):
    challenge_id: str
    options: WebAuthnJSON = Field(
        description="PublicKeyCredentialCreationOptionsJSON or RequestOptionsJSON, for "
        "PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON"
    )


class PasskeyEnrolment(BaseModel):
    challenge_id: str = Field(max_length=64)
    credential: WebAuthnJSON = Field(
        description="RegistrationResponseJSON: the browser's PublicKeyCredential.toJSON()"
    )
    name: str = Field(min_length=1, max_length=100)


class NewPasskey(BaseModel):
    passkey: PasskeyOut
    recovery_codes: list[str] = Field(
        description="shown once, each works once: only with the account's first second factor"
    )


class PasskeyRemoval(BaseModel):
    """Proof of a second factor: a one-time or recovery code, or a passkey's assertion."""

    code: str | None = Field(default=None, max_length=32)
    passkey: PasskeyAssertion | None = Field(
        default=None,
        description="made with POST /me/2fa/passkeys/assertion-options' challenge",
    )


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

    origin = _party(request).origin if body.passkey is not None else ""

    def check() -> tuple[models.User, str | None]:
        user = service.authenticate(session, body.email, body.password)
        methods = recovery.methods(session, user)
        if not methods:
            return user, None
        used = _prove(
            session,
            user,
            body.otp,
            body.passkey,
            purpose="login",
            key=key,
            config=config,
            origin=origin,
        )
        if used is None:
            raise SecondFactorRequiredError(_needed(methods), methods=methods)
        return user, used

    user, used = await _guarded(request, guard, body.email, check)

    def opened() -> tuple[str, datetime]:
        now = config.clock()
        audit.record(
            session,
            Event.AUTH_LOGIN_SUCCEEDED,
            now=now,
            actor=user.email,
            # Which: "totp", "recovery" or "passkey"; false without a second factor.
            details={"second_factor": used or False},
        )
        rules = policy.current(session, config)
        alerts.after(session, user, Event.AUTH_LOGIN_SUCCEEDED, rules, now=now)
        return service.open_session(session, user, now=now, ttl=config.session_ttl)

    token, expires = await run_in_threadpool(opened)
    return LoginResponse(token=token, expires_at=expires, email=user.email)


async def _guarded(
    request: Request,
    guard: LoginGuard,
    email: str,
    check: Callable[[], T],
    *,
    complete: bool = True,
) -> T:
    """Run a password (and code) check under the brute-force guard: delayed or refused after
    repeated failures from this address, and every failure counted and recorded. A success
    clears this address's failures only when `complete`: a password alone must not reset the
    count of wrong one-time codes guessed between two tries."""
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
    if complete:
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


def _prove(
    session: Session,
    user: models.User,
    code: str | None,
    passkey: PasskeyAssertion | None,
    *,
    purpose: Literal["login", "confirm"],
    key: bytes,
    config: Settings,
    origin: str,
) -> str | None:
    """Check the second factor offered, a passkey's assertion first: which kind it was
    ("passkey", "totp", "recovery"), or None when none was offered."""
    if passkey is not None:
        passkeys.verify_assertion(
            session,
            user,
            passkey.challenge_id,
            passkey.credential,
            purpose=purpose,
            origin=origin,
            now=config.clock(),
        )
        return recovery.PASSKEY
    if code:
        return totp.verify(session, user, code, key=key, now=config.clock())
    return None


def _needed(methods: list[str]) -> str:
    """What a login without its second factor is told: something a person can do, at the
    command line too (which has no passkey)."""
    if methods == [recovery.PASSKEY]:
        return (
            "this account signs in with a passkey: sign in with it in the web app, or set "
            "PLI_TOTP to one of its recovery codes"
        )
    if recovery.PASSKEY in methods:
        return "this account needs a one-time code (set PLI_TOTP) or its passkey (in the web app)"
    return "this account needs a one-time code (set PLI_TOTP)"


def _party(request: Request) -> webauthn.RelyingParty:
    """Passkeys are made for PLI_PUBLIC_URL's host, else for the host this request came to."""
    return webauthn.relying_party(deps.public_base(request))


@router.post("/auth/passkey/options")
async def login_passkey_options(
    body: PasswordLogin,
    request: Request,
    session: deps.DB,
    config: deps.Config,
    guard: deps.Guard,
) -> PasskeyOptions:
    """A challenge for a login with a passkey, and the account's passkeys to answer it with.
    The password is checked first, under the login guard, so that an email address alone
    discloses no credential id; it leaves the count of failures as it was."""
    party = _party(request)

    def check() -> tuple[str, dict[str, Any]]:
        user = service.authenticate(session, body.email, body.password)
        return passkeys.assertion_options(
            session, user, purpose="login", party=party, now=config.clock()
        )

    challenge_id, options = await _guarded(request, guard, body.email, check, complete=False)
    return PasskeyOptions(challenge_id=challenge_id, options=options)


@router.get("/me/2fa")
def second_factors(caller: deps.LoggedIn, session: deps.DB) -> SecondFactors:
    user = caller.user
    return SecondFactors(
        totp=user.totp_enabled_at is not None,
        passkeys=[_passkey_out(row) for row in passkeys.of_user(session, user)],
        recovery_codes_left=recovery.left(user),
    )


@router.post("/me/2fa/passkeys/options")
def passkey_options(
    request: Request, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> PasskeyOptions:
    """A challenge to enrol a new passkey, with the account's passkeys as excludeCredentials."""
    challenge_id, options = passkeys.registration_options(
        session, caller.user, party=_party(request), now=config.clock()
    )
    return PasskeyOptions(challenge_id=challenge_id, options=options)


@router.post("/me/2fa/passkeys", status_code=201)
def passkey_enrol(
    body: PasskeyEnrolment,
    request: Request,
    caller: deps.LoggedIn,
    session: deps.DB,
    config: deps.Config,
) -> NewPasskey:
    row, codes = passkeys.register(
        session,
        caller.user,
        body.challenge_id,
        body.credential,
        body.name,
        party=_party(request),
        now=config.clock(),
    )
    return NewPasskey(passkey=_passkey_out(row), recovery_codes=codes)


@router.post("/me/2fa/passkeys/assertion-options")
def passkey_assertion_options(
    request: Request, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> PasskeyOptions:
    """A challenge for one of the account's passkeys to confirm a change (a removal)."""
    challenge_id, options = passkeys.assertion_options(
        session, caller.user, purpose="confirm", party=_party(request), now=config.clock()
    )
    return PasskeyOptions(challenge_id=challenge_id, options=options)


@router.post("/me/2fa/passkeys/{passkey_id}/remove", status_code=204)
async def passkey_remove(
    passkey_id: str,
    body: PasskeyRemoval,
    request: Request,
    caller: deps.LoggedIn,
    session: deps.DB,
    config: deps.Config,
    guard: deps.Guard,
    key: deps.TokenKey,
) -> None:
    """Remove a passkey, with proof of a second factor (any of them, this passkey too): a
    stolen session alone cannot strip an account of its factors. Proofs are checked under the
    login guard, and wrong ones recorded."""
    user = caller.user
    row = await run_in_threadpool(passkeys.find, session, user, passkey_id)
    if body.passkey is None and not body.code:
        raise UsageError(
            "removing a passkey needs a second factor: a one-time code, a recovery code or "
            "an assertion of one of your passkeys"
        )
    origin = _party(request).origin if body.passkey is not None else ""

    def check() -> str | None:
        return _prove(
            session,
            user,
            body.code,
            body.passkey,
            purpose="confirm",
            key=key,
            config=config,
            origin=origin,
        )

    await _guarded(request, guard, user.email, check)
    removed = functools.partial(passkeys.remove, session, user, row, now=config.clock())
    await run_in_threadpool(removed)


def _passkey_out(row: models.Passkey) -> PasskeyOut:
    return PasskeyOut(
        id=row.id, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at
    )


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
    if not await run_in_threadpool(recovery.methods, session, user):
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
