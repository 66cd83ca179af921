"""pli.durations: `30s`, `15m`, `12h`, `7d`, and nothing else; times with a zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.durations import format_duration, parse_duration, parse_time
from pli.errors import IntegrityError, UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("1s", timedelta(seconds=1)),
        ("90m", timedelta(minutes=90)),
        ("9999999d", timedelta(days=9_999_999)),
        (" 7d\n", timedelta(days=7)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7",
        "d",
        "0s",
        "0d",
        "07d",
        "-1d",
        "+1d",
        "1.5h",
        "7D",
        "1w",
        "1y",
        "7 d",
        "1d2h",
        "10000000s",
        "1e3s",
        "७d",  # a Devanagari digit: \d would take it, the format must not
        "7d; rm -rf /",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert "30s" in str(info.value)  # the message shows the expected form
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=12), "12h"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=61), "61s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=59, microseconds=999_999), "59s"),
    ],
)
def test_format(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@settings(derandomize=True, max_examples=300)
@given(number=st.integers(1, 9_999_999), unit=st.sampled_from("smhd"))
def test_format_and_parse_agree(number: int, unit: str) -> None:
    delta = parse_duration(f"{number}{unit}")
    text = format_duration(delta)
    assert parse_duration(text) == delta
    # The largest unit that divides it exactly is the one written.
    assert text == format_duration(parse_duration(text))
    assert len(text) <= len(f"{number}{unit}") + 2


def _is_duration(text: str) -> bool:
    """The format restated without a regular expression: 1 to 7 ASCII digits, no leading zero,
    then one of s, m, h, d; surrounding whitespace allowed."""
    text = text.strip()
    number, unit = text[:-1], text[-1:]
    return (
        unit in {"s", "m", "h", "d"}
        and 1 <= len(number) <= 7
        and number.isascii()
        and number.isdigit()
        and not number.startswith("0")
    )


@settings(derandomize=True, max_examples=1000)
@given(
    text=st.text(max_size=20)
    | st.from_regex(r"\s*[+-]?[0-9\u0660-\u0669]{0,9}[smhdSMHDwy]?\s*", fullmatch=True)
)
def test_any_text_is_a_duration_or_a_usage_error(text: str) -> None:
    """Whatever a client sends as `expires_in`: a usage error, or a duration it really wrote."""
    try:
        delta = parse_duration(text)
    except UsageError:
        assert not _is_duration(text)
        return
    assert _is_duration(text)
    assert timedelta(seconds=1) <= delta <= timedelta(days=9_999_999)
    assert parse_duration(format_duration(delta)) == delta


def test_times_of_documents_need_a_zone() -> None:
    assert parse_time("2026-11-28T12:00:00Z") == datetime(2026, 11, 28, 12, tzinfo=UTC)
    for bad in ("2026-11-28T12:00:00", "yesterday", "", 5, None):
        with pytest.raises(IntegrityError, match="the answer holds"):
            parse_time(bad, "the answer")
