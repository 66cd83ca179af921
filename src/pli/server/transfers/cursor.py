"""Listing cursors: where the next page of an inbox or outbox starts.

A cursor is the position (created_at, id) of the last transfer of a page, with the box it
belongs to, as base64url. Clients treat it as opaque. It is no secret and grants nothing: a
page is only ever read from the caller's own transfers, strictly before that position, so a
made-up cursor, or one copied from another user, can only move where the caller's own
listing resumes; nothing is looked up by the id it holds.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pli.errors import UsageError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LENGTH = 128  # a real cursor is about 70 characters
_TEXT = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN = re.compile(r"(inbox|outbox):(0|[1-9][0-9]{0,17}):([0-9a-f]{32})")
MALFORMED = "this cursor is malformed: pass the next_cursor of a previous listing unchanged"


@dataclass(frozen=True)
class Position:
    box: str
    created_at: datetime
    id: str


def encode(position: Position) -> str:
    micros = (position.created_at - EPOCH) // timedelta(microseconds=1)
    plain = f"{position.box}:{micros}:{position.id}".encode("ascii")
    return base64.urlsafe_b64encode(plain).rstrip(b"=").decode("ascii")


def decode(text: str, box: str) -> Position:
    """The position `text` holds, for a listing of `box`; a UsageError (400) for anything a
    listing did not hand out, byte for byte."""
    if len(text) > MAX_LENGTH or not _TEXT.fullmatch(text):
        raise UsageError(MALFORMED)
    try:
        plain = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UsageError(MALFORMED) from exc
    match = _PLAIN.fullmatch(plain)
    if match is None:
        raise UsageError(MALFORMED)
    if match[1] != box:
        raise UsageError(f"this cursor continues the {match[1]}, not the {box}")
    try:
        position = Position(box, EPOCH + timedelta(microseconds=int(match[2])), match[3])
    except OverflowError as exc:
        raise UsageError(MALFORMED) from exc
    if encode(position) != text:  # one spelling per position: no padding, no stray bits
        raise UsageError(MALFORMED)
    return position
