"""The CommBox envelope ``{status, description, response_time, data}`` and raw responses."""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar

import attrs

from ._exceptions import APIStatusError, InvalidResponseError, status_error_class
from ._json import DEFAULT_MAX_DEPTH, JSONLimitError, check, loads
from ._retry import parse_retry_after
from ._transport import ResponseLike

__all__ = ["APIResponse", "Envelope", "parse_response", "to_raw_response"]

T = TypeVar("T")
P = ParamSpec("P")

_SNIPPET = 200


@attrs.define
class Envelope:
    """One decoded response: HTTP facts plus the envelope's fields, before typing ``data``.
    (Internal, one per request: mutable, because a frozen class's __init__ costs more, and
    built with positional arguments, as _Call is.)"""

    http_status: int
    headers: Mapping[str, str]
    envelope_status: int | None
    description: str | None
    response_time: str | None
    data: Any
    body: Any
    elapsed: float
    attempts: int
    #: The depth limit the body was decoded under: JSON inside ``data``'s strings gets it too.
    max_depth: int = DEFAULT_MAX_DEPTH


@attrs.frozen(kw_only=True)
class APIResponse(Generic[T]):
    """What ``cb.with_raw_response.<resource>.<method>(...)`` returns: the typed value and the
    HTTP/envelope facts of the response it came from, without a second request."""

    parsed: T
    http_status: int
    headers: Mapping[str, str]
    envelope_status: int | None
    description: str | None
    response_time: str | None
    #: The whole decoded JSON body.
    json: Any
    elapsed: float
    attempts: int


#: The status texts CommBox sends, read without parsing ("200" is in nearly every envelope).
_STATUS_TEXTS = {str(code): code for code in range(100, 600)}


def _status_int(value: Any) -> int | None:
    if type(value) is int:  # not bool
        return value
    if type(value) is str:
        known = _STATUS_TEXTS.get(value)
        if known is not None:
            return known
        text = value.strip()  # the same object when there is nothing to strip, as in "200"
        # isdecimal, not isdigit: "²" is a digit that int() refuses; and no status is longer
        # than a few digits (int() refuses thousands of them)
        return int(text) if text.isdecimal() and len(text) <= 20 else None
    return None


_DECODER = json.JSONDecoder()  # what json.loads uses when given no options
_JSON_WHITESPACE = " \t\n\r"


