"""The HTTP layer under the client: URLs, the connection pool, and transport error mapping."""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import json as json_module
import re
import string
from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from ._exceptions import APIConnectionError, APITimeoutError, ConfigurationError

__all__ = [
    "build_path",
    "check_base_url",
    "encode_segment",
    "is_loopback",
    "make_sender",
    "Outgoing",
    "map_transport_error",
]

_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> httpx.URL:
    """Parse a base URL: HTTPS, or plain HTTP to a loopback host only."""
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"invalid base_url {base_url!r}: {exc}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(
            f"base_url must be an absolute https:// URL such as https://api.commbox.io, "
            f"got {base_url!r}"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigurationError(
            f"refusing plain-HTTP base_url {base_url!r}: CommBox is served over HTTPS only and the "
            "token must not travel in clear text (http:// is allowed only for loopback hosts)"
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"base_url must not have a query or fragment, got {base_url!r}")
    return url


_UNRESERVED = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")


def encode_segment(value: object, *, name: str = "path parameter") -> str:
    """Percent-encode a value as exactly one path segment.

    ``/``, ``?``, ``#``, ``%`` and ``=`` are all escaped, and a segment that is ``.`` or ``..``
    is escaped too, so no id can change the path or the query.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{name} must be an int or a str, got {type(value).__name__}")
    text = str(value)
    if text == "":
        raise ConfigurationError(f"{name} must not be empty")
    if _UNRESERVED.fullmatch(text):
        return text  # the usual id: nothing to escape, and it cannot be "." or ".."
    encoded = quote(text, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


@functools.lru_cache(maxsize=1024)
def _parse_template(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A path template's literal pieces and field names (checked once per template)."""
    # Literal parts of the template come from this library, never from callers' data; still,
    # refuse anything that is not a plain path.
    literal = _FIELD_RE.sub("", template)
    if (
        not template.startswith("/")
        or any(c in literal for c in "?#%")
        or any(c in string.whitespace for c in literal)
    ):
        raise ConfigurationError(
            f"path template must be a plain path starting with '/': {template!r}"
        )
    pieces = _FIELD_RE.split(template)  # literal, name, literal, name, ..., literal
    return tuple(pieces[0::2]), tuple(pieces[1::2])


def build_path(template: str, params: Mapping[str, object]) -> str:
    """Fill ``{name}`` fields of a path template, each value encoded as one segment."""
    literals, names = _parse_template(template)
    if len(params) != len(names):
        raise _path_fields_error(template, names, params)
    # Concatenation and a plain loop rather than a join or a generator: no container objects
    # per call (with many calls in flight, each one is more work for the garbage collector).
    path = literals[0]
    for i in range(len(names)):
        name = names[i]
        if name not in params:
            raise _path_fields_error(template, names, params)
        value = params[name]
        # An int (not a bool) is digits and "-": nothing to escape, so no call for it (the
        # one place ints are short-cut; encode_segment gives the same text, more slowly).
        segment = str(value) if type(value) is int else encode_segment(value, name=name)
        path = path + segment + literals[i + 1]
    return path


def _path_fields_error(
    template: str, names: tuple[str, ...], params: Mapping[str, object]
) -> ConfigurationError:
    missing = [n for n in names if n not in params]
    if missing:
        return ConfigurationError(f"path {template!r} needs values for {', '.join(missing)}")
    extra = sorted(set(params) - set(names))
    return ConfigurationError(f"path {template!r} has no field named {', '.join(extra)}")


