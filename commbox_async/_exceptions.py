"""The error hierarchy. Every error the library raises derives from :class:`CommBoxError`.

Errors never hold the token: they carry the method, the path (already encoded, without the
host) and what the server said. ``processed`` (and its boolean form ``may_have_been_processed``)
says whether CommBox may have acted on the request; the verdict is decided in
:mod:`commbox_async._verdict` and only carried here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._verdict import Processed, for_status

__all__ = [
    "CommBoxError",
    "ConfigurationError",
    "ClientStateError",
    "JournalError",
    "InputFileError",
    "TokenError",
    "InvalidArgumentError",
    "MissingExtraError",
    "BulkStoppedError",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "NotImplementedAPIError",
    "PartialSuccessError",
    "InvalidResponseError",
    "ResponseTooLargeError",
    "DecodeError",
    "Processed",
    "status_error_class",
]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "x-amzn-requestid")
_VERDICT_TEXT = {
    Processed.NO: "not processed",
    Processed.MAYBE: "may have been processed",
    Processed.YES: "processed",
}


class CommBoxError(Exception):
    """Base class of every error raised by commbox_async."""

    #: Whether CommBox acted on the request this error is about: ``NO`` (certainly not),
    #: ``MAYBE`` or ``YES``. Errors that are not about a request (configuration, state) are
    #: ``NO``. Set by whoever raises the error, from the verdict table in ``_verdict``.
    processed: Processed = Processed.NO
    #: Why the retry loop gave up on this error before its retries ran out, when it did
    #: (a Retry-After longer than max_retry_after, a wait that would pass the deadline).
    gave_up_reason: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses' __init__ take keyword-only arguments, which the default reduce
        # cannot pass back: rebuild from the class, the args and the attributes instead, so
        # an error (and its verdict) survives a process pool or a task queue.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    @property
    def may_have_been_processed(self) -> bool:
        """True when the request may have reached CommBox and been acted on (a message sent,
        a conversation created) even though no success came back. Retrying such a request can
        duplicate it, so POSTs are not retried automatically when this is True."""
        return self.processed is not Processed.NO


def _rebuild(cls: type[CommBoxError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigurationError(CommBoxError, ValueError):
    """The client was configured wrongly (no token, plain-HTTP base URL, bad option)."""


class TokenError(ConfigurationError):
    """The token callable returned no usable token (not a str, empty, or not visible ASCII)."""


class InvalidArgumentError(ConfigurationError, TypeError):
    """An argument of the wrong type, caught at the call before anything is sent: ``param``
    names it, ``expected`` says what it takes and ``got`` what it was given (a type name)."""

    def __init__(self, message: str, *, param: str, expected: str, got: str) -> None:
        super().__init__(message)
        self.param = param
        self.expected = expected
        self.got = got


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is not installed: the message names the ``pip install`` line.
    ``extra`` is the package's extra that brings it, ``name`` the module that is missing."""

    def __init__(self, message: str, *, extra: str, module: str | None) -> None:
        super().__init__(message)
        self.extra = extra
        self.name = module


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


class InputFileError(ConfigurationError):
    """A bulk send's input file (``commbox send-bulk --input``) cannot be read as records: it
    is not UTF-8 (UTF-16, binary), a line or a CSV cell is too long, a quote is never closed,
    a column is named twice, or a JSON line nests too deep. ``path`` and ``line`` (where the
    record starts; 0 for the file as a whole) say where, ``problem`` what; the message is
    ``path:line: problem``. One bad record is not this error: it is that record's rejection."""

    def __init__(self, message: str, *, path: str, line: int, problem: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.problem = problem


class BulkStoppedError(CommBoxError):
    """A bulk send stopped before its end because no later message could succeed: CommBox
    refused the token (401/403, after a token callable was asked again), or the client
    became unusable. Nothing more was started; what was not sent is ``pending`` in the
    journal and goes out on the next run. ``report`` is the run's report so far, ``cause``
    the error that stopped it."""

    def __init__(self, message: str, *, report: Any, cause: CommBoxError) -> None:
        super().__init__(message)
        self.report = report
        self.cause = cause


class APIConnectionError(CommBoxError):
    """The request did not get an HTTP response: connect failure, reset, lost response."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        processed: Processed,
        reason: str = "connection_error",
        cause_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.processed = processed
        #: A short label for logs and metrics: connect_error, read_timeout, connection_lost...
        self.reason = reason
        #: The HTTP library's exception class, by name. The exception itself is not chained:
        #: it holds the request and its headers, token included. Its message is in ``message``.
        self.cause_type = cause_type

    def __str__(self) -> str:
        text = f"{self.message} ({self.method} {self.path}; {_VERDICT_TEXT[self.processed]})"
        if self.gave_up_reason:
            text += f"; not retried: {self.gave_up_reason}"
        return text


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
        #: What to check, when the status alone does not say (e.g. the token after a 401).
        self.hint: str | None = None
        lowered = {k.lower(): v for k, v in self.headers.items()}
        self.request_id: str | None = next(
            (lowered[h] for h in _REQUEST_ID_HEADERS if h in lowered), None
        )
        self.processed = for_status(self.status_code)

    @property
    def status_code(self) -> int:
        """The status that classified this error: the envelope's when it disagrees with HTTP."""
        if self.envelope_status is not None and self.http_status == 200:
            return self.envelope_status
        return self.http_status

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
        if self.hint:
            text += f"; {self.hint}"
        if self.gave_up_reason:
            text += f"; not retried: {self.gave_up_reason}"
        return text


class BadRequestError(APIStatusError):
    """400: the request was not understood; parameters may be invalid."""


class AuthenticationError(APIStatusError):
    """401: the token is missing, wrong, revoked or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but may not do this (the API key's permissions, or the brand)."""


class NotFoundError(APIStatusError):
    """404: the stream, object, manager... does not exist."""


class RateLimitError(APIStatusError):
    """429: CommBox throttled this API key. ``retry_after`` says for how long, when known."""


class ServerError(APIStatusError):
    """5xx: CommBox (or a proxy in front of it) failed."""


class NotImplementedAPIError(ServerError):
    """501: the operation is not supported (e.g. the path accepts GET but not POST)."""


class PartialSuccessError(APIStatusError):
    """206: partial success (WhatsApp "Some messages failed", "Missing Template parameter").

    ``data`` holds whatever CommBox returned, so per-recipient results are never lost.
    """


class InvalidResponseError(CommBoxError):
    """A successful status whose body is not the JSON CommBox sends (HTML, empty, truncated).

    CommBox answered with a success status, so it acted on the request (``processed`` is
    ``YES``): the request must not be sent again, even though its result cannot be read.
    """

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
        self.processed = for_status(http_status)

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


class ResponseTooLargeError(InvalidResponseError):
    """The response body is larger than ``max_response_bytes``: reading stopped at the limit.

    The status had arrived, so the verdict follows it (a 2xx was processed).
    """

    def __init__(
        self,
        *,
        limit: int,
        http_status: int,
        content_type: str | None,
        method: str,
        path: str,
        declared: int | None = None,
    ) -> None:
        size = f"declares {declared:,} bytes" if declared is not None else "goes on"
        super().__init__(
            f"CommBox's response {size}, over max_response_bytes={limit:,}",
            http_status=http_status,
            content_type=content_type,
            snippet="",
            method=method,
            path=path,
        )
        self.limit = limit
        self.declared = declared

    def __str__(self) -> str:
        return f"{self.message}: {self.method} {self.path} -> HTTP {self.http_status}"


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
    403: PermissionDeniedError,
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
