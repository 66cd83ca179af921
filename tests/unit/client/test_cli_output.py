"""What the CLI prints of the server's (or a sender's) text cannot drive the terminal: escape
sequences and rich markup come out inert. And a bad output path is one usage error line.

The verbs run for real, with a real pli.Client in a real PLI_HOME, against a scripted server
(tests/unit/client/fakes.py) that answers the hostile text."""

from __future__ import annotations

import base64
import errno
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pli.client import cli
from pli.client.sdk import CONFIG, DEVICE, IDENTITY, SESSION, CreatedLink, CreatedRequest
from pli.client.state import Home
from pli.crypto import age
from pli.crypto import links as lk
from pli.crypto import manifest as mf
from pli.crypto.identity import DeviceIdentity
from pli.errors import IntegrityError
from tests.unit.client.fakes import Reply, ScriptedServer

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
MARKUP = "[bold]x[/bold]"
HOSTILE = f"{ESC}{MARKUP}"
CLEANED = "?]0;owned??[2J?[31m[bold]x[/bold]"  # HOSTILE as the CLI prints it
LINK_ID = "fedcba9876543210fedcba9876543210"
REQUEST_ID = "0123456789abcdef0123456789abcdef"
TRANSFER_ID = "00112233445566778899aabbccddeeff"
SLOT = "a" * 32
CREATED, EXPIRES = "2029-12-01T00:00:00Z", "2099-12-01T00:00:00Z"

