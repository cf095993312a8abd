"""ASGI plumbing: reading a request's body, sending a reply or dropping the connection, and the
in-process httpx transport that turns a dropped connection into the error a socket would give."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from ._handlers import Multipart
from ._wire import HTTPError, Reply

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class ConnectionDropped(Exception):
    """Raised inside the app to make the in-process transport drop the connection."""

    def __init__(self, processed: bool) -> None:
        super().__init__("processed" if processed else "not processed")
        self.processed = processed


async def _read_multipart(request: Any) -> Multipart:
    form = await request.form(max_files=1000, max_fields=1000)
    fields: dict[str, str] = {}
    files: list[dict[str, Any]] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
            continue
        size = 0
        while chunk := await value.read(1 << 20):
            size += len(chunk)
        files.append(
            {
                "field": key,
                "filename": value.filename,
                "content_type": value.content_type,
                "size": size,
            }
        )
    await form.close()
    return Multipart(fields=fields, files=files)


async def read_body(request: Any) -> Any:
    """A Starlette request's body: a :class:`Multipart` form, JSON, or ``None`` if empty."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _read_multipart(request)
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise HTTPError(400, "Bad Request: the body is not JSON") from None


async def send_reply(send: Send, reply: Reply) -> None:
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(reply.payload)).encode()),
        *((k.encode(), v.encode()) for k, v in reply.headers.items()),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.payload})


async def drop(send: Send, *, processed: bool) -> None:
    """Drop the connection with no response at all. Under uvicorn, ``send`` belongs to the
    connection's request cycle, which holds the socket's transport: aborting it is what a
    server dying mid-request does (the client cannot tell whether the request was acted on).
    In-process, the transport below turns the exception into the error a socket would give."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and callable(getattr(transport, "abort", None)):
        transport.abort()
        # The server learns of the abort on the loop's next turns; returning before then has
        # uvicorn log "ASGI callable returned without starting response" for every drop.
        for _ in range(10):
            if getattr(cycle, "disconnected", True):
                break
            await anyio.lowlevel.checkpoint()
        return
    raise ConnectionDropped(processed)


class InProcessTransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in-process (no sockets, no lifespan); a dropped connection is
    :class:`httpx.ConnectError` (not processed) or :class:`httpx.RemoteProtocolError`."""

    def __init__(self, app: App) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped as exc:
            if exc.processed:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from None
            raise httpx.ConnectError(
                "fake: connection failed before the request was read", request=request
            ) from None
