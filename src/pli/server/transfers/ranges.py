"""HTTP range requests for blob downloads (RFC 9110, sections 13.1.5 and 14).

One range is served: `bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX` answers 206 with
`Content-Range`. A header the server does not act on is ignored and the whole blob is sent
(200), as RFC 9110 allows: another unit, a malformed header, and more than one range (answered
as S3 does, rather than with a `multipart/byteranges` body no pli client asks for). A single
range that starts past the end, or an empty suffix, is unsatisfiable: 416 with
`Content-Range: bytes */SIZE`.

The entity tag names the stored blob, which never changes once written: a blob replaced
under the same file gets another tag. `If-Range` with anything but that exact strong tag (an
older tag, a weak one, a date) sends the whole blob, so a resumed download never joins the
bytes of two different blobs.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

_RANGE = re.compile(r"bytes[ \t]*=[ \t]*([0-9]{0,30})-([0-9]{0,30})[ \t]*", re.ASCII | re.I)


class ByteRange(NamedTuple):
    start: int
    stop: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


class UnsatisfiableRangeError(Exception):
    """The request's only range lies outside the blob."""


def etag(blob_key: str) -> str:
    """A strong entity tag for a stored blob: derived from its random, immutable key without
    revealing it."""
    digest = hashlib.sha256(b"pli blob etag\x00" + blob_key.encode("ascii")).hexdigest()
    return f'"{digest[:32]}"'


def requested_range(
    header: str | None, size: int, *, if_range: str | None, current_etag: str
) -> ByteRange | None:
    """The part of a blob of `size` bytes to send, or None for all of it.

    Raises UnsatisfiableRangeError for a single range wholly past the end."""
    if header is None:
        return None
    if if_range is not None and if_range.strip() != current_etag:
        return None  # the validator is stale, weak or a date: the whole, current blob
    return parse_range(header, size)


def parse_range(header: str, size: int) -> ByteRange | None:
    match = _RANGE.fullmatch(header)
    if match is None:
        return None  # another unit, several ranges, or malformed: ignored
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # invalid, so ignored (RFC 9110, 14.1.1)
        if start >= size:
            raise UnsatisfiableRangeError
        return ByteRange(start, min(int(last) + 1, size) if last else size)
    if not last:
        return None  # "bytes=-" is not a range
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise UnsatisfiableRangeError
    return ByteRange(max(0, size - suffix), size)
