"""JSON decoding under the library's limits: nesting depth, number length, valid Unicode.

Every JSON document the library decodes goes through here: API response bodies, webhook
bodies, and JSON sent inside a string field (``Data``, ``Properties``, ``Content``). A document
that breaks a limit raises :class:`JSONLimitError` (a ``ValueError``) saying which, and each
caller turns it into its own typed error (``InvalidResponseError``, ``WebhookParseError``,
``DecodeError``), always before the interpreter's recursion limit is reached:

- nesting deeper than ``max_depth`` (:data:`DEFAULT_MAX_DEPTH`, 256) arrays and objects;
- a number longer than the interpreter's int-digits limit (4,300 digits by default);
- a string holding a lone UTF-16 surrogate (``"\\ud800"`` not followed by its low half, or
  surrogate code points encoded as bytes), text no UTF-8 encoder can write back out.

The depth check costs nothing for a body that cannot be that deep (fewer ``[`` and ``{`` than
the limit: almost every response) and a few passes in C over the others.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import re
from array import array
from typing import Any

from ._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "JSONLimitError",
    "check",
    "current_max_depth",
    "loads",
    "MaxDepth",
    "nesting_depth",
]

#: How many arrays and objects deep a JSON document (or an XML webhook) may nest.
DEFAULT_MAX_DEPTH = 256


class JSONLimitError(ValueError):
    """A JSON document breaks one of the decoding limits (depth, number length, Unicode)."""


# -- escapes ---------------------------------------------------------------------------------

_FEW = 64  # escapes looked at one by one; a body with more takes the regular expressions
# Single bytes are searched for as ints: "92 in data" is a memchr, "b'\\' in data" is not.
_BACKSLASH = 0x5C
_QUOTE = 0x22


def _escapes(data: bytes) -> list[int] | None:
    """Where each escape's backslash is (as JSON pairs them, left to right), found with
    ``find`` (memchr); None when there are more than a few, for the regex path instead."""
    found: list[int] = []
    find = data.find
    i = find(_BACKSLASH)
    while i != -1:
        if len(found) == _FEW:
            return None
        found.append(i)
        i = find(_BACKSLASH, i + 2)  # the escaped character is not a backslash of its own
    return found


# -- depth -----------------------------------------------------------------------------------

# An escaped quote or backslash inside a string (scanned left to right, so "\\\\\"" pairs up
# as JSON reads it); no other escape can hide or fake a quote or a bracket.
_QUOTE_ESCAPES = re.compile(rb'\\[\\"]')
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_BRACES = bytes.maketrans(b"{}", b"[]")
_SIGNED = bytes.maketrans(b"[]", b"\x01\xff")  # +1 and -1 as signed bytes
_PEEL_ROUNDS = 12
_CHUNK = 4096
_BIG = 16 * 1024


def _without_escaped_quotes(data: bytes, found: list[int] | None) -> bytes:
    if found is None:
        return _QUOTE_ESCAPES.sub(b"", data)
    end = len(data) - 1
    hidden = [i for i in found if i < end and data[i + 1] == _QUOTE]
    if not hidden:
        return data
    buffer = bytearray(data)
    for i in hidden:
        buffer[i + 1] = 0x20
    return bytes(buffer)


def nesting_depth(data: bytes, stop: int | None = None) -> int:
    """How deep ``data``'s arrays and objects nest: exact for valid JSON, and never less than
    what a JSON decoder would recurse through before failing on anything else. Linear time;
    with ``stop``, the count ends as soon as it passes ``stop`` (and returns that depth).

    Strings are removed first, so brackets inside them do not count: escaped quotes go, the
    bytes that are neither brackets nor quotes go, then each quoted run. What remains is the
    bracket structure, peeled one level of leaves per round; a structure still there after a
    few rounds is measured by a running sum.
    """
    if _BACKSLASH in data:
        data = _without_escaped_quotes(data, _escapes(data))
    return _shape_depth(data.translate(None, _NOT_STRUCTURE), stop)


def _shape_depth(shape: bytes, stop: int | None) -> int:
    if _QUOTE in shape:
        # Two quotes side by side close one string and open the next (or open and close an
        # empty one): dropping them joins strings without moving a bracket in or out of one.
        shape = shape.replace(b'""', b"")
        if _QUOTE in shape:
            # Text that is not JSON can leave an unterminated quote: its tail is counted.
            shape = _STRING.sub(b"", shape).replace(b'"', b"")
    shape = shape.translate(_BRACES)
    rounds = 0
    while shape and rounds < _PEEL_ROUNDS:
        peeled = shape.replace(b"[]", b"")  # every innermost pair: one level
        rounds += 1
        few = (len(shape) - len(peeled)) * 8 < len(shape)  # a long chain, not a wide tree
        shape = peeled
        if few:
            break
    if not shape:
        return rounds
    # Deeper than the peeling went (or unbalanced): the highest running sum of what is left,
    # a chunk at a time so that a document far too deep is refused after its first chunk.
    level = deepest = 0
    signed = shape.translate(_SIGNED)
    for start in range(0, len(signed), _CHUNK):
        chunk = array("b", signed[start : start + _CHUNK])
        deepest = max(deepest, max(itertools.accumulate(chunk, initial=level)))
        if stop is not None and rounds + deepest > stop:
            break
        level += sum(chunk)
    return rounds + deepest


def _check_depth(data: bytes, max_depth: int, found: list[int] | None) -> None:
    # Each level needs a "[" or "{": a body with fewer cannot be too deep (most small ones).
    # Escaped quotes do not change that count; they are neutralised only for the real count,
    # and first for a big body, which nearly always has more brackets than the limit.
    big = len(data) > _BIG
    if big and found != []:
        data = _without_escaped_quotes(data, found)
    shape = data.translate(None, _NOT_STRUCTURE)
    if len(shape) - shape.count(_QUOTE) <= max_depth:
        return
    if not big and found != []:
        unescaped = _without_escaped_quotes(data, found)
        if unescaped is not data:
            shape = unescaped.translate(None, _NOT_STRUCTURE)
    if _shape_depth(shape, max_depth) > max_depth:
        raise JSONLimitError(f"JSON nested deeper than the limit of {max_depth} levels")


# -- lone surrogates -------------------------------------------------------------------------

# Every escape that is not a lone surrogate: a high+low pair, a \u that is no surrogate, any
# other escaped character. Once they are gone, a "\u" left over starts a lone surrogate.
_GOOD_ESCAPES = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u(?![dD][89a-fA-F])|[^u])"
)
_HIGH = frozenset(b"89abAB")
_LOW = frozenset(b"cdefCDEF")
_D = frozenset(b"dD")
_SURROGATE_HEADS = frozenset((b"ud", b"uD"))
_U = 0x75


def _lone_surrogate(data: bytes, found: list[int] | None) -> bool:
    if found is None:
        if b"\\ud" not in data and b"\\uD" not in data:
            return False
        return b"\\u" in _GOOD_ESCAPES.sub(b"", data)
    paired = -1  # where the low half of the last pair starts
    for i in found:
        if data[i + 1 : i + 3] not in _SURROGATE_HEADS:
            continue
        head = data[i + 1 : i + 4]  # b"ud8" for a high half
        if len(head) < 3:
            return True  # cut off: the decoder refuses it anyway
        if head[2] in _HIGH:
            tail = data[i + 6 : i + 10]  # b"\\udc" for its low half
            if (
                len(tail) < 4
                or tail[0] != _BACKSLASH
                or tail[1] != _U
                or tail[2] not in _D
                or tail[3] not in _LOW
            ):
                return True
            paired = i + 6
        elif head[2] in _LOW and i != paired:
            return True
    return False


def check(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise :class:`JSONLimitError` if ``data`` (UTF-8 JSON) is nested deeper than
    ``max_depth`` or escapes a lone surrogate. Run before decoding; costs a length test and a
    ``memchr`` for the usual small body."""
    found = _escapes(data) if _BACKSLASH in data else []
    if len(data) > max_depth:
        _check_depth(data, max_depth, found)
    if found != [] and _lone_surrogate(data, found):
        raise JSONLimitError(
            "JSON string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its "
            "other half), which is not text"
        )


