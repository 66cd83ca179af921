"""The `pli` command line: a thin layer over pli.Client, plus the server-side verbs.

Errors are rendered here and only here: one line on stderr (with what to do next), or the
problem object with --json; exit 1 for a failure, 2 for a usage error.
"""

from __future__ import annotations

import getpass
import hmac
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from pli.client.sdk import (
    Client,
    CreatedLink,
    CreatedRequest,
    DirectoryEntry,
    GroupMembersChangedError,
    TransferInfo,
    Verification,
)
from pli.crypto.bundle import PublicBundle
from pli.errors import (
    PliError,
    SecondFactorRequiredError,
    SignatureError,
    TamperingError,
    TrustError,
    UsageError,
)
from pli.terminal import printable

app = typer.Typer(
    name="pli",
    help="End-to-end encrypted file exchange for health data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(
    help="This device's keys and your correspondents' keys.", no_args_is_help=True
)
admin_app = typer.Typer(help="Server administration, run on the server host.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
token_app = typer.Typer(help="API tokens for automation.", no_args_is_help=True)
app.add_typer(token_app, name="token")
twofa_app = typer.Typer(help="Second factor (TOTP) for logging in.", no_args_is_help=True)
app.add_typer(twofa_app, name="2fa")
alerts_app = typer.Typer(help="Alerts about unusual use of your account.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
link_app = typer.Typer(
    help="Share links: files for people without an account.", no_args_is_help=True
)
app.add_typer(link_app, name="link")
request_app = typer.Typer(
    help="File requests: files from people without an account.", no_args_is_help=True
)
app.add_typer(request_app, name="request")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
GenerateOpt = Annotated[
    bool, typer.Option("--generate", help="Generate a six-word passphrase and print it once.")
]
WorkFactorOpt = Annotated[
    int,
    typer.Option(envvar="PLI_KDF_WORK_FACTOR", min=10, max=20, help="scrypt work factor (log2)."),
]


def secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from the environment, or typed at a terminal; never from the command line."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"set {env} or run this in a terminal to type it")
    value = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} (again): ") != value:
        raise UsageError("the two entries differ")
    return value


@contextmanager
def client() -> Iterator[Client]:
    c = Client(token=os.environ.get("PLI_TOKEN") or None)
    try:
        yield c
    finally:
        for notice in c.notices:
            err.print(printable(f"note: {notice}"), markup=False)
        c.close()


def unlocked(c: Client) -> Client:
    c.unlock(secret("PLI_PASSPHRASE", "Passphrase for this device's keys"))
    return c


class _Bar:
    """rich progress bars when stderr is a terminal; silent otherwise."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        if not err.is_terminal:
            return
        if self._progress is None:
            self._progress = Progress(
                "{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@contextmanager
def bar() -> Iterator[_Bar]:
    progress = _Bar()
    try:
        yield progress
    finally:
        progress.stop()


# --- server ---------------------------------------------------------------------------------


@app.command()
def serve(
    data: Annotated[Path, typer.Option(help="Data directory (database and blobs).")] = Path(
        "pli-data"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate chain (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The private key of --tls-cert (PEM).")
    ] = None,
) -> None:
    """Run the server."""
    from pli.server.__main__ import arguments  # noqa: PLC0415

    # The server runs in this very process, but without the client's libraries loaded.
    err.file.flush()
    os.execv(  # noqa: S606  (the interpreter running this, with arguments of our own)
        sys.executable,
        [sys.executable, "-m", "pli.server", *arguments(data, host, port, tls_cert, tls_key)],
    )


@admin_app.command("create-user")
def create_user(
    email: str,
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
) -> None:
    """Create an account (password from PLI_PASSWORD or a prompt)."""
    from pli.server.main import create_user as create  # noqa: PLC0415

    password = secret("PLI_PASSWORD", f"Password for {email}", confirm=True)
    created = create(data, email, password, is_admin=admin)
    err.print(f"created {'administrator ' if admin else ''}{created}")


@admin_app.command("disable-user")
def disable_user(
    email: str,
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Disable an account: its sessions end and it can no longer log in or use its tokens."""
    from pli.server.main import set_disabled  # noqa: PLC0415

    err.print(f"disabled {set_disabled(data, email, disabled=True)}")


@admin_app.command("enable-user")
def enable_user(
    email: str,
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Re-enable a disabled account."""
    from pli.server.main import set_disabled  # noqa: PLC0415

    err.print(f"enabled {set_disabled(data, email, disabled=False)}")


ServiceScopeOpt = Annotated[
    list[str], typer.Option("--scope", help="send or receive (repeat for both).")
]
ServiceExpiresOpt = Annotated[
    str, typer.Option(help="The token's lifetime, like 365d (at most 366d).")
]


@admin_app.command("create-service")
def create_service(
    email: str,
    scope: ServiceScopeOpt,
    expires: ServiceExpiresOpt = "365d",
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Create a service account for an unattended job (a nightly export, say) and print its
    API token once. It never logs in; its token can only do what its scopes say."""
    _print_service_token(email, scope, expires, data, create=True)


@admin_app.command("service-token")
def service_token(
    email: str,
    scope: ServiceScopeOpt,
    expires: ServiceExpiresOpt = "365d",
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Print a new API token for an existing service account (to replace one that expires)."""
    _print_service_token(email, scope, expires, data, create=False)


def _print_service_token(
    email: str, scopes: list[str], expires: str, data: Path, *, create: bool
) -> None:
    from pli.server.main import service_token as issue  # noqa: PLC0415

    token, row = issue(data, email, scopes, expires=expires, create=create)
    out.print(token, markup=False)
    made = "created service account" if create else "new token for"
    err.print(
        printable(
            f"{made} {email}: token {row.id} ({row.scopes}) expires "
            f"{row.expires_at:%Y-%m-%dT%H:%M:%SZ}; store it now on the machine that runs the "
            "job (it cannot be shown again), then run `pli login URL --token` there"
        ),
        markup=False,
    )


@admin_app.command("reset-devices")
def reset_devices(
    email: str,
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Recovery for an account that lost every device: remove them all, so that its next
    `pli keys init` makes a first device. Check who asks first: everyone who sends to the
    account will see its keys change and must check the new fingerprint with its owner."""
    from pli.server.main import reset_devices as reset  # noqa: PLC0415

    removed = reset(data, email)
    err.print(
        f"removed {removed} device(s) of {email}: its next `pli keys init` publishes a first "
        "device, which its correspondents see as a key change",
        markup=False,
    )


@admin_app.command("create-org")
def create_org(
    slug: str,
    name: Annotated[str, typer.Option(help="The organisation's full name, for people.")],
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Create an organisation (an agency, a laboratory): the namespace of its groups."""
    from pli.server.main import create_organisation  # noqa: PLC0415

    err.print(f"created organisation {create_organisation(data, slug, name)}", markup=False)


@admin_app.command("create-group")
def create_group(
    name: Annotated[str, typer.Argument(help="ORGANISATION/GROUP, e.g. ars-idf/veille")],
    title: Annotated[str, typer.Option(help="The group's full name, for people.")],
    founder: Annotated[str, typer.Option(help="The account that becomes its first administrator.")],
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Create a group. Its founder, not the server, decides who is in it: their first
    `pli groups add` signs them in as its administrator."""
    from pli.server.main import create_group as create  # noqa: PLC0415

    created = create(data, name, title, founder)
    err.print(
        f"created group {created}: {founder} adds its members with "
        f"`pli groups add {created} EMAIL`",
        markup=False,
    )


# --- policy and alerts ------------------------------------------------------------------------

policy_app = typer.Typer(
    help="The server's policy: limits and switches it enforces.", no_args_is_help=True
)
admin_app.add_typer(policy_app, name="policy")
admin_alerts_app = typer.Typer(help="Alerts about unusual access.", no_args_is_help=True)
admin_app.add_typer(admin_alerts_app, name="alerts")
DataOpt = Annotated[Path, typer.Option(help="The server's data directory.")]


def _print_policy(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        out.print_json(data=rows)
        return
    for row in rows:
        note = "" if row["overridden"] else "  (default)"
        out.print(f"{row['name']} = {row['value']}{note}", markup=False)


@policy_app.command("show")
def policy_show(data: DataOpt = Path("pli-data"), as_json: JsonOpt = False) -> None:
    """Show every setting and its value."""
    from pli.server.main import policy_show as show  # noqa: PLC0415

    _print_policy(show(data), as_json)


@policy_app.command("set")
def policy_set(
    changes: Annotated[
        list[str], typer.Argument(metavar="NAME=VALUE...", help='"default" removes an override.')
    ],
    data: DataOpt = Path("pli-data"),
    as_json: JsonOpt = False,
) -> None:
    """Change settings, all at once or none; each change is recorded in the audit log."""
    from pli.server.main import policy_set as apply  # noqa: PLC0415

    parsed: dict[str, str] = {}
    for change in changes:
        name, equals, value = change.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"write each change as NAME=VALUE, not {change!r}")
        parsed[name.strip()] = value
    _print_policy(apply(data, parsed), as_json)


@admin_alerts_app.command("list")
def admin_alerts_list(data: DataOpt = Path("pli-data"), as_json: JsonOpt = False) -> None:
    """Alerts not cleared yet, oldest first."""
    from pli.server.main import alerts_list  # noqa: PLC0415

    found = alerts_list(data)
    if as_json:
        out.print_json(data=found)
        return
    if not found:
        err.print("no alerts")
    for alert in found:
        suspended = "  downloads suspended" if alert["downloads_suspended"] else ""
        line = f"{alert['raised_at']}  {alert['account']}  {alert['kind']}{suspended}"
        out.print(printable(line), markup=False)


@admin_alerts_app.command("clear")
def admin_alerts_clear(email: str, data: DataOpt = Path("pli-data")) -> None:
    """Clear an account's alerts and lift a suspension of its downloads."""
    from pli.server.main import alerts_clear  # noqa: PLC0415

    count = alerts_clear(data, email)
    err.print(printable(f"cleared {count} alert(s) of {email}; its downloads are allowed"))


# --- audit log ------------------------------------------------------------------------------

audit_app = typer.Typer(
    help="The audit log: verify it, export it (on the server host).", no_args_is_help=True
)
admin_app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
    checkpoints: Annotated[
        Path | None, typer.Option(help="Signed checkpoints to check the log against, one a line.")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="The audit public key pli serve printed; default: the server's own."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the audit log's hash chain, and that it agrees with signed checkpoints."""
    from pli.server.admin import audit  # noqa: PLC0415  (server stack only on the server host)

    report = audit.verify_log(data, checkpoints=checkpoints, key=key)
    if as_json:
        out.print_json(data=report.to_dict())
    elif report.ok:
        out.print(report.summary(), markup=False)
    report.raise_for_problem()


@audit_app.command("export")
def audit_export(
    since: Annotated[str, typer.Option(help="Start of the window (ISO 8601 with a zone).")],
    until: Annotated[str, typer.Option(help="End of the window, excluded.")],
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="A new file (0600), not stdout.")
    ] = None,
) -> None:
    """Export the records of a time window: JSON lines (verifiable) or CSV (for spreadsheets)."""
    from pli.server.admin import audit  # noqa: PLC0415

    count = audit.export_log(
        data, since=since, until=until, fmt=fmt, output=output, stdout=sys.stdout
    )
    if output is not None:
        err.print(f"exported {count} records to {output}", markup=False)


@admin_app.command("exposure")
def exposure(
    since: Annotated[
        str, typer.Option(help="Start of the window: ISO 8601 with a zone, or a date (UTC).")
    ],
    until: Annotated[str, typer.Option(help="End of the window, excluded.")],
    account: Annotated[
        str | None, typer.Option(help="Only this account's transfers and events.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="markdown (a notification draft) or json.")
    ] = "markdown",
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
) -> None:
    """Breach report: what a time window exposed, from the audit log and the metadata."""
    from pli.server.main import exposure as report  # noqa: PLC0415

    sys.stdout.write(report(data, since, until, account=account, fmt=fmt))


# --- retention ------------------------------------------------------------------------------


@admin_app.command("purge")
def admin_purge(
    data: Annotated[Path, typer.Option(help="The server's data directory.")] = Path("pli-data"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Purge now what the server would purge on its own, orphaned blobs included."""
    from pli.server.main import purge  # noqa: PLC0415

    report = purge(data, dry_run=dry_run)
    if as_json:
        out.print_json(data={"dry_run": dry_run, **report.to_dict()})
        return
    for item in report.items:
        out.print(f"{item.id}  {item.reason}  {item.bytes} bytes", markup=False)
    done = "would be deleted" if dry_run else "deleted"
    out.print(f"total: {len(report.items)} item(s), {report.bytes} bytes {done}", markup=False)


# --- session --------------------------------------------------------------------------------


@app.command()
def login(
    url: str,
    email: Annotated[str, typer.Option(help="Your account's email address.")],
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Allow plain http:// to a remote host.")
    ] = False,
    server_key: Annotated[
        str | None,
        typer.Option(
            help="The server's public key as its operator published it (`pli serve` prints "
            "it): pinned instead of the one the server shows at this first login."
        ),
    ] = None,
    token: Annotated[
        bool,
        typer.Option(
            "--token",
            help="Use a service account's API token (from PLI_TOKEN or a prompt) instead of a "
            "password, and keep it here for the job.",
        ),
    ] = False,
) -> None:
    """Log in to a pli server (password from PLI_PASSWORD, one-time code from PLI_TOTP, or
    prompts)."""
    if server_key is not None:
        server_key = _server_key(server_key)
    if token:
        api_token = secret("PLI_TOKEN", "API token")
        with client() as c:
            who = c.login_with_token(
                url, email, api_token, allow_http=insecure_http, server_key=server_key
            )
        err.print(printable(f"logged in as {who} with its API token"), markup=False)
        return
    password = secret("PLI_PASSWORD", f"Password for {email}")
    with client() as c:
        try:
            who = c.login(
                url,
                email,
                password,
                otp=os.environ.get("PLI_TOTP"),
                allow_http=insecure_http,
                server_key=server_key,
            )
        except SecondFactorRequiredError as needed:
            if "PLI_TOTP" in os.environ or not sys.stdin.isatty():
                raise
            # A passkey works in the web app only: here, its account's recovery codes do.
            passkey_only = needed.methods == ("passkey",)
            code = typer.prompt(
                "Recovery code" if passkey_only else "One-time code (or a recovery code)"
            )
            who = c.login(
                url, email, password, otp=code, allow_http=insecure_http, server_key=server_key
            )
    err.print(printable(f"logged in as {who}"), markup=False)


def _server_key(text: str) -> str:
    from pli.crypto.signing import public_key  # noqa: PLC0415

    try:
        public_key(text.strip())
    except SignatureError as exc:
        raise UsageError(
            "--server-key must be the server's Ed25519 public key in base64, as `pli serve` "
            "prints it"
        ) from exc
    return text.strip()


@twofa_app.command("enable")
def twofa_enable() -> None:
    """Enrol a TOTP authenticator; prints recovery codes once."""
    with client() as c:
        enrolment = c.enable_totp()
        err.print("Add this account to your authenticator app:")
        err.print(printable(f"  {enrolment['uri']}"), markup=False)
        err.print(printable(f"  (or type the key {enrolment['secret']})"), markup=False)
        codes = c.confirm_totp(secret("PLI_TOTP", "Code shown by the app"))
    if not codes:  # the account had a passkey already, and keeps its recovery codes
        err.print("Second factor enabled. Your recovery codes are unchanged.")
        return
    err.print("Second factor enabled. Recovery codes (each works once; keep them offline):")
    for code in codes:
        out.print(printable(code), markup=False)


@alerts_app.command("clear")
def alerts_clear() -> None:
    """Clear your account's alerts and resume its downloads, with a one-time code."""
    with client() as c:
        count = c.clear_alerts(secret("PLI_TOTP", "One-time code (or a recovery code)"))
    err.print(f"cleared {count} alert(s); your downloads are allowed")


@twofa_app.command("disable")
def twofa_disable() -> None:
    """Turn TOTP off (needs a current code or a recovery code); passkeys stay."""
    with client() as c:
        c.disable_totp(secret("PLI_TOTP", "One-time code (or a recovery code)"))
    err.print("second factor disabled")


@app.command()
def logout(
    everywhere: Annotated[
        bool, typer.Option("--all", help="Close every session of the account, on every device.")
    ] = False,
) -> None:
    """Close this device's session (or all of them)."""
    with client() as c:
        closed = c.logout(everywhere=everywhere)
    err.print(f"logged out ({closed} session{'s' if closed != 1 else ''} closed)")


@app.command()
def passwd() -> None:
    """Change your login password (PLI_PASSWORD, then PLI_NEW_PASSWORD, or prompts)."""
    current = secret("PLI_PASSWORD", "Current password")
    new = secret("PLI_NEW_PASSWORD", "New password", confirm=True)
    with client() as c:
        c.change_password(current, new)
    err.print("password changed; your other sessions were closed")


@token_app.command("create")
def token_create(
    scope: Annotated[
        list[str], typer.Option("--scope", help="send, receive or admin (repeat for several).")
    ],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "automation",
    expires: Annotated[str, typer.Option(help="Lifetime, like 30d (at most 366d).")] = "90d",
    as_json: JsonOpt = False,
) -> None:
    """Create an API token for automation; it is printed once and never again."""
    with client() as c:
        made = c.create_token(name, scope, expires)
    if as_json:
        out.print_json(data=made)
        return
    out.print(printable(made["token"]), markup=False)
    err.print(
        printable(
            f"token {made['id']} ({' '.join(made['scopes'])}) expires {made['expires_at']}; "
            "store it now: it cannot be shown again"
        ),
        markup=False,
    )


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List your API tokens (never their secrets)."""
    with client() as c:
        listed = c.tokens()
    if as_json:
        out.print_json(data=listed)
        return
    if not listed:
        err.print("no tokens")
    for t in listed:
        used = t["last_used_at"] or "never used"
        out.print(
            printable(
                f"{t['id']}  {t['name']}  [{' '.join(t['scopes'])}]  expires {t['expires_at']}"
                f"  last used {used}"
            ),
            markup=False,
        )


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API token at once."""
    with client() as c:
        c.revoke_token(token_id)
    err.print(printable(f"revoked token {token_id}"), markup=False)


# --- keys -----------------------------------------------------------------------------------


def _new_passphrase(generate: bool, env: str) -> str:
    """A generated six-word phrase, printed once, or one from `env` or typed twice."""
    if not generate:
        return secret(env, "New passphrase for this device's keys", confirm=True)
    from pli.crypto import passphrase as phrases  # noqa: PLC0415  (loads a word list)

    chosen = phrases.generate()
    err.print(f"Your passphrase (write it down; it is not shown again):\n  {chosen}")
    return chosen


@keys_app.command("init")
def keys_init(
    escrow: Annotated[
        bool, typer.Option("--escrow", help="Also leave the encrypted private keys on the server.")
    ] = False,
    generate: GenerateOpt = False,
    work_factor: WorkFactorOpt = 18,
) -> None:
    """Create this device's keys and publish the public half."""
    chosen = _new_passphrase(generate, "PLI_PASSPHRASE")
    login_password = (
        secret("PLI_PASSWORD", "Your login password (to check they differ)") if escrow else None
    )
    with client() as c:
        made = c.init_keys(
            chosen, escrow=escrow, login_password=login_password, work_factor=work_factor
        )
    out.print(f"fingerprint: {made.bundle.fingerprint}")
    if made.pending:
        err.print(
            f"this device ({made.bundle.device}) waits for approval: on a device that already "
            f"has your keys, run `pli devices approve {made.bundle.device}` and check that it "
            "shows the fingerprint above",
            markup=False,
        )


@keys_app.command("passphrase")
def keys_passphrase(
    generate: GenerateOpt = False,
    work_factor: WorkFactorOpt = 18,
) -> None:
    """Change the passphrase of this device's keys (and of their escrowed copy, if any).
    Old one from PLI_PASSPHRASE, new one from PLI_NEW_PASSPHRASE, or prompts."""
    with client() as c:
        unlocked(c)
        new = _new_passphrase(generate, "PLI_NEW_PASSPHRASE")
        password = os.environ.get("PLI_PASSWORD")
        escrowed = c.change_passphrase(new, login_password=password, work_factor=work_factor)
    err.print("passphrase changed" + (", here and in the escrowed copy" if escrowed else ""))


@keys_app.command("show")
def keys_show(as_json: JsonOpt = False) -> None:
    """Print this device's fingerprint."""
    with client() as c:
        bundle = c.public_bundle()
    if as_json:
        out.print_json(
            data={
                "email": bundle.email,
                "device": bundle.device,
                "age": bundle.age,
                "fingerprint": bundle.fingerprint,
            }
        )
    else:
        out.print(f"{bundle.email}  device {bundle.device}\nfingerprint: {bundle.fingerprint}")


@keys_app.command("export-identity")
def keys_export_identity() -> None:
    """Print the AGE-SECRET-KEY-1… line, for the standard age tool."""
    with client() as c:
        print(unlocked(c).export_identity())


@keys_app.command("trust")
def keys_trust(
    email: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Accept without asking (for scripts).")
    ] = False,
) -> None:
    """Accept a correspondent's changed keys, after checking the new fingerprint with them."""
    email = email.lower()
    with client() as c:
        old, new = c.pending_keys(email)
        for bundle in old:
            err.print(
                printable(f"old: {bundle.fingerprint}  (device {bundle.device})"), markup=False
            )
        for bundle in new:
            err.print(
                printable(f"new: {bundle.fingerprint}  (device {bundle.device})"), markup=False
            )
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("confirm with --yes, after checking the new fingerprint")
            if not typer.confirm(f"Did {email} confirm the new fingerprint?", default=False):
                raise UsageError("nothing changed")
        c.trust(email, new)
    err.print(printable(f"now trusting the new keys above for {email}"), markup=False)


def _show_keys(label: str, bundles: Iterable[PublicBundle]) -> None:
    for bundle in bundles:
        err.print(printable(f"{label}{bundle.fingerprint}  (device {bundle.device})"), markup=False)


def _show_verification(v: Verification, me: str) -> None:
    if v.changed:
        err.print(
            printable(
                f"the keys of {v.email} have changed since they were "
                + ("verified" if v.was_verified else "pinned")
            ),
            markup=False,
        )
        _show_keys("  old: ", v.pinned)
    err.print(printable(f"{v.email}:"), markup=False)
    _show_keys("  ", v.theirs)
    if v.email != me:
        err.print(printable(f"you ({me}; check these are all your devices):"), markup=False)
        _show_keys("  ", v.mine)
    out.print(
        printable(f"verification code for {' and '.join(sorted({me, v.email}))}:"), markup=False
    )
    groups = v.code.split(" ")
    out.print(f"  {' '.join(groups[:6])}\n  {' '.join(groups[6:])}", markup=False)


@keys_app.command("verify")
def keys_verify(
    email: str,
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            metavar="CODE",
            help="The code the other person read out to you (instead of the question).",
        ),
    ] = None,
) -> None:
    """Show the code to compare with EMAIL by phone; once it matches, mark their keys
    verified. Their keys are pinned now if this is the first time they are seen."""
    with client() as c:
        v = c.verification(email)
        me = c.email
        _show_verification(v, me)
        if code is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"compare the code with {v.email}, then answer in a terminal, or pass the "
                    "code they read out with --code",
                    hint=f"{v.email}'s keys are not marked verified",
                )
            who = "your other device" if v.email == me else v.email
            if not typer.confirm(f"Does {who} read the same code?", default=False):
                raise UsageError(f"nothing changed: {v.email}'s keys are not marked verified")
        c.mark_verified(v, code=code)
    err.print(printable(f"{v.email}'s keys are now marked verified"), markup=False)


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List the accounts whose keys this device pinned, each verified or not."""
    with client() as c:
        accounts = c.pinned_accounts()
        me = c.email
    if as_json:
        out.print_json(
            data=[
                {
                    "email": p.email,
                    "verified": p.verified,
                    "devices": [
                        {
                            "device": b.device,
                            "fingerprint": b.fingerprint,
                            "age": b.age,
                            "ed25519": b.ed25519,
                        }
                        for b in p.bundles
                    ],
                }
                for p in accounts
            ]
        )
        return
    if not accounts:
        err.print("no pinned keys")
    for pinned in accounts:
        state = "verified" if pinned.verified else "not verified"
        you = " (you)" if pinned.email == me else ""
        out.print(printable(f"{pinned.email}{you}  {state}"), markup=False)
        for bundle in pinned.bundles:
            out.print(f"    {bundle.fingerprint}  (device {bundle.device})", markup=False)


@keys_app.command("audit")
def keys_audit(as_json: JsonOpt = False) -> None:
    """Check the server's key log since the last audit: that it only grew, and that every key
    it holds for your account was made or approved by your own devices."""
    with client() as c:
        report = c.audit_keys()
    if as_json:
        out.print_json(
            data={
                "head": report.head.signed(),
                "read": report.read,
                "yours": [{"index": i, "entry": e.doc()} for i, e in report.mine],
                "unknown": [{"index": i, "entry": e.doc()} for i, e in report.unknown],
                "problems": report.problems,
            }
        )
    else:
        out.print(
            f"key log: {report.head.size} entries, {report.read} read; "
            f"{len(report.mine)} about your account",
            markup=False,
        )
        for index, entry in report.mine:
            out.print(printable(f"    {index}  {entry.time}  {entry.describe()}"), markup=False)
    if report.unknown or report.problems:
        findings = [f"entry {i}: {e.describe()}" for i, e in report.unknown] + report.problems
        raise TamperingError(
            "keys for your account that none of your devices made or approved: "
            + "; ".join(findings),
            hint="if you did not add a device, tell your administrator now, and remove it with "
            "`pli devices remove DEVICE`",
        )


directory_app = typer.Typer(help="Find the accounts you can send to.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")


@directory_app.command("search")
def directory_search(
    text: Annotated[
        str, typer.Argument(help="Part of an email or a name (two characters or more).")
    ],
    limit: Annotated[int, typer.Option(min=1, max=50, help="How many to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Find accounts that can receive, with their keys' fingerprints, and groups (with the
    members their signed history gives) and organisations."""
    with client() as c:
        found = c.directory(text, limit)
    if as_json:
        out.print_json(data=[_directory_json(e) for e in found])
        return
    if not found:
        err.print(printable(f"nothing matches {text!r}"), markup=False)
    for entry in found:
        for line in _directory_lines(entry):
            out.print(printable(line), markup=False)


def _directory_json(entry: DirectoryEntry) -> dict[str, object]:
    if entry.kind in ("group", "organisation"):
        return {
            "kind": entry.kind,
            "name": entry.name,
            "title": entry.title,
            "members": entry.members,
            "history": entry.history,
            "pinned": entry.pinned,
        }
    return {
        "kind": entry.kind,
        "email": entry.email,
        "pinned": entry.pinned,
        "verified": entry.verified,
        "devices": [{"device": d, "fingerprint": f} for d, f in entry.devices],
    }


def _directory_lines(entry: DirectoryEntry) -> list[str]:
    if entry.kind == "organisation":
        return [f"{entry.name}  (organisation) {entry.title or ''}"]
    if entry.kind == "group":
        seen = "history pinned" if entry.pinned else "not used here yet"
        members = entry.members or {}
        history = (entry.history or "")[:16] or "empty"
        first = f"group:{entry.name}  {entry.title or ''}  {len(members)} members, {seen}"
        return [f"{first}, history {history}"] + [
            f"    {email}{' (admin)' if role == 'admin' else ''}"
            for email, role in sorted(members.items())
        ]
    state = "verified" if entry.verified else "pinned" if entry.pinned else "not pinned yet"
    service = " (service)" if entry.kind == "service" else ""
    return [f"{entry.email}{service}  {state}"] + [
        f"    {fingerprint}  (device {device})" for device, fingerprint in entry.devices
    ]


groups_app = typer.Typer(
    help="Groups: send to them as group:ORG/GROUP; their administrators manage members.",
    no_args_is_help=True,
)
app.add_typer(groups_app, name="groups")
GroupArg = Annotated[str, typer.Argument(metavar="GROUP", help="ORG/GROUP or group:ORG/GROUP.")]


@groups_app.command("show")
def groups_show(name: GroupArg, as_json: JsonOpt = False) -> None:
    """Show a group's members, as its signed history (checked here) makes them."""
    with client() as c:
        info = c.group(name)
    if as_json:
        out.print_json(data=asdict(info))
        return
    out.print(printable(f"group:{info.name}  {info.title} ({info.organisation})"), markup=False)
    out.print(
        printable(
            f"founder {info.founder}; history {info.history[:16] or 'empty'} "
            f"({info.seq + 1} changes)"
        ),
        markup=False,
    )
    for email, role in sorted(info.members.items()):
        out.print(printable(f"    {email}{'  (admin)' if role == 'admin' else ''}"), markup=False)


@groups_app.command("list")
def groups_list(as_json: JsonOpt = False) -> None:
    """List the groups you belong to."""
    with client() as c:
        mine = c.my_groups()
    if as_json:
        out.print_json(data=mine)
        return
    if not mine:
        err.print("you belong to no group", markup=False)
    for item in mine:
        role = "  (admin)" if item.get("role") == "admin" else ""
        out.print(printable(f"group:{item.get('name')}  {item.get('title')}{role}"), markup=False)


@groups_app.command("add")
def groups_add(
    name: GroupArg,
    email: str,
    admin: Annotated[
        bool | None,
        typer.Option(
            "--admin/--member",
            help="Make them an administrator, or a member (to change the role of one already in).",
        ),
    ] = None,
) -> None:
    """Add a member (or change their role), signed with this device's key. You must be one
    of the group's administrators (or its founder, for its first members)."""
    role = None if admin is None else "admin" if admin else "member"
    with client() as c:
        unlocked(c).change_group(name, "add", email, role)
    err.print(
        printable(f"{email} is now {'an administrator' if admin else 'a member'} of {name}"),
        markup=False,
    )


@groups_app.command("remove")
def groups_remove(name: GroupArg, email: str) -> None:
    """Remove a member, signed with this device's key: they lose the transfers that reached
    them through the group."""
    with client() as c:
        unlocked(c).change_group(name, "remove", email)
    err.print(printable(f"{email} is no longer a member of {name}"), markup=False)


@groups_app.command("forget")
def groups_forget(name: GroupArg) -> None:
    """Forget the history this device pinned for a group (after its administrator recreated
    it): the next use pins it anew."""
    with client() as c:
        forgotten = c.forget_group(name)
    err.print(
        printable(f"forgot group {name}" if forgotten else f"no pinned group {name}"), markup=False
    )


devices_app = typer.Typer(
    help="This account's devices, and approving new ones.", no_args_is_help=True
)
app.add_typer(devices_app, name="devices")


@devices_app.command("list")
def devices_list(as_json: JsonOpt = False) -> None:
    """List this account's devices: active, waiting for approval, removed."""
    with client() as c:
        listed = c.devices()
    if as_json:
        out.print_json(data=[asdict(d) for d in listed])
        return
    for d in listed:
        here = " (this device)" if d.this_device else ""
        by = f", approved by {d.approved_by}" if d.approved_by else ""
        out.print(
            f"{d.device}  {d.state}{here}  {d.fingerprint}  since {d.created_at}{by}",
            markup=False,
        )


@devices_app.command("approve")
def devices_approve(
    device: Annotated[
        str, typer.Argument(help="The new device's id, as `pli keys init` showed it.")
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option(help="The fingerprint the new device showed (instead of the question)."),
    ] = None,
) -> None:
    """Approve a new device of your account, from a device that already has its keys.
    Compare the fingerprint it shows with the one the new device showed."""
    with client() as c:
        bundle = c.pending_device(device)
        out.print(f"fingerprint of device {bundle.device}: {bundle.fingerprint}", markup=False)
        if fingerprint is not None:
            if not hmac.compare_digest(
                "".join(fingerprint.split()).lower().encode(),
                "".join(bundle.fingerprint.split()).encode(),
            ):
                raise TrustError(
                    "the fingerprint does not match: the device was not approved",
                    hint="run `pli keys show` on the new device and compare again; if it "
                    "still differs, someone else published that device",
                )
        elif not sys.stdin.isatty():
            raise UsageError(
                "compare the fingerprint, then answer in a terminal, or pass the one the new "
                "device showed with --fingerprint",
                hint="the device was not approved",
            )
        elif not typer.confirm("Does the new device show this fingerprint?", default=False):
            raise UsageError("nothing changed: the device was not approved")
        unlocked(c).approve_device(bundle)
    err.print(f"device {bundle.device} approved", markup=False)


@devices_app.command("remove")
def devices_remove(
    device: Annotated[str, typer.Argument(help="The device's id (`pli devices list`).")],
) -> None:
    """Remove a device of your account (a lost or retired one): it gets no new files, its
    escrowed key is deleted. Run it from another of your devices."""
    with client() as c:
        unlocked(c).remove_device(device)
    err.print(f"device {device} removed", markup=False)


# --- transfers ------------------------------------------------------------------------------


WithoutOpt = Annotated[
    list[str] | None,
    typer.Option("--without", help="A group member not to send to (repeat for several)."),
]


@app.command()
def send(
    paths: Annotated[list[Path], typer.Argument(help="Files to send.")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="Recipient email or group:ORG/GROUP (repeat for several)."),
    ],
    expires: Annotated[str | None, typer.Option(help="Expiry, like 12h or 7d.")] = None,
    message: Annotated[str, typer.Option(help="A message, encrypted with the files.")] = "",
    without: WithoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt files to the recipients' keys (every member of a group's) and send them."""
    with client() as c, bar() as progress:
        transfer_id = _sending(
            lambda skip: unlocked(c).send(
                paths, to, expires=expires, message=message, progress=progress, without=skip
            ),
            without or [],
        )
    _print_sent(transfer_id, as_json)


def _sending(attempt: Callable[[list[str]], str], without: list[str]) -> str:
    """Run a send; if group members' keys changed and a person is at the terminal, offer to
    go on without them."""
    try:
        return attempt(without)
    except GroupMembersChangedError as exc:
        if not sys.stdin.isatty():
            raise
        err.print(printable(f"{exc.message}"), markup=False)
        if not typer.confirm(f"Send without {', '.join(exc.emails)}?", default=False):
            raise
        return attempt([*without, *exc.emails])


def _print_sent(transfer_id: str, as_json: bool) -> None:
    if as_json:
        out.print_json(data={"id": transfer_id})
    else:
        out.print(printable(transfer_id), markup=False)


@app.command()
def reshare(
    transfer_id: Annotated[str, typer.Argument(metavar="ID")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="Recipient email or group:ORG/GROUP (repeat for several)."),
    ],
    expires: Annotated[str | None, typer.Option(help="Expiry, like 12h or 7d.")] = None,
    message: Annotated[
        str | None, typer.Option(help="A message (default: where it came from).")
    ] = None,
    without: WithoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a transfer you can read to others (a member who joined a group after it was
    sent): decrypted here, checked, encrypted again to them; the copy here is removed."""
    with client() as c, bar() as progress:
        new_id = _sending(
            lambda skip: unlocked(c).reshare(
                transfer_id, to, expires=expires, message=message, progress=progress, without=skip
            ),
            without or [],
        )
    _print_sent(new_id, as_json)


@app.command()
def revoke(transfer_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Recall a transfer you sent: recipients lose it at once and its blobs are deleted."""
    with client() as c:
        c.revoke(transfer_id)
    err.print(printable(f"revoked {transfer_id}"), markup=False)


def _print_listing(items: Iterable[TransferInfo], as_json: bool) -> None:
    if as_json:
        out.print_json(data=[asdict(i) for i in items])
        return
    shown = False
    for item in items:
        shown = True
        line = f"{item.id}  from {_sender(item)} to {', '.join(_recipients(item))}"
        out.print(printable(f"{line}  expires {item.expires_at}"), markup=False)
        if item.problem:
            out.print(printable(f"    ! {item.problem}"), markup=False)
        for f in item.files:
            out.print(printable(f"    {f.name}  ({f.size} bytes)"), markup=False)
        if item.message:
            message = "\n             ".join(printable(line) for line in item.message.split("\n"))
            out.print(f"    message: {message}", markup=False)
    if not shown:
        err.print("no transfers")


NOT_VERIFIED = " (key not verified)"


def _recipients(item: TransferInfo) -> list[str]:
    marked = item.recipient_keys_verified
    return [e + ("" if marked.get(e, True) else NOT_VERIFIED) for e in item.recipients]


def _sender(item: TransferInfo) -> str:
    if item.kind == "answer":
        said = f', who says they are "{item.claimed_name}"' if item.claimed_name else ""
        return f"an unauthenticated sender{said}, through request {item.request}"
    service = " (service)" if item.sender_service else ""
    return item.sender + service + ("" if item.sender_key_verified else NOT_VERIFIED)


LISTING_DEFAULT = 50
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit",
        min=1,
        max=500,
        metavar="N",
        help=f"How many to list, newest first (default {LISTING_DEFAULT}).",
    ),
]
AllOpt = Annotated[bool, typer.Option("--all", help="List them all, not only the newest.")]
CursorOpt = Annotated[
    str | None,
    typer.Option("--cursor", help="Go on where a previous listing stopped (it prints how)."),
]


def _list(
    c: Client, box: str, limit: int | None, every: bool, cursor: str | None, as_json: bool
) -> None:
    if every:
        if limit is not None:
            raise UsageError("--all lists every transfer: leave out --limit")
        _print_listing(c.iter_inbox(cursor) if box == "inbox" else c.iter_outbox(cursor), as_json)
        return
    listed = c.inbox if box == "inbox" else c.outbox
    page = listed(limit or LISTING_DEFAULT, cursor)
    _print_listing(page.items, as_json)
    if page.next_cursor is not None:
        again = f"pli {box}" + (f" --limit {limit}" if limit else "")
        err.print(
            printable(
                f"note: there are more (older) transfers: `{again} --cursor {page.next_cursor}` "
                f"lists the next ones, `pli {box} --all` lists them all"
            ),
            markup=False,
        )


@app.command()
def inbox(
    limit: LimitOpt = None,
    every: AllOpt = False,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List transfers sent to you, newest first."""
    with client() as c:
        _list(unlocked(c), "inbox", limit, every, cursor, as_json)


@app.command()
def outbox(
    limit: LimitOpt = None,
    every: AllOpt = False,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List transfers you sent, newest first."""
    with client() as c:
        _list(unlocked(c), "outbox", limit, every, cursor, as_json)


@app.command()
def get(
    transfer_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to save to.")] = Path(),
    raw: Annotated[bool, typer.Option("--raw", help="Save the age ciphertext instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Download, verify and decrypt a transfer."""
    with client() as c, bar() as progress:
        got = unlocked(c).receive(transfer_id, output, raw=raw, progress=progress)
    if as_json:
        out.print_json(
            data={
                "id": transfer_id,
                "files": [str(p) for p in got.files],
                "sender": got.sender,
                "sender_key_verified": got.sender_key_verified,
                "kind": got.kind,
            }
        )
        return
    for path in got.files:
        out.print(str(path), markup=False)
    if got.kind == "answer":
        err.print("from an unauthenticated sender, through one of your file requests")
    elif got.sender_key_verified:
        err.print(printable(f"from {got.sender} (key verified)"), markup=False)
    else:
        err.print(
            printable(
                f"from {got.sender}{NOT_VERIFIED}: compare codes with them "
                f"(`pli keys verify {got.sender}`)"
            ),
            markup=False,
        )


# --- share links ----------------------------------------------------------------------------

ExpiresOpt = Annotated[str | None, typer.Option(help="Expiry, like 12h or 7d.")]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure-http", help="Allow plain http:// to a remote host.")
]


@link_app.command("create")
def link_create(
    paths: Annotated[list[Path], typer.Argument(help="Files to share.")],
    expires: ExpiresOpt = None,
    max_downloads: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="How many downloads it allows.")
    ] = None,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help="Also require a passphrase (PLI_LINK_PASSPHRASE or a prompt), given separately.",
        ),
    ] = False,
    work_factor: WorkFactorOpt = 18,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt files to a key made for this link and print its URL. The part after # is the
    key: the server never sees it, and whoever has the URL can open the files."""
    chosen = (
        secret("PLI_LINK_PASSPHRASE", "Passphrase for the link", confirm=True)
        if passphrase
        else None
    )
    with client() as c, bar() as progress:
        made = unlocked(c).create_link(
            paths,
            expires=expires,
            max_downloads=max_downloads,
            passphrase=chosen,
            work_factor=work_factor,
            progress=progress,
        )
    _print_made("link", made, as_json)


def _print_made(kind: str, made: CreatedLink | CreatedRequest, as_json: bool) -> None:
    if as_json:
        out.print_json(data={"id": made.id, "url": made.url, "expires_at": made.expires_at})
        return
    out.print(printable(made.url), markup=False, soft_wrap=True)
    err.print(printable(f"{kind} {made.id} expires {made.expires_at}"), markup=False)


@link_app.command("get")
def link_get(
    url: Annotated[str, typer.Argument(help="The whole link, with its part after #.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to save to.")] = Path(),
    insecure_http: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Download, verify and decrypt what a link holds. No account needed."""
    from pli.client.external import get_link  # noqa: PLC0415

    notices: list[str] = []
    try:
        with bar() as progress:
            got = get_link(
                url,
                output,
                lambda: secret("PLI_LINK_PASSPHRASE", "Passphrase for this link"),
                progress=progress,
                notices=notices,
                allow_http=insecure_http,
            )
    finally:
        for notice in notices:
            err.print(printable(f"note: {notice}"), markup=False)
    if as_json:
        out.print_json(data={**asdict(got), "files": [str(p) for p in got.files]})
        return
    for path in got.files:
        out.print(str(path), markup=False)
    err.print(
        printable(f"from {got.sender} (key {got.fingerprint}, not verified: compare it with them)"),
        markup=False,
    )


