"""Text bound for a terminal, from anywhere: a sender, the server, a path a user typed."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """`text` made unable to drive the terminal: control and format characters (escape
    sequences, line breaks, right-to-left overrides) become "?"."""
    return "".join("?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text)
