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


class _Inflater:
    __slots__ = ("_d", "_raw_deflate_tried", "_wbits")

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._d = zlib.decompressobj(wbits)
        self._raw_deflate_tried = wbits != zlib.MAX_WBITS

    def inflate(self, data: bytes, room: int) -> tuple[bytes, bytes]:
        """At most ``room`` bytes inflated from ``data``, and the input left over."""
        try:
            out = self._d.decompress(data, room)
        except zlib.error:
            if self._raw_deflate_tried:
                raise
            # "deflate" is sent both with a zlib header and without (raw): try the other.
            self._raw_deflate_tried = True
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._d.decompress(data, room)
        return out, self._d.unconsumed_tail

    def end(self) -> bytes:
        return self._d.flush()


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
