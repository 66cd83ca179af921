"""Passkeys in the web app, with Chromium's own WebAuthn stack and a virtual authenticator (the
DevTools protocol's, which stands for the platform's): enrolled from the security page, then
asked for at sign-in; a recovery code instead; removed with the passkey itself.

WebAuthn needs a domain for its relying party (an IP address is refused), so these pages use
`localhost`, which Chromium maps to the server's 127.0.0.1 (conftest.CHROMIUM_ARGS)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import CDPSession, Page, expect

from tests.browser.test_transfers import browser_account
from tests.integration.conftest import PASSWORD, Server

NewPage = Callable[..., Page]
Q = "\u2019"  # the French apostrophe


def localhost(server: Server) -> str:
    return server.url.replace("127.0.0.1", "localhost")


def authenticator(page: Page) -> tuple[CDPSession, str]:
    """A virtual platform authenticator for `page`, which says yes at once (user present and
    verified): the session and the authenticator's id."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options: dict[str, Any] = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])


def credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    return list(found["credentials"])


def sign_out(page: Page) -> None:
    """Sign out, and wait until the app has: it ends the session, then shows the sign-in page.
    Leaving the page before that could leave the session open."""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email")).to_be_visible(timeout=30_000)


def sign_in_form(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/app/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_passkey_is_enrolled_then_asked_for_at_sign_in(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    base = localhost(sqlite_server)
    page = new_page()
    cdp, device = authenticator(page)
    ana = browser_account(sqlite_server, tmp_path, page, "ana", base=base)

    page.get_by_role("link", name="Security").click()
    expect(page.get_by_text("No passkey yet.")).to_be_visible()
    page.get_by_label("Name").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Passkey “Laptop” added.")).to_be_visible(timeout=30_000)
    recovery = page.locator(".codes li code").all_inner_texts()
    assert len(recovery) == 10
    expect(page.get_by_role("row", name="Laptop")).to_be_visible()
    (stored,) = credentials(cdp, device)
    assert stored["rpId"] == "localhost"

    # signing in again asks for the passkey after the password, and it is enough
    sign_out(page)
    sign_in_form(page, base, ana.email)
    expect(page.get_by_role("alert")).to_contain_text("Use your passkey")
    page.get_by_role("button", name="Use my passkey").click()
    expect(page).to_have_url(f"{base}/app/unlock", timeout=30_000)
    assert credentials(cdp, device)[0]["signCount"] > stored["signCount"]

    # elsewhere, without the passkey, a recovery code signs in once
    other = new_page()
    sign_in_form(other, base, ana.email)
    expect(other.get_by_role("alert")).to_contain_text("Use your passkey")
    other.get_by_label("Code from your authenticator app").fill(recovery[0])
    other.get_by_role("button", name="Sign in").click()
    expect(other).to_have_url(f"{base}/app/unlock", timeout=30_000)
    sign_out(other)
    sign_in_form(other, base, ana.email)
    other.get_by_label("Code from your authenticator app").fill(recovery[0])
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("alert")).to_contain_text("the code is wrong (a code works once)")


def test_a_passkey_is_removed_with_a_passkey(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    base = localhost(sqlite_server)
    page = new_page()
    cdp, device = authenticator(page)
    bea = browser_account(sqlite_server, tmp_path, page, "bea", base=base)
    page.get_by_role("button", name="Afficher en français").click()
    page.get_by_role("link", name="Sécurité").click()
    page.get_by_label("Nom").fill("Clé USB")
    page.get_by_role("button", name=f"Ajouter une clé d{Q}accès").click()
    expect(page.get_by_text(f"Clé d{Q}accès « Clé USB » ajoutée.")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Retirer Clé USB").click()
    expect(page.get_by_text(f"Clé d{Q}accès « Clé USB » supprimée.")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(f"Aucune clé d{Q}accès pour l{Q}instant.")).to_be_visible()
    assert len(credentials(cdp, device)) == 1  # the device keeps it; the server no longer knows it

    # with no second factor left, the password alone signs in again
    page.get_by_role("button", name="Se déconnecter").click()
    # Signed out once the app shows its sign-in page: leaving before could keep the session.
    expect(page.get_by_label("Adresse électronique")).to_be_visible(timeout=30_000)
    page.goto(f"{base}/app/signin")
    page.get_by_label("Adresse électronique").fill(bea.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/app/unlock", timeout=30_000)
