"""File names from a sender are hostile until made safe: the recipient must never write
outside the output directory, over an existing file, or under a deceptive name."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200  # below every common filesystem's 255, leaving room for " (n)"
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}
# Separator look-alikes that NFKC leaves alone (DIVISION SLASH, FRACTION SLASH, BIG SOLIDUS,
# BIG REVERSE SOLIDUS, SET MINUS): harmless to the filesystem, deceptive to a person.
_SEPARATORS = frozenset("/\\\u2215\u2044\u29f8\u29f9\u2216")


def safe_name(name: str) -> str:
    # NFKC folds look-alikes such as FULLWIDTH SOLIDUS into the separators they imitate,
    # which are then replaced like the real ones and the look-alikes NFKC keeps.
    text = unicodedata.normalize("NFKC", name)
    text = "".join("_" if ch in _SEPARATORS else ch for ch in text)
    # Control and format characters (NUL, newlines, right-to-left overrides) are dropped.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    text = _truncate(text.strip(" ."))
    # Checked after truncating, which can turn "CON   ….txt" into "CON.txt".
    if text.split(".")[0].upper() in _RESERVED or text.startswith("-"):
        # A device name on Windows; never mistaken for an option by a shell command.
        text = _truncate("_" + text)
    return text or "file"


def _truncate(text: str) -> str:
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = text, ""
    suffix = f".{ext}" if ext else ""
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return cut.rstrip(" .") + suffix


def place(temp: Path, directory: Path, name: str) -> Path:
    """Move `temp` into `directory` under `safe_name(name)` without ever replacing a file:
    a hard link fails if the name exists, so a taken name gets " (1)", " (2)"…"""
    base = safe_name(name)
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    for n in range(10_000):
        candidate = base if n == 0 else f"{stem} ({n})" + (f".{ext}" if ext else "")
        target = directory / candidate
        try:
            os.link(temp, target)
        except FileExistsError:
            continue
        temp.unlink()
        return target
    raise FileExistsError(f"too many files named {base} in {directory}")
