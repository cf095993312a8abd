"""The HTTP layer under the client: the senders (httpx, aiohttp) and their failures' verdicts.

A sender puts one attempt on the wire and reads its whole response, bounded. As it goes it
records in the attempt's :class:`~commbox_async._verdict.Exposure` whether any byte may have
left (``sent``) and which status came back (``status``): the facts the "may have been
processed" verdict is made of, known here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib.util
import json as json_module
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

import anyio
import anyio.lowlevel
import httpx

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    MissingExtraError,
)
from ._inflate import BadEncoding, inflater, read_inflated
from ._read_clock import ReadClock
from ._read_clock import install as install_read_clock
from ._secret import Secret, clear_locals
from ._verdict import Exposure, Processed, for_status

__all__ = [
    "BadEncoding",
    "BodyTooLarge",
    "Outgoing",
    "ResponseLike",
    "Sender",
    "make_sender",
    "map_transport_error",
]

TransportOption = Literal["httpx", "aiohttp", "auto"] | httpx.AsyncBaseTransport | None


def aiohttp_available() -> bool:
    """True when the ``aiohttp`` extra is installed."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


class ResponseLike(Protocol):
    """What the pipeline reads from a response, whichever library received it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


class WireResponse:
    """A whole response: status, headers (case-insensitive), body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content


class Outgoing:
    """One attempt's request, before a library encodes it. ``url`` is already percent-encoded;
    ``headers`` are the shared static ones (a sender copies them and adds the token, which
    exists in plain text only in that copy)."""

    __slots__ = (
        "data",
        "exposure",
        "files",
        "headers",
        "json",
        "max_bytes",
        "method",
        "params",
        "timeout",
        "token",
        "url",
    )

    # Positional, as _Call's (see there).
    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        token: Secret,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        files: list[Any] | None,
        timeout: httpx.Timeout,
        exposure: Exposure,
        max_bytes: int | None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.token = token
        self.params = params
        self.json = json
        self.data = data
        self.files = files
        self.timeout = timeout
        self.exposure = exposure
        self.max_bytes = max_bytes


def _wire_headers(
    out: Outgoing, added: Mapping[str, str] | None = None, name: str = "Authorization"
) -> dict[str, str]:
    """The attempt's own headers with the token (under ``name``): built inside a sender's call
    and handed straight to the library, so no frame of the pipeline holds the token in plain
    text. ``added`` are headers the library adds to every request lacking them itself (the
    aiohttp sender's): when they are the attempt's, the token alone is given."""
    headers = {} if out.headers is added else dict(out.headers)
    headers[name] = "Bearer " + out.token.reveal()
    return headers


