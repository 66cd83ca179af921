"""A group change signed by a device the server made up for an administrator, logged in the key
log and at once marked removed so that it is never handed out with her keys, is refused by the
web app as `pli` refuses it (tests/integration/test_groups.py): a browser that sent to the group
before, and so pinned the group and its administrator's keys, stops the next send and shows why,
on the send page and on the group's page; nothing reaches the account slipped in."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_groups_web import GROUP, new_group, note
from tests.browser.test_transfers import NewPage, browser_account, send_from_browser
from tests.integration.conftest import Server, make_user
from tests.integration.test_groups import _slip_in

SLOW = 60_000  # proving a group reads the key log and checks every signature


def test_a_signer_the_server_made_up_and_logged_is_refused_in_the_browser(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    anne, mallory = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "mallory"))
    page = new_page()
    lab = browser_account(sqlite_server, tmp_path, page, "lab")
    new_group(sqlite_server, anne, lab)

    # a first send pins the group and anne's keys
    first = send_from_browser(page, sqlite_server, f"group:{GROUP}", [note(tmp_path, "a.csv", "a")])
    anne.ok("get", first, "-o", str(tmp_path / "anne-got"))
    assert (tmp_path / "anne-got" / "a.csv").read_text(encoding="utf-8") == "a"

    _slip_in(sqlite_server, mallory.email, logged_device=True)
    refusal = f"of {anne.email}, which this browser never saw among {anne.email}'s keys"

    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill(f"group:{GROUP}")
    page.locator("input[type=file]").set_input_files([str(note(tmp_path, "b.csv", "b"))])
    page.get_by_role("button", name="Encrypt and send").click()
    alert = page.get_by_role("alert").filter(has_text=refusal)
    expect(alert).to_be_visible(timeout=SLOW)
    expect(alert).to_contain_text("Nothing was sent.")
    expect(alert).to_contain_text(f"Change 2 of group {GROUP} is signed by device")
    expect(alert).to_contain_text("Send nothing to this group")
    expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_have_count(0)

    # the group's page shows the same refusal, and no members
    page.get_by_role("link", name="Groups").click()
    page.get_by_role("link", name=GROUP).click()
    expect(page.get_by_role("alert").filter(has_text=refusal)).to_be_visible(timeout=SLOW)
    expect(page.locator("table.members")).to_have_count(0)

    assert mallory.ok("inbox", "--json").json() == []
