"""pli.server.transfers.ranges: which bytes a download answers with (RFC 9110, 13.1.5 and 14)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.server.transfers.ranges import (
    ByteRange,
    UnsatisfiableRangeError,
    etag,
    parse_range,
    requested_range,
)

SIZE = 1000
TAG = etag("0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=0-999", ByteRange(0, 1000)),
        ("bytes=10-99", ByteRange(10, 100)),
        ("bytes=990-5000", ByteRange(990, 1000)),  # the last position is clamped
        ("bytes=999-", ByteRange(999, 1000)),
        ("bytes=0-", ByteRange(0, 1000)),
        ("bytes=-1", ByteRange(999, 1000)),
        ("bytes=-10", ByteRange(990, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),  # a suffix longer than the blob: all of it
        ("Bytes=5-6", ByteRange(5, 7)),  # the unit is case-insensitive
        ("bytes=007-8", ByteRange(7, 9)),
    ],
)
def test_a_single_range(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",  # several ranges: the whole blob, as S3 does
        "bytes=0-1, 5-6",
        "bytes=-",
        "bytes=",
        "bytes=5-4",  # last before first: invalid, so ignored
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=\u0661-2",  # a digit, but not an ASCII one
        "items=0-1",  # another unit
        "0-1",
        "",
        "bytes=1" + "0" * 40 + "-",  # absurdly long numbers
    ],
)
def test_what_is_ignored_gets_the_whole_blob(header: str) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header", ["bytes=1000-", "bytes=1000-1000", "bytes=5000-6000", "bytes=-0"]
)
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRangeError):
        parse_range(header, SIZE)


def test_an_empty_blob_has_no_satisfiable_range() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-1"):
        with pytest.raises(UnsatisfiableRangeError):
            parse_range(header, 0)


def test_if_range_needs_the_exact_strong_tag() -> None:
    assert requested_range("bytes=5-", SIZE, if_range=TAG, current_etag=TAG) == ByteRange(5, SIZE)
    assert requested_range("bytes=5-", SIZE, if_range=None, current_etag=TAG) == ByteRange(5, SIZE)
    for stale in ('"0000"', f"W/{TAG}", "Wed, 21 Oct 2015 07:28:00 GMT", TAG.strip('"'), ""):
        assert requested_range("bytes=5-", SIZE, if_range=stale, current_etag=TAG) is None
    # If-Range without Range is ignored; so is a stale If-Range with an unsatisfiable range.
    assert requested_range(None, SIZE, if_range=TAG, current_etag=TAG) is None
    assert requested_range("bytes=5000-", SIZE, if_range='"x"', current_etag=TAG) is None


def test_the_etag_is_strong_stable_and_reveals_nothing_of_the_key() -> None:
    key = "0123456789abcdef0123456789abcdef"
    assert etag(key) == etag(key) == TAG
    assert etag(key) != etag("f" * 32)
    assert TAG.startswith('"')
    assert TAG.endswith('"')
    assert not TAG.startswith("W/")
    assert key not in TAG


def test_content_range() -> None:
    assert ByteRange(10, 100).content_range(SIZE) == "bytes 10-99/1000"


@given(header=st.text(max_size=60), size=st.integers(min_value=0, max_value=1 << 40))
def test_any_header_gives_a_range_inside_the_blob_or_a_clean_answer(header: str, size: int) -> None:
    try:
        part = parse_range(header, size)
    except UnsatisfiableRangeError:
        return
    if part is not None:
        assert 0 <= part.start < part.stop <= size


@given(
    first=st.integers(min_value=0, max_value=5000),
    length=st.integers(min_value=0, max_value=5000),
    size=st.integers(min_value=0, max_value=3000),
)
def test_ranges_agree_with_slicing(first: int, length: int, size: int) -> None:
    blob = bytes(range(256)) * 12
    blob = blob[:size]
    try:
        part = parse_range(f"bytes={first}-{first + length}", size)
    except UnsatisfiableRangeError:
        assert first >= size
        return
    assert part is not None
    assert blob[part.start : part.stop] == blob[first : first + length + 1]
