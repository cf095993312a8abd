"""The request pipeline: auth, throttle, retries, deadlines, logging, hooks and decoding.

Resources stay thin: they name the endpoint and the model, and call :meth:`BaseClient._request`.
One call is one pass through :meth:`BaseClient._run`, the retry loop, which makes attempts
(:meth:`BaseClient._attempt`) until one succeeds or the retry rules (:mod:`._retry`) give up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx

from ._aio import call
from ._deadline import Deadlines, Expiry
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidArgumentError,
    InvalidResponseError,
    RateLimitError,
    ResponseTooLargeError,
    TokenError,
)
from ._files import AttachmentInput, coerce_attachments, open_files
from ._hooks import ClientStats, Hooks, RequestEvent, ResponseEvent, RetryEvent, ThrottleEvent, emit
from ._inflate import ACCEPT_ENCODING
from ._json import DEFAULT_MAX_DEPTH
from ._response import Envelope, capture_slot, parse_response
from ._retry import RetryPolicy, retry_reason
from ._secret import Secret
from ._throttle import Throttle
from ._transport import (
    BadEncoding,
    BodyTooLarge,
    Outgoing,
    ResponseLike,
    Sender,
    map_transport_error,
)
from ._urls import build_path, url_prefix
from ._verdict import Exposure, current_exposure

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "BaseClient",
    "ClientOptions",
    "TokenProvider",
    "TokenSource",
    "logger",
]

logger = logging.getLogger("commbox_async")

#: Whether asyncio tasks can take back a cancellation (``Task.uncancel``, Python 3.11+), as
#: :mod:`._deadline` needs; without it the deadline takes anyio's cancel scope.
_CAN_UNCANCEL = hasattr(asyncio.Task, "uncancel")

TokenSource = str | Callable[[], str | Awaitable[str]]

#: The largest response body read by default (32 MiB): CommBox's largest real answers (a
#: conversation with thousands of messages) are a few MiB.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class TokenProvider:
    """Holds the token (or the callable that returns it) and never shows it."""

    __slots__ = ("_source", "static")

    #: The token when it is a plain string (no call needed), else None.
    static: Secret | None
    _source: Callable[[], str | Awaitable[str]] | None

    def __init__(self, source: TokenSource | TokenProvider) -> None:
        if isinstance(source, TokenProvider):
            self.static, self._source = source.static, source._source
        elif isinstance(source, str):
            try:
                self.static = Secret(source)
            except ConfigurationError:
                source = ""  # out of this frame's locals before the error leaves it
                raise
            self._source = None
        elif callable(source):
            self.static = None
            self._source = source
        else:
            raise ConfigurationError(
                f"token must be a string or a callable returning one, got {type(source).__name__}"
            )

    @property
    def rotates(self) -> bool:
        """True when the token comes from a callable, which is asked again after a 401."""
        return self._source is not None

    async def get(self) -> Secret:
        if self.static is not None:
            return self.static
        assert self._source is not None
        value: Any = await call(self._source)
        if not isinstance(value, str):
            raise TokenError(f"the token callable returned {type(value).__name__}, not a str")
        try:
            secret = Secret(value, what="the token the token callable returned")
        except ConfigurationError as exc:
            value = None  # out of this frame's locals before the error leaves it
            raise TokenError(str(exc)) from None
        return secret

    def __repr__(self) -> str:
        return "TokenProvider(<redacted>)"

    __str__ = __repr__


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Per-view options; ``with_options`` derives new ones, the pool and throttle are shared."""

    timeout: httpx.Timeout
    max_retries: int
    deadline: float | None
    max_retry_after: float
    initial_backoff: float
    max_backoff: float
    retry_uncertain: bool
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    user_agent: str
    headers: Mapping[str, str]
    #: Every attempt's headers but the token's, built once per options rather than per call.
    static_headers: Mapping[str, str] = attrs.field(init=False, repr=False, eq=False)
    #: The retry rules of these options, built once rather than per call.
    retry: RetryPolicy = attrs.field(init=False, repr=False, eq=False)
    #: The longest of the per-operation timeouts (inf if one is None).
    longest_timeout: float = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        check_count("max_retries", self.max_retries)
        if self.deadline is not None:
            check_seconds("deadline", self.deadline, positive=True, infinite=False)
        check_seconds("max_retry_after", self.max_retry_after)
        check_seconds("initial_backoff", self.initial_backoff)
        check_seconds("max_backoff", self.max_backoff)
        for part in ("connect", "read", "write", "pool"):
            value = getattr(self.timeout, part)
            if value is not None:
                check_seconds(f"timeout ({part})", value, infinite=False)
        if self.max_response_bytes is not None and self.max_response_bytes < 1:
            raise ConfigurationError(
                f"max_response_bytes must be a positive number of bytes (or None for no "
                f"limit), got {self.max_response_bytes}"
            )
        if type(self.max_depth) is not int or self.max_depth < 1:
            raise ConfigurationError(f"max_depth must be a positive int, got {self.max_depth!r}")
        names = {k.lower() for k in self.headers}
        if "authorization" in names:
            raise ConfigurationError("set the token with token=, not an Authorization header")
        framing = sorted(names & _BODY_HEADERS)
        if framing:
            # Each body sets its own (a JSON body, a form, multipart with its boundary); a
            # default would mislabel every other kind, and the transports disagree on which
            # wins.
            raise ConfigurationError(
                f"{', '.join(framing)} is set per request from its body; leave it out of "
                "default_headers"
            )
        defaults = {
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": self.user_agent,
        }
        object.__setattr__(self, "static_headers", merge_headers(defaults, self.headers))
        policy = RetryPolicy(
            max_retries=self.max_retries,
            initial_backoff=self.initial_backoff,
            max_backoff=self.max_backoff,
            max_retry_after=self.max_retry_after,
            retry_uncertain=self.retry_uncertain,
        )
        object.__setattr__(self, "retry", policy)
        parts = (self.timeout.connect, self.timeout.read, self.timeout.write, self.timeout.pool)
        longest = math.inf if None in parts else max(p for p in parts if p is not None)
        object.__setattr__(self, "longest_timeout", longest)


