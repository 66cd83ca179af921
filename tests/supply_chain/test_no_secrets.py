"""No secret in the repository: private keys and pli tokens are found wherever they hide.

Every file of the working tree is scanned (a superset of what is tracked, so a key is caught
before it is committed), except build and cache directories. tests/vectors/ is allowed, and with
it the one spec that quotes its vectors' secret keys (a share link's fragment is a secret key):
they are the published test vectors of docs/spec/, generated for that purpose and never used for
anything else.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {
    ".git",
    ".venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "__pycache__",
    "node_modules",
    "pli-data",
}
# Deliberate test keys, with the reason they are allowed (reviewed like code).
ALLOWED = {
    Path("tests/vectors"): "normative test vectors: keys made for docs/spec/ examples only",
    Path("docs/spec/links.md"): "quotes tests/vectors/links: a link's fragment is its secret key",
}
SECRETS = {
    "age private key": re.compile(rb"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}"),
    "PEM private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "pli session or API token": re.compile(rb"pli[st]_[A-Za-z0-9_-]{40,}"),
}


def _scanned(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if any(relative.is_relative_to(allowed) for allowed in ALLOWED):
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def find_secrets(root: Path) -> list[str]:
    found = []
    for path in _scanned(root):
        data = path.read_bytes()
        for kind, pattern in SECRETS.items():
            if pattern.search(data):
                found.append(f"{path.relative_to(root)}: {kind}")
    return found


def test_no_secret_in_the_repository() -> None:
    scanned = _scanned(ROOT)
    assert any(p.name == "pyproject.toml" for p in scanned)  # the scan really ran over the tree
    assert find_secrets(ROOT) == []


def test_allowed_places_exist_and_hold_what_they_are_allowed_for() -> None:
    """An allowance for a place that no longer needs it is removed, not left to rot."""
    for place in ALLOWED:
        path = ROOT / place
        assert path.exists(), place
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        contents = b"".join(p.read_bytes() for p in files)
        assert SECRETS["age private key"].search(contents), place


def test_the_scanner_finds_each_kind(tmp_path: Path) -> None:
    # Built at run time, so that this file does not hold what it looks for.
    samples = {
        "age private key": "AGE-SECRET-KEY-1" + "Q" * 58,
        "PEM private key": "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
        "pli session or API token": "pli" + "t_" + "a1B2-_" * 8,
    }
    for kind, text in samples.items():
        (tmp_path / f"{kind.replace(' ', '-')}.txt").write_text(f"x = '{text}'\n")
    (tmp_path / "tests" / "vectors").mkdir(parents=True)
    (tmp_path / "tests" / "vectors" / "keys.json").write_text(samples["age private key"])
    found = find_secrets(tmp_path)
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted(samples)
    assert not any(f.startswith("tests/vectors") for f in found)
