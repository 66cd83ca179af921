"""`pli.Client`: everything the user verbs do. The CLI is a thin layer over it.

client = Client()                      # state under PLI_HOME
client.login("https://pli.example.org", "alice@lab.example", password)
client.unlock(passphrase)              # opens this device's private keys
transfer_id = client.send([Path("results.csv")], ["bob@ars.example"])
client.get(transfer_id, Path("."))     # on Bob's machine
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from pli.client import names
from pli.client.api import Api, check_url
from pli.client.pins import PinStore
from pli.client.state import Home
from pli.crypto import manifest as mf
from pli.crypto import passphrase as phrases
from pli.crypto.age import DEFAULT_SCRYPT_WORK_FACTOR, Decryptor, Encryptor, Recipient
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.identity import DeviceIdentity
from pli.durations import parse_duration
from pli.errors import (
    ConfigError,
    CryptoError,
    DecryptError,
    GoneError,
    IntegrityError,
    PliError,
    SignatureError,
    TrustError,
    UsageError,
)

CONFIG, SESSION, IDENTITY, DEVICE = "config.json", "session", "identity.age", "device.json"
READ_BATCH = 1 << 20


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class _NoProgress:
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


@dataclass
class Client:
    home_path: Path | None = None
    token: str | None = None
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Home(self.home_path)
        self.pins = PinStore(self.home)
        self._api: Api | None = None
        self._identity: DeviceIdentity | None = None

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
    ) -> str:
        """Log in; raises SecondFactorRequiredError when the account needs `otp` too."""
        url = check_url(server, allow_http=allow_http)
        api = Api(url)
        body = {"email": email, "password": password, "otp": otp}
        try:
            answer = api.request("POST", "/api/v1/auth/login", json=body)
        finally:
            api.close()
        previous = self.home.read_json(CONFIG)
        if isinstance(previous, dict) and previous.get("email") not in (None, answer["email"]):
            raise ConfigError(
                f"this PLI_HOME belongs to {previous['email']}",
                hint="use another PLI_HOME for another account",
            )
        self.home.write_json(CONFIG, {"server": url, "email": answer["email"]})
        self.home.write(SESSION, answer["token"].encode())
        self._api = None
        return str(answer["email"])

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
    ) -> PublicBundle:
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
        self.api.request("POST", "/api/v1/devices", json=body)
        self.home.write(IDENTITY, sealed)
        self.home.write_json(DEVICE, bundle.signed)
        self._identity = identity
        return bundle

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
        """The keys the server claims `email` has, each self-signature checked."""
        answer = self.api.request("GET", f"/api/v1/users/{_path_part(email)}/devices")
        try:
            bundles = [parse_bundle(b) for b in answer["devices"]]
        except (CryptoError, KeyError, TypeError) as exc:
            raise SignatureError(f"the server sent invalid keys for {email}") from exc
        # Against the address asked for, not the one the server's answer states.
        if any(b.email != email for b in bundles):
            raise SignatureError(f"the server sent keys of another account for {email}")
        return bundles

    def pinned_keys(self, email: str) -> list[PublicBundle]:
        """Keys of `email`, checked against (or pinned as) the ones seen before."""
        pinned = self.pins.check(email, self.fetch_keys(email))
        if pinned.first_use and email != self.email:
            prints = ", ".join(b.fingerprint for b in pinned.bundles)
            self.notices.append(f"first use of {email}'s keys (not yet verified): {prints}")
        return pinned.bundles

    def pending_keys(self, email: str) -> tuple[list[PublicBundle], list[PublicBundle]]:
        """(pinned, offered): the keys pinned for `email`, and those the server now has."""
        pinned = self.pins.get(email)
        offered = self.fetch_keys(email)
        if not offered:
            raise TrustError(f"{email} has no keys on the server: there is nothing to trust")
        return (pinned.bundles if pinned else []), offered

    def trust(self, email: str, offered: list[PublicBundle]) -> None:
        """Pin exactly the keys the user was shown, not whatever the server holds by now."""
        self.pins.trust(email, offered)

    # --- sending ------------------------------------------------------------------------------

    def send(
        self,
        paths: Sequence[Path],
        to: Sequence[str],
        *,
        expires: str | None = None,
        message: str = "",
        progress: Progress | None = None,
    ) -> str:
        files = [_regular_file(p) for p in paths]
        if not to:
            raise UsageError("name at least one recipient with --to")
        me = self.identity
        everyone = {email.strip().lower(): self.pinned_keys(email.strip().lower()) for email in to}
        mine = [b for b in self.pinned_keys(self.email) if b.device != me.device]
        own = [me.public_bundle(), *mine]
        recipients = [b for bundles in everyone.values() for b in bundles]
        keys = _unique([Recipient.parse(b.age) for b in recipients + own])
        body = {"recipients": sorted(everyone), "files": len(files), "expires_in": expires}
        transfer = self.api.request("POST", "/api/v1/transfers", json=body)
        try:
            if expires is not None:
                _check_expiry(transfer["expires_at"], parse_duration(expires))
            entries = [
                self._upload(transfer["id"], slot["id"], path, keys, progress or _NoProgress())
                for slot, path in zip(transfer["files"], files, strict=True)
            ]
            manifest = mf.Manifest(
                transfer=transfer["id"],
                sender=mf.key_entry(own[0]),
                recipients=[mf.key_entry(b) for b in recipients + mine],
                files=entries,
                created=transfer["created_at"],
                expires=transfer["expires_at"],
                message=message,
            )
            sealed = base64.b64encode(mf.seal(me, manifest, keys)).decode("ascii")
            self.api.request(
                "POST", f"/api/v1/transfers/{transfer['id']}/seal", json={"manifest": sealed}
            )
        except BaseException:
            self._abandon(transfer["id"])
            raise
        return str(transfer["id"])

    def _abandon(self, transfer_id: str) -> None:
        # Best effort: the server's purge removes an unsealed transfer at expiry anyway.
        with contextlib.suppress(PliError):
            self.api.request("DELETE", f"/api/v1/transfers/{transfer_id}")

    def _upload(
        self, transfer_id: str, file_id: str, path: Path, keys: list[Recipient], progress: Progress
    ) -> mf.FileEntry:
        size = path.stat().st_size
        encryptor = Encryptor.to_recipients(keys)
        length = encryptor.ciphertext_size(size)
        plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
        progress.start(path.name, size)

        def body() -> Iterator[bytes]:
            read = 0
            with path.open("rb") as handle:
                while chunk := handle.read(READ_BATCH):
                    read += len(chunk)
                    plain_hash.update(chunk)
                    out = encryptor.update(chunk)
                    cipher_hash.update(out)
                    progress.advance(len(chunk))
                    yield out
            if read != size:
                raise UsageError(f"{path} changed while it was being sent")
            out = encryptor.finish()
            cipher_hash.update(out)
            yield out

        answer = self.api.upload(f"/api/v1/transfers/{transfer_id}/files/{file_id}", body(), length)
        if answer["sha256"] != cipher_hash.hexdigest() or answer["size"] != length:
            raise IntegrityError("the server stored something other than what was sent")
        return mf.FileEntry(
            id=file_id,
            name=path.name,
            size=size,
            sha256=plain_hash.hexdigest(),
            ciphertext_size=length,
            ciphertext_sha256=cipher_hash.hexdigest(),
        )

    def revoke(self, transfer_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/transfers/{_path_part(transfer_id)}")

    # --- receiving ----------------------------------------------------------------------------

    def inbox(self, limit: int = 50) -> list[TransferInfo]:
        return self._listing("inbox", limit)

    def outbox(self, limit: int = 50) -> list[TransferInfo]:
        return self._listing("outbox", limit)

    def _listing(self, box: str, limit: int) -> list[TransferInfo]:
        answer = self.api.request("GET", "/api/v1/transfers", params={"box": box, "limit": limit})
        return [self._info(t) for t in answer]

    def _info(self, transfer: dict[str, Any]) -> TransferInfo:
        base = {
            "id": transfer["id"],
            "sender": transfer["sender"],
            "recipients": transfer["recipients"],
            "created_at": transfer["created_at"],
            "expires_at": transfer["expires_at"],
        }
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
        manifest, signed = mf.open_sealed(sealed, me)
        if manifest.transfer != transfer["id"]:
            raise IntegrityError(
                "the manifest belongs to another transfer (replayed by the server?)"
            )
        if manifest.sender["email"] != transfer["sender"]:
            raise IntegrityError("the manifest was signed by someone other than the stated sender")
        sender = self._sender_bundle(manifest.sender)
        mf.verify_signature(signed, sender)
        mine = str(me.age_identity.recipient)
        if mine not in [r["age"] for r in manifest.recipients] + [manifest.sender["age"]]:
            raise IntegrityError("the manifest does not name this device as a recipient")
        listed = [(f["id"], f["size"]) for f in transfer["files"]]
        if listed != [(f.id, f.ciphertext_size) for f in manifest.files]:
            raise IntegrityError("the server's file list does not match the signed manifest")
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

    def get(
        self,
        transfer_id: str,
        out_dir: Path,
        *,
        raw: bool = False,
        progress: Progress | None = None,
    ) -> list[Path]:
        transfer = self.api.request("GET", f"/api/v1/transfers/{_path_part(transfer_id)}")
        # The manifest is checked against the id the server states; that id must be the one
        # asked for, or the server could answer with another (older) transfer.
        if not isinstance(transfer, dict) or transfer.get("id") != transfer_id:
            raise IntegrityError("the server answered with another transfer (replayed?)")
        manifest, _ = self._verified_manifest(transfer)
        # The signed expiry is the sender's word: a server that keeps serving past it is
        # not obeyed.
        if _parse_time(manifest.expires) <= datetime.now(UTC):
            raise GoneError("this transfer has expired")
        out_dir.mkdir(parents=True, exist_ok=True)
        temps: list[Path] = []
        try:
            for entry in manifest.files:
                temps.append(
                    self._fetch(transfer_id, entry, out_dir, raw, progress or _NoProgress())
                )
            # Nothing is placed until every file has been authenticated.
            return [
                names.place(temp, out_dir, entry.name + (".age" if raw else ""))
                for temp, entry in zip(temps, manifest.files, strict=True)
            ]
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)

    def _fetch(
        self, transfer_id: str, entry: mf.FileEntry, out_dir: Path, raw: bool, progress: Progress
    ) -> Path:
        fd, name = tempfile.mkstemp(dir=out_dir, prefix=".pli-", suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                self._receive(transfer_id, entry, handle, raw, progress)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def _receive(
        self, transfer_id: str, entry: mf.FileEntry, out: BinaryIO, raw: bool, progress: Progress
    ) -> None:
        decryptor = None if raw else Decryptor([self.identity.age_identity])
        cipher_hash, plain_hash = hashlib.sha256(), hashlib.sha256()
        received = written = 0
        progress.start(names.safe_name(entry.name), entry.ciphertext_size)
        path = f"/api/v1/transfers/{transfer_id}/files/{entry.id}"
        with self.api.download(path) as chunks:
            for chunk in chunks:
                received += len(chunk)
                if received > entry.ciphertext_size:
                    raise IntegrityError("the server sent more bytes than the sender signed for")
                cipher_hash.update(chunk)
                plain = chunk if decryptor is None else decryptor.update(chunk)
                plain_hash.update(plain)
                written += out.write(plain)
                progress.advance(len(chunk))
        if decryptor is not None:
            plain = decryptor.finish()
            plain_hash.update(plain)
            written += out.write(plain)
        if cipher_hash.hexdigest() != entry.ciphertext_sha256 or received != entry.ciphertext_size:
            raise IntegrityError("a file does not match the sender's signed manifest")
        if decryptor is not None and (
            plain_hash.hexdigest() != entry.sha256 or written != entry.size
        ):
            raise IntegrityError("a decrypted file does not match the sender's signed manifest")
        out.flush()
        os.fsync(out.fileno())


CLOCK_SKEW = timedelta(minutes=5)


def _check_expiry(assigned: str, requested: timedelta) -> None:
    """The sender signs the expiry the server assigned: it must be the one asked for."""
    if _parse_time(assigned) > datetime.now(UTC) + requested + CLOCK_SKEW:
        raise IntegrityError("the server set a later expiry than the one asked for")


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise IntegrityError("the manifest holds a malformed time") from exc
    if moment.tzinfo is None:
        raise IntegrityError("the manifest holds a time without a zone")
    return moment


def _regular_file(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    return path


def _unique(keys: list[Recipient]) -> list[Recipient]:
    return list(dict.fromkeys(keys))


def _path_part(text: str) -> str:
    if not text or "/" in text or text in (".", "..") or any(c.isspace() for c in text):
        raise UsageError(f"{text!r} is not valid here")
    return text