#: Headers that describe a request's body, which the client sets for each body it sends.
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


def merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """Header layers merged by name regardless of case, as HTTP compares names: a later
    layer's value replaces an earlier one's (in the later layer's spelling), so no name is
    sent twice."""
    merged: dict[str, str] = {}
    spelled: dict[str, str] = {}  # a lower-cased name: its spelling in merged
    for layer in layers:
        for name, value in layer.items():
            key = name.lower()
            previous = spelled.get(key)
            if previous is not None:
                del merged[previous]
            merged[name] = value
            spelled[key] = name
    return merged


def check_count(name: str, value: object) -> None:
    if type(value) is not int:
        raise InvalidArgumentError(
            f"{name} must be an int, got {type(value).__name__}",
            param=name,
            expected="int",
            got=type(value).__name__,
        )
    if value < 0:
        raise ConfigurationError(f"{name} must be >= 0, got {value}")


def check_seconds(
    name: str, value: object, *, positive: bool = False, infinite: bool = True
) -> None:
    # NaN compares false with everything, so a NaN limit silently turns every check against it
    # off (a Retry-After of 3,000 years waited out); refused here with the other bad numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(
            f"{name} must be a number of seconds, got {type(value).__name__}",
            param=name,
            expected="float",
            got=type(value).__name__,
        )
    if math.isnan(value) or value < 0 or (positive and value == 0):
        which = "positive" if positive else ">= 0"
        raise ConfigurationError(f"{name} must be {which} seconds, got {value}")
    if not infinite and math.isinf(value):
        raise ConfigurationError(f"{name} must be finite seconds (None for no limit), got {value}")