def _loads(content: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads(content)`` under the decoding limits (see :mod:`._json`), at under half
    its cost for the usual body.

    A body is UTF-8 (RFC 8259) with nothing around the value, so it is decoded as UTF-8 and
    parsed by ``raw_decode``, skipping the encoding sniffing and the two whitespace scans.
    Anything else (a BOM, UTF-16, leading whitespace, trailing data, not JSON) goes to
    ``json.loads`` itself, so what is accepted and what is refused does not change, except
    that what breaks a limit raises :class:`JSONLimitError` (a ``ValueError`` too).
    """
    try:
        text = content.decode()
    except ValueError:  # UnicodeDecodeError: UTF-16 or 32, or not text
        return loads(content, max_depth=max_depth)
    check(content, max_depth)
    try:
        value, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):  # the standard error, a limit's, or UTF-16 that
        return loads(content, max_depth=max_depth)  # was valid UTF-8 too
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return loads(content, max_depth=max_depth)  # trailing data: the standard error
    return value


def _snippet(content: bytes) -> str:
    return content[:_SNIPPET].decode("utf-8", errors="replace")


def _envelope_fields(envelope: dict[str, Any] | None) -> tuple[int | None, str | None]:
    """The envelope's ``status`` as a number and its ``description`` as text."""
    if envelope is None:
        return None, None
    description = envelope.get("description")
    if description is not None and not isinstance(description, str):
        description = str(description)
    return _status_int(envelope.get("status")), description


def _decode(content: bytes, max_depth: int) -> tuple[Any, bool, str | None, dict[str, Any] | None]:
    """(the body, whether it was JSON, which decoding limit refused it if one did, and the
    body when it is a CommBox envelope: an object with a status, data or description)."""
    if not content:  # a blank body fails to decode like any other non-JSON one
        return None, False, None, None
    try:
        body = _loads(content, max_depth)
    except JSONLimitError as exc:
        return None, False, str(exc), None
    except ValueError:
        return None, False, None, None
    if isinstance(body, dict) and ("status" in body or "data" in body or "description" in body):
        return body, True, None, body
    return body, True, None, None


def _fails(status: int, allow_partial: bool) -> bool:
    """Whether a status (HTTP or envelope) is an error: 4xx, 5xx, and 206 unless asked for."""
    return status >= 400 or (status == 206 and not allow_partial)


def parse_response(
    response: ResponseLike,
    *,
    method: str,
    path: str,
    attempts: int,
    elapsed: float,
    allow_partial: bool,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Envelope:
    """Decode a response into an :class:`Envelope`, or raise the typed error it stands for.

    A body that breaks a decoding limit (nested deeper than ``max_depth``, a number longer
    than the int-digits limit, a lone surrogate) is treated as a body that is not JSON: the
    status's own error, or :class:`InvalidResponseError` saying which limit, for a 2xx.
    """
    status = response.status_code
    headers = response.headers  # a read-only view for callers; copied only for errors
    content = response.content
    body, is_json, refused, envelope = _decode(content, max_depth)
    if not 200 <= status < 300 or (status == 206 and not allow_partial):
        message = _MESSAGES.get(status, "CommBox returned an error")
        if status < 400 and status != 206:
            message = "unexpected HTTP status"
        raise _status_error(status, message, response, body, is_json, envelope, method, path)
    if status == 204:
        body = envelope = None
    elif not is_json:
        raise _not_json(status, headers, content, refused, method, path)
    env_status, description = _envelope_fields(envelope)
    if env_status is not None and _fails(env_status, allow_partial):
        message = "CommBox reported a failure inside an HTTP 200 response"
        raise _status_error(env_status, message, response, body, is_json, envelope, method, path)
    response_time = envelope.get("response_time") if envelope is not None else None
    return Envelope(
        status,
        headers,
        env_status,
        description,
        str(response_time) if response_time is not None else None,
        envelope.get("data") if envelope is not None else body,
        body,
        elapsed,
        attempts,
        max_depth,
    )


def _not_json(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    refused: str | None,
    method: str,
    path: str,
) -> InvalidResponseError:
    if refused:
        message = f"CommBox returned a body the decoder refused ({refused})"
    elif content.strip():
        message = "CommBox returned a body that is not JSON"
    else:
        message = "CommBox returned an empty body"
    return InvalidResponseError(
        message,
        http_status=status,
        content_type=headers.get("content-type"),
        snippet=_snippet(content),
        method=method,
        path=path,
    )


def _status_error(
    cls_status: int,
    message: str,
    response: ResponseLike,
    body: Any,
    is_json: bool,
    envelope: dict[str, Any] | None,
    method: str,
    path: str,
) -> APIStatusError:
    """The typed error for a failed response, from what :func:`parse_response` decoded (a
    function rather than a closure over the parser's locals, which would be a dozen more
    objects on every call, error or not, for the garbage collector to walk)."""
    content = response.content
    env_status, description = _envelope_fields(envelope)
    return status_error_class(cls_status)(
        message,
        http_status=response.status_code,
        envelope_status=env_status,
        description=description
        if envelope is not None
        else (None if is_json else (_snippet(content) or None)),
        method=method,
        path=path,
        headers=dict(response.headers),
        body=body if is_json else _snippet(content),
        data=envelope.get("data") if envelope is not None else None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


_MESSAGES = {
    206: "partial success",
    400: "bad request",
    401: "unauthorized",
    404: "not found",
    429: "too many requests",
    500: "server error",
    501: "not implemented",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}

# The raw-response views set a capture slot for the duration of one call; the base client
# fills it with the last envelope. A contextvar keeps concurrent calls apart.
_capture: contextvars.ContextVar[list[Envelope] | None] = contextvars.ContextVar(
    "commbox_raw_capture", default=None
)


#: The raw-response view's capture slot of this call, if any (the context variable's ``get``).
capture_slot: Callable[[], list[Envelope] | None] = _capture.get


def to_raw_response(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[APIResponse[T]]]:
    """Wrap a resource method so it returns an :class:`APIResponse` around its usual value."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> APIResponse[T]:
        slot: list[Envelope] = []
        token = _capture.set(slot)
        try:
            value = await fn(*args, **kwargs)
        finally:
            _capture.reset(token)
        if not slot:
            raise RuntimeError(f"{getattr(fn, '__qualname__', fn)} made no request")
        env = slot[-1]
        return APIResponse(
            parsed=value,
            http_status=env.http_status,
            headers=env.headers,
            envelope_status=env.envelope_status,
            description=env.description,
            response_time=env.response_time,
            json=env.body,
            elapsed=env.elapsed,
            attempts=env.attempts,
        )

    return wrapper
