"""The web app's routes, in process, on a small build made here: which addresses serve the page,
the headers of pages and assets, only listed assets, never an echo of the request, the fallbacks
without a build, and builds that are refused at start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pli.errors import ConfigError
from pli.server import webapp
from pli.server.app import create_app
from pli.server.config import Settings
from pli.server.security import DEFAULT_CSP, harden

SCRIPT = b"document.getElementById('app').textContent = 'pli';\n"
STYLE = b"body { margin: 0 }\n"
JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
ASSETS = {"app-0123456789abcdef.js": (SCRIPT, JS), "app-fedcba9876543210.css": (STYLE, CSS)}
PAGE = b"""<!doctype html>
<html lang="en"><head><title>pli</title>
<link rel="stylesheet" href="/assets/app-fedcba9876543210.css">
<script type="module" src="/assets/app-0123456789abcdef.js"></script>
</head><body><div id="app"></div></body></html>
"""
PAGES = ["/", "/app", "/app/", "/app/inbox", "/app/t/some/deeper/path", "/l/abc", "/r/abc"]


def make_dist(root: Path, assets: dict[str, tuple[bytes, str]] = ASSETS) -> Path:
    """A build as web/build.mjs writes it."""
    (root / "assets").mkdir(parents=True)
    listed = {}
    for name, (body, media_type) in assets.items():
        (root / "assets" / name).write_bytes(body)
        listed[name] = {"sha384": webapp.integrity(body), "type": media_type}
    (root / "assets.json").write_text(json.dumps(listed))
    (root / "index.html").write_bytes(PAGE)
    return root


def get_all(settings: Settings, *paths: str) -> list[httpx.Response]:
    """GET each path from the app as `pli serve` runs it (hardened)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=harden(create_app(settings), settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://pli") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(run())


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", web_dist=make_dist(tmp_path / "dist"))


@pytest.fixture
def not_built(tmp_path: Path) -> Settings:
    (tmp_path / "empty").mkdir()
    return Settings(data_dir=tmp_path / "data", web_dist=tmp_path / "empty")


def test_the_page_is_served_wherever_the_app_answers(built: Settings) -> None:
    for path, page in zip(PAGES, get_all(built, *PAGES), strict=True):
        assert page.status_code == 200, path
        assert page.content == PAGE, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == webapp.CSP
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert page.headers["cross-origin-embedder-policy"] == "require-corp"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"  # still the server's own headers


def test_nothing_from_the_request_is_echoed(built: Settings) -> None:
    hostile = ["/l/<img src=x onerror=alert(1)>", "/app/%3Cimg%20src=x%3E?q=<b>", "/r/x?y=z"]
    pages = get_all(built, *hostile)
    assert [page.content for page in pages] == [PAGE] * len(hostile)


def test_the_policy_is_the_apps() -> None:
    directives = dict(d.strip().split(" ", 1) for d in webapp.CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["require-trusted-types-for"] == "'script'"
    assert directives["trusted-types"] == "pli-worker"
    assert directives["frame-ancestors"] == directives["base-uri"] == "'none'"
    assert directives["frame-src"] == "'self'"  # the service worker's download frame only


def test_the_service_worker_keeps_its_address_and_is_revalidated(tmp_path: Path) -> None:
    worker = b"self.addEventListener('fetch', () => {});\n"
    dist = make_dist(tmp_path / "dist", {**ASSETS, webapp.SERVICE_WORKER: (worker, JS)})
    settings = Settings(data_dir=tmp_path / "data", web_dist=dist)
    served, as_asset = get_all(settings, "/sw.js", f"/assets/{webapp.SERVICE_WORKER}")
    assert served.status_code == 200
    assert served.content == worker
    assert served.headers["content-type"] == JS
    assert served.headers["cache-control"] == "no-cache"  # browsers look for updates here
    assert served.headers["content-security-policy"] == webapp.CSP
    assert as_asset.status_code == 404  # never cached for good under another name


def test_a_build_without_a_service_worker_has_none(built: Settings) -> None:
    (answer,) = get_all(built, "/sw.js")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_listed_assets_are_served_for_good(built: Settings) -> None:
    names = list(ASSETS)
    for name, answer in zip(names, get_all(built, *(f"/assets/{n}" for n in names)), strict=True):
        body, media_type = ASSETS[name]
        assert answer.status_code == 200
        assert answer.content == body
        assert answer.headers["content-type"] == media_type
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-security-policy"] == webapp.CSP  # a worker's policy
        assert answer.headers["cross-origin-embedder-policy"] == "require-corp"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app-0000000000000000.js",
        "/assets/",
        "/assets/..%2f..%2fpyproject.toml",
        "/assets/%2e%2e/x",
        "/assets/..%2fassets.json",
        "/assets/..%5cindex.html",
        "/assets/assets.json",
        "/assets.json",
        "/index.html",
    ],
)
def test_anything_else_under_assets_is_not_found(built: Settings, path: str) -> None:
    (answer,) = get_all(built, path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_without_a_build_the_app_says_how_to_build_it(not_built: Settings) -> None:
    for answer in get_all(not_built, "/", "/app", "/app/inbox"):
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert "make web" in answer.json()["detail"]
    for kind, command in (("l", "pli link get"), ("r", "pli request send")):
        (landing,) = get_all(not_built, f"/{kind}/abc")
        assert landing.status_code == 200
        assert command in landing.text
        assert landing.headers["content-security-policy"] == DEFAULT_CSP
    (asset,) = get_all(not_built, f"/assets/{next(iter(ASSETS))}")
    assert asset.status_code == 404


def test_the_apps_routes_are_not_in_the_api_document(built: Settings) -> None:
    paths = create_app(built).openapi()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/app", "/assets", "/l/", "/r/"))]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda dist: (dist / "assets.json").unlink(), "no readable assets.json"),
        (lambda dist: (dist / "assets.json").write_text("[]"), "not an object"),
        (lambda dist: (dist / "assets" / "app-0123456789abcdef.js").unlink(), "missing"),
        (lambda dist: (dist / "assets" / "app-fedcba9876543210.css").write_bytes(b"x"), "SHA-384"),
    ],
)
def test_a_damaged_build_stops_the_server(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    dist = make_dist(tmp_path / "dist")
    damage(dist)
    with pytest.raises(ConfigError, match=message):
        webapp.load(dist)


@pytest.mark.parametrize("name", ["../index.html", ".hidden.js", "a/b.js", ""])
def test_a_listed_name_is_never_a_path(tmp_path: Path, name: str) -> None:
    dist = make_dist(tmp_path / "dist")
    listed = json.loads((dist / "assets.json").read_text())
    listed[name] = {"sha384": webapp.integrity(PAGE), "type": JS}
    (dist / "assets.json").write_text(json.dumps(listed))
    with pytest.raises(ConfigError, match="oddly"):
        webapp.load(dist)


def test_an_unknown_content_type_is_refused(tmp_path: Path) -> None:
    dist = make_dist(tmp_path / "dist", {"page-0000000000000000.html": (PAGE, "text/html")})
    with pytest.raises(ConfigError, match="content type"):
        webapp.load(dist)


def test_the_build_is_found_in_the_package_or_pli_web_dist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Path(webapp.__file__).parent / "dist" == webapp.DIST
    monkeypatch.delenv("PLI_WEB_DIST", raising=False)
    assert Settings.from_env(tmp_path).web_dist is None
    monkeypatch.setenv("PLI_WEB_DIST", str(tmp_path))
    assert Settings.from_env(tmp_path).web_dist == tmp_path
    monkeypatch.setenv("PLI_WEB_DIST", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="PLI_WEB_DIST"):
        Settings.from_env(tmp_path)