class BodyTooLarge(Exception):
    """Raised by a sender when a response body passes ``max_bytes`` (declared or read)."""

    def __init__(self, status: int, headers: Mapping[str, str], declared: int | None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.declared = declared


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    # isdecimal, and at most 18 digits: int() of a hostile 5,000-digit value is refused
    # by the interpreter, and no body that long can be real.
    return int(value) if value.isdecimal() and len(value) <= 18 else None


def read_body(
    whole: Callable[[], Awaitable[bytes]],
    raw: Callable[[], AsyncIterator[bytes]],
    headers: Mapping[str, str],
    limit: int | None,
    status: int,
) -> Awaitable[bytes]:
    """A response's body, bounded by ``limit`` however it is framed or encoded.

    ``whole`` reads it in one go (the library's own read), ``raw()`` chunk by chunk as it came
    (no Content-Encoding undone; called only when needed, so the common case builds no
    iterator). One go only when nothing can make it grow past the limit: a
    declared length within it, no Transfer-Encoding (which overrides the length: a small
    declared length over a chunked body must not lift the bound) and no Content-Encoding.
    Raises :class:`BodyTooLarge` past the limit (at once when the declared length is over it)
    and :class:`BadEncoding` for an encoding this client does not decode.
    """
    declared = _declared_length(headers)
    if limit is not None and declared is not None and declared > limit:
        raise BodyTooLarge(status, headers, declared)
    decoder = inflater(headers, status) if "content-encoding" in headers else None
    if decoder is not None:
        return read_inflated(raw(), decoder, limit, status, headers, BodyTooLarge)
    if limit is None or (declared is not None and "transfer-encoding" not in headers):
        return whole()
    return _read_capped(raw(), limit, status, headers)


async def _read_capped(
    chunks: AsyncIterator[bytes], limit: int, status: int, headers: Mapping[str, str]
) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(status, headers, None)
        parts.append(chunk)
    return b"".join(parts)


async def _not_cancelled() -> None:
    """Raise the cancellation of a call whose scope was cancelled before it reached its sender
    (``cb.bulk``'s stop cancels the requests that have not started), before a byte may leave.

    A cancellation lands only where the task next waits, and the call may not wait before its
    request is written: aiohttp writes at once on a pooled connection, and an untraced httpx
    transport counts as sending from the moment it is called. Free when not cancelled."""
    await anyio.lowlevel.checkpoint_if_cancelled()


@functools.cache
def _cancel_pending_on_asyncio() -> Callable[[], bool]:
    """Whether the current asyncio task is inside an anyio scope that has been cancelled: the
    question :func:`_not_cancelled` asks, answered without awaiting (it is asked on every
    aiohttp request, nearly always to hear no). It reads anyio's table of task states the way
    anyio's own ``checkpoint_if_cancelled`` does; when anything there is not as expected it
    answers yes, and the caller's :func:`_not_cancelled` then decides."""
    try:
        from anyio._backends._asyncio import _task_states

        states: Mapping[Any, Any] = _task_states.data  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - an anyio laid out otherwise
        return lambda: True

    current_task = asyncio.current_task
    ref = weakref.ref

    def pending() -> bool:
        if not states:  # no task has ever entered an anyio scope
            return False
        try:
            task = current_task()
            state = states.get(ref(task)) if task is not None else None
            scope = state.cancel_scope if state is not None else None
            while scope is not None:
                if scope.cancel_called:
                    return True
                if scope.shield:
                    return False
                scope = scope._parent_scope
            return False
        except Exception:  # pragma: no cover - anyio's task state laid out otherwise
            return True

    return pending


class Sender(Protocol):
    """Sends one request and reads the whole response (at most ``out.max_bytes`` of body),
    recording its progress in ``out.exposure``. Transport failures are raised as
    ``httpx.TransportError`` subclasses, so one table gives every library's failures the same
    typed error; a body over the limit raises :class:`BodyTooLarge`."""

    @property
    def name(self) -> str:
        """``"httpx"`` or ``"aiohttp"`` (``"auto"`` until an automatic choice is made)."""
        ...

    @property
    def is_closed(self) -> bool: ...

    async def send(self, out: Outgoing) -> ResponseLike: ...

    async def aclose(self) -> None: ...


#: What a sender raises (as a RuntimeError) for a call the client's close stopped before it
#: was sent; the pipeline answers it with ClientStateError.
_CLOSED_BEFORE_SENT = "the client was closed before the request was sent"
_HEADERS_STARTED = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)
#: httpcore opening a connection: a call that waited for one while the client closed opens
#: none.
_CONNECTING = frozenset(
    {
        "connection.connect_tcp.started",
        "connection.connect_unix_socket.started",
        "connection.start_tls.started",
    }
)
_STATUS_RECEIVED = frozenset(
    {"http11.receive_response_headers.complete", "http2.receive_response_headers.complete"}
)


class _Tracer:
    """httpcore's ``trace`` extension for one attempt: marks the exposure as the request's
    first byte is about to be written, and records the status as soon as it is read."""

    __slots__ = ("client", "exposure")

    def __init__(self, exposure: Exposure, client: httpx.AsyncClient) -> None:
        self.exposure = exposure
        self.client = client

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        if name in _HEADERS_STARTED:
            # The last moment before a byte leaves: a stop that cancelled this call while
            # it waited for a connection is delivered here, not after the request is out.
            await _not_cancelled()
            self._refuse_if_closed()
            self.exposure.sent = True
        elif name in _CONNECTING:
            self._refuse_if_closed()
        elif name in _STATUS_RECEIVED:
            value = info.get("return_value")
            if isinstance(value, tuple) and value:
                # HTTP/1.1: (version, status, reason, headers); HTTP/2: (status, headers)
                status = value[1] if len(value) == 4 else value[0]
                if isinstance(status, int):
                    self.exposure.status = status

    def _refuse_if_closed(self) -> None:
        # A call that waited for a connection while the client closed neither opens one nor
        # sends after the close.
        if self.client.is_closed:
            raise RuntimeError(_CLOSED_BEFORE_SENT)


