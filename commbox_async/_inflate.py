"""A response body's Content-Encoding undone with a bound on what it may grow to.

httpx inflates each chunk it reads whole, so a few kilobytes of nested gzip become gigabytes
before any size check can see them. Here the raw bytes are inflated at most ``limit + 1``
bytes at a time (zlib's ``max_length``), so the body stops at the limit whatever it inflates
to. Only what the client asks for (``Accept-Encoding: gzip, deflate``) is accepted, one layer
of it: a response that stacks encodings or uses another is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping

__all__ = ["ACCEPT_ENCODING", "BadEncoding", "inflater", "read_inflated"]

#: What the client tells CommBox it can decode.
ACCEPT_ENCODING = "gzip, deflate"


class BadEncoding(Exception):
    """A body whose Content-Encoding is not one this client decodes, or is corrupt."""

    def __init__(self, status: int, headers: Mapping[str, str], problem: str) -> None:
        super().__init__(problem)
        self.status = status
        self.headers = headers
        self.problem = problem


#: How far into a "deflate" body zlib may read without output before it is taken to be
#: zlib-wrapped (its header is two bytes): the bytes kept to decode again as raw are bounded.
_HEADER_ROOM = 64


class _Inflater:
    """One body's decoder. A gzip body may be several members (RFC 1952), read one after the
    other; after a zlib or raw deflate stream's end nothing may follow. A stream that never
    ends (cut off) is corrupt, as is anything zlib refuses."""

    __slots__ = ("_d", "_fed", "_gzip", "_started")

    def __init__(self, wbits: int) -> None:
        self._gzip = wbits != zlib.MAX_WBITS
        self._d = zlib.decompressobj(wbits)
        #: "deflate" is sent both with a zlib header and without (raw): the bytes fed before
        #: the first output, to decode again from the start as raw deflate if zlib refuses
        #: them (None once that can no longer be the case).
        self._fed: bytearray | None = None if self._gzip else bytearray()
        self._started = False

    def inflate(self, data: bytes, room: int) -> tuple[bytes, bytes]:
        """At most ``room`` bytes inflated from ``data``, and the input left over."""
        if data:
            self._started = True
        fed = self._fed
        if fed is not None:
            fed += data
        try:
            out = self._d.decompress(data, room)
        except zlib.error:
            if fed is None:
                raise
            self._fed = None
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._d.decompress(bytes(fed), room)
        if out or (self._fed is not None and len(self._fed) > _HEADER_ROOM):
            self._fed = None
        left = self._d.unconsumed_tail
        if self._d.eof and self._d.unused_data:
            if not self._gzip:
                raise zlib.error("data after the end of the compressed stream")
            # The next member: zlib would otherwise keep every further byte in unused_data,
            # joined again on each call.
            left = self._d.unused_data
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return out, left

    def end(self) -> bytes:
        out = self._d.flush()
        if self._started and not self._d.eof:
            raise zlib.error("the compressed stream is cut off before its end")
        return out


def inflater(headers: Mapping[str, str], status: int) -> _Inflater | None:
    """The decoder a response's Content-Encoding needs (None for none, or ``identity``)."""
    value = headers.get("content-encoding")
    if not value:
        return None
    codings = [c.strip().lower() for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise BadEncoding(status, headers, f"stacked Content-Encoding {value!r}")
    if codings[0] in ("gzip", "x-gzip"):
        return _Inflater(16 + zlib.MAX_WBITS)
    if codings[0] == "deflate":
        return _Inflater(zlib.MAX_WBITS)
    raise BadEncoding(status, headers, f"Content-Encoding {value!r} (not asked for)")


async def read_inflated(
    chunks: AsyncIterator[bytes],
    decoder: _Inflater,
    limit: int | None,
    status: int,
    headers: Mapping[str, str],
    too_large: type[Exception],
) -> bytes:
    """The inflated body, raising ``too_large(status, headers, None)`` past ``limit``."""
    parts: list[bytes] = []
    total = 0
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                room = 0 if limit is None else limit - total + 1
                out, data = decoder.inflate(data, room)
                total += len(out)
                if limit is not None and total > limit:
                    raise too_large(status, headers, None)
                parts.append(out)
        out = decoder.end()
    except zlib.error as exc:
        raise BadEncoding(status, headers, f"a corrupt compressed body ({exc})") from None
    total += len(out)
    if limit is not None and total > limit:
        raise too_large(status, headers, None)
    parts.append(out)
    return b"".join(parts)