def guarded_decode(decode: Any, text: str) -> Any:
    """``decode(text)`` with the interpreter's own limits as :class:`JSONLimitError`."""
    try:
        return decode(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:  # only with a max_depth beyond what the interpreter can nest
        raise JSONLimitError("JSON nested deeper than the interpreter can decode") from None
    except ValueError as exc:  # the int-digits limit: "Exceeds the limit (4300 digits)..."
        raise JSONLimitError(f"JSON number too long: {exc}") from None


def to_utf8(data: bytes | str) -> tuple[bytes, str]:
    """``data`` as UTF-8 bytes and as text, refusing what is not valid Unicode (json.loads
    itself lets surrogate code points through, both as bytes and in a ``str``)."""
    if isinstance(data, str):
        try:
            return data.encode(), data
        except UnicodeEncodeError:
            raise JSONLimitError("JSON text holds a lone UTF-16 surrogate") from None
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        try:
            data.decode(encoding, "surrogatepass")  # what json.loads accepts
        except UnicodeDecodeError:
            raise  # not text at all: json.loads refuses it the same way
        raise JSONLimitError("JSON text holds UTF-16 surrogates encoded as bytes") from None
    return (data if encoding.startswith("utf-8") else text.encode()), text


def loads(data: bytes | str, *, max_depth: int | None = None) -> Any:
    """``json.loads(data)`` under the limits (``max_depth`` defaults to the current scope's,
    see :func:`MaxDepth`). Raises ``json.JSONDecodeError`` for text that is not JSON
    and :class:`JSONLimitError` for a broken limit, both ``ValueError``."""
    raw, text = to_utf8(data)
    check(raw, current_max_depth() if max_depth is None else max_depth)
    return guarded_decode(json.loads, text)


# -- the depth in force ----------------------------------------------------------------------

# JSON inside string fields is decoded deep inside the model decoders; the depth given to the
# outer call (parse_event's max_depth, say) reaches them through this context variable, set
# for the duration of that call only.
_MAX_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar(
    "commbox_max_depth", default=DEFAULT_MAX_DEPTH
)


def current_max_depth() -> int:
    return _MAX_DEPTH.get()


class MaxDepth:
    """``with MaxDepth(n):`` decodes nested JSON under depth ``n`` (None: unchanged)."""

    __slots__ = ("_depth", "_token")

    def __init__(self, max_depth: int | None) -> None:
        if max_depth is not None and (type(max_depth) is not int or max_depth < 1):
            raise ConfigurationError(f"max_depth must be a positive int, got {max_depth!r}")
        self._depth = max_depth
        self._token: contextvars.Token[int] | None = None

    def __enter__(self) -> None:
        if self._depth is not None:
            self._token = _MAX_DEPTH.set(self._depth)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _MAX_DEPTH.reset(self._token)
            self._token = None
