"""Share links and file requests between the web app and the CLI, in both directions: what one
makes, the other opens, byte for byte, and the fragment never reaches the server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_transfers import browser_account
from tests.integration.conftest import Server, User, make_user

NewPage = Callable[..., Page]
LINK_PASSPHRASE = "told by phone, not in the link"


def _outsider(server: Server, tmp: Path) -> User:
    return User("nobody@nowhere.example", tmp / "home-outsider", server)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download(page: Page, name: str, into: Path) -> Path:
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=f"Download {name}").click()
    saved = into / download.value.suggested_filename
    download.value.save_as(saved)
    return saved


def test_a_cli_link_opens_in_a_fresh_browser_with_and_without_passphrase(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    report = tmp_path / "compte rendu.pdf"
    report.write_bytes(os.urandom(700_000))
    plain = alice.ok("link", "create", str(report), "--json").json()["url"]
    alice.extra_env["PLI_LINK_PASSPHRASE"] = LINK_PASSPHRASE
    wrapped = alice.ok("link", "create", str(report), "--passphrase", "--json").json()["url"]
    assert wrapped.split("#", 1)[1].startswith("p1.")

    page = new_page()
    page.goto(plain)
    expect(page.get_by_role("heading", name="Files shared with you")).to_be_visible()
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_text("Signed by alice@example.org")).to_be_visible(timeout=30_000)
    got = tmp_path / "got-plain"
    got.mkdir()
    assert _digest(_download(page, report.name, got)) == _digest(report)

    page = new_page()
    page.goto(wrapped)
    expect(page.get_by_text("This link is protected by a passphrase.")).to_be_visible()
    page.get_by_label("Passphrase").fill("a wrong passphrase")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Wrong passphrase for this link (or the link was altered).", timeout=60_000
    )
    page.get_by_label("Passphrase").fill(LINK_PASSPHRASE)
    page.get_by_role("button", name="Open").click()
    got = tmp_path / "got-wrapped"
    got.mkdir()
    expect(page.get_by_role("button", name=f"Download {report.name}")).to_be_visible(timeout=60_000)
    assert _digest(_download(page, report.name, got)) == _digest(report)

    altered = plain[:-3] + ("AAA" if not plain.endswith("AAA") else "BBB")
    page = new_page()
    page.goto(altered)
    expect(page.get_by_role("alert")).to_have_text(
        "This link is incomplete or was altered: ask its sender for it again."
    )


def test_a_browser_link_opens_with_the_cli(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    browser_account(sqlite_server, tmp_path, page, "bob")
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(1 << 20))
    page.get_by_role("link", name="Links").click()
    page.locator("input[type=file]").set_input_files(str(scan))
    page.get_by_role("button", name="Encrypt and create the link").click()
    url = page.get_by_label("The link is ready. Copy it now: it cannot be shown again.")
    expect(url).to_be_visible(timeout=60_000)
    link = url.input_value()
    assert link.startswith(f"{sqlite_server.url}/l/")

    out = tmp_path / "cli-got"
    out.mkdir()
    _outsider(sqlite_server, tmp_path).ok("link", "get", link, "-o", str(out))
    assert _digest(out / "scan.bin") == _digest(scan)
    page.reload()
    page.get_by_label("Passphrase").fill("a long passphrase typed in the browser")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("1 downloads, 4 left")).to_be_visible(timeout=60_000)


def test_a_cli_request_answered_from_a_browser(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    made = alice.ok("request", "create", "--title", "Bilan sanguin", "--json").json()
    lab = tmp_path / "bilan.csv"
    lab.write_bytes(b"nom;resultat\nDUPONT;NEGATIF\n" * 5000)

    page = new_page()
    page.goto(made["url"])
    expect(page.get_by_text("Asked by alice@example.org")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Bilan sanguin")).to_be_visible()
    page.locator("input[type=file]").set_input_files(str(lab))
    page.get_by_label("Your name (shown to them as you type it)").fill("Laboratoire Martin")
    page.get_by_role("button", name="Encrypt and send").click()
    expect(page.get_by_text("Sent. The person who asked")).to_be_visible(timeout=60_000)

    (answer,) = alice.ok("inbox", "--json").json()
    out = tmp_path / "alice-got"
    out.mkdir()
    alice.ok("get", answer["id"], "-o", str(out))
    assert _digest(out / "bilan.csv") == _digest(lab)


def test_a_browser_request_answered_by_the_cli(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    browser_account(sqlite_server, tmp_path, page, "bob")
    page.get_by_role("link", name="Requests").click()
    page.get_by_label("What you are asking for (encrypted)").fill("Comptes rendus de mars")
    page.get_by_role("button", name="Create the request").click()
    url = page.get_by_label("The request is ready.", exact=False).first
    expect(url).to_be_visible(timeout=60_000)
    address = url.input_value()
    assert address.startswith(f"{sqlite_server.url}/r/")

    notes = tmp_path / "cr.txt"
    notes.write_text("compte rendu\n" * 1000)
    _outsider(sqlite_server, tmp_path).ok(
        "request", "send", address, str(notes), "--name", "Dr Martin"
    )
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_text("someone who says they are “Dr Martin”")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Open", exact=False).first.click()
    got = tmp_path / "bob-got"
    got.mkdir()
    assert _digest(_download(page, "cr.txt", got)) == _digest(notes)