def url_prefix(base: httpx.URL) -> str:
    """The base URL as the string every request URL starts with (no trailing slash)."""
    return str(base).rstrip("/")


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
    """A whole response received through aiohttp: status, headers (case-insensitive), body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content


class Outgoing:
    """One attempt's request, before a library encodes it. ``url`` is already percent-encoded."""

    __slots__ = ("data", "files", "headers", "json", "method", "params", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        files: list[Any] | None,
        timeout: httpx.Timeout,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.params = params
        self.json = json
        self.data = data
        self.files = files
        self.timeout = timeout


class Sender(Protocol):
    """Sends one request and reads the whole response. Transport failures are raised as
    ``httpx.TransportError`` subclasses, so one table gives every library's failures the same
    typed error and the same "may have been processed" verdict."""

    @property
    def name(self) -> str:
        """``"httpx"`` or ``"aiohttp"`` (``"auto"`` until an automatic choice is made)."""
        ...

    @property
    def is_closed(self) -> bool: ...

    async def send(self, out: Outgoing) -> ResponseLike: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    """Requests through an ``httpx.AsyncClient`` (the default; asyncio and trio)."""

    name = "httpx"

    def __init__(self, client: httpx.AsyncClient, *, owns: bool) -> None:
        self.client = client
        self.owns = owns

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

    async def send(self, out: Outgoing) -> ResponseLike:
        request = self.client.build_request(
            out.method,
            out.url,
            params=out.params,
            json=out.json,
            data=out.data,
            files=out.files,
            headers=out.headers,
            timeout=out.timeout,
        )
        return await self.client.send(request)

    async def aclose(self) -> None:
        if self.owns:
            await self.client.aclose()


def _json_body(value: Any) -> bytes:
    # Byte for byte what httpx sends for json=..., so both transports put the same body on
    # the wire.
    return json_module.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


class AiohttpSender:
    """Requests straight through one ``aiohttp.ClientSession`` (asyncio only).

    httpx's client and the httpx-aiohttp adapter cost more per request than aiohttp itself
    (see benchmarks/bench_transport), so the common case (no body, or JSON) goes to aiohttp
    directly: the URL exactly as built (already percent-encoded), the JSON bytes httpx would
    have sent, the whole body read. Forms and multipart are still encoded by httpx and their
    stream handed to aiohttp, so files stream from disk the same way on both transports.
    """

    name = "aiohttp"

    def __init__(self, *, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: Any = None
        self._closed = False
        # The last Timeout seen and its aiohttp form: without a deadline every call passes
        # the client's one Timeout object; with one, each call's is new anyway.
        self._timeout: httpx.Timeout | None = None
        self._aio_timeout: Any = None

    @property
    def is_closed(self) -> bool:
        return self._closed

    def _open(self) -> Any:
        import aiohttp
        from yarl import URL

        self._aiohttp: Any = aiohttp
        self._url: Any = URL

        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry
            if limits.keepalive_expiry is not None
            else 15.0,
            ssl=httpx.create_ssl_context(),  # the same CA bundle as the httpx transport
        )
        self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def send(self, out: Outgoing) -> ResponseLike:
        if self._closed:
            raise RuntimeError("the aiohttp session is closed")
        session = self._session or self._open()
        method, url, headers, timeout = out.method, out.url, out.headers, out.timeout
        body: Any = None
        if out.files or out.data is not None:
            request = httpx.Request(
                method, url, params=out.params, data=out.data, files=out.files, headers=headers
            )
            url = str(request.url)
            headers = dict(request.headers)
            headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = request.stream
        else:
            if out.params:
                url = f"{url}?{httpx.QueryParams(out.params)}"
            if out.json is not None:
                body = _json_body(out.json)
                headers["Content-Type"] = "application/json"
        if timeout is not self._timeout:
            # aiohttp's "connect" covers waiting for a pooled connection, like httpx's "pool";
            # it has no write timeout (a stalled upload ends at the read timeout instead).
            self._timeout = timeout
            self._aio_timeout = self._aiohttp.ClientTimeout(
                total=None,
                connect=timeout.pool,
                sock_connect=timeout.connect,
                sock_read=timeout.read,
            )

        try:
            async with session.request(
                method,
                self._url(url, encoded=True),  # exactly as built: no re-quoting of %2F or %3D
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._aio_timeout,
            ) as response:
                content = await response.read()
                return WireResponse(response.status, response.headers, content)
        except Exception as exc:
            mapped = _remap(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()


class AutoSender:
    """aiohttp when it is installed and the running loop is asyncio, otherwise ``fallback``;
    decided at the first request, when the loop is known (a client stays on one loop)."""

    def __init__(self, *, limits: httpx.Limits, fallback: Sender, owns_fallback: bool) -> None:
        self._limits = limits
        self._fallback = fallback
        self._owns_fallback = owns_fallback
        self._chosen: Sender | None = None

    @property
    def name(self) -> str:
        """``"aiohttp"`` or ``"httpx"`` once chosen; ``"auto"`` before the first request."""
        if self._chosen is None:
            return "auto"
        return "aiohttp" if isinstance(self._chosen, AiohttpSender) else "httpx"

    def _choose(self) -> Sender:
        if self._chosen is None:
            import asyncio

            on_asyncio = asyncio._get_running_loop() is not None
            self._chosen = (
                AiohttpSender(limits=self._limits)
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
    *, timeout: httpx.Timeout, limits: httpx.Limits, http2: bool, transport: TransportOption
) -> Sender:
    if transport == "aiohttp":
        if not aiohttp_available():
            raise ConfigurationError(
                "transport='aiohttp' needs the aiohttp extra: pip install 'commbox-async[aiohttp]'"
            )
        if http2:
            raise ConfigurationError("the aiohttp transport speaks HTTP/1.1 only; drop http2=True")
        return AiohttpSender(limits=limits)
    kwargs: dict[str, Any] = {"timeout": timeout, "limits": limits, "follow_redirects": False}
    if transport == "auto" and not http2:
        fallback = HttpxSender(httpx.AsyncClient(**kwargs), owns=True)
        return AutoSender(limits=limits, fallback=fallback, owns_fallback=True)
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
            raise ConfigurationError(
                "http2=True needs the h2 package: pip install 'commbox-async[http2]'"
            )
        kwargs["http2"] = True
    return HttpxSender(httpx.AsyncClient(**kwargs), owns=True)


# (httpx error class, our class, message, reason, may have been processed). First match wins,
# so subclasses come before their bases.
_TRANSPORT_ERRORS: tuple[tuple[type[Exception], type[APIConnectionError], str, str, bool], ...] = (
    (httpx.ConnectTimeout, APITimeoutError, "timed out connecting", "connect_timeout", False),
    (
        httpx.PoolTimeout,
        APITimeoutError,
        "timed out waiting for a pooled connection",
        "pool_timeout",
        False,
    ),
    (
        httpx.ReadTimeout,
        APITimeoutError,
        "timed out waiting for the response",
        "read_timeout",
        True,
    ),
    (httpx.WriteTimeout, APITimeoutError, "timed out sending the request", "write_timeout", True),
    (httpx.ConnectError, APIConnectionError, "could not connect", "connect_error", False),
    (httpx.UnsupportedProtocol, APIConnectionError, "could not connect", "connect_error", False),
    (httpx.LocalProtocolError, APIConnectionError, "request not sent", "connect_error", False),
)


def map_transport_error(exc: httpx.TransportError, *, method: str, path: str) -> APIConnectionError:
    """An httpx transport error as a typed error with the "may have been processed" verdict.

    Connect failures and pool timeouts happen before a byte of the request is sent. Anything
    after that (read timeout, reset, the server closing without a response) may follow a
    request CommBox already acted on.
    """
    detail = str(exc) or type(exc).__name__
    for httpx_cls, cls, message, reason, maybe in _TRANSPORT_ERRORS:
        if isinstance(exc, httpx_cls):
            return cls(
                f"{message}: {detail}",
                method=method,
                path=path,
                may_have_been_processed=maybe,
                reason=reason,
            )
    return APIConnectionError(
        f"connection failed after the request was sent: {detail}",
        method=method,
        path=path,
        may_have_been_processed=True,
        reason="connection_lost",
    )


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


def _remap(exc: BaseException) -> httpx.TransportError | None:
    """An aiohttp failure as its httpx counterpart (None for anything else)."""
    for aio_cls, httpx_cls in _aiohttp_error_map():
        if isinstance(exc, aio_cls):
            return httpx_cls(f"{type(exc).__name__}: {exc}")
    return None
