"""Browser fixtures: a real `pli serve` with the built web app, Chromium driven by Playwright
(sync API), pages that fail their test on any console error, screenshots and accessibility checks.

The browser is Debian's `chromium` (scripts/system-deps.sh), never one Playwright downloads; the
tests are skipped where it is not installed. The server serves the build in `PLI_WEB_DIST` when
that is set in the tests' environment, else the one `make web` writes into the package.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from pli.server import webapp
from tests.integration.conftest import Server, User, make_user, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container, and quiet: nothing fetched but what a test asks for.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # `localhost` is the server's 127.0.0.1, whatever the resolver says: the pages that need a
    # domain name (WebAuthn refuses an IP address) use it
    "--host-resolver-rules=MAP localhost 127.0.0.1",
]
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
BLOCKING = ("serious", "critical")  # the axe impacts a test fails on
# What Chromium logs for an answer of 400 to 499: from the API, a refusal the app shows.
_REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d\b")


def web_dist() -> Path:
    """The build the servers of these tests serve."""
    return Path(os.environ.get("PLI_WEB_DIST") or webapp.DIST)


def web_server_env() -> dict[str, str]:
    """`PLI_WEB_DIST` for a server (`start_server` passes on no `PLI_` variable of its own)."""
    dist = web_dist()
    if not (dist / "index.html").is_file():
        pytest.fail(f"the web app is not built in {dist}: run `make web`")
    return {"PLI_WEB_DIST": str(dist)}


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `pli serve` on SQLite serving the web app, shared by a module's tests: make
    accounts with `new_user`, whose names never collide."""
    server = start_server(tmp_path_factory.mktemp("web-server"), None, web_server_env())
    yield server
    stop_server(server)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """A real `pli serve` on SQLite serving the web app, for one test alone (a test that needs
    a server nobody else touched; `new_page` then opens its pages on this one)."""
    server = start_server(tmp_path, None, web_server_env())
    yield server
    stop_server(server)


class NewUser(Protocol):
    def __call__(self, name: str, *, keys: bool = True, admin: bool = False) -> User: ...


@pytest.fixture
def new_user(web_server: Server, tmp_path: Path) -> NewUser:
    """`new_user(name, *, keys=True, admin=False)`: an account on `web_server`, logged in with
    the CLI (whose keys are in `user.home`); its email is `NAME-RANDOM@example.org`."""

    def make(name: str, *, keys: bool = True, admin: bool = False) -> User:
        unique = f"{name}-{secrets.token_hex(3)}"
        return make_user(web_server, tmp_path, unique, keys=keys, admin=admin)

    return make


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not longer: while Playwright's sync API is open, its event
    loop counts as running in the test process, and other tests' `asyncio.run()` (Starlette's
    TestClient, anyio) would fail in the same xdist worker."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


Saving = Literal["picker", "stream", "blob"]
# How the app saves a download (web/src/app/save.ts) in a test's pages. Chromium has the File
# System Access API, whose save dialog no test can answer, so:
# - "picker": the dialog gives a file of the origin private file system instead (the same
#   FileSystemFileHandle, written the same way); `opfs_file` reads it back;
# - "stream": no File System Access API: the app streams through its service worker into a
#   download of the browser's own, which Playwright catches;
# - "blob": neither that API nor service workers: the app gathers Blobs and offers them.
SAVING: dict[str, str] = {
    "picker": """
        window.showSaveFilePicker = async ({ suggestedName }) => {
          const root = await navigator.storage.getDirectory();
          return root.getFileHandle(suggestedName, { create: true });
        };
    """,
    "stream": "delete window.showSaveFilePicker;",
    "blob": "delete window.showSaveFilePicker;",
}


def opfs_file(page: Page, name: str) -> bytes | None:
    """The file `name` that a "picker" page saved, or None if there is none."""
    found: str | None = page.evaluate(
        """async (name) => {
          const root = await navigator.storage.getDirectory();
          let file;
          try { file = await (await root.getFileHandle(name)).getFile(); } catch { return null; }
          const bytes = new Uint8Array(await file.arrayBuffer());
          let text = "";
          for (let i = 0; i < bytes.length; i += 0x8000) {
            text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          }
          return btoa(text);
        }""",
        name,
    )
    return None if found is None else base64.b64decode(found)


class Pages:
    """Opens pages on the web server, each in a fresh context (no cookies, storage or cache
    shared), and records what would go unnoticed in a browser: console errors, which include
    every content security policy and Trusted Types violation, and uncaught exceptions.

    One kind of console error is not recorded: an API answer of 400 to 499 (a wrong password,
    an expired link), which the app is there to show. Such an answer from any other address
    (a missing asset), and every 5xx, is recorded.
    """

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.errors: dict[Page, list[str]] = {}

    def __call__(
        self, locale: str = "en-US", *, bypass_csp: bool = False, saving: Saving = "stream"
    ) -> Page:
        """A new page whose relative URLs go to the server. `bypass_csp` turns the page's
        policy off, which injecting a test tool (axe) needs: never for what a test checks.
        `saving` is how the app saves downloads (see `SAVING`)."""
        context = self.browser.new_context(
            base_url=self.base_url,
            locale=locale,
            accept_downloads=True,
            bypass_csp=bypass_csp,
            service_workers="block" if saving == "blob" else "allow",
        )
        context.add_init_script(script=SAVING[saving])
        self.contexts.append(context)
        page = context.new_page()
        errors = self.errors.setdefault(page, [])
        page.on("console", lambda message: _record(errors, message))
        page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        return page

    def take_errors(self, page: Page) -> list[str]:
        """The errors `page` recorded so far, which then no longer fail the test: for a test
        that provokes them on purpose."""
        taken = list(self.errors[page])
        self.errors[page].clear()
        return taken

    def close(self) -> list[str]:
        """Closes every context; the errors no test took."""
        for context in self.contexts:
            context.close()
        return [error for errors in self.errors.values() for error in errors]


def _record(errors: list[str], message: ConsoleMessage) -> None:
    if message.type != "error":
        return
    url = message.location.get("url", "")
    if _REFUSED.match(message.text) and urlsplit(url).path.startswith("/api/"):
        return
    errors.append(f"console: {message.text} ({url})")


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """`new_page(locale="en-US" | "fr-FR", *, bypass_csp=False, saving="stream") -> Page`, on
    the test's server (`sqlite_server` if the test uses it, else `web_server`), and
    `new_page.take_errors(page)`.
    A console error or uncaught exception that no test took fails the test when it ends."""
    own = "sqlite_server" in request.fixturenames
    server: Server = request.getfixturevalue("sqlite_server" if own else "web_server")
    pages = Pages(browser, server.url)
    yield pages
    left = pages.close()
    if left:
        pytest.fail("the browser reported errors:\n" + "\n".join(left))


def screenshot(page: Page, name: str, lang: str) -> Path:
    """A full-page PNG in test-artifacts/screenshots/LANG/NAME.png, for people to look at."""
    path = SCREENSHOTS / lang / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The page must come
    from `new_page(..., bypass_csp=True)`: the policy refuses the injected script otherwise."""
    page.add_script_tag(path=AXE)
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [violation for violation in found if violation.get("impact") in BLOCKING]