def _is_traced(client: httpx.AsyncClient) -> bool:
    """Whether the client's requests go through httpcore, whose trace events tell exactly when
    the request starts to be written. Anything else (a mock or ASGI transport...) is taken as
    sending from the moment it is called."""
    return isinstance(getattr(client, "_transport", None), httpx.AsyncHTTPTransport)


def _orphaned_connections(pool: Any, tracer: _Tracer) -> list[Any]:
    """Take out of an httpcore connection pool, after an attempt (traced by ``tracer``) ended
    by cancellation or error, what it left behind that nothing would ever free; return the
    connections to be closed. Works on the pool's private attributes: on an httpcore whose
    pool lacks them, nothing is taken.

    Why: httpcore 1.0.9 leaks a connection when a request is cancelled (or hits its pool
    timeout) after the pool has assigned it a new connection that is not yet established
    (https://github.com/encode/httpcore/issues/1093, fix proposed in
    https://github.com/encode/httpcore/pull/1099): it stays "CONNECTING" forever, neither
    idle, closed nor expired, so never reaped, and not available, so never reused. A native
    asyncio cancellation (the deadline on asyncio, ``asyncio.timeout``, or
    ``task.cancel()``) is not held off by httpcore's anyio shields, so it can also stop
    httpcore's own clean-up half-way: an established connection left "NEW" (no request ever
    sent on it), or the attempt's request left in the pool's queue holding its connection
    "ACTIVE". Once ``max_connections`` of them pile up, every request fails with PoolTimeout.

    The attempt's request is the one carrying its tracer; its task has left httpcore, so no
    one else would take it out. A connection still in use always has one of the pool's
    requests assigned to it (until that request's response is closed); one with none that is
    neither idle (reused, or reaped by the pool's own rules), closed, nor available (an
    HTTP/2 connection a later request can share) can never be used or freed.
    """
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return []
    for request in [r for r in requests if _tracer_of(r) is tracer]:
        requests.remove(request)
    claimed = {id(getattr(request, "connection", None)) for request in requests}
    orphans = [
        connection
        for connection in connections
        if id(connection) not in claimed
        and not (connection.is_idle() or connection.is_closed() or connection.is_available())
    ]
    if not orphans:
        return []
    for connection in orphans:
        connections.remove(connection)
    # The slots are free: hand them to the requests queued for one, as the pool does itself
    # whenever its state changes (it returns the connections it wants closed).
    assign = getattr(pool, "_assign_requests_to_connections", None)
    if callable(assign):
        orphans.extend(assign())
    return orphans


def _tracer_of(pool_request: Any) -> Any:
    extensions = getattr(getattr(pool_request, "request", None), "extensions", None)
    return extensions.get("trace") if isinstance(extensions, dict) else None


async def _reclaim_orphaned_connections(client: httpx.AsyncClient, tracer: _Tracer) -> None:
    """See :func:`_orphaned_connections`; the closing is shielded, as the cancellation that
    ended the attempt must not stop it."""
    transports = (getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values())
    closing: list[Any] = []
    for transport in transports:
        closing += _orphaned_connections(getattr(transport, "_pool", None), tracer)
    if closing:
        with anyio.CancelScope(shield=True):
            for connection in closing:
                # A socket that fails to close is gone anyway; the attempt's own error stands.
                with contextlib.suppress(Exception):
                    await connection.aclose()