EMAIL = "bob@example.org"
ME = DeviceIdentity.generate(EMAIL)
PASSPHRASE = "correct horse battery staple"
SEALED_ME = ME.seal(PASSPHRASE, work_factor=10)  # the lowest work factor: fast to unlock
SESSION_TOKEN = "plis_" + "s" * 43
SENDER = DeviceIdentity.generate(HOSTILE)  # a sender (or requester) whose address is hostile
KEYS = lk.RequestKeys.generate()
LINK = age.X25519Identity.generate()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PLI_HOME of the test's own (empty until `logged_in`), and the passphrase of its keys."""
    monkeypatch.setenv("PLI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLI_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("PLI_UPLOAD_RETRY_SECONDS", "0")
    for name in ("PLI_TOKEN", "PLI_LINK_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def logged_in(tmp_path: Path, server: ScriptedServer) -> None:
    """PLI_HOME as `pli login` and `pli keys init` leave it, on the scripted server."""
    home = Home(tmp_path / "home")
    home.write_json(CONFIG, {"server": server.base, "email": EMAIL})
    home.write(SESSION, SESSION_TOKEN.encode())
    home.write(IDENTITY, SEALED_ME)
    home.write_json(DEVICE, ME.public_bundle().signed)


def _printed(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\x1b" not in text
    assert MARKUP in text  # shown as typed, not taken as markup
    return text


# --- account verbs: what the server lists -----------------------------------------------------


@pytest.mark.usefixtures("logged_in")
def test_link_list(capsys: pytest.CaptureFixture[str], server: ScriptedServer) -> None:
    link = {
        "id": HOSTILE,
        "url": HOSTILE,
        "state": HOSTILE,
        "created_at": HOSTILE,
        "expires_at": HOSTILE,
        "max_downloads": None,
        "downloads": 1,
        "downloads_left": None,
        "transfer": {"files": [{"id": "c" * 32, "size": 200}, {"id": "d" * 32, "size": 300}]},
    }
    server.answers["GET", "/api/v1/links"] = Reply({"items": [link]})

    cli.link_list(as_json=False)

    (line,) = _printed(capsys).splitlines()
    assert line == f"{CLEANED}  {CLEANED}  2 file(s)  downloads 1 (unlimited)  expires {CLEANED}"
    assert [c.token for c in server.calls] == [SESSION_TOKEN]


@pytest.mark.usefixtures("logged_in")
def test_request_list_its_url_line_and_notice(
    capsys: pytest.CaptureFixture[str], server: ScriptedServer
) -> None:
    request = {
        "id": HOSTILE,
        "url": HOSTILE,
        "state": "open",
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "max_files": 3,
        "files_used": 1,
        "max_bytes": 9,
        "bytes_used": 0,
        "document": None,
        "sealed_key": "not base64!",  # the key does not open: a notice names the request
    }
    server.answers["GET", "/api/v1/requests"] = Reply({"items": [request]})

    cli.request_list(as_json=False)

    lines = _printed(capsys).splitlines()
    assert f"{CLEANED}  open  ''  files 1/3  expires {EXPIRES}" in lines
    assert f"    {CLEANED}" in lines  # the URL line
    assert f"note: request {CLEANED}: the server sent a malformed request key" in lines


# --- what the CLI prints of what it made, and of an error -------------------------------------


@pytest.mark.parametrize(
    "made",
    [CreatedLink(HOSTILE, HOSTILE, HOSTILE), CreatedRequest(HOSTILE, HOSTILE, HOSTILE)],
)
def test_a_new_link_or_request(
    capsys: pytest.CaptureFixture[str], made: CreatedLink | CreatedRequest
) -> None:
    cli._print_made("link", made, as_json=False)
    _printed(capsys)


def test_an_error_from_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    cli._render(IntegrityError(HOSTILE, hint=HOSTILE), as_json=False)
    _printed(capsys)


# --- verbs without an account: what a sender or a requester signed ----------------------------


def test_request_send_confirmation(
    capsys: pytest.CaptureFixture[str], server: ScriptedServer, tmp_path: Path
) -> None:
    document = lk.seal_document(SENDER, REQUEST_ID, HOSTILE, KEYS)
    server.answers["GET", f"/api/v1/public/requests/{REQUEST_ID}"] = Reply(
        {
            "id": REQUEST_ID,
            "document": _b64(document),
            "expires_at": EXPIRES,
            "files_left": 5,
            "bytes_left": 10**9,
        }
    )
    reservation = {
        "token": "pli_guest_" + "g" * 43,
        "transfer": {
            "id": TRANSFER_ID,
            "created_at": CREATED,
            "expires_at": EXPIRES,
            "files": [{"id": SLOT, "size": 1000}],
        },
    }
    server.answers["POST", f"/api/v1/public/requests/{REQUEST_ID}/answers"] = Reply(
        reservation, 201
    )
    server.answers["POST", f"/api/v1/public/answers/{TRANSFER_ID}/seal"] = Reply({})
    report = tmp_path / "report.pdf"
    report.write_bytes(b"the report")

    url = f"{server.base}/r/{REQUEST_ID}#{KEYS.fragment}"
    cli.request_send(url, [report], "", "", False, False)

    out, fingerprint = _printed(capsys), SENDER.public_bundle().fingerprint
    assert out.splitlines() == [
        TRANSFER_ID,
        f"sent to {CLEANED} (key {fingerprint}) for: {CLEANED}",
    ]
    (upload,) = server.uploads
    assert age.decrypt(bytes(upload.data), [KEYS.identity]) == b"the report"
    assert len(server.calls_to("POST", f"/api/v1/public/answers/{TRANSFER_ID}/seal")) == 1


def test_link_get_sender(
    capsys: pytest.CaptureFixture[str], server: ScriptedServer, tmp_path: Path
) -> None:
    manifest = mf.Manifest(
        transfer=LINK_ID,
        sender=mf.key_entry(SENDER.public_bundle()),
        recipients=[lk.link_recipient_entry(LINK.recipient)],
        files=[],
        created=CREATED,
        expires=EXPIRES,
        message=HOSTILE,
    )
    sealed = mf.seal(SENDER, manifest, [LINK.recipient])
    transfer = {"id": LINK_ID, "manifest": _b64(sealed), "files": []}
    ticket = {"ticket": "pli_ticket_" + "t" * 43, "expires_at": EXPIRES, "transfer": transfer}
    server.answers["POST", f"/api/v1/public/links/{LINK_ID}/tickets"] = Reply(ticket, 201)
    got = tmp_path / "got"

    cli.link_get(f"{server.base}/l/{LINK_ID}#{LINK.export()}", got, False, False)

    fingerprint = SENDER.public_bundle().fingerprint
    assert _printed(capsys).splitlines() == [
        f"from {CLEANED} (key {fingerprint}, not verified: compare it with them)"
    ]
    assert list(got.iterdir()) == []  # nothing listed, nothing saved; the ticket is gone


# --- usage errors -----------------------------------------------------------------------------


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["pli", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert isinstance(exited.value.code, int)
    return exited.value.code


def test_link_get_into_a_file_is_one_usage_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    in_the_way = tmp_path / "report.pdf"
    in_the_way.write_text("mine")
    url = f"https://pli.example.org/l/{LINK_ID}#{age.X25519Identity.generate().export()}"
    assert _main(monkeypatch, "link", "get", url, "-o", str(in_the_way)) == 2
    error = capsys.readouterr().err
    assert error == f"error: cannot save into {in_the_way}: it is not a directory\n"
    assert in_the_way.read_text() == "mine"


def test_request_send_of_an_unreadable_file_is_one_usage_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_text("x")
    opened = Path.open

    def refusing(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == secret:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing)
    url = f"https://pli.example.org/r/{LINK_ID}#{lk.RequestKeys.generate().fragment}"
    assert _main(monkeypatch, "request", "send", url, str(secret)) == 2
    assert capsys.readouterr().err == f"error: cannot read {secret}: Permission denied\n"
