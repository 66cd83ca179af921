"""Devices, the key log and verification in the web app: a browser added to an account that has
keys waits for one of its devices to approve it, the app refuses a key the server's log does not
hold, and its verification code is the command line's, digit for digit."""

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
from tests.integration.conftest import PASSWORD, Server, User, device_of, make_user
from tests.integration.test_key_log import fabricate_device
from tests.integration.test_key_verification import shown_code
from tests.integration.test_service_accounts import SERVICE, service_job


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


def test_a_verification_code_agrees_with_the_command_line(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    page = new_page()
    bob = browser_account(sqlite_server, tmp_path, page, "bob")
    note = tmp_path / "note.txt"
    note.write_text("bonjour\n")
    send_from_browser(page, sqlite_server, alice.email, [note])  # bob's browser pins alice

    page.get_by_role("link", name="Keys").click()
    page.get_by_role("button", name=f"Verify with {alice.email}").click()
    shown = page.locator("pre.code")
    expect(shown).to_be_visible(timeout=30_000)
    code = " ".join(shown.inner_text().split())
    assert code == shown_code(alice, bob)  # the same digits on both sides
    alice.ok("keys", "verify", bob.email, "--code", code)

    typed = page.get_by_label(f"The code {alice.email} reads to you")
    typed.fill(code.replace("0", "1", 1))
    page.get_by_role("button", name="The codes match").click()
    expect(page.get_by_text("This is not the code computed here")).to_be_visible()
    typed.fill(code)
    page.get_by_role("button", name="The codes match").click()
    expect(page.get_by_role("row", name=alice.email)).to_contain_text("verified")
    expect(page.get_by_role("row", name=alice.email)).not_to_contain_text("not yet verified")
    listed = {p["email"]: p["verified"] for p in alice.ok("keys", "list", "--json").json()}
    assert listed[bob.email] is True


def test_a_service_accounts_transfer_is_marked(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    bob = browser_account(sqlite_server, tmp_path, page, "bob")
    job = service_job(sqlite_server, tmp_path)
    export = tmp_path / "results.csv"
    export.write_text("patient;result\n")
    job.send(export, to=bob.email)
    page.get_by_role("link", name="Inbox").click()
    entry = page.get_by_role("listitem").filter(has_text="results.csv")
    expect(entry).to_contain_text(f"From {SERVICE} service", timeout=30_000)


def test_a_browser_approves_and_removes_the_accounts_other_devices(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    alice = browser_account(sqlite_server, tmp_path, page, "alice")
    laptop = User(alice.email, tmp_path / "home-laptop", sqlite_server)
    laptop.ok("login", sqlite_server.url, "--email", alice.email)
    made = laptop.ok("keys", "init")
    fingerprint = made.stdout.split("fingerprint:", 1)[1].strip()
    device = device_of(laptop)

    page.get_by_role("link", name="Keys").click()
    row = page.get_by_role("row").filter(has_text=device)
    expect(row).to_contain_text("waits for approval", timeout=30_000)
    expect(row).to_contain_text(fingerprint)
    row.get_by_role("button", name="Approve").click()
    expect(row).to_contain_text("Compare the fingerprint")
    row.get_by_label("The new device shows this fingerprint").check()
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("row").filter(has_text=device)).to_contain_text("active")
    listed = {d["device"]: d for d in laptop.ok("devices", "list", "--json").json()}
    assert listed[device]["state"] == "active"
    assert listed[device]["approved_by"] is not None

    page.get_by_role("row").filter(has_text=device).get_by_role("button", name="Remove").click()
    expect(page.get_by_role("row").filter(has_text=device)).to_contain_text("removed")
    listed = {d["device"]: d for d in laptop.ok("devices", "list", "--json").json()}
    assert listed[device]["state"] == "removed"
