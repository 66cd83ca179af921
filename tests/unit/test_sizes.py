from __future__ import annotations

import pytest

from pli.errors import UsageError
from pli.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("1", 1), ("500K", 500 << 10), ("20M", 20 << 20), ("2G", 2 << 30), ("1t", 1 << 40),
     (" 3GiB ", 3 << 30), ("7MB", 7 << 20)],
)  # fmt: skip
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5G", "2P", "G", "10 G", "١٢"])
def test_malformed_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)
