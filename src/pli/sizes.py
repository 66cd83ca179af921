"""Sizes as every pli interface writes them: `1048576`, `500K`, `20M`, `2G`, `1T` (powers of
1024)."""

from __future__ import annotations

import re

from pli.errors import UsageError

_SIZE = re.compile(r"([1-9][0-9]{0,12})([KMGT]?)(?:i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"invalid size {text!r}: write it like 500M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def format_size(size: int) -> str:
    """`size` as `parse_size` reads it, in the largest unit that divides it exactly."""
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)
