"""The web app: its one page and its assets, as `web/build.mjs` wrote them into `dist/`.

The build is read whole when the app is created (`load`), so a request never becomes a file
path: an asset is looked up by name in what `assets.json` listed, and each asset's bytes are
checked against the SHA-384 listed there, which is also what the page's Subresource Integrity
attributes name. A build made while the server runs is served from the next start.

The page is served at `/`, `/app`, `/app/...`, and at the addresses of share links (`/l/{id}`)
and file requests (`/r/{id}`), the same bytes whatever the path: the app reads its route from
the address itself, and nothing from the request is echoed. Without a build, `/l/` and `/r/`
keep the command-line instructions of `pli.server.landing`, and the app's own addresses answer
503 with how to build it.

Pages and assets carry the app's content security policy (see docs/security.md): an asset too,
because a worker runs under the policy its script was served with. The service worker that
streams downloads is the one asset served under a fixed address, `/sw.js`, revalidated on every
use (browsers look for its updates there). Cross-origin isolation
(COOP and COEP) is what lets the app measure its own memory use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from pli.errors import ConfigError
from pli.server import landing, problems

DIST = Path(__file__).parent / "dist"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; frame-src 'self'; manifest-src 'self'; "
    "form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; "
    "trusted-types pli-worker"
)
ISOLATION = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
}
IMMUTABLE = "public, max-age=31536000, immutable"  # asset names change with their bytes
SERVICE_WORKER = "sw.js"  # the one asset whose name stays: served at /sw.js, never cached
NOT_BUILT = (
    "the web app is not built: run `make web` (it needs Node.js and npm), then restart pli serve"
)
_HTML = "text/html; charset=utf-8"
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_TYPES = frozenset({"text/javascript; charset=utf-8", "text/css; charset=utf-8"})


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Build:
    """A whole build, in memory: the page and every asset by name."""

    page: bytes
    assets: Mapping[str, Asset]


def load(dist: Path) -> Build | None:
    """The build in `dist`, or None when there is none (no `index.html`, which a build writes
    last). A build that is there but incomplete or altered stops the server: serving it would
    give browsers a page whose scripts they refuse."""
    index = dist / "index.html"
    if not index.is_file():
        return None
    listed = _listed(dist)
    assets = {name: _asset(dist, name, entry) for name, entry in listed.items()}
    return Build(index.read_bytes(), assets)


def _broken(dist: Path, what: str) -> ConfigError:
    return ConfigError(f"the web app in {dist} is broken ({what}): rebuild it with `make web`")


def _listed(dist: Path) -> dict[str, Any]:
    try:
        listed = json.loads((dist / "assets.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise _broken(dist, "no readable assets.json") from exc
    if not isinstance(listed, dict):
        raise _broken(dist, "assets.json is not an object")
    return listed


def _asset(dist: Path, name: str, entry: Any) -> Asset:
    if not _ASSET_NAME.match(name) or not isinstance(entry, dict):
        raise _broken(dist, f"assets.json lists {name!r} oddly")
    if entry.get("type") not in _TYPES:
        raise _broken(dist, f"{name} has no known content type")
    try:
        body = (dist / "assets" / name).read_bytes()
    except OSError as exc:
        raise _broken(dist, f"{name} is missing") from exc
    if entry.get("sha384") != integrity(body):
        raise _broken(dist, f"{name} does not match its SHA-384")
    return Asset(body, str(entry["type"]))


def integrity(body: bytes) -> str:
    """The Subresource Integrity value of `body`, as the page and `assets.json` name it."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def router(build: Build | None) -> APIRouter:
    """The routes of the web app: its page and assets when built, else the fallbacks."""
    routes = APIRouter(include_in_schema=False)
    page = _serve_page(build.page) if build else _not_built
    for path in ("/", "/app", "/app/{rest:path}"):
        routes.add_api_route(path, page, methods=["GET"])
    if build:
        routes.add_api_route("/l/{link_id}", page, methods=["GET"])
        routes.add_api_route("/r/{request_id}", page, methods=["GET"])
    else:
        routes.include_router(landing.router)
    routes.add_api_route("/assets/{name}", _serve_assets(build), methods=["GET"])
    routes.add_api_route("/sw.js", _serve_service_worker(build), methods=["GET"])
    return routes


def _serve_page(body: bytes) -> Callable[[], Response]:
    def page() -> Response:
        headers = {"content-security-policy": CSP, **ISOLATION, "cache-control": "no-store"}
        return Response(body, media_type=_HTML, headers=headers)

    return page


def _not_built() -> Response:
    return problems.problem(503, "Service Unavailable", NOT_BUILT)


def _serve_assets(build: Build | None) -> Callable[[str], Response]:
    assets: Mapping[str, Asset] = build.assets if build else {}

    def asset(name: str) -> Response:
        found = assets.get(name) if name != SERVICE_WORKER else None
        if found is None:
            raise HTTPException(404, "no such asset")
        return _script(found, IMMUTABLE)

    return asset


def _serve_service_worker(build: Build | None) -> Callable[[], Response]:
    """The service worker that streams downloads (web/src/sw.ts), at the one address it keeps."""
    found = build.assets.get(SERVICE_WORKER) if build else None

    def service_worker() -> Response:
        if found is None:
            raise HTTPException(404, "no service worker in this build")
        return _script(found, "no-cache")

    return service_worker


def _script(asset: Asset, cache: str) -> Response:
    headers = {"content-security-policy": CSP, **ISOLATION, "cache-control": cache}
    return Response(asset.body, media_type=asset.media_type, headers=headers)
