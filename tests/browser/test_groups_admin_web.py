"""Administering a group from the web app: its founder opens it by name, adds members (the
first change also signs the founder in, as administrator) and removes one, each change signed in
the browser; the command line's replay then proves exactly those members, so the browser's
signatures are the ones `pli` accepts. A member who is not an administrator is shown the members
and nothing to change them with; both views pass axe in English and in French."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_groups_web import GROUP, new_group
from tests.browser.test_pages import check
from tests.browser.test_transfers import NewPage, browser_account, browser_user
from tests.integration.conftest import (
    CHEAP_PASSPHRASE,
    PASSWORD,
    Server,
    User,
    escrow_cheap_keys,
    make_user,
)

SLOW = 60_000  # proving a group reads the key log and checks every signature


def add_member(page: Page, email: str, *, admin: bool = False) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    if admin:
        page.get_by_label("Administrator").check()
    page.get_by_role("button", name="Add", exact=True).click()


def shown_members(page: Page) -> dict[str, str]:
    """The members the group's page shows, as it proved them: email -> role."""
    rows = page.locator("table.members tbody tr").all()
    return {row.locator("th").inner_text(): row.locator("td").first.inner_text() for row in rows}


def test_a_founder_adds_and_removes_members_from_the_browser(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    lab = make_user(sqlite_server, tmp_path, "lab")
    bruno = browser_user(sqlite_server, tmp_path, "bruno")  # an account is enough to be added
    chloe = make_user(sqlite_server, tmp_path, "chloe")
    page = new_page()
    anne = browser_account(sqlite_server, tmp_path, page, "anne")
    new_group(sqlite_server, anne)

    # not a member of anything yet: the founder opens the group by its name
    page.get_by_role("link", name="Groups").click()
    expect(page.get_by_text("You belong to no group yet.")).to_be_visible(timeout=SLOW)
    page.get_by_label("Group name").fill(f"group:{GROUP}")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name=f"Group {GROUP}")).to_be_visible()
    expect(page.get_by_text("empty: its founder has not added anyone yet")).to_be_visible(
        timeout=SLOW
    )
    expect(page.locator("dl.facts")).to_contain_text(anne.email)
    expect(page.get_by_text("adding its first member also adds you")).to_be_visible()

    add_member(page, bruno.email)
    expect(page.get_by_text(f"{bruno.email} is now a member of {GROUP}.")).to_be_visible(
        timeout=SLOW
    )
    assert shown_members(page) == {anne.email: "administrator", bruno.email: "member"}
    add_member(page, chloe.email, admin=True)
    expect(page.get_by_text(f"{chloe.email} is now an administrator of {GROUP}.")).to_be_visible(
        timeout=SLOW
    )
    page.get_by_role("button", name=f"Remove {chloe.email}").click()
    expect(page.get_by_text(f"{chloe.email} is no longer a member of {GROUP}.")).to_be_visible(
        timeout=SLOW
    )
    assert shown_members(page) == {anne.email: "administrator", bruno.email: "member"}

    # the server's refusal is shown as the server said it, and nothing changed
    add_member(page, "nobody@example.org")
    expect(page.get_by_role("alert")).to_contain_text(
        "there is no account for nobody@example.org", timeout=SLOW
    )

    # the command line replays the browser's four signed changes to the same members
    shown = lab.ok("groups", "show", GROUP, "--json").json()
    assert shown["members"] == {anne.email: "admin", bruno.email: "member"}
    assert shown["founder"] == anne.email
    assert shown["seq"] == 3
    digest = page.locator("dl.facts code").inner_text().rstrip("…")
    assert len(digest) == 16
    assert shown["history"].startswith(digest)

    # the group is now in the founder's list, as its administrator
    page.get_by_role("link", name="All your groups").click()
    listed = page.locator("table.groups tbody tr")
    expect(listed).to_have_count(1, timeout=SLOW)
    expect(listed.get_by_role("link", name=GROUP)).to_be_visible()
    expect(listed).to_contain_text("administrator")

    # forgetting the group drops its pins: the next look pins its history anew
    listed.get_by_role("link", name=GROUP).click()
    expect(page.locator("table.members")).to_be_visible(timeout=SLOW)
    assert page.evaluate(f"localStorage.getItem('pli:group-name:{GROUP}')") is not None
    page.get_by_role("button", name="Forget this group").click()
    asked = page.get_by_text(f"Forget what this browser remembers of group {GROUP}?")
    expect(asked).to_be_visible()
    page.get_by_role("button", name="Yes, forget it").click()
    expect(page.get_by_text(f"This browser forgot group {GROUP}")).to_be_visible()
    expect(page.get_by_text(f"First look at group {GROUP} from this browser")).to_be_visible(
        timeout=SLOW
    )

    # the send page still offers the organisation, and then the groups in it
    page.get_by_role("link", name="Send files").click()
    page.get_by_label("Recipients").fill("ars-i")
    options = page.locator("#known-recipients option")
    expect(options).to_have_count(2, timeout=10_000)
    page.get_by_label("Recipients").fill("group:ars-idf/")
    expect(options).to_have_count(1, timeout=10_000)
    assert options.first.get_attribute("value") == f"group:{GROUP}"


def sign_in_cheap(page: Page, user: User) -> None:
    """Sign `user` in and unlock its cheap escrowed keys, in whatever language the page is."""
    page.goto("/app/groups")
    page.locator("input[name=email]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.locator("input[name=passphrase]").fill(CHEAP_PASSPHRASE)
    page.locator("form button[type=submit]").click()
    expect(page.locator("main table.groups")).to_be_visible(timeout=SLOW)


def test_members_see_the_group_and_only_administrators_change_it(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    anne = make_user(sqlite_server, tmp_path, "anne")
    bruno, chloe = (make_user(sqlite_server, tmp_path, n, keys=False) for n in ("bruno", "chloe"))
    for user in (bruno, chloe):
        escrow_cheap_keys(user)
    new_group(sqlite_server, anne, bruno, chloe)
    anne.ok("groups", "add", GROUP, chloe.email, "--admin")
    expected = {anne.email: "administrator", bruno.email: "member", chloe.email: "administrator"}

    # a member: the proved members, the history, and no control to change them
    page = new_page(bypass_csp=True)  # for axe
    sign_in_cheap(page, bruno)
    expect(page.locator("table.groups tbody tr")).to_contain_text("member")
    check(page, "groups", "en")
    page.get_by_role("link", name=GROUP).click()
    expect(page.locator("table.members")).to_be_visible(timeout=SLOW)
    assert shown_members(page) == expected
    expect(page.get_by_role("heading", name="Add a member")).to_have_count(0)
    expect(page.locator("input[name=member-email]")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.get_by_role("button", name="Forget this group")).to_be_visible()
    check(page, "group-member", "en")

    # an administrator, in French: the form and a button per member
    page = new_page("fr-FR", bypass_csp=True)
    sign_in_cheap(page, chloe)
    check(page, "groups", "fr")
    page.get_by_role("link", name=GROUP).click()
    expect(page.get_by_role("heading", name="Ajouter un membre")).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("button", name="Retirer")).to_have_count(3)
    expect(page.get_by_role("button", name="Oublier ce groupe")).to_be_visible()
    check(page, "group-admin", "fr")