class _Core:
    """State shared by a client and all its views: pool, throttle, token, counters, lifecycle."""

    def __init__(
        self,
        *,
        base_url: httpx.URL,
        sender: Sender,
        bulk_sender: Sender | None = None,
        token: TokenProvider,
        throttle: Throttle | None,
        hooks: Hooks,
        asyncio_only: bool = False,
    ) -> None:
        self.asyncio_only = asyncio_only
        self.base_url = base_url
        self.url_prefix = url_prefix(base_url)
        self.sender = sender
        # What cb.bulk and cb.export send through when the user left the transport unset.
        self.bulk_sender = bulk_sender
        self.token = token
        self.throttle = throttle
        self.hooks = hooks
        self.stats = ClientStats()
        self.closed = False
        self.loop: object | None = None
        self.on_asyncio = False
        #: The deadlines of the calls in flight, on asyncio (3.11+).
        self.deadlines: Deadlines | None = None

    def check_usable(self) -> None:
        if self.closed:
            raise ClientStateError(
                "this AsyncCommBox is closed; create a new client (or use it inside "
                "'async with AsyncCommBox(...)')"
            )
        try:
            current: object = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: trio, through anyio, or no loop at all
            try:
                current = anyio.lowlevel.current_token().native_token
            except Exception:
                raise ClientStateError(
                    "AsyncCommBox must be used from inside a running event loop"
                ) from None
        if self.loop is None:
            if self.asyncio_only and not isinstance(current, asyncio.AbstractEventLoop):
                raise ClientStateError(
                    "transport='aiohttp' runs on asyncio only; under trio use the default "
                    "transport='httpx'"
                )
            self.loop = current
            self.on_asyncio = isinstance(current, asyncio.AbstractEventLoop)
            if self.on_asyncio and _CAN_UNCANCEL:
                assert isinstance(current, asyncio.AbstractEventLoop)
                self.deadlines = Deadlines(current)
        elif self.loop is not current:
            raise ClientStateError(
                "this AsyncCommBox was opened on another event loop; its connections belong to "
                "that loop, so create one client per event loop"
            )
        if self.sender.is_closed:
            raise ClientStateError("the httpx.AsyncClient given to AsyncCommBox has been closed")

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bulk_sender is not None:
            await self.bulk_sender.aclose()
        await self.sender.aclose()


class _Call(Expiry):
    """One API call's request and its progress across attempts (and, on asyncio, its
    deadline: see :meth:`Deadlines.arm`)."""

    __slots__ = (
        "allow_partial",
        "attachments",
        "attempt",
        "data",
        "deadline_at",
        "exposure",
        "json",
        "method",
        "multipart",
        "params",
        "path",
        "refreshed_token",
        "retries",
        "token",
        "url",
    )

    # Positional: a class called with keywords collects them into a dict on every call
    # (CPython 3.11), about twice the cost of the object itself.
    def __init__(
        self,
        method: str,
        path: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        attachments: list[Any],
        allow_partial: bool,
        deadline_at: float | None,
        token: TokenProvider,
        multipart: bool,
        exposure: Exposure,
    ) -> None:
        self.method = method
        self.path = path
        self.url = url
        self.params = params
        self.json = json
        self.data = data
        self.attachments = attachments
        self.allow_partial = allow_partial
        self.deadline_at = deadline_at
        self.token = token
        self.multipart = multipart
        self.exposure = exposure
        self.attempt = 0
        self.retries = 0
        self.refreshed_token = False


_NO_FILES: AbstractContextManager[list[Any]] = nullcontext([])


