"""Builds the web app (web/) into the package when a wheel or sdist install is made without it.

Everything else about the package is in pyproject.toml. An editable install (`make dev`) serves
the web app from the source tree, where `make web` builds it, so nothing is built for it here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# setuptools has no type information in every environment
from setuptools import setup  # type: ignore[import-untyped, unused-ignore]
from setuptools.command.build_py import build_py  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).parent
WEB = ROOT / "web"
BUILT = ROOT / "src" / "pli" / "server" / "webapp" / "dist" / "index.html"


class BuildWithWebApp(build_py):  # type: ignore[misc, unused-ignore]
    """`build_py` that first builds the web app, which a wheel must carry, when it is missing."""

    def run(self) -> None:
        if not BUILT.is_file() and not getattr(self, "editable_mode", False):
            build_web_app()
        super().run()


def build_web_app() -> None:
    """`npm ci` then `npm run build` in web/, as `make web` does."""
    if not (WEB / "package.json").is_file():
        raise SystemExit(f"pli's web app is not built and its sources are not in {WEB}")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "pli's web app is not built and npm is not installed: install Node.js and npm "
            "(Debian: apt-get install npm), or build it elsewhere with `make web` first"
        )
    for args in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        subprocess.run([npm, *args], cwd=WEB, check=True)


setup(cmdclass={"build_py": BuildWithWebApp})
