"""The error hierarchy. Every error the library raises derives from :class:`CommBoxError`.

Errors never hold the token: they carry the method, the path (already encoded, without the
host) and what the server said. ``may_have_been_processed`` is the one attribute the bulk
sender reads to decide between "failed" (CommBox certainly did not act) and "uncertain".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CommBoxError",
    "ConfigurationError",
    "ClientStateError",
    "JournalError",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "NotImplementedAPIError",
    "PartialSuccessError",
    "InvalidResponseError",
    "DecodeError",
    "status_error_class",
]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "x-amzn-requestid")


class CommBoxError(Exception):
    """Base class of every error raised by commbox_async."""

    #: True when the request may have reached CommBox and been acted on (a message sent, a
    #: conversation created) even though no success came back. Retrying such a request can
    #: duplicate it, so POSTs are not retried automatically when this is True.
    may_have_been_processed: bool = False


class ConfigurationError(CommBoxError, ValueError):
    """The client was configured wrongly (no token, plain-HTTP base URL, bad option)."""


class ClientStateError(CommBoxError, RuntimeError):
    """The client cannot be used now: it was closed, or it is used from another event loop."""


class JournalError(CommBoxError, OSError):
    """A bulk send's journal cannot be used: it could not be written (disk full, file gone...)
    and the send stops, for without its journal it can no longer promise that nothing is sent
    twice; or, when it is opened and before anything is sent, it is corrupt, truncated, not a
    journal, read-only or cannot be opened (the message names the file and says which).

    Every message whose "sending" mark was written is in the journal; those still marked
    ``sending`` are treated as uncertain by the next run. The SQLite error, when there is one,
    is the ``__cause__``."""

    #: The journal's file, when the error is about opening one.
    path: str | None = None


class APIConnectionError(CommBoxError):
    """The request did not get an HTTP response: connect failure, reset, lost response."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        may_have_been_processed: bool,
        reason: str = "connection_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.may_have_been_processed = may_have_been_processed
        #: A short label for logs and metrics: connect_error, read_timeout, connection_lost...
        self.reason = reason

    def __str__(self) -> str:
        verdict = "may have been processed" if self.may_have_been_processed else "not processed"
        return f"{self.message} ({self.method} {self.path}; {verdict})"


class APITimeoutError(APIConnectionError):
    """A timeout: connecting (never processed) or waiting for the response (maybe processed)."""


class DeadlineExceededError(APITimeoutError):
    """The per-call total deadline (all attempts and waits) ran out."""


class APIStatusError(CommBoxError):
    """CommBox answered with an error: an HTTP error status, or a failure envelope in a 200."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        envelope_status: int | None,
        description: str | None,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        data: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.envelope_status = envelope_status
        self.description = description
        self.method = method
        self.path = path
        self.headers: dict[str, str] = dict(headers or {})
        #: The decoded JSON body (or a text snippet when it was not JSON), so nothing is lost.
        self.body = body
        #: The envelope's ``data``, when there was one.
        self.data = data
        #: Seconds from the ``Retry-After`` header, when the server sent one.
        self.retry_after = retry_after
        #: Why the retry loop gave up on this error early, when it did (e.g. Retry-After too long).
        self.gave_up_reason: str | None = None
        lowered = {k.lower(): v for k, v in self.headers.items()}
        self.request_id: str | None = next(
            (lowered[h] for h in _REQUEST_ID_HEADERS if h in lowered), None
        )

    @property
    def status_code(self) -> int:
        """The status that classified this error: the envelope's when it disagrees with HTTP."""
        if self.envelope_status is not None and self.http_status == 200:
            return self.envelope_status
        return self.http_status

    @property
    def may_have_been_processed(self) -> bool:  # type: ignore[override]
        return self.status_code in (500, 502, 504) or self.status_code >= 505

    def __str__(self) -> str:
        parts = [f"{self.method} {self.path} -> HTTP {self.http_status}"]
        if self.envelope_status is not None and self.envelope_status != self.http_status:
            parts.append(f"envelope status {self.envelope_status}")
        text = f"{self.message}: " + ", ".join(parts)
        if self.description:
            text += f": {self.description}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        if self.retry_after is not None:
            text += f" (Retry-After {self.retry_after:g}s)"
        if self.gave_up_reason:
            text += f"; not retried: {self.gave_up_reason}"
        return text


class BadRequestError(APIStatusError):
    """400: the request was not understood; parameters may be invalid."""


class AuthenticationError(APIStatusError):
    """401: the token is missing, wrong, revoked or expired."""


class NotFoundError(APIStatusError):
    """404: the stream, object, manager... does not exist."""


class RateLimitError(APIStatusError):
    """429: CommBox throttled this API key. ``retry_after`` says for how long, when known."""


class ServerError(APIStatusError):
    """5xx: CommBox (or a proxy in front of it) failed."""


class NotImplementedAPIError(ServerError):
    """501: the operation is not supported (e.g. the path accepts GET but not POST)."""

    @property
    def may_have_been_processed(self) -> bool:  # type: ignore[override]
        return False


class PartialSuccessError(APIStatusError):
    """206: partial success (WhatsApp "Some messages failed", "Missing Template parameter").

    ``data`` holds whatever CommBox returned, so per-recipient results are never lost.
    """

    @property
    def may_have_been_processed(self) -> bool:  # type: ignore[override]
        return True


class InvalidResponseError(CommBoxError):
    """A successful status whose body is not the JSON CommBox sends (HTML, empty, truncated).

    The request itself may have been processed, so this is treated as "maybe processed".
    """

    may_have_been_processed = True

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        content_type: str | None,
        snippet: str,
        method: str,
        path: str,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.content_type = content_type
        self.snippet = snippet
        self.method = method
        self.path = path
        #: The decoded body when it was JSON of an unexpected shape, so nothing is lost.
        self.body = body

    def __str__(self) -> str:
        return (
            f"{self.message}: {self.method} {self.path} -> HTTP {self.http_status}, "
            f"content-type {self.content_type or 'none'}, body starts {self.snippet!r}"
        )


def brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages about hostile input: it
    never fails (an int too long to print, a structure too deep to walk) and never grows with
    the input's size beyond the limit."""
    if isinstance(value, str) and len(value) > limit:
        value = value[: limit + 1]  # repr of a huge str costs its whole length
    try:
        shown = repr(value)
    except (ValueError, RecursionError):  # an int beyond the int-digits limit, a deep list
        shown = f"<{type(value).__name__}>"
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


class _Redacted:
    """Stands for a value that is not shown (see :data:`REDACTED`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not shown: a secret field>"


#: ``DecodeError.value`` when the value belongs to a field marked secret.
REDACTED: Any = _Redacted()


class DecodeError(CommBoxError, ValueError):
    """A value from CommBox could not be decoded into the typed model.

    ``model`` is the class being built, ``path`` where in the payload (``data.childs[3].id``)
    and ``value`` the offending value, or :data:`REDACTED` for a field marked secret (a
    password, a login ticket) and for an object holding one: ``secret`` is then True, and
    neither the message nor ``args`` holds the value.
    """

    def __init__(self, message: str, *, model: str, path: str, value: Any) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        self.path = path
        self.value = value

    @property
    def secret(self) -> bool:
        return self.value is REDACTED

    def __str__(self) -> str:
        return (
            f"cannot decode {self.model} at {self.path or '<root>'}: {self.message} "
            f"(got {brief(self.value, 120)})"
        )


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
    501: NotImplementedAPIError,
    206: PartialSuccessError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The error class for an HTTP or envelope status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return APIStatusError