class BaseClient:
    """Owns the request pipeline; :class:`~commbox_async.AsyncCommBox` adds the resources."""

    _core: _Core
    _options: ClientOptions
    #: A view's own sender (the bulk and export views'), else the core's.
    _sender: Sender | None = None

    def _request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, object] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Sequence[AttachmentInput] | None = None,
        allow_partial: bool = False,
        token: TokenSource | TokenProvider | None = None,
        multipart: bool = False,
    ) -> Coroutine[Any, Any, Envelope]:
        """Send one API call with auth, throttle, retries and decoding; await it for its
        envelope.

        ``token`` replaces the client's bearer token for this call (Emarsys' JWT);
        ``multipart`` sends ``data`` as multipart/form-data even without files. The call is
        checked and built here, before anything is awaited.
        """
        core = self._core
        core.check_usable()
        method = method.upper()
        encoded_path = build_path(path, path_params or {})
        attachments = coerce_attachments(files)
        opts = self._options
        call = _Call(  # positional, as its __init__ says
            method,
            encoded_path,
            core.url_prefix + encoded_path,
            {k: v for k, v in params.items() if v is not None} if params else None,
            json,
            data,
            attachments,
            allow_partial,
            None if opts.deadline is None else time.monotonic() + opts.deadline,
            core.token if token is None else TokenProvider(token),
            multipart,
            current_exposure() or Exposure(),
        )
        if opts.deadline is not None and core.deadlines is None:  # not asyncio
            return self._run_in_scope(call, opts.deadline)
        return self._run(call, opts.deadline)

    async def _run(self, call: _Call, deadline: float | None) -> Envelope:
        """The retry loop: attempts until one succeeds or the retry rules give up, on asyncio
        within the call's ``deadline``.

        The deadline is kept here rather than in a coroutine around the loop: on asyncio it
        has ``asyncio.timeout``'s semantics without its timer per call (see _deadline), and
        one coroutine fewer per call is a few percent of what the client costs per request."""
        deadlines = self._core.deadlines
        expiry = None
        if deadline is not None and deadlines is not None:
            task: Any = asyncio.current_task()  # cancelling()/uncancel(): 3.11+
            if task is None:  # a coroutine driven by hand, outside any task
                return await self._run_in_scope(call, deadline)
            expiry = deadlines.arm(task, deadline, call)
        try:
            while True:
                try:
                    envelope = await self._attempt(call)
                    break
                except CommBoxError as exc:
                    failure = exc
                # From here on outside the except block, so that nothing chains the failure
                # to an exception of the HTTP library (which holds the request, token
                # included).
                failure.processed = call.exposure.end_attempt(failure.processed)
                wait = await self._next_wait(call, failure)
                if wait is None:
                    raise failure
                if wait > 0:
                    await anyio.sleep(wait)
        except asyncio.CancelledError:
            if expiry is None or not Deadlines.disarm(expiry, True):
                raise
        except BaseException:
            if expiry is not None:
                Deadlines.disarm(expiry, False)
            raise
        else:
            if expiry is not None:
                Deadlines.disarm(expiry, False)
            return envelope
        # Outside the except block: the deadline's error is not chained to its cancellation.
        assert deadline is not None  # an expiry is armed only for a deadline
        raise self._deadline_exceeded(call, deadline)

    async def _run_in_scope(self, call: _Call, deadline: float) -> Envelope:
        """:meth:`_run` within ``deadline`` where the loop is not asyncio's (trio)."""
        with anyio.move_on_after(deadline):
            return await self._run(call, None)
        raise self._deadline_exceeded(call, deadline)

    @staticmethod
    def _deadline_exceeded(call: _Call, deadline: float) -> DeadlineExceededError:
        # The deadline cancelled the call wherever it was: its exposure says how far it got.
        return DeadlineExceededError(
            f"the call's deadline of {deadline:g}s ran out after {call.attempt} attempt(s)",
            method=call.method,
            path=call.path,
            processed=call.exposure.verdict(),
            reason="deadline",
        )

    async def _next_wait(self, call: _Call, failure: CommBoxError) -> float | None:
        """How long to wait before the next attempt after ``failure``, or None to raise it."""
        core = self._core
        if isinstance(failure, AuthenticationError):
            if not call.token.rotates or call.refreshed_token:
                failure.hint = _token_hint(call)
                return None
            # A rotating key may just have been replaced: ask the callable once more, now.
            call.refreshed_token = True
            core.stats.token_refreshes += 1
            logger.info("401 on %s %s: asking the token callable again", call.method, call.path)
            return 0.0
        policy = self._options.retry
        if isinstance(failure, RateLimitError):
            core.stats.rate_limited += 1
            if core.throttle is not None:
                pause = failure.retry_after
                if pause is None:
                    pause = policy.backoff(call.retries + 1)
                await core.throttle.pause(min(pause, policy.max_retry_after))
        wait = policy.next_wait(
            failure, method=call.method, retries=call.retries, deadline_at=call.deadline_at
        )
        if wait is None:
            return None
        call.retries += 1
        reason = retry_reason(failure)
        core.stats.retries[reason] += 1
        logger.info(
            "retrying %s %s in %.2fs after %s (attempt %d of %d)",
            call.method,
            call.path,
            wait,
            reason,
            call.attempt,
            policy.max_retries + 1,
        )
        if core.hooks.on_retry:
            await emit(
                core.hooks.on_retry,
                RetryEvent(
                    method=call.method,
                    path=call.path,
                    attempt=call.attempt,
                    reason=reason,
                    wait=wait,
                    error=failure,
                ),
            )
        return wait

    async def _attempt(self, call: _Call) -> Envelope:
        """One attempt: throttle, token, the send, and the response decoded."""
        core = self._core
        call.attempt += 1
        if core.throttle is not None:
            await self._throttle_wait(call)
        token = call.token.static or await call.token.get()
        exposure = call.exposure
        if exposure.before_send is not None:
            announce, exposure.before_send = exposure.before_send, None
            await announce()
        # The send is inline rather than in a coroutine of its own: with a hundred calls in
        # flight, every frame held across the network wait costs (the collector walks each).
        with open_files(call.attachments) if call.attachments else _NO_FILES as files:
            out = self._outgoing(call, token, files)
            if core.hooks.on_request:
                await emit(
                    core.hooks.on_request,
                    RequestEvent(method=call.method, path=call.path, attempt=call.attempt),
                )
            core.stats.requests += 1
            sender = self._sender or core.sender
            start = time.monotonic()
            failure: CommBoxError | None = None
            try:
                response = await sender.send(out)
            except httpx.TransportError as exc:
                failure = self._transport_failure(call, exc, start)
            except BadEncoding as exc:
                failure = InvalidResponseError(
                    f"CommBox's response could not be read: {exc.problem}",
                    http_status=exc.status,
                    content_type=exc.headers.get("content-type"),
                    snippet="",
                    method=call.method,
                    path=call.path,
                )
            except BodyTooLarge as exc:
                failure = ResponseTooLargeError(
                    limit=self._options.max_response_bytes or 0,
                    declared=exc.declared,
                    http_status=exc.status,
                    content_type=exc.headers.get("content-type"),
                    method=call.method,
                    path=call.path,
                )
            except Exception as exc:
                failure = self._unexpected(call, sender, exc)
            if failure is not None:
                raise failure
        elapsed = time.monotonic() - start
        if core.hooks.on_response:
            await emit(
                core.hooks.on_response,
                ResponseEvent(
                    method=call.method,
                    path=call.path,
                    attempt=call.attempt,
                    http_status=response.status_code,
                    elapsed=elapsed,
                ),
            )
        try:
            return self._received(call, response, elapsed)
        except (APIStatusError, InvalidResponseError) as exc:
            # A gateway that echoes the request (its Authorization header included) must not
            # put the token into the error: everything CommBox sent back is scrubbed of it,
            # and the decoder's frames (whose locals hold the body) are left behind.
            failure = _without(token, exc).with_traceback(None)
        raise failure

    async def _throttle_wait(self, call: _Call) -> None:
        core = self._core
        if core.throttle is None:
            return
        waited = await core.throttle.acquire()
        if waited > 0:
            core.stats.throttle_waits += 1
            core.stats.throttle_wait_seconds += waited
            await emit(
                core.hooks.on_throttle,
                ThrottleEvent(method=call.method, path=call.path, waited=waited),
            )

    def _timeout_within(self, left: float) -> httpx.Timeout:
        """The client's timeouts, each cut to the ``left`` seconds of the call's deadline."""
        timeout = self._options.timeout
        left = max(0.001, left)

        def clamp(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=clamp(timeout.connect),
            read=clamp(timeout.read),
            write=clamp(timeout.write),
            pool=clamp(timeout.pool),
        )

    def _outgoing(self, call: _Call, token: Secret, files: list[Any]) -> Outgoing:
        opts = self._options
        timeout = opts.timeout
        if call.deadline_at is not None:
            left = call.deadline_at - time.monotonic()
            # While the deadline is further off than every timeout, the same object.
            if left <= opts.longest_timeout:
                timeout = self._timeout_within(left)
        form = call.data
        if call.multipart and not files and form:
            # httpx only builds multipart when there are files: send the fields as parts
            # without a filename, which is what a form field is.
            files = [(k, (None, str(v), None)) for k, v in form.items()]
            form = None
        return Outgoing(
            call.method,
            call.url,
            opts.static_headers,
            token,
            call.params,
            call.json if not files else None,
            form,
            files or None,
            timeout,
            call.exposure,
            opts.max_response_bytes,
        )

    def _transport_failure(
        self, call: _Call, exc: httpx.TransportError, start: float
    ) -> CommBoxError:
        err = map_transport_error(
            exc,
            method=call.method,
            path=call.path,
            host=self._core.base_url.host,
            exposure=call.exposure,
        )
        logger.debug(
            "%s %s -> %s in %.3fs (attempt %d)",
            call.method,
            call.path,
            err.reason,
            time.monotonic() - start,
            call.attempt,
            extra={
                "commbox_method": call.method,
                "commbox_path": call.path,
                "commbox_status": None,
                "commbox_attempt": call.attempt,
            },
        )
        return err

    def _unexpected(self, call: _Call, sender: Sender, exc: Exception) -> CommBoxError:
        """Anything else a sender raised, as a typed error with what the exposure knows."""
        if isinstance(exc, RuntimeError) and sender.is_closed:
            return ClientStateError(
                "the connection pool under AsyncCommBox was closed during the call"
            )
        exposure = call.exposure
        detail = f"{type(exc).__name__}: {exc}"
        if not exposure.sent and isinstance(exc, (TypeError, ValueError)):
            return ConfigurationError(f"the request could not be encoded: {detail}")
        return APIConnectionError(
            f"the HTTP library failed: {detail}",
            method=call.method,
            path=call.path,
            processed=exposure.attempt(),
            reason="transport_error",
            cause_type=type(exc).__name__,
        )

    def _received(self, call: _Call, response: ResponseLike, elapsed: float) -> Envelope:
        self._core.stats.responses += 1
        status = response.status_code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3fs (attempt %d)",
                call.method,
                call.path,
                status,
                elapsed,
                call.attempt,
                extra={
                    "commbox_method": call.method,
                    "commbox_path": call.path,
                    "commbox_status": status,
                    "commbox_attempt": call.attempt,
                    "commbox_elapsed": elapsed,
                },
            )
        failure: CommBoxError | None = None
        try:
            envelope = parse_response(
                response,
                method=call.method,
                path=call.path,
                attempts=call.attempt,
                elapsed=elapsed,
                allow_partial=call.allow_partial,
                max_depth=self._options.max_depth,
            )
        except CommBoxError:
            raise
        except Exception as exc:  # a parser bug must not escape untyped, or lose the verdict
            failure = InvalidResponseError(
                f"CommBox's response could not be read ({type(exc).__name__}: {exc})",
                http_status=status,
                content_type=response.headers.get("content-type"),
                snippet=response.content[:200].decode("utf-8", errors="replace"),
                method=call.method,
                path=call.path,
            )
        if failure is not None:
            raise failure
        slot = capture_slot()  # a raw-response view's (inline: once per request)
        if slot is not None:
            slot.append(envelope)
        return envelope


def _without(token: Secret, error: CommBoxError) -> CommBoxError:
    """``error`` with ``token`` taken out of every field that holds what the server sent."""
    fields = vars(error)
    for name in ("message", "description", "snippet", "body", "data", "headers"):
        if name in fields and fields[name] is not None:
            fields[name] = token.scrub(fields[name])
    error.args = tuple(token.scrub(a) for a in error.args)
    return error


def _token_hint(call: _Call) -> str:
    if call.refreshed_token:
        return (
            "the token callable was asked again after the first 401 and its new token was "
            "refused too: check what it returns"
        )
    return (
        "check the API token (token= or COMMBOX_TOKEN; an admin finds it under Settings > "
        "API); a key that rotates can be passed as a callable, which is asked again after a 401"
    )