class HttpxSender:
    """Requests through an ``httpx.AsyncClient`` (the default; asyncio and trio)."""

    name = "httpx"

    def __init__(self, client: httpx.AsyncClient, *, owns: bool) -> None:
        self.client = client
        self.owns = owns
        self._traced = _is_traced(client)

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

    async def send(self, out: Outgoing) -> ResponseLike:
        await _not_cancelled()
        exposure = out.exposure
        tracer = _Tracer(exposure, self.client) if self._traced else None
        request = self.client.build_request(
            out.method,
            out.url,
            params=out.params,
            json=out.json,
            data=out.data,
            files=out.files,
            headers=_wire_headers(out),
            timeout=out.timeout,
            extensions=None if tracer is None else {"trace": tracer},
        )
        if not self._traced:
            exposure.sent = True
        try:
            response = await self.client.send(request, stream=True)
            try:
                status = response.status_code
                exposure.status = status
                headers = response.headers
                if response.is_stream_consumed:  # built with its content (a mock transport)
                    content = response.content
                    if out.max_bytes is not None and len(content) > out.max_bytes:
                        raise BodyTooLarge(status, headers, None)
                else:
                    content = await read_body(
                        response.aread, response.aiter_raw, headers, out.max_bytes, status
                    )
            finally:
                await response.aclose()
        except BaseException as exc:
            clear_locals(exc)
            if tracer is not None:
                # Never in place of the attempt's own failure, which carries its verdict.
                with contextlib.suppress(Exception):
                    await _reclaim_orphaned_connections(self.client, tracer)
            raise
        return WireResponse(status, headers, content)

    async def aclose(self) -> None:
        if self.owns:
            await self.client.aclose()


def _json_body(value: Any) -> bytes:
    # Byte for byte what httpx sends for json=..., so both transports put the same body on
    # the wire.
    return json_module.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


#: The exposure of the attempt the aiohttp connector is connecting for (same task).
_connecting: contextvars.ContextVar[Exposure | None] = contextvars.ContextVar(
    "commbox_connecting", default=None
)


@functools.cache
def _exposing_connector() -> type[Any]:
    """aiohttp's TCPConnector, marking the attempt as possibly sent once it has a connection:
    before that nothing can have been written; after it, aiohttp writes without another
    signal this cheap (its tracing costs more per request than the rest of the client)."""
    import aiohttp

    class ExposingConnector(aiohttp.TCPConnector):
        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 - aiohttp's own signature
            connection = await super().connect(req, traces, timeout)
            exposure = _connecting.get()
            if exposure is not None:
                # As in _Tracer: a stop that struck before the connection was got (or while
                # it was) is delivered before aiohttp writes (anyio defers a cancellation
                # whose task is about to resume, and aiohttp writes without waiting again).
                try:
                    if _cancel_pending_on_asyncio()():
                        await _not_cancelled()
                except BaseException:
                    connection.release()
                    raise
                exposure.sent = True
            return connection

    return ExposingConnector


def _request_with_defaults(headers: Mapping[str, str]) -> type[Any]:
    """aiohttp's ClientRequest adding ``headers`` to a request that lacks them, in place of
    its own defaults (``*/*``, its User-Agent)."""
    from aiohttp import ClientRequest
    from multidict import istr

    # istr: aiohttp's header table folds the case of a plain str name on every request.
    defaults = {istr(name): value for name, value in headers.items()}
    return type("CommBoxRequest", (ClientRequest,), {"DEFAULT_HEADERS": defaults})


