"""`pli.Client`: everything the user verbs do. The CLI is a thin layer over it.

client = Client()                      # state under PLI_HOME
client.login("https://pli.example.org", "alice@lab.example", password)
client.unlock(passphrase)              # opens this device's private keys
transfer_id = client.send([Path("results.csv")], ["bob@ars.example"])
client.get(transfer_id, Path("."))     # on Bob's machine

check = client.verification("bob@ars.example")  # check.code: read it to Bob by phone
client.mark_verified(check, code=what_bob_read)  # refused unless it is the same code
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import os
import tempfile
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pli.client import names
from pli.client.api import Api, check_url
from pli.client.download import Fetch, receive_all
from pli.client.external import listed_files, readable_file
from pli.client.pins import GroupPins, Pinned, PinStore, same_keys
from pli.client.state import Home
from pli.client.transparency import (
    LogStore,
    Offered,
    Signature,
    checked_group,
    checked_keys,
    claimed_member,
    hashes,
)
from pli.client.upload import (
    Digests,
    SendState,
    SentRecord,
    SourceChangedError,
    Uploader,
    encrypted_parts,
    send_file,
)
from pli.crypto import age, devices, keylog
from pli.crypto import groups as gs
from pli.crypto import links as lk
from pli.crypto import manifest as mf
from pli.crypto import passphrase as phrases
from pli.crypto import verification as vc
from pli.crypto.age import DEFAULT_SCRYPT_WORK_FACTOR, Encryptor, Recipient
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.identity import DeviceIdentity
from pli.durations import parse_duration, parse_time
from pli.errors import (
    ConfigError,
    CryptoError,
    DecryptError,
    ForbiddenError,
    GoneError,
    IntegrityError,
    NotFoundError,
    PliError,
    SignatureError,
    TamperingError,
    TransportError,
    TrustError,
    UsageError,
)

CONFIG, SESSION, IDENTITY, DEVICE = "config.json", "session", "identity.age", "device.json"


def upload_retry_seconds() -> float:
    """How long an upload rides out a server that went away (a restart, a network cut)."""
    text = os.environ.get("PLI_UPLOAD_RETRY_SECONDS", "60")
    if not text.isdigit():
        raise ConfigError("PLI_UPLOAD_RETRY_SECONDS must be a whole number of seconds")
    return float(text)


READ_BATCH = 1 << 20


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int


@dataclass(frozen=True)
class TransferInfo:
    id: str
    sender: str
    recipients: list[str]
    created_at: str
    expires_at: str
    files: list[FileInfo]
    message: str
    verified: bool
    problem: str | None = None
    sender_key_verified: bool = False
    # Each recipient other than yourself: whether the keys the transfer was encrypted to are
    # among that account's pinned keys, and those are marked verified.
    recipient_keys_verified: dict[str, bool] = field(default_factory=dict)
    kind: str = "direct"  # "answer": uploaded through a file request, by someone without account
    claimed_name: str | None = (
        None  # an answer's sender, as they typed it: a claim, not an identity
    )
    request: str | None = None  # the file request an answer came through
    # Sent by a service account (an unattended job), as the server says: a label, not a proof.
    sender_service: bool = False


@dataclass(frozen=True)
class Received:
    """What `Client.receive` saved, and from whom."""

    id: str
    files: list[Path]
    sender: str  # empty for an answer to a file request: its sender has no account
    sender_key_verified: bool
    kind: str = "direct"


@dataclass(frozen=True)
class Verification:
    """What a verification code covers: the keys of both accounts, as this device sees them.
    Mark it verified (`Client.mark_verified`) only once the other person read the same code."""

    email: str  # the correspondent
    code: str  # twelve groups of five digits: one half per account
    theirs: list[PublicBundle]  # the keys the server offers for `email`: the ones to pin
    mine: list[PublicBundle]  # this account's keys, this device's among them
    pinned: list[PublicBundle]  # the keys pinned for `email` before; empty on first use
    was_verified: bool  # whether the pinned keys were marked verified
    first_use: bool

    @property
    def changed(self) -> bool:
        """Whether the server's keys differ from the pinned ones."""
        return not self.first_use and not same_keys(self.pinned, self.theirs)

    @property
    def verified(self) -> bool:
        """Whether these very keys are marked verified already."""
        return self.was_verified and not self.changed


@dataclass(frozen=True)
class TransferPage:
    """One page of an inbox or outbox, newest first. Iterating over it gives its items."""

    items: list[TransferInfo]
    next_cursor: str | None  # for the next, older page; None when there is none

    def __iter__(self) -> Iterator[TransferInfo]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class CreatedLink:
    id: str
    url: str  # with its secret after "#": give it only to whom the files are for
    expires_at: str


@dataclass(frozen=True)
class LinkInfo:
    id: str
    url: str  # without the secret, which only the URL given out at creation holds
    state: str  # uploading, active, exhausted, revoked, expired
    created_at: str
    expires_at: str
    max_downloads: int | None
    downloads: int
    downloads_left: int | None
    files: int


@dataclass(frozen=True)
class CreatedRequest:
    id: str
    url: str  # with the request's key and secret after "#"
    expires_at: str


@dataclass(frozen=True)
class RequestInfo:
    id: str
    url: str  # whole (with "#…") once the keys are unlocked and the request's key verified
    state: str  # draft, open, full, closed, expired
    title: str | None  # None while the keys are locked
    created_at: str
    expires_at: str
    max_files: int
    files_used: int
    max_bytes: int
    bytes_used: int


@dataclass(frozen=True)
class DirectoryEntry:
    kind: str  # user, service (a service account that receives), group or organisation
    email: str | None  # a user's or service's
    devices: list[tuple[str, str]]  # (device id, fingerprint), each proved in the key log
    pinned: bool  # these exact keys (or this group's history) are the ones this device pinned
    verified: bool  # ... and marked verified (keys only)
    name: str | None = None  # a group's org/group, an organisation's slug
    title: str | None = None
    members: dict[str, str] | None = None  # a group's, as its signed history gives them
    history: str | None = None  # a group's: the digest of its last change, its fingerprint


@dataclass(frozen=True)
class GroupInfo:
    """A group as its signed history, checked and replayed here, makes it."""

    id: str
    name: str
    title: str
    organisation: str
    founder: str
    members: dict[str, str]  # email -> admin | member
    seq: int  # its last change's (-1: none yet)
    history: str  # the digest of its last change: compare it to see the same history
    first_use: bool  # this device had not seen the group before


class GroupMembersChangedError(TrustError):
    """A group send stopped: the keys of some members changed (or they have none)."""

    def __init__(self, group: str, emails: list[str], reasons: list[str]) -> None:
        names = ", ".join(emails)
        super().__init__(
            f"group {group}: the keys of {names} changed or cannot be used: " + "; ".join(reasons),
            hint=f"check them with the person (`pli keys verify EMAIL`), or send without "
            f"them: {' '.join('--without ' + e for e in emails)}",
        )
        self.emails = emails


@dataclass(frozen=True)
class NewDevice:
    bundle: PublicBundle
    pending: bool  # waiting for one of the account's devices to approve it


@dataclass(frozen=True)
class DeviceInfo:
    device: str
    state: str  # active, pending, removed
    fingerprint: str
    created_at: str
    approved_by: str | None
    this_device: bool


@dataclass(frozen=True)
class KeyAudit:
    head: keylog.TreeHead  # the head the audit reached
    read: int  # entries read this time
    mine: list[tuple[int, keylog.Entry]]  # those naming this account
    unknown: list[tuple[int, keylog.Entry]]  # keys of this account none of its devices made
    problems: list[str]  # this account's keys as the server lists them, refused


LOG_PAGE = 1000  # key log entries per request
LISTING_PAGE = 100  # transfers per request when walking a whole inbox or outbox


