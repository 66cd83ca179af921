"""The web app's shell against the real `pli serve`: the page loads wherever the app answers,
cross-origin isolated and without a console error; its headers; Subresource Integrity on every
script and style sheet; an inline script is refused; only built assets are served; and without
a build, the landing pages stay and the app says how to build it."""

from __future__ import annotations

import base64
import hashlib
import http.client
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Route, expect

from pli.server.webapp import CSP, IMMUTABLE, ISOLATION
from tests.browser.conftest import Pages, axe_violations, screenshot
from tests.integration.conftest import Server, start_server, stop_server

LINK = "l" * 32
PAGES = ("/", "/app", "/app/anything/deeper", f"/l/{LINK}", f"/r/{'r' * 32}")


class Subresources(HTMLParser):
    """Every script and style sheet a page loads: (URL, integrity)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.found.append((named.get("src") or "inline", named.get("integrity")))
        elif tag == "link" and named.get("rel") == "stylesheet":
            self.found.append((named.get("href") or "", named.get("integrity")))


def subresources(page: str) -> list[tuple[str, str | None]]:
    parser = Subresources()
    parser.feed(page)
    return parser.found


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


@pytest.mark.parametrize("path", PAGES)
def test_the_app_loads_everywhere_it_answers(
    web_server: Server, new_page: Pages, path: str
) -> None:
    page = new_page()
    answer = page.goto(f"{path}#a-fragment-the-server-never-sees")
    assert answer is not None
    assert answer.status == 200
    page.wait_for_load_state("load")
    assert page.evaluate("crossOriginIsolated") is True  # COOP and COEP, as the app needs
    expect(page.locator("#app > *").first).to_be_attached()  # its script ran: integrity held


@pytest.mark.parametrize(("locale", "lang"), [("en-US", "en"), ("fr-FR", "fr")])
def test_the_app_loads_in_each_language(new_page: Pages, locale: str, lang: str) -> None:
    page = new_page(locale)
    page.goto("/")
    page.wait_for_load_state("load")
    assert screenshot(page, "shell", lang).stat().st_size > 0


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_the_first_page_has_no_serious_accessibility_violation(
    new_page: Pages, locale: str
) -> None:
    page = new_page(locale, bypass_csp=True)  # for axe's script only
    page.goto("/")
    page.wait_for_load_state("load")
    assert axe_violations(page) == []


def test_pages_and_assets_carry_the_apps_headers(web_server: Server) -> None:
    with httpx.Client(base_url=web_server.url, timeout=10) as http:
        pages = [http.get(path) for path in PAGES]
        assets = [http.get(url) for url, _ in subresources(pages[0].text)]
    assert len({page.content for page in pages}) == 1  # the same bytes at every address
    for answer in pages + assets:
        assert answer.status_code == 200, answer.url
        assert answer.headers["content-security-policy"] == CSP
        for name, value in ISOLATION.items():
            assert answer.headers[name] == value
        assert answer.headers["x-content-type-options"] == "nosniff"
    for page in pages:
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"] == "text/html; charset=utf-8"
    for asset in assets:
        assert asset.headers["cache-control"] == IMMUTABLE
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css"))


def test_every_script_and_style_sheet_has_a_matching_integrity(web_server: Server) -> None:
    with httpx.Client(base_url=web_server.url, timeout=10) as http:
        found = subresources(http.get("/").text)
        kinds = {url.rsplit(".", 1)[-1] for url, _ in found}
        assert kinds == {"js", "css"}
        for url, integrity in found:
            assert url.startswith("/assets/"), url
            assert integrity == sri(http.get(url).content), url


def test_an_injected_inline_script_is_refused(new_page: Pages) -> None:
    """Script text made in the page (an element's text, a string for setTimeout) never runs:
    Trusted Types refuse it, and say so on the console. (`page.evaluate` itself is exempt from
    the policy, as the browser's developer tools are: the attempts below are the page's own.)"""
    page = new_page()
    page.goto("/")
    page.wait_for_load_state("load")
    outcome = page.evaluate(
        """() => {
            const violations = [];
            document.addEventListener("securitypolicyviolation", (event) => {
                violations.push(event.violatedDirective);
            });
            const attempts = [];
            for (const inject of [
                (script) => { script.textContent = "window.__pliInjected = true"; },
                (script) => { script.append("window.__pliInjected = true"); },
            ]) {
                const script = document.createElement("script");
                try {
                    inject(script);
                    document.body.append(script);
                    attempts.push("appended");
                } catch (error) {
                    attempts.push(error.name);
                }
            }
            try {
                setTimeout("window.__pliInjected = true", 0); // a string: eval, later
                attempts.push("scheduled");
            } catch (error) {
                attempts.push(error.name);
            }
            return new Promise((resolve) => setTimeout(() => resolve({
                ran: window.__pliInjected === true, violations, attempts,
            }), 200));
        }"""
    )
    assert outcome["ran"] is False, outcome
    assert outcome["violations"], outcome
    assert new_page.take_errors(page), "the refusals are reported on the console"


def test_an_inline_script_in_the_markup_is_refused(new_page: Pages) -> None:
    """A script written into the page as it travels (what an injection in the HTML would be)
    is refused by `script-src 'self'` alone: Trusted Types do not cover the parser's scripts."""
    page = new_page()

    def inject(route: Route) -> None:
        served = route.fetch()
        tainted = served.text().replace("<head>", "<head><script>window.__pliInjected = 1</script>")
        route.fulfill(response=served, body=tainted)

    page.route(f"{new_page.base_url}/app/tainted", inject)
    page.goto("/app/tainted")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pliInjected") is None
    refused = new_page.take_errors(page)
    assert any("inline script" in error for error in refused), refused


def test_api_refusals_are_not_errors_but_missing_assets_are(new_page: Pages) -> None:
    """What `new_page` counts as an error: an API's 401 is an answer the app shows, a missing
    asset is a broken page."""
    page = new_page()
    page.goto("/")
    page.wait_for_load_state("load")
    statuses = page.evaluate(
        """async () => [
            (await fetch("/api/v1/me")).status,
            (await fetch("/assets/app-0000000000000000.js")).status,
        ]"""
    )
    assert statuses == [401, 404]
    for _ in range(100):  # console messages arrive on their own, in order
        if new_page.errors[page]:
            break
        page.wait_for_timeout(20)
    (error,) = new_page.take_errors(page)
    assert "404" in error
    assert "/assets/app-0000000000000000.js" in error


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app-0000000000000000.js",
        "/assets/",
        "/assets/..%2f..%2fpyproject.toml",
        "/assets/%2e%2e/x",
        "/assets/%2e%2e%2fpyproject.toml",
        "/assets/..%5c..%5cpyproject.toml",
        "/assets/../index.html",
        "/assets/assets.json",
        "/assets.json",
        "/index.html",
    ],
)
def test_only_built_assets_are_served(web_server: Server, path: str) -> None:
    """Sent byte for byte (an HTTP library would tidy the path up first)."""
    host, port = web_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        assert answer.status == 404, path
        assert answer.getheader("content-type") == "application/problem+json"
    finally:
        connection.close()


def test_without_a_build_the_landing_pages_stay(tmp_path: Path) -> None:
    empty = tmp_path / "no-web-app"
    empty.mkdir()
    server = start_server(tmp_path, None, {"PLI_WEB_DIST": str(empty)})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for path in ("/", "/app", "/app/inbox"):
                answer = http.get(path)
                assert answer.status_code == 503, path
                assert "make web" in answer.json()["detail"]
            landing = http.get(f"/l/{LINK}")
            assert http.get("/assets/app-0000000000000000.js").status_code == 404
    finally:
        stop_server(server)
    assert landing.status_code == 200
    assert "pli link get" in landing.text
    assert "<script" not in landing.text