class AiohttpSender:
    """Requests straight through one ``aiohttp.ClientSession`` (asyncio only).

    httpx's client and the httpx-aiohttp adapter cost more per request than aiohttp itself
    (see benchmarks/bench_transport), so the common case (no body, or JSON) goes to aiohttp
    directly: the URL exactly as built (already percent-encoded), the JSON bytes httpx would
    have sent. Forms and multipart are still encoded by httpx and their stream handed to
    aiohttp, so files stream from disk the same way on both transports.
    """

    name = "aiohttp"

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self._limits = limits
        # The client's static headers become the ones aiohttp adds to a request lacking them
        # (its own defaults, which it adds anyway, are replaced): a call that sends exactly
        # those (every call of the client, and of a view that leaves them) passes aiohttp
        # only its token, and its headers are not merged one by one into every request. A
        # view's own headers always hold every one of these names (with_options merges), so
        # sending them in full replaces each value and adds none it did not ask for.
        self._headers = headers
        self._session: Any = None
        self._closed = False
        # The client's Timeout is the session's: a call with it (every call without a
        # deadline near, and of a view that keeps it) passes aiohttp none.
        self._session_timeout = timeout
        # The last other Timeout seen and its aiohttp form (a view's one Timeout object).
        self._timeout: httpx.Timeout | None = None
        self._aio_timeout: Any = None
        self._read_clock: ReadClock | None = None

    @property
    def is_closed(self) -> bool:
        return self._closed

    def _open(self) -> Any:
        import aiohttp
        from multidict import istr
        from yarl import URL

        self._aiohttp: Any = aiohttp
        self._url: Any = URL
        # What aiohttp names its own headers with (see _request_with_defaults).
        self._token_name: str = istr("Authorization")

        limits = self._limits
        connector = _exposing_connector()(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry
            if limits.keepalive_expiry is not None
            else 15.0,
            ssl=httpx.create_ssl_context(),  # the same CA bundle as the httpx transport
        )
        self._read_clock = install_read_clock(connector, asyncio.get_running_loop())
        # Bodies are inflated here, bounded (see _inflate), as they are on httpx.
        options: dict[str, Any] = {}
        if self._session_timeout is not None:
            options["timeout"] = self._client_timeout(self._session_timeout)
        if self._headers is not None:
            options["request_class"] = _request_with_defaults(self._headers)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False, **options)
        # aiohttp sends a GET, PUT or DELETE again, once and unseen, when its connection drops
        # before the response (RFC 9112 9.3.1): a repeat that no retry rule allowed, that
        # max_retries=0 does not stop, and that no metric or hook sees. The retry rules decide.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    def _encode(self, out: Outgoing) -> tuple[str, dict[str, str], Any]:
        """The URL, headers (with the token) and body aiohttp is given."""
        url = out.url
        if out.files or out.data is not None:
            request = httpx.Request(
                out.method,
                url,
                params=out.params,
                data=out.data,
                files=out.files,
                headers=_wire_headers(out),
            )
            headers = dict(request.headers)
            headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
            body: Any
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = request.stream
            return str(request.url), headers, body
        if out.params:
            url = f"{url}?{httpx.QueryParams(out.params)}"
        headers = _wire_headers(out, self._headers, self._token_name)
        body = None
        if out.json is not None:
            body = _json_body(out.json)
            headers["Content-Type"] = "application/json"
        return url, headers, body

    def _client_timeout(self, timeout: httpx.Timeout) -> Any:
        if timeout is not self._timeout:
            # aiohttp's "connect" covers waiting for a pooled connection, like httpx's "pool";
            # it has no write timeout (an upload the server stops reading ends at the deadline).
            self._timeout = timeout
            self._aio_timeout = self._aiohttp.ClientTimeout(
                total=None,
                connect=timeout.pool,
                sock_connect=timeout.connect,
                sock_read=timeout.read,
            )
        return self._aio_timeout

    async def send(self, out: Outgoing) -> ResponseLike:
        if self._closed:
            raise RuntimeError("the aiohttp session is closed")
        # No cancellation check here: the connector makes it before anything can be written.
        session = self._session or self._open()
        exposure = out.exposure
        limit = out.max_bytes
        marker = _connecting.set(exposure)
        headers: dict[str, str] | None = None
        try:
            url, headers, body = self._encode(out)
            exact = self._url(url, encoded=True)  # as built: no re-quoting of %2F or %3D
            if body is None and out.timeout is self._session_timeout:
                # The session's own timeout, and no body: aiohttp passes every keyword through
                # two **kwargs, so the common call gives only the two it needs.
                context = session.request(out.method, exact, headers=headers, allow_redirects=False)
            else:
                context = session.request(
                    out.method,
                    exact,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=self._client_timeout(out.timeout),
                )
            async with context as response:
                headers = None  # the plain token leaves this frame as soon as it is sent
                status = response.status
                exposure.status = status
                response_headers = response.headers
                stream = response.content
                content = await read_body(
                    response.read,
                    lambda: stream.iter_chunked(65536),
                    response_headers,
                    limit,
                    status,
                )
                return WireResponse(status, response_headers, content)
        except (BodyTooLarge, BadEncoding):
            raise
        except BaseException as exc:
            clear_locals(exc)
            mapped: Exception | None
            if isinstance(exc, Exception):
                mapped = _remap(exc)
            elif self.is_closed and isinstance(exc, asyncio.CancelledError) and _uncancelled():
                # aiohttp's close cancels what waits for a connection (the pool, a DNS
                # lookup), though nothing cancelled this call: not sent, and not a stop.
                mapped = RuntimeError(_CLOSED_BEFORE_SENT)
            else:
                mapped = None
            if mapped is None:
                raise
            raise mapped from None
        finally:
            headers = None
            _connecting.reset(marker)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            _end_calls_in_flight(self._aiohttp, self._session.connector)
            await self._session.close()
        if self._read_clock is not None:
            self._read_clock.close()


