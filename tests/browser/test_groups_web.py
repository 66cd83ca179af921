"""Groups and the key log audit in the web app: the directory offers groups, a browser send to
`group:ORG/GROUP` reaches every member its signed history proves, a member whose keys changed
stops it until the sender goes on without them, and "Check my keys in the key log" finds nothing
for a normal account and names a key the server slipped in."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_transfers import NewPage, browser_account, send_from_browser
from tests.integration.conftest import Server, User, make_user
from tests.integration.test_key_log import fabricate_device

GROUP = "ars-idf/veille"


def new_group(server: Server, founder: User, *members: User) -> None:
    """Group GROUP, founded by `founder`, who adds `members` with the CLI."""
    org = GROUP.split("/", maxsplit=1)[0]
    made = server.admin("create-org", org, "--name", "ARS Île-de-France")
    assert made.returncode == 0, made.stderr
    made = server.admin(
        "create-group", GROUP, "--title", "Veille sanitaire", "--founder", founder.email
    )
    assert made.returncode == 0, made.stderr
    for member in members:
        founder.ok("groups", "add", GROUP, member.email)


def note(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_browser_send_to_a_group_reaches_its_members(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    anne, bruno = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "bruno"))
    new_group(sqlite_server, anne, bruno)
    page = new_page()
    browser_account(sqlite_server, tmp_path, page, "lab")

    # the directory offers the group, and its organisation to go on typing
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill("ars-i")
    options = page.locator("#known-recipients option")
    expect(options).to_have_count(2, timeout=10_000)
    offered = sorted(str(option.get_attribute("value")) for option in options.all())
    assert offered == ["group:ars-idf/", f"group:{GROUP}"]

    cases = note(tmp_path, "cas.csv", "cas groupés\n")
    transfer = send_from_browser(page, sqlite_server, f"group:{GROUP}", [cases])
    for member in (anne, bruno):
        out = tmp_path / f"got-{member.email.split('@')[0]}"
        member.ok("get", transfer, "-o", str(out))
        assert (out / "cas.csv").read_text(encoding="utf-8") == "cas groupés\n"
    assert transfer in bruno.ok("inbox", "--json").stdout

    # a member's keys change behind the sender's back: the send stops and names him; the
    # sender goes on without him, and only the others receive it
    device = fabricate_device(sqlite_server, bruno.email, logged=True)
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill(f"group:{GROUP}")
    page.locator("input[type=file]").set_input_files([str(note(tmp_path, "suite.csv", "suite"))])
    page.get_by_role("button", name="Encrypt and send").click()
    expect(page.get_by_text(f"the keys of {bruno.email}, a member of group {GROUP}")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text(f"Device {device}")).to_be_visible()
    page.get_by_role("button", name=f"Send without {bruno.email}").click()
    expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_be_visible(
        timeout=60_000
    )
    page.get_by_role("link", name="Open").click()
    later = page.url.rsplit("/", 1)[1]
    anne.ok("get", later, "-o", str(tmp_path / "anne-later"))
    assert (tmp_path / "anne-later" / "suite.csv").read_text(encoding="utf-8") == "suite"
    assert bruno.run("get", later, "-o", str(tmp_path / "bruno-later")).returncode != 0


def test_the_keys_audit_finds_no_unknown_key_for_a_normal_account(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    lab = browser_account(sqlite_server, tmp_path, page, "lab")
    page.get_by_role("link", name="Keys").click()
    page.get_by_role("button", name="Check my keys in the key log").click()
    expect(page.get_by_text("No unknown keys")).to_be_visible(timeout=60_000)

    # a key the server makes up for the account is named, and again at the next audit
    device = fabricate_device(sqlite_server, lab.email, logged=True)
    for _ in range(2):
        page.get_by_role("button", name="Check my keys in the key log").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "none of your known devices made or approved", timeout=60_000
        )
        expect(page.get_by_text(f"device-published of device {device}")).to_be_visible()
