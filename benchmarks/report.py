"""One table for the whole suite: every figure beside its reference, the ratio, the target."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    part: str
    figure: str
    pli: str
    reference: str
    ratio: str = ""  # "1.35x": pli's speed over the reference's (higher is better for pli)
    target: str = ""
    met: bool | None = None  # None: no target, or the figure is pending


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


def throughput(size: int, duration: float) -> str:
    return f"{size / 1e6 / duration:.0f} MB/s"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table(rows: Iterable[Row]) -> str:
    """A Markdown table (a "|" inside a cell is escaped)."""
    lines = [
        "| part | figure | pli | reference | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.part, r.figure, r.pli, r.reference, r.ratio, r.target, _verdict(r.met)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


LEGEND = (
    "Ratios are pli's speed over the reference's (the reference's time over pli's): above 1, "
    "pli is faster. Times and rates are medians of alternating rounds after a warm-up round."
)