@link_app.command("list")
def link_list(as_json: JsonOpt = False) -> None:
    """List your links, with the downloads used and left."""
    with client() as c:
        listed = c.links()
    if as_json:
        out.print_json(data=[asdict(i) for i in listed])
        return
    if not listed:
        err.print("no links")
    for link in listed:
        left = "unlimited" if link.downloads_left is None else f"{link.downloads_left} left"
        out.print(
            printable(
                f"{link.id}  {link.state}  {link.files} file(s)  downloads {link.downloads} "
                f"({left})  expires {link.expires_at}"
            ),
            markup=False,
        )


@link_app.command("revoke")
def link_revoke(link_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """End a link at once; its files are deleted from the server."""
    with client() as c:
        c.revoke_link(link_id)
    err.print(printable(f"revoked link {link_id}"), markup=False)


# --- file requests --------------------------------------------------------------------------


@request_app.command("create")
def request_create(
    title: Annotated[str, typer.Option(help="What you ask for (encrypted; senders see it).")] = "",
    expires: ExpiresOpt = None,
    max_files: Annotated[int, typer.Option(min=1, max=1000, help="Files it accepts in all.")] = 10,
    max_size: Annotated[
        str | None, typer.Option(help="Bytes it accepts in all, like 2G (default: the server's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a URL through which people without an account send you files, encrypted to a
    key made for this request."""
    from pli.sizes import parse_size  # noqa: PLC0415

    size = parse_size(max_size) if max_size is not None else None
    with client() as c:
        made = unlocked(c).create_request(
            title=title, expires=expires, max_files=max_files, max_size=size
        )
    _print_made("request", made, as_json)


@request_app.command("send")
def request_send(
    url: Annotated[str, typer.Argument(help="The whole request link, with its part after #.")],
    paths: Annotated[list[Path], typer.Argument(help="Files to send.")],
    name: Annotated[
        str, typer.Option(help="Your name, shown to the requester (as a claim, not checked).")
    ] = "",
    message: Annotated[str, typer.Option(help="A message, encrypted with the files.")] = "",
    insecure_http: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send files in answer to a file request. No account needed."""
    from pli.client.external import answer_request  # noqa: PLC0415
    from pli.client.sdk import upload_retry_seconds  # noqa: PLC0415

    with bar() as progress:
        sent = answer_request(
            url,
            paths,
            name=name,
            message=message,
            progress=progress,
            retry_seconds=upload_retry_seconds(),
            allow_http=insecure_http,
        )
    if as_json:
        out.print_json(data=asdict(sent))
        return
    out.print(printable(sent.transfer), markup=False)
    err.print(
        printable(f"sent to {sent.requester} (key {sent.fingerprint}) for: {sent.title}"),
        markup=False,
    )


@request_app.command("list")
def request_list(as_json: JsonOpt = False) -> None:
    """List your file requests (with their titles and URLs once the keys are unlocked)."""
    with client() as c:
        listed = unlocked(c).requests()
    if as_json:
        out.print_json(data=[asdict(i) for i in listed])
        return
    if not listed:
        err.print("no file requests")
    for item in listed:
        out.print(
            printable(
                f"{item.id}  {item.state}  {item.title or ''!r}  files {item.files_used}/"
                f"{item.max_files}  expires {item.expires_at}"
            ),
            markup=False,
        )
        out.print(printable(f"    {item.url}"), markup=False, soft_wrap=True)


@request_app.command("close")
def request_close(request_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Stop a file request from accepting files; what it received stays in your inbox."""
    with client() as c:
        c.close_request(request_id)
    err.print(printable(f"closed request {request_id}"), markup=False)


# --- entry point ----------------------------------------------------------------------------


def _render(error: PliError, as_json: bool) -> None:
    if as_json:
        problem = {
            "type": "about:blank",
            "title": error.title,
            "status": error.status,
            "detail": error.message,
            **error.problem_extensions(),
        }
        print(json.dumps(problem), file=sys.stderr)
        return
    err.print(printable(f"error: {error.message}"), markup=False)
    if error.hint:
        err.print(printable(f"hint: {error.hint}"), markup=False)


def main() -> None:
    # Standalone mode: typer reports its own usage errors (exit 2), --help (0), an abort (1)
    # and Ctrl-C (130) and exits; pli's errors come out of it and are rendered here.
    try:
        app()
    except PliError as error:
        _render(error, "--json" in sys.argv)
        sys.exit(error.exit_code)