@dataclass
class Client:
    home_path: Path | None = None
    token: str | None = None
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Home(self.home_path)
        self.pins = PinStore(self.home)
        self.key_log = LogStore(self.home)
        self._group_pins = GroupPins(self.home)
        self._api: Api | None = None
        self._identity: DeviceIdentity | None = None
        self._request_cache: dict[str, lk.RequestKeys] = {}

    # --- session ------------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        data = self.home.read_json(CONFIG)
        if not isinstance(data, dict) or "server" not in data:
            raise ConfigError(
                "this device is not logged in", hint="run `pli login URL --email EMAIL` first"
            )
        return data

    @property
    def email(self) -> str:
        return str(self.config["email"])

    @property
    def api(self) -> Api:
        if self._api is None:
            token = self.token or (self.home.read(SESSION) or b"").decode() or None
            self._api = Api(self.config["server"], token)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    def login(
        self,
        server: str,
        email: str,
        password: str,
        *,
        otp: str | None = None,
        allow_http: bool = False,
        server_key: str | None = None,
    ) -> str:
        """Log in; raises SecondFactorRequiredError when the account needs `otp` too. The
        server's key (which signs its key log) is pinned at the first login: `server_key`, as
        its operator published it, else the one it shows."""
        url = check_url(server, allow_http=allow_http)
        api = Api(url)
        body = {"email": email, "password": password, "otp": otp}
        try:
            answer = api.request("POST", "/api/v1/auth/login", json=body)
        finally:
            api.close()
        self._keep_login(url, str(answer["email"]), str(answer["token"]), server_key)
        return str(answer["email"])

    def login_with_token(
        self,
        server: str,
        email: str,
        token: str,
        *,
        allow_http: bool = False,
        server_key: str | None = None,
    ) -> str:
        """Keep a service account's API token as this home's credential: for an unattended
        job, whose machine holds its identity. The token must belong to `email`."""
        url = check_url(server, allow_http=allow_http)
        if not token.startswith("plit_"):
            raise UsageError("this is not an API token (they start with plit_)")
        api = Api(url, token)
        try:
            answer = api.request("GET", "/api/v1/me")
        finally:
            api.close()
        if not isinstance(answer, dict):
            raise TransportError("the server sent a malformed answer about this token's account")
        if answer.get("email") != email.strip().lower():
            raise UsageError(f"this API token belongs to {answer.get('email')}, not to {email}")
        self._keep_login(url, str(answer["email"]), token, server_key)
        return str(answer["email"])

    def _keep_login(self, url: str, email: str, token: str, server_key: str | None) -> None:
        previous = self.home.read_json(CONFIG)
        if isinstance(previous, dict) and previous.get("email") not in (None, email):
            raise ConfigError(
                f"this PLI_HOME belongs to {previous['email']}",
                hint="use another PLI_HOME for another account",
            )
        self.home.write_json(CONFIG, {"server": url, "email": email})
        self.home.write(SESSION, token.encode())
        self._api = None
        if server_key is not None:
            self.key_log.pin(server_key)
        # A session that must enrol a second factor first is refused the head: the key is then
        # pinned at its first look-up of keys.
        with contextlib.suppress(ForbiddenError):
            self.key_log_head()

    def key_log_head(self) -> keylog.TreeHead:
        """The server's current signed key log head, checked against the pinned key and
        against the head kept (a consistency proof between the two); kept if newer."""
        signed = self.api.request("GET", "/api/v1/key-log/head")
        kept = self.key_log.head()
        proof = None
        size = claimed_member(signed, "size", int)
        if kept is not None and kept.size <= size:
            params = {"first": kept.size, "second": size}
            answer = self.api.request("GET", "/api/v1/key-log/consistency", params=params)
            proof = hashes(answer.get("proof") if isinstance(answer, dict) else None, "proof")
        return self.key_log.accept(signed, proof)

    def logout(self, *, everywhere: bool = False) -> int:
        """Close this session, or with `everywhere` every session of the account; returns
        how many the server closed."""
        if self.home.read(SESSION) is None and not everywhere:
            return 0
        path = "/api/v1/auth/logout-all" if everywhere else "/api/v1/auth/logout"
        try:
            answer = self.api.request("POST", path)
        except PliError:
            if everywhere:
                raise  # the user must know the other sessions may still be open
            answer = None  # an expired session is as good as closed
        finally:
            self.home.delete(SESSION)
            self._api = None
        return int(answer["closed"]) if isinstance(answer, dict) else 1

    def enable_totp(self) -> dict[str, str]:
        """Start TOTP enrolment: {"secret", "uri"} for an authenticator app."""
        answer: dict[str, str] = self.api.request("POST", "/api/v1/me/2fa/totp")
        return answer

    def confirm_totp(self, code: str) -> list[str]:
        """Finish enrolment with a first code; returns the recovery codes, shown once."""
        answer = self.api.request("POST", "/api/v1/me/2fa/totp/confirm", json={"code": code})
        return list(answer["recovery_codes"])

    def disable_totp(self, code: str) -> None:
        self.api.request("POST", "/api/v1/me/2fa/totp/disable", json={"code": code})

    def second_factors(self) -> dict[str, Any]:
        """This account's second factors: {"totp": bool, "passkeys": [{"id", "name",
        "created_at", "last_used_at"}], "recovery_codes_left": int}."""
        answer: dict[str, Any] = self.api.request("GET", "/api/v1/me/2fa")
        return answer

    def clear_alerts(self, code: str) -> int:
        """Clear this account's alerts (and a suspension of its downloads) with a one-time
        code of its second factor; the number cleared."""
        answer = self.api.request("POST", "/api/v1/me/alerts/clear", json={"code": code})
        return int(answer["closed"]) if isinstance(answer, dict) else 0

    def change_password(self, current: str, new: str) -> None:
        """Change the login password; the account's other sessions are closed."""
        self.api.request("POST", "/api/v1/me/password", json={"current": current, "new": new})

    def create_token(self, name: str, scopes: Sequence[str], expires: str) -> dict[str, Any]:
        """A new API token; its secret is in the answer's "token" and nowhere else."""
        body = {"name": name, "scopes": list(scopes), "expires_in": expires}
        answer: dict[str, Any] = self.api.request("POST", "/api/v1/tokens", json=body)
        return answer

    def tokens(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.api.request("GET", "/api/v1/tokens")
        return answer

    def revoke_token(self, token_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/tokens/{_path_part(token_id)}")

    # --- keys ---------------------------------------------------------------------------------

    def init_keys(
        self,
        passphrase: str,
        *,
        escrow: bool = False,
        login_password: str | None = None,
        work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR,
    ) -> NewDevice:
        """Make this device's keys and publish them. The account's first device can be used
        at once; a later one is `pending` until one of its devices approves it
        (`approve_device`)."""
        if self.home.read(IDENTITY) is not None:
            raise UsageError("this device already has keys", hint="`pli keys show` prints them")
        if escrow:
            self._check_escrow(passphrase, login_password, work_factor)
        elif not passphrase:
            raise UsageError("the passphrase must not be empty")
        identity = DeviceIdentity.generate(self.email)
        sealed = identity.seal(passphrase, work_factor)
        bundle = identity.public_bundle()
        body: dict[str, Any] = {"bundle": bundle.signed}
        if escrow:
            body["escrow"] = base64.b64encode(sealed).decode("ascii")
        answer = self.api.request("POST", "/api/v1/devices", json=body)
        self.home.write(IDENTITY, sealed)
        self.home.write_json(DEVICE, bundle.signed)
        self._identity = identity
        return NewDevice(bundle, pending=answer.get("state") == "pending")

    def _check_escrow(self, passphrase: str, login_password: str | None, work_factor: int) -> None:
        """An escrowed copy can be attacked offline by whoever copies the server: it needs the
        full work factor and a strong passphrase that is not the login password."""
        if work_factor < DEFAULT_SCRYPT_WORK_FACTOR:
            raise UsageError(
                f"an escrowed key needs the full work factor ({DEFAULT_SCRYPT_WORK_FACTOR})"
            )
        if login_password is None:
            raise UsageError(
                "escrow needs your login password, to make sure the passphrase differs"
            )
        # The password must really be this account's login password.
        self.api.request("POST", "/api/v1/me/password/verify", json={"password": login_password})
        if passphrase == login_password:
            raise UsageError("the passphrase must not be your login password")
        bits = phrases.estimated_bits(passphrase, [self.email, login_password])
        if bits < phrases.ESCROW_MIN_BITS:
            raise UsageError(
                f"this passphrase is too weak to leave on the server (about {bits:.0f} bits; "
                f"{phrases.ESCROW_MIN_BITS:.0f} needed)",
                hint="use a generated six-word phrase (`pli keys init --escrow --generate`)",
            )

    def change_passphrase(
        self,
        new: str,
        *,
        login_password: str | None = None,
        work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR,
    ) -> bool:
        """Re-wrap this device's private keys under `new` (unlock with the old one first);
        the escrowed copy on the server too, if there is one. Returns whether it was."""
        me = self.identity
        escrowed = any(
            e["device"] == me.device for e in self.api.request("GET", "/api/v1/me/escrow")
        )
        if escrowed:
            self._check_escrow(new, login_password, work_factor)
        elif not new:
            raise UsageError("the passphrase must not be empty")
        sealed = me.seal(new, work_factor)
        if escrowed:
            body = {"escrow": base64.b64encode(sealed).decode("ascii")}
            self.api.request("PUT", f"/api/v1/devices/{me.device}/escrow", json=body)
        self.home.write(IDENTITY, sealed)
        return escrowed

    def public_bundle(self) -> PublicBundle:
        signed = self.home.read_json(DEVICE)
        if signed is None:
            raise ConfigError("this device has no keys yet", hint="run `pli keys init` first")
        return parse_bundle(signed)

    def unlock(self, passphrase: str) -> DeviceIdentity:
        sealed = self.home.read(IDENTITY)
        if sealed is None:
            raise ConfigError("this device has no keys yet", hint="run `pli keys init` first")
        try:
            self._identity = DeviceIdentity.unseal(sealed, passphrase)
        except CryptoError as exc:
            raise DecryptError("wrong passphrase for this device's keys") from exc
        return self._identity

    @property
    def identity(self) -> DeviceIdentity:
        if self._identity is None:
            raise ConfigError("the keys are locked: unlock them with the passphrase first")
        return self._identity

    def export_identity(self) -> str:
        return self.identity.age_identity.export()

    def fetch_keys(self, email: str) -> list[PublicBundle]:
        """The keys the server claims `email` has, each self-signature checked and each
        proved to be in the server's key log."""
        return self.offered_keys(email).bundles

    def offered_keys(self, email: str) -> Offered:
        """`fetch_keys`, with the approvals the account's devices signed for each other."""
        head = self.key_log.head()
        params = {} if head is None else {"log_size": head.size}
        path = f"/api/v1/users/{_path_part(email)}/devices"
        return checked_keys(self.key_log, email, self.api.request("GET", path, params=params))

    def _log_size(self) -> int:
        head = self.key_log.head()
        return 0 if head is None else head.size

    def pinned_keys(self, email: str) -> list[PublicBundle]:
        """Keys of `email`, checked against (or pinned as) the ones seen before."""
        offered = self.offered_keys(email)
        pinned = self.pins.check(
            email, offered.bundles, offered.approvals, log_size=self._log_size()
        )
        if pinned.first_use and email != self.email:
            prints = ", ".join(b.fingerprint for b in pinned.bundles)
            self.notices.append(f"first use of {email}'s keys (not yet verified): {prints}")
        self.notices.extend(pinned.changes)
        return pinned.bundles

    def directory(self, text: str, limit: int = 10) -> list[DirectoryEntry]:
        """Accounts of the server that can receive, whose email contains `text`, each with its
        keys (checked, and proved in the key log, as for a send, but not pinned) and whether
        this device pinned or verified them."""
        if len(text.strip()) < 2:
            raise UsageError("search for at least two characters")
        answer = self.api.request(
            "GET", "/api/v1/directory", params={"q": text.strip(), "limit": limit}
        )
        if not isinstance(answer, list) or not all(isinstance(a, dict) for a in answer):
            raise TransportError("the server sent a malformed directory answer")
        return [self._directory_entry(item) for item in answer]

    def _directory_entry(self, item: dict[str, Any]) -> DirectoryEntry:
        kind, email, name = item.get("kind"), item.get("email"), item.get("name")
        title = item.get("title") if isinstance(item.get("title"), str) else None
        if kind in ("group", "organisation") and isinstance(name, str):
            if kind == "organisation":
                return DirectoryEntry(kind, None, [], False, False, name=name, title=title)
            if gs.NAME.fullmatch(name) is None:
                raise TransportError("the server sent a malformed directory answer")
            group = self.group(name, pin=False)
            seen = self._group_pins.pinned_head(group.id) == group.history
            return DirectoryEntry(
                kind,
                None,
                [],
                seen,
                False,
                name=name,
                title=title,
                members=group.members,
                history=group.history,
            )
        if not isinstance(email, str) or kind not in ("user", "service"):
            raise TransportError("the server sent a malformed directory answer")
        bundles = self.fetch_keys(email)
        pinned = self.pins.get(email)
        same = bool(pinned and same_keys(pinned.bundles, bundles))
        return DirectoryEntry(
            kind=kind,
            email=email,
            devices=[(b.device, b.fingerprint) for b in bundles],
            pinned=same,
            verified=bool(same and pinned and pinned.verified),
        )

    # --- groups -------------------------------------------------------------------------------

    def group(self, name: str, *, pin: bool = True) -> GroupInfo:
        """Group `name` (`org/group` or `group:org/group`) as its signed history gives it:
        every change checked and proved in the key log, signed by a device this client
        trusts for its administrator, the history extending the one this device pinned
        (and pinned now, with `pin`)."""
        org, slug = gs.parse_name(name)
        state, answer = self._group_state(f"{org}/{slug}")
        first = self._group_pins.check(state) if pin else None
        organisation = answer.get("organisation")
        return GroupInfo(
            id=state.group,
            name=state.name,
            title=str(answer.get("title", "")),
            organisation=str(organisation.get("name", org))
            if isinstance(organisation, dict)
            else org,
            founder=state.founder or f"{answer.get('founder', '')} (named by the server)",
            members=dict(state.members),
            seq=state.seq,
            history=state.head,
            first_use=bool(first),
        )

    def _group_state(self, name: str) -> tuple[gs.GroupState, dict[str, Any]]:
        head = self.key_log.head()
        params = {} if head is None else {"log_size": head.size}
        answer = self.api.request("GET", f"/api/v1/groups/{name}", params=params)
        if not isinstance(answer, dict):
            raise TransportError(f"the server sent a malformed answer for group {name}")
        state, signatures = checked_group(self.key_log, name, answer)
        self._check_signers(state, signatures)
        return state, answer

    def _check_signers(self, state: gs.GroupState, signatures: list[Signature]) -> None:
        """Every change signed by a device this client trusts for its signer: one of the
        keys it pinned for the account (refreshed now, as for a send), or one older than its
        first pin of the account. A device the server made up for an administrator, even one
        it then marks removed so as not to hand it out, is neither."""
        refreshed: set[str] = set()
        for signature in signatures:
            change = signature.change
            if change.by not in refreshed:
                self.pinned_keys(change.by)
                refreshed.add(change.by)
            if not self.pins.trusted_signer(
                change.by, signature.bundle, signature.activated, signature.logged
            ):
                raise TamperingError(
                    f"change {change.seq} of group {state.name} is signed by device "
                    f"{change.device} of {change.by}, which this device never saw among "
                    f"{change.by}'s keys and which the key log made active after it pinned "
                    "them",
                    hint=f"send nothing to this group; ask {change.by} (`pli keys audit` on "
                    "their side shows a device they did not make) and tell your administrator",
                )

    def change_group(self, name: str, action: str, email: str, role: str | None = None) -> None:
        """As an administrator of group `name`, sign and post one change: add `email` (or
        change its role), or remove it. The founder's first change also signs them in as the
        group's first administrator. The change is checked before anything is posted, and
        found in the group's history afterwards."""
        org, slug = gs.parse_name(name)
        name, email = f"{org}/{slug}", email.strip().lower()
        state, answer = self._group_state(name)
        self._group_pins.check(state)
        changes = []
        if not state.digests:
            if answer.get("founder") != self.email:
                raise ForbiddenError(f"group {name} has no members yet: only its founder starts it")
            changes.append(self._signed_change(state, gs.ADD, self.email, gs.ADMIN))
            if (action, email, role or gs.ADMIN) == (gs.ADD, self.email, gs.ADMIN):
                email = ""
        if email and action == gs.ADD and role is None and email in state.members:
            held = "an administrator" if state.members[email] == gs.ADMIN else "a member"
            raise UsageError(
                f"{email} is already {held} of group {name}",
                hint="to change their role, say which: --admin or --member",
            )
        if email:
            changes.append(self._signed_change(state, action, email, role))
        for signed in changes:
            self._post_change(name, signed)
        state, _answer = self._group_state(name)
        self._group_pins.check(state)
        if any(
            gs.claimed(c).seq >= len(state.digests)
            or state.digests[gs.claimed(c).seq] != gs.digest(c)
            for c in changes
        ):
            raise TamperingError(
                f"the server accepted a change to group {name} but does not show it",
                hint="tell your administrator: senders may still see the group as it was",
            )

    def _signed_change(
        self, state: gs.GroupState, action: str, email: str, role: str | None
    ) -> dict[str, Any]:
        """The next change to the group in `state`, signed here, and applied to `state`; a
        change the group would refuse is a UsageError, and nothing is signed."""
        try:
            signed = gs.sign_change(self.identity, state, action, email, role)
        except (IntegrityError, SignatureError) as exc:
            raise UsageError(f"group {state.name}: {exc.message}") from exc
        state.apply(signed)
        return signed

    def _post_change(self, name: str, signed: dict[str, Any]) -> None:
        self.api.request("POST", f"/api/v1/groups/{name}/changes", json={"change": signed})

    def my_groups(self) -> list[dict[str, str]]:
        """The groups this account belongs to, as the server lists them: name, title, role."""
        return [dict(item) for item in _items(self.api.request("GET", "/api/v1/me/groups"))]

    def forget_group(self, name: str) -> bool:
        """Drop what this device pinned of group `name`: the next use pins it anew."""
        org, slug = gs.parse_name(name)
        return self._group_pins.forget(f"{org}/{slug}")

    def _group_recipients(
        self, name: str, everyone: dict[str, list[PublicBundle]], without: set[str]
    ) -> tuple[str, list[str], set[str]]:
        """The members of group `name` a send encrypts to (their keys added to `everyone`):
        every member but this account and `without`; and every member. GroupMembersChangedError
        naming those whose keys changed; nothing is sent then."""
        info = self.group(name)
        if not info.members:
            raise UsageError(
                f"group {info.name} has no members yet",
                hint=f"its founder {info.founder} adds them with `pli groups add`",
            )
        if info.first_use:
            self.notices.append(
                f"first use of group {info.name}: {len(info.members)} members, history "
                f"{info.history[:16]}"
            )
        kept, stopped, reasons = [], [], []
        for email in sorted(set(info.members) - without - {self.email}):
            try:
                everyone.setdefault(email, self.pinned_keys(email))
            except TrustError as exc:
                stopped.append(email)
                reasons.append(exc.message)
                continue
            kept.append(email)
        if stopped:
            raise GroupMembersChangedError(info.name, stopped, reasons)
        return info.name, kept, set(info.members)

    # --- devices ------------------------------------------------------------------------------

    def devices(self) -> list[DeviceInfo]:
        """Every device of this account as the server lists it: active, pending, removed."""
        here = self.public_bundle().device if self.home.read(DEVICE) is not None else None
        listed = []
        for item in self._own_devices():
            bundle = self._own_bundle(item)
            approval = item.get("approval")
            listed.append(
                DeviceInfo(
                    device=bundle.device,
                    state=str(item.get("state")),
                    fingerprint=bundle.fingerprint,
                    created_at=str(item.get("created_at")),
                    approved_by=devices.by_of(approval) if approval else None,
                    this_device=bundle.device == here,
                )
            )
        return listed

    def pending_device(self, device_id: str) -> PublicBundle:
        """The bundle of a device of this account that waits for approval."""
        for item in self._own_devices():
            bundle = self._own_bundle(item)
            if bundle.device == device_id and item.get("state") == "pending":
                return bundle
        raise NotFoundError(
            f"no device {device_id} of yours waits for approval",
            hint="`pli devices list` shows your devices and their state",
        )

    def approve_device(self, bundle: PublicBundle) -> None:
        """Sign, with this device's key, that `bundle` is a device of this account, and
        send the approval: the device becomes active, and correspondents who trust this
        device accept it without asking."""
        signed = devices.approve(self.identity, bundle)
        path = f"/api/v1/me/devices/{_path_part(bundle.device)}/approve"
        self.api.request("POST", path, json={"signed": signed})

    def remove_device(self, device_id: str) -> None:
        """Sign, with this device's key, that device `device_id` of this account is no longer
        one of its devices: its keys are no longer handed out, its escrowed copy is deleted."""
        if device_id == self.identity.device:
            raise UsageError(
                "a device does not remove itself", hint="remove it from another of your devices"
            )
        signed = devices.remove(self.identity, device_id)
        path = f"/api/v1/me/devices/{_path_part(device_id)}/remove"
        self.api.request("POST", path, json={"signed": signed})

    def _own_devices(self) -> list[dict[str, Any]]:
        try:
            items = _items(self.api.request("GET", "/api/v1/me/devices"))
        except TypeError as exc:
            raise TransportError("the server sent a malformed list of devices") from exc
        if not all(isinstance(item, dict) for item in items):
            raise TransportError("the server sent a malformed list of devices")
        return items

    def _own_bundle(self, item: Any) -> PublicBundle:
        try:
            bundle = parse_bundle(item["bundle"])
        except (CryptoError, KeyError, TypeError) as exc:
            raise SignatureError("the server listed an invalid device of yours") from exc
        if bundle.email != self.email:
            raise SignatureError("the server listed a device of another account as yours")
        return bundle

    def audit_keys(self) -> KeyAudit:
        """Read the key log from where the last audit stopped to the server's current head,
        check that those entries make up exactly that head, and find among the entries naming
        this account any key its devices did not make or approve. The audit's place is kept
        only when nothing was found, so a finding is reported again until resolved."""
        head = self.key_log_head()
        start = self.key_log.frontier()
        if start.size > head.size:
            raise TamperingError(
                f"the key log has {head.size} entries, fewer than the {start.size} your last "
                "audit read: it was rewritten"
            )
        me = self.email
        problems = []
        here = self.public_bundle()
        if not any(b.same_keys(here) for b in self.offered_keys(me).bundles):
            problems.append("the server does not list this device's keys among your account's")
        frontier, mine = keylog.audit(
            start, head, self._log_leaves(start.size, head.size), keep=lambda e: e.email == me
        )
        unknown = keylog.unknown_devices(mine, me, self._known_devices())
        if not unknown and not problems:
            self.key_log.save_frontier(frontier)
        return KeyAudit(head, head.size - start.size, mine, unknown, problems)

    def _log_leaves(self, start: int, end: int) -> Iterator[bytes]:
        for first in range(start, end, LOG_PAGE):
            params = {"start": first, "end": min(first + LOG_PAGE, end)}
            answer = self.api.request("GET", "/api/v1/key-log/entries", params=params)
            leaves = answer.get("leaves") if isinstance(answer, dict) else None
            if not isinstance(leaves, list) or not all(isinstance(x, str) for x in leaves):
                raise IntegrityError("the server sent a malformed list of key log entries")
            yield from (leaf.encode("utf-8") for leaf in leaves)

    def _known_devices(self) -> dict[str, str]:
        """device id -> bundle digest of every device this one knows to be the account's:
        itself, the device whose signed approval made it active, the account's keys if this
        device verified them, and every device a known one approved (removed since, or not).
        Keys pinned on first use alone are not knowledge: the audit is there to check them."""
        here = self.public_bundle()
        listed = [(self._own_bundle(item), item.get("approval")) for item in self._own_devices()]
        bundles = {b.device: b for b, _ in listed}
        known = {here.device: here}
        pinned = self.pins.get(self.email)
        if pinned is not None and pinned.verified:
            known.update({b.device: b for b in pinned.bundles})
        mine = next((a for b, a in listed if b.device == here.device and a), None)
        approver = bundles.get(devices.by_of(mine)) if mine else None
        if mine and approver is not None:
            devices.check_approval(mine, approver, here)
            known[approver.device] = approver
        grew = True
        while grew:
            grew = False
            for bundle, approval in listed:
                if bundle.device in known or not approval:
                    continue
                by = known.get(devices.by_of(approval))
                if by is not None:
                    devices.check_approval(approval, by, bundle)
                    known[bundle.device], grew = bundle, True
        return {device: keylog.bundle_digest(b) for device, b in known.items()}

    def pending_keys(self, email: str) -> tuple[list[PublicBundle], list[PublicBundle]]:
        """(pinned, offered): the keys pinned for `email`, and those the server now has."""
        pinned = self.pins.get(email)
        offered = self.fetch_keys(email)
        if not offered:
            raise TrustError(f"{email} has no keys on the server: there is nothing to trust")
        return (pinned.bundles if pinned else []), offered

    def trust(self, email: str, offered: list[PublicBundle]) -> None:
        """Pin exactly the keys the user was shown, not whatever the server holds by now.
        Keys marked verified are replaced only through `verification` and `mark_verified`."""
        self.pins.trust(email, offered)

    def verification(self, email: str) -> Verification:
        """The verification code of this account and `email`, over the keys the server offers
        for `email` (pinned now if they are seen for the first time) and this account's
        pinned keys. Marks nothing verified: see `mark_verified`."""
        email = email.strip().lower()
        _path_part(email)
        before = self.pins.get(email)
        offered = self.fetch_keys(email)
        if not offered:
            raise TrustError(f"{email} has no keys yet: ask them to run `pli keys init`")
        if before is None:
            self.pins.check(email, offered, log_size=self._log_size())
        mine = offered if email == self.email else self.pinned_keys(self.email)
        device = self.public_bundle()
        if not any(b.same_keys(device) for b in mine):
            raise TrustError(
                "the server does not list this device's keys for your account",
                hint="check `pli keys show` here against the server (a substituted account?)",
            )
        return Verification(
            email=email,
            code=vc.verification_code(self.email, mine, email, offered),
            theirs=offered,
            mine=mine,
            pinned=before.bundles if before else [],
            was_verified=bool(before and before.verified),
            first_use=before is None,
        )

    def mark_verified(self, verification: Verification, *, code: str | None = None) -> None:
        """Mark the keys `verification` covers as verified (replacing the pinned ones). With
        `code` (what the other person read out), only if it is the same code; else TrustError
        and nothing changes."""
        if code is not None and not vc.codes_match(verification.code, code):
            raise TrustError(
                f"the code does not match the one computed here: {verification.email}'s keys "
                "are not marked verified",
                hint="check you both ran `pli keys verify` for each other; if the codes still "
                "differ, the server may be showing each of you other keys: send nothing until "
                "they match",
            )
        self.pins.verify(verification.email, verification.theirs)

    def pinned_accounts(self) -> list[Pinned]:
        """Every account whose keys this device pinned, with whether they are verified."""
        return self.pins.all()

    # --- sending ------------------------------------------------------------------------------

    def send(
        self,
        paths: Sequence[Path],
        to: Sequence[str],
        *,
        expires: str | None = None,
        message: str = "",
        progress: Progress | None = None,
        without: Sequence[str] = (),
    ) -> str:
        """Encrypt and upload to accounts and groups (`group:org/group`: every member but
        `without`); an interrupted send resumes when run again with the same arguments on the
        same, unchanged files."""
        files = [readable_file(p) for p in paths]
        if not to:
            raise UsageError("name at least one recipient with --to")
        named = [t.strip().lower() for t in to]
        direct = [t for t in named if not t.startswith("group:")]
        everyone = {email: self.pinned_keys(email) for email in direct}
        skipped = {w.strip().lower() for w in without}
        reached = [
            self._group_recipients(t, everyone, skipped) for t in named if t.startswith("group:")
        ]
        members = {email for _name, _kept, all_members in reached for email in all_members}
        if skipped - members:
            raise UsageError(
                f"{', '.join(sorted(skipped - members))}: not a member of any group sent to",
                hint="--without leaves out members of the groups named with --to",
            )
        through = {name: kept for name, kept, _all in reached}
        if not everyone:
            raise UsageError("nobody is left to send to")
        own, mine = self.own_keys()
        recipients = [b for bundles in everyone.values() for b in bundles]
        keys = _unique([Recipient.parse(b.age) for b in recipients + own])
        job = SendState.for_send(self.home, self._send_facts(files, keys, expires, message))
        body = {
            "recipients": sorted(set(direct)),
            "groups": [{"name": n, "members": m} for n, m in through.items()],
            "files": len(files),
            "expires_in": expires,
        }
        transfer = self.resumed_transfer(job, files) or self.new_transfer(
            job, "/api/v1/transfers", body, expires
        )

        def manifest(entries: list[mf.FileEntry]) -> mf.Manifest:
            return mf.Manifest(
                transfer=transfer["id"],
                sender=mf.key_entry(own[0]),
                recipients=[mf.key_entry(b) for b in recipients + mine],
                files=entries,
                created=transfer["created_at"],
                expires=transfer["expires_at"],
                message=message,
            )

        self.deliver(job, transfer, files, keys, manifest, progress)
        return str(transfer["id"])

    def reshare(
        self,
        transfer_id: str,
        to: Sequence[str],
        *,
        expires: str | None = None,
        message: str | None = None,
        progress: Progress | None = None,
        without: Sequence[str] = (),
    ) -> str:
        """Send the files of a transfer this account can read to other recipients (a member
        added to a group after it was sent, say): downloaded, checked and decrypted here into a
        private folder, encrypted again to the new recipients, and removed. The new transfer's
        id."""
        with tempfile.TemporaryDirectory(prefix="reshare-", dir=self.home.private_dir()) as tmp:
            received = self.receive(transfer_id, Path(tmp), progress=progress)
            note = (
                message
                if message is not None
                else (f"Re-shared from transfer {transfer_id}, sent by {received.sender}.")
            )
            return self.send(
                received.files,
                to,
                expires=expires,
                message=note,
                progress=progress,
                without=without,
            )

    def own_keys(self) -> tuple[list[PublicBundle], list[PublicBundle]]:
        """(own, others): this device's bundle first then the account's other devices, and
        those other devices alone."""
        me = self.identity
        mine = [b for b in self.pinned_keys(self.email) if b.device != me.device]
        return [me.public_bundle(), *mine], mine

    def deliver(
        self,
        job: SendState,
        transfer: dict[str, Any],
        files: list[Path],
        keys: list[Recipient],
        manifest: Callable[[list[mf.FileEntry]], mf.Manifest],
        progress: Progress | None,
    ) -> None:
        """Encrypt and upload every file of a created transfer, then seal its manifest. An
        interruption keeps the state for the same command to resume; a failure abandons it."""
        try:
            entries = [
                self._send_file(job, i, path, keys, progress or NoProgress())
                for i, path in enumerate(files)
            ]
            sealed = mf.seal(self.identity, manifest(entries), keys)
            body = {"manifest": base64.b64encode(sealed).decode("ascii")}
            self.api.request("POST", f"/api/v1/transfers/{transfer['id']}/seal", json=body)
        except (TransportError, KeyboardInterrupt):
            raise  # the state stays: the same command resumes
        except BaseException:
            self._abandon(transfer["id"])
            job.clear()
            raise
        job.clear()

    def _send_facts(
        self, files: list[Path], keys: list[Recipient], expires: str | None, message: str
    ) -> list[object]:
        sources = []
        for path in files:
            info = path.stat()
            sources.append([str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino])
        recipients = sorted(str(k) for k in keys)
        return [self.config["server"], self.email, recipients, expires, message, sources]

    def resumed_transfer(self, job: SendState, files: list[Path]) -> dict[str, Any] | None:
        if not job.load():
            return None
        try:
            transfer = self.api.request("GET", f"/api/v1/transfers/{_path_part(job.data['id'])}")
        except (NotFoundError, GoneError, UsageError, KeyError):
            transfer = None
        slots = [f["id"] for f in job.data.get("files", [])]
        if (
            not isinstance(transfer, dict)
            or transfer.get("state") != "uploading"
            or [f["id"] for f in transfer["files"]] != slots
            or len(slots) != len(files)
        ):
            job.clear()
            return None
        self.notices.append(f"resuming the interrupted send of transfer {transfer['id']}")
        return transfer

    def new_transfer(
        self,
        job: SendState,
        path: str,
        body: dict[str, Any],
        expires: str | None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create what `path` creates (a transfer, or a link holding one) and remember it in
        `job`; the answer, whose "transfer" (or itself) is the transfer."""
        answer: dict[str, Any] = self.api.request("POST", path, json=body)
        transfer: dict[str, Any] = answer.get("transfer", answer)
        if expires is not None:
            try:
                _check_expiry(transfer["expires_at"], parse_duration(expires))
            except BaseException:
                self._abandon(transfer["id"])
                raise
        job.data = {"id": transfer["id"], "files": [{"id": f["id"]} for f in transfer["files"]]}
        job.data.update(extra or {})
        job.save()
        return answer

    def _abandon(self, transfer_id: str) -> None:
        # Best effort: the server's purge removes an unsealed transfer at expiry anyway.
        with contextlib.suppress(PliError):
            self.api.request("DELETE", f"/api/v1/transfers/{transfer_id}")

    def _send_file(
        self, job: SendState, index: int, path: Path, keys: list[Recipient], progress: Progress
    ) -> mf.FileEntry:
        slot: dict[str, Any] = job.data["files"][index]
        if slot.get("entry"):
            return mf.FileEntry(**slot["entry"])
        size = path.stat().st_size
        for _attempt in range(2):
            encryptor, uploader = self._upload_of(job, index, slot, keys, size)
            length = encryptor.ciphertext_size(size)
            progress.start(path.name, length)
            digests = Digests()
            sent = SentRecord(job.digests(index), lambda digest: job.record(index, digest))

            parts = functools.partial(encrypted_parts, path, size, encryptor, digests, sent.check)
            try:
                send_file(uploader, length, parts, progress.advance)
                break
            except SourceChangedError as exc:
                self.notices.append(f"{path.name}: {exc.message}")
                uploader.terminate()
                slot.pop("upload", None)
                job.forget_digests(index)
        else:
            raise UsageError(f"{path} keeps changing while it is being sent")
        entry = mf.FileEntry(
            id=slot["id"],
            name=path.name,
            size=size,
            ciphertext_size=length,
            ciphertext_sha256=digests.cipher,
        )
        slot["entry"] = dataclasses.asdict(entry)
        job.save()
        return entry

    def _upload_of(
        self, job: SendState, index: int, slot: dict[str, Any], keys: list[Recipient], size: int
    ) -> tuple[Encryptor, Uploader]:
        """The interrupted upload of this file if it can go on, else a new one."""
        me = self.identity
        if slot.get("upload"):
            uploader = Uploader(self.api, slot["upload"], upload_retry_seconds())
            try:
                prefix, secret = base64.b64decode(slot["prefix"]), base64.b64decode(slot["secret"])
                return Encryptor.resume(prefix, secret, [me.age_identity]), uploader
            except (CryptoError, ValueError, KeyError):
                uploader.terminate()
        encryptor = Encryptor.to_recipients(keys)
        length = encryptor.ciphertext_size(size)
        location = Uploader.create(self.api, job.data["id"], slot["id"], length)
        slot["upload"] = location
        slot["prefix"] = base64.b64encode(encryptor.prefix).decode("ascii")
        secret = encryptor.export_secret(me.age_identity.recipient)
        slot["secret"] = base64.b64encode(secret).decode("ascii")
        job.forget_digests(index)
        job.save()
        return encryptor, Uploader(self.api, location, upload_retry_seconds())

    def revoke(self, transfer_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/transfers/{_path_part(transfer_id)}")

    # --- share links and file requests ---------------------------------------------------------

    def create_link(
        self,
        paths: Sequence[Path],
        *,
        expires: str | None = None,
        max_downloads: int | None = None,
        passphrase: str | None = None,
        work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR,
        progress: Progress | None = None,
    ) -> CreatedLink:
        """Encrypt files to a key made for this link alone and upload them; the URL returned
        holds that key after "#" (wrapped under `passphrase` when given). An interrupted
        creation resumes when run again with the same arguments on the same files."""
        files = [readable_file(p) for p in paths]
        if not files:
            raise UsageError("name at least one file to share")
        if passphrase is not None and not passphrase:
            raise UsageError("the link passphrase must not be empty")
        me = self.identity
        own, mine = self.own_keys()
        own_keys = _unique([Recipient.parse(b.age) for b in own])
        facts = ["link", max_downloads, *self._send_facts(files, own_keys, expires, "")]
        job = SendState.for_send(self.home, facts)
        transfer = self.resumed_transfer(job, files)
        if transfer is not None:
            link = lk.kept_link(base64.b64decode(job.data["link"]), me)
        else:
            link = lk.new_link()
            body = {"files": len(files), "expires_in": expires, "max_downloads": max_downloads}
            kept = {"link": base64.b64encode(lk.keep_link(link, me)).decode("ascii")}
            answer = self.new_transfer(job, "/api/v1/links", body, expires, extra=kept)
            transfer = answer["transfer"]
            job.data["url"] = answer["url"]
            job.save()
        url = str(job.data["url"])
        keys = _unique([link.recipient, *own_keys])

        def manifest(entries: list[mf.FileEntry]) -> mf.Manifest:
            return mf.Manifest(
                transfer=transfer["id"],
                sender=mf.key_entry(own[0]),
                recipients=[lk.link_recipient_entry(link.recipient)]
                + [mf.key_entry(b) for b in mine],
                files=entries,
                created=transfer["created_at"],
                expires=transfer["expires_at"],
                message="",
            )

        self.deliver(job, transfer, files, keys, manifest, progress)
        fragment = lk.link_fragment(link, passphrase, work_factor=work_factor)
        return CreatedLink(str(transfer["id"]), f"{url}#{fragment}", str(transfer["expires_at"]))

    def links(self, limit: int = 100) -> list[LinkInfo]:
        """This account's links, newest first, with the downloads used and left."""
        answer = self.api.request("GET", "/api/v1/links", params={"limit": limit})
        try:
            return [_link_info(item) for item in _items(answer)]
        except (KeyError, TypeError) as exc:
            raise TransportError("the server sent a malformed list of links") from exc

    def revoke_link(self, link_id: str) -> None:
        """End a link at once; the server deletes its files."""
        self.api.request("DELETE", f"/api/v1/links/{_path_part(link_id)}")

    def create_request(
        self,
        *,
        title: str = "",
        expires: str | None = None,
        max_files: int = 10,
        max_size: int | None = None,
    ) -> CreatedRequest:
        """A file request: a URL through which people without an account send files to this
        account, encrypted to a key made for the request and vouched for by its secret."""
        me = self.identity
        own, _ = self.own_keys()
        body = {"expires_in": expires, "max_files": max_files, "max_bytes": max_size}
        made = _created_request(self.api.request("POST", "/api/v1/requests", json=body))
        if expires is not None:
            _check_expiry(made.expires_at, parse_duration(expires))
        keys = lk.RequestKeys.generate()
        recipients = _unique([Recipient.parse(b.age) for b in own])
        sealed = {
            "document": lk.seal_document(me, made.id, title, keys),
            "sealed_key": lk.seal_request_key(me, made.id, title, keys, recipients),
        }
        encoded = {k: base64.b64encode(v).decode("ascii") for k, v in sealed.items()}
        # What senders show to read the request and answer it; the server keeps its hash.
        encoded["sender_token"] = keys.fragment.sender_token
        self.api.request("POST", f"/api/v1/requests/{made.id}/seal", json=encoded)
        return dataclasses.replace(made, url=f"{made.url}#{keys.fragment}")

    def requests(self, limit: int = 100) -> list[RequestInfo]:
        """This account's file requests, newest first; with their titles and whole URLs when
        the keys are unlocked."""
        answer = self.api.request("GET", "/api/v1/requests", params={"limit": limit})
        try:
            return [self._request_info(item) for item in _items(answer)]
        except (KeyError, TypeError) as exc:
            raise TransportError("the server sent a malformed list of requests") from exc

    def _request_info(self, item: Any) -> RequestInfo:
        """A listed request; with its title and whole URL when its key opens."""
        info = _fields(RequestInfo, item, title=None)
        if self._identity is None or not item.get("sealed_key"):
            return info
        try:
            keys, title = self._open_request_key(info.id, item["sealed_key"])
        except PliError as exc:
            self.notices.append(f"request {info.id}: {exc.message}")
            return info
        return dataclasses.replace(info, url=f"{info.url}#{keys.fragment}", title=title)

    def close_request(self, request_id: str) -> None:
        """Stop accepting files; the answers received stay in the inbox."""
        self.api.request("POST", f"/api/v1/requests/{_path_part(request_id)}/close")

    def _open_request_key(self, request_id: str, sealed: Any) -> tuple[lk.RequestKeys, str]:
        try:
            raw = base64.b64decode(sealed, validate=True)
        except (ValueError, TypeError) as exc:
            raise IntegrityError("the server sent a malformed request key") from exc
        own, _ = self.own_keys()
        return lk.open_request_key(raw, self.identity, request_id, own)

    def _request_keys(self, request_id: str) -> lk.RequestKeys:
        if request_id not in self._request_cache:
            answer = self.api.request("GET", f"/api/v1/requests/{_path_part(request_id)}")
            if not isinstance(answer, dict) or answer.get("id") != request_id:
                raise IntegrityError("the server answered with another request")
            self._request_cache[request_id] = self._open_request_key(
                request_id, answer.get("sealed_key") or ""
            )[0]
        return self._request_cache[request_id]

    def _verified_answer(self, transfer: dict[str, Any]) -> tuple[lk.Answer, lk.RequestKeys]:
        """Decrypt an answer to one of our requests and check it was made with its link."""
        request_id = transfer.get("request")
        if not isinstance(request_id, str) or not transfer.get("manifest"):
            raise IntegrityError("this answer has no request or no manifest")
        keys = self._request_keys(request_id)
        try:
            sealed = base64.b64decode(transfer["manifest"], validate=True)
        except (ValueError, TypeError) as exc:
            raise IntegrityError("the server sent a malformed manifest") from exc
        answer = lk.open_answer(sealed, keys, request_id, transfer["id"])
        if listed_files(transfer) != [(f.id, f.ciphertext_size) for f in answer.files]:
            raise IntegrityError("the server's file list does not match the answer")
        return answer, keys

    # --- receiving ----------------------------------------------------------------------------

    def inbox(self, limit: int = 50, cursor: str | None = None) -> TransferPage:
        """The newest `limit` transfers sent to this account (1 to 500), or those after
        `cursor`, the `next_cursor` of a previous page."""
        return self._listing("inbox", limit, cursor)

    def outbox(self, limit: int = 50, cursor: str | None = None) -> TransferPage:
        """As `inbox`, for the transfers this account sent."""
        return self._listing("outbox", limit, cursor)

    def iter_inbox(
        self, cursor: str | None = None, *, page_size: int = LISTING_PAGE
    ) -> Iterator[TransferInfo]:
        """Every transfer of the inbox (after `cursor`), newest first, a page at a time."""
        return self._walk("inbox", cursor, page_size)

    def iter_outbox(
        self, cursor: str | None = None, *, page_size: int = LISTING_PAGE
    ) -> Iterator[TransferInfo]:
        return self._walk("outbox", cursor, page_size)

    def _walk(self, box: str, cursor: str | None, page_size: int) -> Iterator[TransferInfo]:
        seen: set[str] = set()
        while True:
            page = self._listing(box, page_size, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            if page.next_cursor in seen:
                raise TransportError("the server's listing goes round in circles")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    def _listing(self, box: str, limit: int, cursor: str | None) -> TransferPage:
        params: dict[str, str | int] = {"box": box, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = self.api.request("GET", "/api/v1/transfers", params=params)
        try:
            items, following = answer["items"], answer["next_cursor"]
        except (KeyError, TypeError) as exc:
            raise TransportError("the server sent a malformed listing") from exc
        if not isinstance(items, list) or not isinstance(following, str | None):
            raise TransportError("the server sent a malformed listing")
        return TransferPage([self._info(t) for t in items], following)

    def _info(self, transfer: Any) -> TransferInfo:
        base = _stated(transfer)
        if transfer.get("kind") == "answer":
            return self._answer_info(base, transfer)
        try:
            manifest, verified = self._verified_manifest(transfer)
        except PliError as exc:
            return TransferInfo(**base, files=[], message="", verified=False, problem=exc.message)
        files = [FileInfo(names.safe_name(f.name), f.size) for f in manifest.files]
        # Once verified, what the sender signed replaces what the server states.
        signed_to = {r["email"] for r in manifest.recipients} - {manifest.sender["email"]}
        base["recipients"] = sorted(signed_to) or [manifest.sender["email"]]
        base["expires_at"] = manifest.expires
        return TransferInfo(
            **base,
            files=files,
            message=manifest.message,
            verified=True,
            sender_key_verified=verified,
            recipient_keys_verified=self._recipients_verified(manifest, base["recipients"]),
        )

    def _recipients_verified(self, manifest: mf.Manifest, recipients: list[str]) -> dict[str, bool]:
        """For each recipient other than this account: whether every key of theirs the
        manifest names is pinned, and the pin marked verified."""
        result = {}
        for email in recipients:
            if email == self.email:
                continue
            pinned = self.pins.get(email)
            pinned_keys = (
                {(b.device, b.age, b.ed25519) for b in pinned.bundles} if pinned else set()
            )
            used = {
                (r["device"], r["age"], r["ed25519"])
                for r in manifest.recipients
                if r["email"] == email
            }
            result[email] = bool(pinned and pinned.verified and used <= pinned_keys)
        return result

    def _answer_info(self, base: dict[str, Any], transfer: dict[str, Any]) -> TransferInfo:
        stated = transfer.get("request")
        request = stated if isinstance(stated, str) else None
        try:
            answer, _ = self._verified_answer(transfer)
        except PliError as exc:
            return TransferInfo(
                **base,
                files=[],
                message="",
                verified=False,
                problem=exc.message,
                kind="answer",
                request=request,
            )
        files = [FileInfo(names.safe_name(f.name), f.size) for f in answer.files]
        return TransferInfo(
            **base,
            files=files,
            message=answer.message,
            verified=True,
            kind="answer",
            claimed_name=answer.name,
            request=request,
        )

    def _verified_manifest(self, transfer: dict[str, Any]) -> tuple[mf.Manifest, bool]:
        """Decrypt and check a transfer's manifest against everything the server claims."""
        if not transfer.get("manifest"):
            raise IntegrityError("this transfer has no manifest")
        me = self.identity
        try:
            sealed = base64.b64decode(transfer["manifest"], validate=True)
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise IntegrityError("the server sent a malformed manifest") from exc
        manifest, signed = mf.open_sealed(sealed, me.age_identity)
        if manifest.transfer != transfer["id"]:
            raise IntegrityError(
                "the manifest belongs to another transfer (replayed by the server?)"
            )
        if manifest.sender["email"] != transfer.get("sender"):
            raise IntegrityError("the manifest was signed by someone other than the stated sender")
        sender = self._sender_bundle(manifest.sender)
        mf.verify_signature(signed, sender)
        mine = str(me.age_identity.recipient)
        if mine not in [r["age"] for r in manifest.recipients] + [manifest.sender["age"]]:
            raise IntegrityError("the manifest does not name this device as a recipient")
        if listed_files(transfer) != [(f.id, f.ciphertext_size) for f in manifest.files]:
            raise IntegrityError("the server's file list does not match the signed manifest")
        if manifest.sender["email"] == self.email and manifest.sender["device"] == me.device:
            return manifest, True  # signed by this very device
        pinned = self.pins.get(manifest.sender["email"])
        return manifest, bool(pinned and pinned.verified)

    def _sender_bundle(self, claimed: dict[str, str]) -> PublicBundle:
        if claimed["email"] == self.email and claimed["device"] == self.identity.device:
            return self.identity.public_bundle()
        for bundle in self.pinned_keys(claimed["email"]):
            if (bundle.device, bundle.age, bundle.ed25519) == (
                claimed["device"],
                claimed["age"],
                claimed["ed25519"],
            ):
                return bundle
        raise TrustError(f"the manifest was signed with a key {claimed['email']} does not have")

    def _checked_contents(
        self, transfer: dict[str, Any]
    ) -> tuple[list[mf.FileEntry], age.X25519Identity, str, bool]:
        """The signed file entries of a transfer, the identity that decrypts its files, the
        sender (empty for an answer) and whether the sender's keys are verified."""
        if transfer.get("kind") == "answer":
            answer, keys = self._verified_answer(transfer)
            return answer.files, keys.identity, "", False
        manifest, verified = self._verified_manifest(transfer)
        # The signed expiry is the sender's word: a server that keeps serving past it is
        # not obeyed.
        if _parse_time(manifest.expires) <= datetime.now(UTC):
            raise GoneError("this transfer has expired")
        return manifest.files, self.identity.age_identity, manifest.sender["email"], verified

    def get(
        self,
        transfer_id: str,
        out_dir: Path,
        *,
        raw: bool = False,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Download, check and decrypt a transfer; the paths saved (see `receive`)."""
        return self.receive(transfer_id, out_dir, raw=raw, progress=progress).files

    def receive(
        self,
        transfer_id: str,
        out_dir: Path,
        *,
        raw: bool = False,
        progress: Progress | None = None,
    ) -> Received:
        """Download, check and decrypt a transfer: the paths saved, and from whom."""
        transfer = self.api.request("GET", f"/api/v1/transfers/{_path_part(transfer_id)}")
        # The manifest is checked against the id the server states; that id must be the one
        # asked for, or the server could answer with another (older) transfer.
        if not isinstance(transfer, dict) or transfer.get("id") != transfer_id:
            raise IntegrityError("the server answered with another transfer (replayed?)")
        mine = transfer.get("sender") != self.email
        try:
            entries, identity, sender, verified = self._checked_contents(transfer)
            files = f"/api/v1/transfers/{transfer_id}/files"
            identities = None if raw else [identity]
            paths = receive_all(
                Fetch(self.api, files, transfer_id, out_dir, identities, raw),
                entries,
                progress or NoProgress(),
                self.notices,
            )
        except (CryptoError, TrustError) as exc:
            if mine:
                self._tell(transfer_id, "failures", {"reason": _failure_reason(exc)})
            raise
        if mine and not raw:
            self._tell(transfer_id, "receipt", None)
        kind = "answer" if transfer.get("kind") == "answer" else "direct"
        return Received(transfer_id, paths, sender, verified, kind)

    def _tell(self, transfer_id: str, what: str, body: dict[str, str] | None) -> None:
        """Tell the server a download of ours was received (a receipt for the sender, and
        what lets delete-after-download purge it) or failed its checks (counted toward the
        account's alerts). The download's outcome does not depend on it."""
        try:
            self.api.request("POST", f"/api/v1/transfers/{transfer_id}/{what}", json=body)
        except PliError as exc:
            self.notices.append(f"the server was not told of this download: {exc.message}")


CLOCK_SKEW = timedelta(minutes=5)


def _failure_reason(exc: PliError) -> str:
    if isinstance(exc, SignatureError | TrustError):
        return "signature"
    if isinstance(exc, IntegrityError):
        return "digest"
    return "decrypt"


def _check_expiry(assigned: str, requested: timedelta) -> None:
    """The sender signs the expiry the server assigned: it must be the one asked for."""
    if _parse_time(assigned) > datetime.now(UTC) + requested + CLOCK_SKEW:
        raise IntegrityError("the server set a later expiry than the one asked for")


def _parse_time(text: str) -> datetime:
    return parse_time(text, "the manifest")


def _unique(keys: list[Recipient]) -> list[Recipient]:
    return list(dict.fromkeys(keys))


def _path_part(text: str) -> str:
    if not text or "/" in text or text in (".", "..") or any(c.isspace() for c in text):
        raise UsageError(f"{text!r} is not valid here")
    return text


_STATED = {"id": str, "sender": str, "created_at": str, "expires_at": str}


def _stated(transfer: Any) -> dict[str, Any]:
    """What the server states of a listed transfer, each of the type it must have."""
    if not isinstance(transfer, dict):
        raise TransportError("the server sent a malformed listing")
    base = {name: transfer.get(name) for name in [*_STATED, "recipients"]}
    recipients = base["recipients"]
    if not (
        all(isinstance(base[name], kind) for name, kind in _STATED.items())
        and isinstance(recipients, list)
        and all(isinstance(r, str) for r in recipients)
    ):
        raise TransportError("the server sent a malformed listing")
    base["sender_service"] = transfer.get("sender_service") is True
    return base


def _items(answer: Any) -> list[Any]:
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise TypeError("no list of items")
    return items


def _link_info(item: Any) -> LinkInfo:
    transfer = item.get("transfer") if isinstance(item, dict) else None
    files = transfer.get("files") if isinstance(transfer, dict) else None
    if not isinstance(files, list):
        raise TypeError("no list of files")
    return _fields(LinkInfo, item, files=len(files))


def _created_request(answer: Any) -> CreatedRequest:
    try:
        made = _fields(CreatedRequest, answer)
        _path_part(made.id)
    except (KeyError, TypeError, UsageError) as exc:
        raise TransportError("the server sent a malformed request") from exc
    return made


_Info = TypeVar("_Info", LinkInfo, RequestInfo, CreatedRequest)


def _fields(cls: type[_Info], item: Any, **given: Any) -> _Info:
    """An instance of the dataclass `cls` from the like-named keys of a server's answer (or
    `given`), each of the type its field declares; else a KeyError or a TypeError."""
    if not isinstance(item, dict):
        raise TypeError("not an object")
    hints = typing.get_type_hints(cls)
    values = {name: given[name] if name in given else item[name] for name in hints}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, hints[name]):
            raise TypeError(f"{name} is not of the expected type")
    return cls(**values)