def _uncancelled() -> bool:
    """Whether the current task has no cancellation pending (so a ``CancelledError`` it got
    was a future's, not its own); False where asyncio cannot say (before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() == 0


def _end_calls_in_flight(aiohttp: Any, connector: Any) -> None:
    """Fail every call still waiting on one of ``connector``'s connections, as a connection
    lost under it would. aiohttp's close lets go of a body being read without ending it (and
    drops its read timeout), so a call that had its response's head went on waiting until its
    deadline."""
    from aiohttp.client_proto import ResponseHandler

    for protocol in list(getattr(connector, "_acquired", ())):
        if not isinstance(protocol, ResponseHandler):
            continue  # a connection still being opened: aiohttp's close ends it
        error = aiohttp.ClientConnectionError("the client was closed during the call")
        payload = protocol._payload
        if payload is not None:
            payload.set_exception(error)
        protocol.set_exception(error)
        # Dropped, not closed: a close waits to send what is still buffered, and a server
        # that stopped reading an upload would hold the client's close forever.
        if protocol.transport is not None:
            protocol.transport.abort()


class AutoSender:
    """aiohttp when it is installed and the running loop is asyncio, otherwise ``fallback``;
    decided at the first request, when the loop is known (a client stays on one loop)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        fallback: Sender,
        owns_fallback: bool,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self._limits = limits
        self._headers = headers
        self._timeout = timeout
        self._fallback = fallback
        self._owns_fallback = owns_fallback
        self._chosen: Sender | None = None

    @property
    def name(self) -> str:
        """``"aiohttp"`` or ``"httpx"`` once chosen; ``"auto"`` before the first request."""
        if self._chosen is None:
            return "auto"
        return self._chosen.name

    def _choose(self) -> Sender:
        if self._chosen is None:
            import asyncio

            try:
                asyncio.get_running_loop()
                on_asyncio = True
            except RuntimeError:  # trio
                on_asyncio = False
            self._chosen = (
                AiohttpSender(limits=self._limits, headers=self._headers, timeout=self._timeout)
                if on_asyncio and aiohttp_available()
                else self._fallback
            )
        return self._chosen

    @property
    def is_closed(self) -> bool:
        return (self._chosen or self._fallback).is_closed

    async def send(self, out: Outgoing) -> ResponseLike:
        return await self._choose().send(out)

    async def aclose(self) -> None:
        if self._chosen is not None and self._chosen is not self._fallback:
            await self._chosen.aclose()
        if self._owns_fallback:
            await self._fallback.aclose()


def make_sender(
    *,
    timeout: httpx.Timeout,
    limits: httpx.Limits,
    http2: bool,
    transport: TransportOption,
    headers: Mapping[str, str] | None = None,
) -> Sender:
    """The sender for ``transport``; ``headers`` are the client's static headers (see
    :class:`AiohttpSender`)."""
    if transport == "aiohttp":
        if not aiohttp_available():
            raise MissingExtraError(
                "transport='aiohttp' needs the 'aiohttp' extra: "
                "pip install 'commbox-async[aiohttp]'",
                extra="aiohttp",
                module="aiohttp",
            )
        if http2:
            raise ConfigurationError("the aiohttp transport speaks HTTP/1.1 only; drop http2=True")
        return AiohttpSender(limits=limits, headers=headers, timeout=timeout)
    kwargs: dict[str, Any] = {"timeout": timeout, "limits": limits, "follow_redirects": False}
    if transport == "auto" and not http2:
        fallback = HttpxSender(httpx.AsyncClient(**kwargs), owns=True)
        return AutoSender(
            limits=limits, fallback=fallback, owns_fallback=True, headers=headers, timeout=timeout
        )
    if transport not in (None, "httpx", "auto"):
        if not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                "transport must be 'httpx', 'aiohttp', 'auto' or an httpx.AsyncBaseTransport, "
                f"got {transport!r}"
            )
        kwargs["transport"] = transport
    elif http2:
        # Looked up rather than imported: httpx imports it itself, and the optional package
        # need not be installed for the type checker.
        if importlib.util.find_spec("h2") is None:
            raise MissingExtraError(
                "http2=True needs the 'http2' extra (the h2 package): "
                "pip install 'commbox-async[http2]'",
                extra="http2",
                module="h2",
            )
        kwargs["http2"] = True
    return HttpxSender(httpx.AsyncClient(**kwargs), owns=True)


