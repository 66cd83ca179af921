"""Every error pli raises, in one tree.

    PliError                      base: a message a person can act on, an HTTP status, an exit code
    ├── UsageError                the command line or a request was malformed (HTTP 400, exit 2)
    │   ├── ProtocolError         a resumable-upload request broke the protocol (412, 415)
    │   └── ChecksumMismatchError a part's bytes do not match its declared checksum (460)
    ├── ConfigError               missing or unusable local state (not logged in, no keys)
    ├── AuthError                 not authenticated: bad credentials or an expired session (401)
    │   └── SecondFactorRequiredError  the password was right; a second factor is needed too
    ├── ForbiddenError            authenticated but not allowed (403)
    ├── NotFoundError             does not exist, or is not yours to know about (404)
    ├── GoneError                 existed, but has expired or been revoked (410)
    ├── ConflictError             the state does not allow it (409)
    │   └── LockedError           another request is working on it: retry shortly (423)
    ├── TooLargeError             over a configured size limit (413)
    ├── RateLimitedError          too many attempts; try again later (429)
    ├── TransportError            the server could not be reached or answered nonsense
    ├── TrustError                a correspondent's key is not the one pinned
    └── CryptoError               base of the refusals raised by pli.crypto
        ├── DecryptError          not for our keys, or corrupted: deliberately not more precise
        ├── SignatureError        a signature, a signed document or a passkey's answer does
        │                         not verify
        └── IntegrityError        bytes do not match the hash a signed manifest commits to
            └── TamperingError    the audit log, its checkpoints or the key log were tampered
                                  with (exit 3)

Crypto errors are opaque on purpose: they say that a check failed, never which internal one, so
an attacker probing a client learns nothing. The CLI adds what the person should do next.
The server maps this tree to `application/problem+json` in one place (pli.server.problems); the
CLI renders it in one place (pli.client.cli). An error may add members of its own to its problem
object (`problem_extensions`): the second factors a login can use, for one.
"""

from __future__ import annotations

from collections.abc import Sequence


class PliError(Exception):
    """Base of every pli error. `str(err)` is one sentence for the person at the keyboard."""

    status: int = 500
    title: str = "Internal error"
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def problem_extensions(self) -> dict[str, list[str]]:
        """Members its problem object carries beside type, title, status and detail."""
        return {}


class UsageError(PliError):
    status = 400
    title = "Bad request"
    exit_code = 2


class ProtocolError(UsageError):
    """The status is set per instance: 412 for an unsupported protocol version, 415 for a
    wrong content type."""

    title = "Protocol error"

    def __init__(self, message: str, *, status: int = 412, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ChecksumMismatchError(UsageError):
    status = 460  # tus 1.0, checksum extension
    title = "Checksum mismatch"


class ConfigError(PliError):
    status = 400
    title = "Not configured"


class AuthError(PliError):
    status = 401
    title = "Not authenticated"


class SessionEndedError(AuthError):
    """The bearer token names no live session (missing, expired, logged out): log in again.
    Its own title lets a client tell it from a wrong password, which is also a 401."""

    title = "Session ended"


class SecondFactorRequiredError(AuthError):
    """`methods`: the second factors the account can use, "totp" and/or "passkey"; one of
    its recovery codes, given as a one-time code, is accepted whichever they are."""

    title = "Second factor required"

    def __init__(
        self, message: str, *, hint: str | None = None, methods: Sequence[str] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.methods = tuple(methods)

    def problem_extensions(self) -> dict[str, list[str]]:
        return {"methods": list(self.methods)} if self.methods else {}


class ForbiddenError(PliError):
    status = 403
    title = "Forbidden"


class NotFoundError(PliError):
    status = 404
    title = "Not found"


class GoneError(PliError):
    status = 410
    title = "Gone"


class ConflictError(PliError):
    status = 409
    title = "Conflict"


class LockedError(ConflictError):
    status = 423
    title = "Busy"


class TooLargeError(PliError):
    status = 413
    title = "Too large"


class RateLimitedError(PliError):
    """`retry_after`, when known: the seconds after which a new attempt may succeed."""

    status = 429
    title = "Too many requests"

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class TransportError(PliError):
    status = 502
    title = "Server unreachable"


class TrustError(PliError):
    status = 409
    title = "Key not trusted"


class CryptoError(PliError):
    status = 422
    title = "Cryptographic check failed"


class DecryptError(CryptoError):
    title = "Decryption failed"


class SignatureError(CryptoError):
    title = "Signature invalid"


class IntegrityError(CryptoError):
    title = "Integrity check failed"


class TamperingError(IntegrityError):
    """Evidence of tampering, found by `pli admin audit verify` in the audit log or its
    checkpoints, or by a client in the key log (a fork): its own exit code, so that a
    scheduled check can tell it (raise the alarm) from a check that could not run (retry)."""

    title = "Tampering detected"
    exit_code = 3


ERRORS_BY_STATUS: dict[int, type[PliError]] = {
    400: UsageError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: TooLargeError,
    423: LockedError,
    460: ChecksumMismatchError,
    429: RateLimitedError,
    422: UsageError,
}
