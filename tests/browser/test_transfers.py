"""The web app against a real `pli serve` and the real CLI: files sent from the browser are
received by `pli get` byte for byte, and the other way round, with the keys made or unlocked in
the browser."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Download, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import Saving, opfs_file
from tests.integration.conftest import PASSWORD, Server, User, make_user
from tests.integration.test_downloads import Relay

BROWSER_PASSPHRASE = "a long passphrase typed in the browser"
Q = "\u2019"  # the French apostrophe
NewPage = Callable[..., Page]


def sign_in(page: Page, base: str, email: str) -> None:
    """Sign in at `base` (the server, or a relay to it) from a page that asks for the inbox."""
    page.goto(f"{base}/app/inbox")
    expect(page).to_have_url(f"{base}/app/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/app/unlock")


def create_keys(page: Page) -> None:
    page.get_by_label("New passphrase").fill(BROWSER_PASSPHRASE)
    page.get_by_label("Repeat the passphrase").fill(BROWSER_PASSPHRASE)
    page.get_by_label("Your sign-in password").fill(PASSWORD)
    page.get_by_role("button", name="Create my keys").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=60_000)


def unlock(page: Page, passphrase: str, then: str = "Inbox") -> None:
    page.get_by_label("Passphrase").fill(passphrase)
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("heading", name=then)).to_be_visible(timeout=60_000)


def browser_user(server: Server, tmp: Path, name: str) -> User:
    """An account made by the administrator, with no keys yet: the browser makes them."""
    return make_user(server, tmp, name, keys=False)


def browser_account(
    server: Server, tmp: Path, page: Page, name: str, base: str | None = None
) -> User:
    """An account whose only keys are made in `page`, signed in there (at `base`, else the
    server itself)."""
    user = browser_user(server, tmp, name)
    sign_in(page, base or server.url, user.email)
    create_keys(page)
    return user


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def send_from_browser(
    page: Page, server: Server, to: str, files: list[Path], *, timeout_ms: int = 120_000
) -> str:
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill(to)
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_label("Message (encrypted)").fill("Résultats de mars.")
    page.get_by_role("button", name="Encrypt and send").click()
    expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_be_visible(
        timeout=timeout_ms
    )
    page.get_by_role("link", name="Open").click()
    return page.url.rsplit("/", 1)[1]


def test_browser_to_cli_and_back(sqlite_server: Server, tmp_path: Path, new_page: NewPage) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    page = new_page()
    bob = browser_account(sqlite_server, tmp_path, page, "bob")

    originals = tmp_path / "from-browser"
    originals.mkdir()
    payload = originals / "résultats PCR.csv"
    payload.write_bytes(os.urandom(3 * (1 << 20) + 12345))
    empty = originals / "empty.txt"
    empty.write_bytes(b"")
    transfer = send_from_browser(page, sqlite_server, alice.email, [payload, empty])

    # alice's CLI trusts bob's browser key on first use, verifies and decrypts
    received = tmp_path / "alice-got"
    received.mkdir()
    alice.ok("get", transfer, "-o", str(received))
    assert digest(received / payload.name) == digest(payload)
    assert (received / "empty.txt").read_bytes() == b""

    # and back: alice sends with the CLI, bob's browser verifies, decrypts and saves
    reply = tmp_path / "reply.bin"
    reply.write_bytes(os.urandom((1 << 20) * 2 + 7))
    sent = alice.send(reply, to=bob.email, extra=("--message", "Voici la réponse."))
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_text("reply.bin")).to_be_visible(timeout=30_000)
    page.goto(f"{sqlite_server.url}/app/t/{sent}")  # a reload forgets the keys: unlock again
    unlock(page, BROWSER_PASSPHRASE, then="Transfer")
    expect(page.get_by_text("Signature verified")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Voici la réponse.")).to_be_visible()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "bob-got.bin"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "reply.bin"
    assert digest(saved) == digest(reply)


def test_keys_escrowed_by_the_cli_unlock_in_the_browser(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    carol = make_user(sqlite_server, tmp_path, "carol", keys=False)
    carol.extra_env["PLI_KDF_WORK_FACTOR"] = "18"
    lines = carol.ok("keys", "init", "--escrow", "--generate").stderr.splitlines()
    passphrase = lines[1].strip()
    alice = make_user(sqlite_server, tmp_path, "alice")
    note = tmp_path / "note.txt"
    note.write_text("bonjour\n")
    alice.send(note, to=carol.email)

    page = new_page()
    sign_in(page, sqlite_server.url, carol.email)
    page.get_by_label("Passphrase").fill("not the passphrase at all")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("This passphrase does not unlock your keys.")).to_be_visible(
        timeout=60_000
    )
    unlock(page, passphrase)
    page.get_by_role("link", name=f"Open: {alice.email}").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "carol-got.txt"
    download.value.save_as(saved)
    assert saved.read_text() == "bonjour\n"


def _tampered(server: Server, tmp_path: Path, page: Page) -> tuple[str, Path]:
    """A 200 kB file sent by alice to a browser account, its ciphertext then altered on disk."""
    alice = make_user(server, tmp_path, "alice")
    bob = browser_account(server, tmp_path, page, "bob")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(200_000))
    sent = alice.send(secret, to=bob.email)
    blobs = [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
    (blob,) = [p for p in blobs if p.stat().st_size > 200_000]  # the one file's age ciphertext
    raw = bytearray(blob.read_bytes())
    raw[-100] ^= 1
    blob.write_bytes(bytes(raw))
    page.goto(f"{server.url}/app/t/{sent}")
    unlock(page, BROWSER_PASSPHRASE, then="Transfer")
    return sent, secret


@pytest.mark.parametrize("saving", ["picker", "stream", "blob"])
def test_a_tampered_file_is_refused_and_never_kept(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage, saving: Saving
) -> None:
    page = new_page(saving=saving)
    _, secret = _tampered(sqlite_server, tmp_path, page)
    downloads: list[Download] = []

    def offered(download: Download) -> None:  # Playwright wants a function, not a bound builtin
        downloads.append(download)

    page.on("download", offered)
    if saving == "blob":  # and in French, where the check's failure is said in French too
        page.get_by_role("button", name="Afficher en français").click()
        page.get_by_role("button", name="Télécharger").click()
        refusal = f"n{Q}a pas pu être déchiffré"
    else:
        page.get_by_role("button", name="Download").click()
        refusal = "could not be decrypted"
    expect(page.get_by_role("alert")).to_contain_text(refusal, timeout=30_000)
    if saving == "picker":  # the chosen file was never written: the writes went elsewhere
        assert opfs_file(page, secret.name) == b""
    elif saving == "stream":  # the browser's download began, and failed: no file kept
        (download,) = downloads
        assert download.failure() is not None
        with pytest.raises(PlaywrightError):
            download.path()
    else:
        assert downloads == []


def test_a_file_is_saved_where_the_user_chose(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    page = new_page(saving="picker")
    bob = browser_account(sqlite_server, tmp_path, page, "bob")
    report = tmp_path / "résultats.bin"
    report.write_bytes(os.urandom((3 << 20) + 11))
    sent = alice.send(report, to=bob.email)
    page.goto(f"{sqlite_server.url}/app/t/{sent}")
    unlock(page, BROWSER_PASSPHRASE, then="Transfer")
    page.get_by_role("button", name="Download").click()
    expect(page.get_by_text("Decrypted and checked.")).to_be_visible(timeout=60_000)
    assert opfs_file(page, report.name) == report.read_bytes()


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_language_follows_the_browser_and_the_switch(
    sqlite_server: Server, new_page: NewPage, lang: str
) -> None:
    page = new_page(locale="fr-FR" if lang == "fr" else "en-US")
    page.goto(f"{sqlite_server.url}/app/signin")
    heading = {"en": "Sign in", "fr": "Connexion"}
    other = "fr" if lang == "en" else "en"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading[lang])
    assert page.evaluate("document.documentElement.lang") == lang
    switch = {"en": "Afficher en français", "fr": "Show in English"}[lang]
    page.get_by_role("button", name=switch).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading[other])
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading[other])


def test_an_upload_cut_by_the_network_goes_on_where_it_stopped(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    relay = Relay(sqlite_server)  # the browser reaches the server through it
    try:
        page = new_page()
        browser_account(sqlite_server, tmp_path, page, "bob", base=relay.url)
        big = tmp_path / "export.bin"
        big.write_bytes(os.urandom(40 << 20))
        relay.cut_upload(20 << 20)  # in the middle of the third 8 MiB part
        page.get_by_role("link", name="Send files").click()
        page.get_by_label("Recipients").fill(alice.email)
        page.locator("input[type=file]").set_input_files(str(big))
        page.get_by_role("button", name="Encrypt and send").click()
        expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_be_visible(
            timeout=120_000
        )
        assert relay.upload_cuts == 1
        # the parts already sent were not sent again: a little over the file went through
        assert relay.uploaded < (40 << 20) + (12 << 20)
    finally:
        relay.close()
    (sent,) = alice.ok("inbox", "--json").json()
    out = tmp_path / "got"
    out.mkdir()
    alice.ok("get", sent["id"], "-o", str(out))
    assert digest(out / "export.bin") == digest(big)


def test_an_ended_session_sends_back_to_sign_in_and_then_where_it_was(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    dora = browser_account(sqlite_server, tmp_path, page, "dora")
    token = page.evaluate("JSON.parse(sessionStorage.getItem('pli:session')).token")
    ended = httpx.post(
        f"{sqlite_server.url}/api/v1/auth/logout",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert ended.status_code == 204
    page.get_by_role("link", name="Sent").click()
    expect(page).to_have_url(f"{sqlite_server.url}/app/signin")
    expect(page.get_by_text("Your session ended: sign in again to go on.")).to_be_visible()
    page.get_by_label("Email").fill(dora.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    unlock(page, BROWSER_PASSPHRASE, then="Sent")
    expect(page).to_have_url(f"{sqlite_server.url}/app/outbox")


def test_recipients_are_suggested_from_the_accounts_of_the_server(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    browser_account(sqlite_server, tmp_path, page, "eve")
    make_user(sqlite_server, tmp_path, "ars-veille")
    make_user(sqlite_server, tmp_path, "ars-nokeys", keys=False)  # cannot receive: not offered
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill("colleague@example.org, ars-")
    options = page.locator("#known-recipients option")
    expect(options).to_have_count(1, timeout=10_000)
    assert options.first.get_attribute("value") == ("colleague@example.org, ars-veille@example.org")