# (httpx error class, our class, message, reason). First match wins, so subclasses come
# before their bases. The first four happen before a byte of the request is written, so
# CommBox certainly did not act on the request; everything else may follow a request it
# read and acted on.
_BEFORE_SENDING: tuple[tuple[type[Exception], type[APIConnectionError], str, str], ...] = (
    (httpx.ConnectTimeout, APITimeoutError, "timed out connecting to", "connect_timeout"),
    (
        httpx.PoolTimeout,
        APITimeoutError,
        "timed out waiting for a pooled connection to",
        "pool_timeout",
    ),
    (httpx.ConnectError, APIConnectionError, "could not connect to", "connect_error"),
    (httpx.UnsupportedProtocol, APIConnectionError, "could not connect to", "connect_error"),
    (httpx.LocalProtocolError, APIConnectionError, "request not sent to", "connect_error"),
)
_AFTER_SENDING: tuple[tuple[type[Exception], type[APIConnectionError], str, str], ...] = (
    (httpx.ReadTimeout, APITimeoutError, "timed out waiting for the response of", "read_timeout"),
    (httpx.WriteTimeout, APITimeoutError, "timed out sending the request to", "write_timeout"),
)


def map_transport_error(
    exc: Exception, *, method: str, path: str, host: str, exposure: Exposure
) -> APIConnectionError:
    """A transport failure as a typed error with its verdict.

    Connect failures and pool timeouts happen before a byte of the request is sent: not
    processed. Anything after that (read timeout, reset, the server closing without a
    response) may follow a request CommBox already acted on, unless the status line had
    arrived, which then decides (a 2xx whose body was cut off was processed; a 503 was not).
    The library's exception is not chained: it holds the request, headers included.
    """
    detail = str(exc) or type(exc).__name__
    for table, before in ((_BEFORE_SENDING, True), (_AFTER_SENDING, False)):
        for httpx_cls, cls, message, reason in table:
            if isinstance(exc, httpx_cls):
                processed = Processed.NO if before else _after_sending(exposure)
                return cls(
                    f"{message} {host}: {detail}",
                    method=method,
                    path=path,
                    processed=processed,
                    reason=reason,
                    cause_type=type(exc).__name__,
                )
    return APIConnectionError(
        f"connection to {host} failed after the request was sent: {detail}",
        method=method,
        path=path,
        processed=_after_sending(exposure),
        reason="connection_lost",
        cause_type=type(exc).__name__,
    )


def _after_sending(exposure: Exposure) -> Processed:
    return Processed.MAYBE if exposure.status is None else for_status(exposure.status)


# -- the aiohttp transport -------------------------------------------------------------------


@functools.cache
def _aiohttp_error_map() -> tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]:
    """aiohttp's exceptions as their httpx counterparts, most specific first.

    The split that matters is "before sending" (connect) against "after sending" (read,
    disconnect, reset): aiohttp's ``ClientConnectionError`` also covers a server that hangs up
    after reading the request, and calling that "never sent" would let a POST be retried into
    a duplicate. (httpx-aiohttp's own table maps it to ``ConnectTimeout``.)
    """
    import asyncio

    import aiohttp

    table: list[tuple[type[BaseException], type[httpx.TransportError]]] = [
        (aiohttp.ClientConnectorError, httpx.ConnectError),
    ]
    connection_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)
    if connection_timeout is not None:
        table.append((connection_timeout, httpx.ConnectTimeout))
    socket_timeout = getattr(aiohttp, "SocketTimeoutError", None)
    if socket_timeout is not None:
        table.append((socket_timeout, httpx.ReadTimeout))
    table += [
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError, httpx.ReadError),
        (aiohttp.ClientOSError, httpx.ReadError),
        (aiohttp.ClientConnectionError, httpx.ReadError),
        (asyncio.TimeoutError, httpx.ReadTimeout),
    ]
    return tuple(table)


def _remap(exc: Exception) -> httpx.TransportError | None:
    """An aiohttp failure as its httpx counterpart (None for anything else)."""
    for aio_cls, httpx_cls in _aiohttp_error_map():
        if isinstance(exc, aio_cls):
            return httpx_cls(f"{type(exc).__name__}: {exc}")
    return None
