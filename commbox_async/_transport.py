"""The HTTP layer under the client: URLs, the connection pool, and transport error mapping."""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ._exceptions import APIConnectionError, APITimeoutError, ConfigurationError

__all__ = [
    "build_path",
    "check_base_url",
    "encode_segment",
    "is_loopback",
    "make_http_client",
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
    encoded = quote(text, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


def build_path(template: str, params: Mapping[str, object]) -> str:
    """Fill ``{name}`` fields of a path template, each value encoded as one segment."""
    names = _FIELD_RE.findall(template)
    missing = [n for n in names if n not in params]
    if missing:
        raise ConfigurationError(f"path {template!r} needs values for {', '.join(missing)}")
    extra = sorted(set(params) - set(names))
    if extra:
        raise ConfigurationError(f"path {template!r} has no field named {', '.join(extra)}")
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
    return _FIELD_RE.sub(lambda m: encode_segment(params[m.group(1)], name=m.group(1)), template)


def url_prefix(base: httpx.URL) -> str:
    """The base URL as the string every request URL starts with (no trailing slash)."""
    return str(base).rstrip("/")


def join_url(prefix: str, path: str) -> httpx.URL:
    # One parse of a plain string: cheaper than copy_with() on every call. ``path`` comes
    # from build_path, so it is already percent-encoded.
    return httpx.URL(prefix + path)


TransportOption = Literal["httpx", "aiohttp"] | httpx.AsyncBaseTransport | None


def aiohttp_available() -> bool:
    """True when the ``aiohttp`` extra (httpx-aiohttp) is installed."""
    try:
        import httpx_aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def make_http_client(
    *,
    timeout: httpx.Timeout,
    max_connections: int,
    max_keepalive_connections: int | None,
    keepalive_expiry: float | None,
    http2: bool,
    transport: TransportOption,
) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive_connections,
        keepalive_expiry=keepalive_expiry,
    )
    kwargs: dict[str, Any] = {"timeout": timeout, "limits": limits, "follow_redirects": False}
    if transport == "aiohttp":
        if not aiohttp_available():
            raise ConfigurationError(
                "transport='aiohttp' needs the aiohttp extra: pip install 'commbox-async[aiohttp]'"
            )
        if http2:
            raise ConfigurationError("the aiohttp transport speaks HTTP/1.1 only; drop http2=True")
        kwargs["transport"] = make_aiohttp_transport(limits)
    elif transport not in (None, "httpx"):
        if not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                "transport must be 'httpx', 'aiohttp' or an httpx.AsyncBaseTransport, "
                f"got {transport!r}"
            )
        kwargs["transport"] = transport
    elif http2:
        try:
            import h2  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "http2=True needs the h2 package: pip install 'commbox-async[http2]'"
            ) from None
        kwargs["http2"] = True
    return httpx.AsyncClient(**kwargs)


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

    httpx-aiohttp's own table sends every ``ClientConnectionError`` (a server disconnecting
    after the request was sent among them) to ``ConnectTimeout``, which would call a lost
    response "never sent" and let a POST be retried into a duplicate. This table keeps
    "before sending" (connect) and "after sending" (read, disconnect, reset) apart.
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


def _remap(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    original = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ else exc
    for aio_cls, httpx_cls in _aiohttp_error_map():
        if isinstance(original, aio_cls):
            return httpx_cls(f"{type(original).__name__}: {original}", request=request)
    return exc if isinstance(exc, httpx.TransportError) else None


def make_aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """An httpx transport over an aiohttp session (asyncio only), with honest error mapping."""
    from httpx_aiohttp import AiohttpTransport

    class _Stream(httpx.AsyncByteStream):
        def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
            self._inner = inner
            self._request = request

        async def __aiter__(self) -> Any:
            try:
                async for chunk in self._inner:
                    yield chunk
            except Exception as exc:
                mapped = _remap(exc, self._request)
                if mapped is None or mapped is exc:
                    raise
                raise mapped from exc

        async def aclose(self) -> None:
            await self._inner.aclose()

    class SafeAiohttpTransport(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response: httpx.Response = await super().handle_async_request(request)
            except Exception as exc:
                mapped = _remap(exc, request)
                if mapped is None or mapped is exc:
                    raise
                raise mapped from exc
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            response.stream = _Stream(stream, request)  # errors while reading the body too
            return response

    return SafeAiohttpTransport(limits=limits)
