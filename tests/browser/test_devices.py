"""Devices and the key log in the web app: a browser added to an account that has keys waits for
one of its devices to approve it, and the app refuses a key the server's log does not hold."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_transfers import (
    BROWSER_PASSPHRASE,
    NewPage,
    browser_account,
    send_from_browser,
    sign_in,
)
from tests.integration.conftest import PASSWORD, Server, make_user
from tests.integration.test_key_log import fabricate_device


def test_a_browser_added_to_an_account_waits_for_approval(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice, bob = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob"))
    first = tmp_path / "first.csv"
    first.write_bytes(b"before the browser")
    bob.send(first, to=alice.email)  # bob pins alice's one device

    page = new_page()
    sign_in(page, sqlite_server.url, alice.email)
    page.get_by_label("New passphrase").fill(BROWSER_PASSPHRASE)
    page.get_by_label("Repeat the passphrase").fill(BROWSER_PASSPHRASE)
    page.get_by_label("Your sign-in password").fill(PASSWORD)
    page.get_by_role("button", name="Create my keys").click()
    expect(page.get_by_role("heading", name="Approve this browser")).to_be_visible(timeout=60_000)
    command = page.locator("pre code")
    expect(command).to_contain_text("--fingerprint", timeout=10_000)
    words = command.inner_text().split()
    device = words[3]
    fingerprint = command.inner_text().split('"')[1]

    page.get_by_role("button", name="I approved it").click()
    expect(page.get_by_text("Not approved yet")).to_be_visible(timeout=10_000)
    approved = alice.ok("devices", "approve", device, "--fingerprint", fingerprint)
    assert fingerprint in approved.stdout
    page.get_by_role("button", name="I approved it").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=30_000)

    # bob's client accepts the browser on alice's approval; the browser opens what he sends
    second = tmp_path / "second.csv"
    second.write_bytes(b"after the browser")
    sent = bob.ok("send", str(second), "--to", alice.email, "--json")
    assert f"device {device} of {alice.email}" in sent.stderr
    page.goto(f"{sqlite_server.url}/app/t/{sent.json()['id']}")
    page.get_by_label("Passphrase").fill(BROWSER_PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("Signature verified")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("second.csv")).to_be_visible()

    # and the browser sends: its own account's keys grew by a device its first one approved
    reply = tmp_path / "reply.csv"
    reply.write_bytes(b"from the browser")
    transfer = send_from_browser(page, sqlite_server, bob.email, [reply])
    bob.ok("get", transfer, "-o", str(tmp_path / "bob-got"))
    assert (tmp_path / "bob-got" / "reply.csv").read_bytes() == b"from the browser"


def test_a_key_absent_from_the_log_is_refused(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    page = new_page()
    browser_account(sqlite_server, tmp_path, page, "bob")
    device = fabricate_device(sqlite_server, alice.email, logged=False)
    note = tmp_path / "note.txt"
    note.write_text("for alice only\n")
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill(alice.email)
    page.locator("input[type=file]").set_input_files([str(note)])
    page.get_by_role("button", name="Encrypt and send").click()
    refusal = f"the key log does not hold the keys of device {device} of {alice.email}"
    expect(page.get_by_text(refusal)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_have_count(0)
