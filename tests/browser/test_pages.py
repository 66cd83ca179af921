"""Every page of the web app, in English and in French: a screenshot of each saved as a test
artifact (desktop and 360 px wide), no serious or critical accessibility violation (axe-core),
nothing wider than a 360 px screen, and the main path usable with the keyboard alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.conftest import axe_violations, screenshot
from tests.integration.conftest import PASSWORD, Server, User, make_user

NewPage = Callable[..., Page]
PASSPHRASE = "a long passphrase typed in the browser"
NARROW: ViewportSize = {"width": 360, "height": 740}
WIDE: ViewportSize = {"width": 1280, "height": 800}


def settle(page: Page) -> None:
    """Wait until nothing on the page is still loading or opening."""
    page.wait_for_function(
        "() => !/Loading…|Chargement…|Opening…|Ouverture…/.test(document.body.innerText)",
        timeout=60_000,
    )


def check(page: Page, name: str, lang: str) -> None:
    """Screenshots at both widths, axe, and no horizontal scrolling at 360 px."""
    settle(page)
    screenshot(page, name, lang)
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)[:4000]
    page.set_viewport_size(NARROW)
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} is {overflow}px wider than a 360px screen"
    screenshot(page, f"{name}-360", lang)
    page.set_viewport_size(WIDE)


def nav(page: Page, path: str) -> None:
    page.locator(f'header nav a[href="{path}"]').click()


def scenario(server: Server, tmp: Path, lang: str) -> tuple[User, User, dict[str, str]]:
    alice = make_user(server, tmp, f"alice-{lang}")
    bob = make_user(server, tmp, f"bob-{lang}", keys=False)
    report = tmp / "résultats.csv"
    report.write_text("nom;resultat\nDUPONT;NEGATIF\n")
    link = alice.ok("link", "create", str(report), "--json").json()["url"]
    request = alice.ok("request", "create", "--title", "Bilan", "--json").json()["url"]
    return alice, bob, {"link": link, "request": request, "file": str(report)}


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_page(sqlite_server: Server, tmp_path: Path, new_page: NewPage, lang: str) -> None:
    alice, bob, made = scenario(sqlite_server, tmp_path, lang)
    page = new_page("fr-FR" if lang == "fr" else "en-US", bypass_csp=True)
    page.set_viewport_size(WIDE)
    page.goto("/app/inbox")
    check(page, "signin", lang)
    page.locator("input[name=email]").fill(bob.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[name=new-passphrase]")).to_be_visible(timeout=30_000)
    check(page, "create-keys", lang)
    page.locator("input[name=new-passphrase]").fill(PASSPHRASE)
    page.locator("input[name=repeat-passphrase]").fill(PASSPHRASE)
    page.locator("input[name=login-password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page.locator("header nav")).to_be_visible(timeout=60_000)

    sent = alice.send(Path(made["file"]), to=bob.email, extra=("--message", "Bonjour Bob"))
    nav(page, "/app/outbox")
    nav(page, "/app/inbox")
    expect(page.get_by_text("Bonjour Bob")).to_be_visible(timeout=30_000)
    check(page, "inbox", lang)
    page.locator(f'a[href="/app/t/{sent}"]').click()
    expect(page.locator("code.fingerprint")).to_be_visible(timeout=30_000)
    check(page, "transfer", lang)
    for path, name in [
        ("/app/send", "send"),
        ("/app/outbox", "outbox"),
        ("/app/links", "links"),
        ("/app/requests", "requests"),
        ("/app/security", "security"),  # opens without unlocked keys: not the last one
        ("/app/keys", "keys"),
    ]:
        nav(page, path)
        expect(page.locator("main h1")).to_be_visible()
        if name == "security":  # once the account's second factors are shown
            expect(page.locator("dl.facts")).to_be_visible(timeout=30_000)
        check(page, name, lang)
    page.reload()
    expect(page.locator("input[name=passphrase]")).to_be_visible(timeout=30_000)
    check(page, "unlock", lang)

    guest = new_page("fr-FR" if lang == "fr" else "en-US", bypass_csp=True)
    guest.set_viewport_size(WIDE)
    guest.goto(made["link"])
    check(guest, "link", lang)
    guest.locator("form button[type=submit]").click()
    expect(guest.locator("ul.files li")).to_be_visible(timeout=30_000)
    check(guest, "link-opened", lang)
    guest.goto(made["request"])
    expect(guest.locator("input[type=file]")).to_be_attached(timeout=30_000)
    check(guest, "request", lang)
    guest.goto("/app/no-such-page")
    check(guest, "not-found", lang)


def test_sign_in_and_reach_send_with_the_keyboard_alone(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob", keys=False)
    page = new_page()
    page.goto("/app/signin")

    def tab_to(selector: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("input[name=email]")
    page.keyboard.type(bob.email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("input[name=new-passphrase]")).to_be_visible(timeout=30_000)
    tab_to("input[name=new-passphrase]")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=60_000)
    tab_to('a[href="/app/send"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Send files")).to_be_visible()
    tab_to("input[name=recipients]")
    visible_focus = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert visible_focus != "none"
