"""The request pipeline: auth, throttle, retries, deadlines, logging, hooks and decoding.

Resources stay thin: they name the endpoint and the model, and call :meth:`BaseClient._request`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx

from ._exceptions import (
    AuthenticationError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    DeadlineExceededError,
    RateLimitError,
)
from ._files import AttachmentInput, coerce_attachments, open_files
from ._hooks import ClientStats, Hooks, RequestEvent, ResponseEvent, RetryEvent, ThrottleEvent, emit
from ._response import Envelope, parse_response, record_envelope
from ._retry import RetryPolicy, is_retryable, retry_reason
from ._throttle import Throttle
from ._transport import (
    Outgoing,
    ResponseLike,
    Sender,
    build_path,
    map_transport_error,
    url_prefix,
)

__all__ = ["BaseClient", "ClientOptions", "TokenProvider", "TokenSource", "logger"]

logger = logging.getLogger("commbox_async")

TokenSource = str | Callable[[], str | Awaitable[str]]


class TokenProvider:
    """Holds the token (or the callable that returns it) and never shows it."""

    __slots__ = ("_source", "static")

    def __init__(self, source: TokenSource) -> None:
        if isinstance(source, str):
            if not source.strip():
                raise ConfigurationError("the CommBox token is empty")
        elif not callable(source):
            raise ConfigurationError(
                f"token must be a string or a callable returning one, got {type(source).__name__}"
            )
        self._source = source
        #: The token when it is a plain string (no call needed), else None.
        self.static: str | None = source if isinstance(source, str) else None

    @property
    def rotates(self) -> bool:
        """True when the token comes from a callable, which is asked again after a 401."""
        return not isinstance(self._source, str)

    async def get(self) -> str:
        source = self._source
        if isinstance(source, str):
            return source
        value: Any = source()
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                "the token callable returned no token (an empty or non-str value)"
            )
        return value

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
    user_agent: str
    headers: Mapping[str, str]
    #: Every attempt's headers but the token's, built once per options rather than per call.
    static_headers: Mapping[str, str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.deadline is not None and self.deadline <= 0:
            raise ConfigurationError(f"deadline must be positive seconds, got {self.deadline}")
        if self.max_retry_after < 0:
            raise ConfigurationError(f"max_retry_after must be >= 0, got {self.max_retry_after}")
        if any(k.lower() == "authorization" for k in self.headers):
            raise ConfigurationError("set the token with token=, not an Authorization header")
        static = {"Accept": "application/json", "User-Agent": self.user_agent, **self.headers}
        object.__setattr__(self, "static_headers", static)


class _Core:
    """State shared by a client and all its views: pool, throttle, token, counters, lifecycle."""

    def __init__(
        self,
        *,
        base_url: httpx.URL,
        sender: Sender,
        volume_sender: Sender | None = None,
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
        self.volume_sender = volume_sender
        self.token = token
        self.throttle = throttle
        self.hooks = hooks
        self.stats = ClientStats()
        self.closed = False
        self.loop: object | None = None

    def check_usable(self) -> None:
        if self.closed:
            raise ClientStateError(
                "this AsyncCommBox is closed; create a new client (or use it inside "
                "'async with AsyncCommBox(...)')"
            )
        # The running asyncio loop is a C-level lookup; anyio's token (which also knows trio)
        # costs more than the rest of this check, so it is asked only when there is no loop.
        current: object = asyncio._get_running_loop()
        if current is None:
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
        if self.volume_sender is not None:
            await self.volume_sender.aclose()
        await self.sender.aclose()


@attrs.define
class _Call:
    method: str
    path: str
    url: str
    params: Mapping[str, Any] | None
    json: Any
    data: Mapping[str, Any] | None
    attachments: list[Any]
    allow_partial: bool
    deadline_at: float | None
    token: TokenProvider
    multipart: bool = False
    attempt: int = 0
    in_flight: bool = False
    refreshed_token: bool = False
    last_error: BaseException | None = None


_NO_FILES: AbstractContextManager[list[Any]] = nullcontext([])


class BaseClient:
    """Owns the request pipeline; :class:`~commbox_async.AsyncCommBox` adds the resources."""

    _core: _Core
    _options: ClientOptions
    #: A view's own sender (the bulk and export views'), else the core's.
    _via: Sender | None = None

    def _policy(self) -> RetryPolicy:
        o = self._options
        return RetryPolicy(
            max_retries=o.max_retries,
            initial_backoff=o.initial_backoff,
            max_backoff=o.max_backoff,
            max_retry_after=o.max_retry_after,
        )

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
        token: TokenSource | None = None,
        multipart: bool = False,
    ) -> Coroutine[Any, Any, Envelope]:
        """Send one API call with auth, throttle, retries and decoding; await it for its
        envelope.

        ``token`` replaces the client's bearer token for this call (Emarsys' JWT);
        ``multipart`` sends ``data`` as multipart/form-data even without files. The call is
        checked and built here, and what is awaited is its first attempt itself: with a
        hundred calls in flight, every coroutine frame held across the network wait costs
        (in cache, and in the garbage collector walking it).
        """
        core = self._core
        core.check_usable()
        method = method.upper()
        encoded_path = build_path(path, path_params or {})
        attachments = coerce_attachments(files)
        opts = self._options
        deadline_at = time.monotonic() + opts.deadline if opts.deadline is not None else None
        call = _Call(
            method=method,
            path=encoded_path,
            url=core.url_prefix + encoded_path,
            params={k: v for k, v in params.items() if v is not None} if params else None,
            json=json,
            data=data,
            attachments=attachments,
            allow_partial=allow_partial,
            deadline_at=deadline_at,
            token=core.token if token is None else TokenProvider(token),
            multipart=multipart,
        )

        if opts.deadline is None:
            return self._attempt(call, first=True)
        return self._with_deadline(call, opts.deadline)

    async def _with_deadline(self, call: _Call, deadline: float) -> Envelope:
        try:
            with anyio.fail_after(deadline):
                return await self._attempt(call, first=True)
        except TimeoutError:
            last = call.last_error
            maybe = call.in_flight or bool(getattr(last, "may_have_been_processed", False))
            raise DeadlineExceededError(
                f"the call's deadline of {deadline:g}s ran out after {call.attempt} attempt(s)",
                method=call.method,
                path=call.path,
                may_have_been_processed=maybe,
                reason="deadline",
            ) from last

    async def _retry(self, call: _Call, first_failure: CommBoxError) -> Envelope:
        core = self._core
        opts = self._options
        replay: list[BaseException] = [first_failure]

        async def attempt() -> Envelope:
            if replay:
                raise replay.pop()
            return await self._attempt(call)

        async def before_sleep(exc: BaseException, wait: float, attempt: int) -> None:
            reason = retry_reason(exc)
            core.stats.retries[reason] += 1
            logger.info(
                "retrying %s %s in %.2fs after %s (attempt %d of %d)",
                call.method,
                call.path,
                wait,
                reason,
                attempt,
                opts.max_retries + 1,
            )
            await emit(
                core.hooks.on_retry,
                RetryEvent(
                    method=call.method,
                    path=call.path,
                    attempt=attempt,
                    reason=reason,
                    wait=wait,
                    error=exc,
                ),
            )

        controller = self._policy().controller(
            method=call.method,
            retry_uncertain=opts.retry_uncertain,
            max_retries=opts.max_retries,
            deadline_at=call.deadline_at,
            before_sleep=before_sleep,
        )
        result: Envelope = await controller(attempt)
        return result

    async def _attempt(self, call: _Call, *, first: bool = False) -> Envelope:
        """One attempt (asking a rotating token again after a 401). The first attempt hands a
        retryable failure to tenacity as its first try, so waits, stops and logs are its own;
        nothing is built for retrying until then (most calls succeed, and tenacity's per-call
        set-up costs more than the rest of the client's work on a request)."""
        core = self._core
        call.attempt += 1
        try:
            while True:
                if core.throttle is not None:
                    await self._throttle_wait(call)
                token = call.token.static or await call.token.get()
                try:
                    # The send is inline rather than in a coroutine of its own: with a hundred
                    # calls in flight, every frame held across the network wait costs (cache,
                    # and the garbage collector walks each one).
                    with open_files(call.attachments) if call.attachments else _NO_FILES as files:
                        out = self._outgoing(call, token, files)
                        if core.hooks.on_request:
                            await emit(
                                core.hooks.on_request,
                                RequestEvent(
                                    method=call.method, path=call.path, attempt=call.attempt
                                ),
                            )
                        core.stats.requests += 1
                        sender = self._via or core.sender
                        start = time.monotonic()
                        call.in_flight = True
                        try:
                            response = await sender.send(out)
                        except httpx.TransportError as exc:
                            raise self._transport_failure(call, exc, start) from exc
                        except RuntimeError:
                            if sender.is_closed:
                                raise ClientStateError(
                                    "the connection pool under AsyncCommBox was closed "
                                    "during the call"
                                ) from None
                            raise
                        finally:
                            call.in_flight = False
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
                    return self._received(call, response, elapsed)
                except AuthenticationError as exc:
                    call.last_error = exc
                    if not call.token.rotates or call.refreshed_token:
                        raise
                    # A rotating key may just have been replaced: ask the callable once more.
                    call.refreshed_token = True
                    core.stats.token_refreshes += 1
                    logger.info(
                        "401 on %s %s: asking the token callable again", call.method, call.path
                    )
                except RateLimitError as exc:
                    call.last_error = exc
                    core.stats.rate_limited += 1
                    if core.throttle is not None:
                        pause = exc.retry_after
                        if pause is None:
                            pause = self._policy().backoff(call.attempt)
                        await core.throttle.pause(min(pause, self._options.max_retry_after))
                    raise
                except CommBoxError as exc:
                    call.last_error = exc
                    raise
        except CommBoxError as exc:
            opts = self._options
            if (
                not first
                or opts.max_retries == 0
                or not is_retryable(exc, method=call.method, retry_uncertain=opts.retry_uncertain)
            ):
                raise
            failure = exc
        return await self._retry(call, failure)

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

    def _deadline_timeout(self, deadline_at: float) -> httpx.Timeout:
        """The client's timeouts, each cut to what is left of the call's deadline."""
        timeout = self._options.timeout
        left = max(0.001, deadline_at - time.monotonic())

        def clamp(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=clamp(timeout.connect),
            read=clamp(timeout.read),
            write=clamp(timeout.write),
            pool=clamp(timeout.pool),
        )

    def _outgoing(self, call: _Call, token: str, files: list[Any]) -> Outgoing:
        opts = self._options
        headers = dict(opts.static_headers)  # a copy: senders add the body's Content-Type
        headers["Authorization"] = "Bearer " + token
        form = call.data
        if call.multipart and not files and form:
            # httpx only builds multipart when there are files: send the fields as parts
            # without a filename, which is what a form field is.
            files = [(k, (None, str(v), None)) for k, v in form.items()]
            form = None
        return Outgoing(
            call.method,
            call.url,
            headers=headers,
            params=call.params,
            json=call.json if not files else None,
            data=form,
            files=files or None,
            timeout=opts.timeout
            if call.deadline_at is None
            else self._deadline_timeout(call.deadline_at),
        )

    def _transport_failure(
        self, call: _Call, exc: httpx.TransportError, start: float
    ) -> CommBoxError:
        err = map_transport_error(exc, method=call.method, path=call.path)
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

    def _received(self, call: _Call, response: ResponseLike, elapsed: float) -> Envelope:
        self._core.stats.responses += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3fs (attempt %d)",
                call.method,
                call.path,
                response.status_code,
                elapsed,
                call.attempt,
                extra={
                    "commbox_method": call.method,
                    "commbox_path": call.path,
                    "commbox_status": response.status_code,
                    "commbox_attempt": call.attempt,
                    "commbox_elapsed": elapsed,
                },
            )
        envelope = parse_response(
            response,
            method=call.method,
            path=call.path,
            attempts=call.attempt,
            elapsed=elapsed,
            allow_partial=call.allow_partial,
        )
        record_envelope(envelope)
        return envelope
