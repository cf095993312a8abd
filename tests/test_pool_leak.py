"""A cancelled call must not leave the httpx path's connection pool with a slot nothing frees.

httpcore 1.0.9 leaks a connection when a request is cancelled after the pool assigned it a new,
not yet established connection (https://github.com/encode/httpcore/issues/1093); a native
asyncio cancellation can stop httpcore's own clean-up half-way. With ``max_connections=1``
one such leak is enough to make every later call fail with PoolTimeout against a healthy
server. The moments are set exactly through httpcore's trace events (the client's own tracer,
wrapped), so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest

from commbox_async import AsyncCommBox
from commbox_async import _transport as transport_module

from .conftest import socket_client as client
from .rawserver import raw_server, respond

pytestmark = pytest.mark.anyio

# Each response closes its connection, so the request queued behind it gets a new one.
CLOSING = respond(200, {"ok": True}, headers={"connection": "close"})


def pool_of(cb: AsyncCommBox) -> Any:
    return cb._core.sender.client._transport._pool  # type: ignore[attr-defined]


def stuck(pool: Any) -> list[Any]:
    """The connections no request holds that are neither idle, closed nor available."""
    held = {id(request.connection) for request in pool._requests}
    return [
        c
        for c in pool.connections
        if id(c) not in held and not (c.is_idle() or c.is_closed() or c.is_available())
    ]


def on_trace(monkeypatch: pytest.MonkeyPatch, act: Any) -> None:
    """Calls ``act(tracer, event name)`` after the client's tracer has seen each event."""
    real = transport_module._Tracer.__call__

    async def traced(self: Any, name: str, info: dict[str, Any]) -> None:
        await real(self, name, info)
        await act(self, name)

    monkeypatch.setattr(transport_module._Tracer, "__call__", traced)


async def wait_until(condition: Any) -> None:
    with anyio.fail_after(2):
        while not condition():
            await anyio.sleep(0.001)


async def assert_pool_usable(cb: AsyncCommBox) -> None:
    """A plain call gets a connection within its pool timeout, and nothing is left stuck."""
    pool = pool_of(cb)
    assert stuck(pool) == []
    assert pool._requests == []
    assert await cb.with_options(timeout=0.5).request("GET", "/after") == {"ok": True}
    assert stuck(pool) == []


async def test_a_call_cancelled_as_its_new_connection_is_assigned_does_not_leak_it(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A holds the only connection; B waits for one in the pool. As A's response is closed
    # (and its connection with it), B is cancelled; in the same step the pool gives B a new
    # connection, which B never uses (encode/httpcore#1093).
    first: list[Any] = []
    b_queued = anyio.Event()
    b_scope = anyio.CancelScope()

    async def act(tracer: Any, name: str) -> None:
        if not first:
            first.append(tracer)
        if tracer is not first[0]:
            return
        if name == "http11.receive_response_headers.started":
            await b_queued.wait()
        elif name == "http11.response_closed.complete":
            b_scope.cancel()

    on_trace(monkeypatch, act)
    async with raw_server(lambda m, p, b: CLOSING) as server:
        async with client(server.url, "httpx", max_connections=1, max_retries=0) as cb:
            pool = pool_of(cb)

            async def call_b() -> None:
                with b_scope:
                    await cb.request("GET", "/b")

            async with anyio.create_task_group() as tg:
                tg.start_soon(cb.request, "GET", "/a")
                await wait_until(lambda: len(server.received) == 1)
                tg.start_soon(call_b)
                await wait_until(lambda: len(pool._requests) == 2)
                b_queued.set()
            assert b_scope.cancelled_caught
            assert [path for _, path, _ in server.received] == ["/a"]  # B was never sent
            await assert_pool_usable(cb)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_native_cancellation_during_the_pools_clean_up_does_not_leak_the_slot(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A native asyncio cancellation (the deadline on asyncio, task.cancel()) is not held off by
    # httpcore's anyio shields: one landing as the response is closed stops the pool before
    # it takes the request out of its queue, and its connection stays ACTIVE.
    victim: list[asyncio.Task[Any]] = []

    async def act(tracer: Any, name: str) -> None:
        if name == "http11.response_closed.started" and victim:
            victim.pop().cancel()

    on_trace(monkeypatch, act)
    async with raw_server(lambda m, p, b: respond(200, {"ok": True})) as server:
        async with client(server.url, "httpx", max_connections=1, max_retries=0) as cb:
            task = asyncio.ensure_future(cb.request("GET", "/a"))
            victim.append(task)
            with pytest.raises(asyncio.CancelledError):
                await task
            await assert_pool_usable(cb)


def test_an_httpcore_without_those_internals_is_left_alone() -> None:
    tracer = transport_module._Tracer(transport_module.Exposure(), httpx.AsyncClient())
    assert transport_module._orphaned_connections(None, tracer) == []
    assert transport_module._orphaned_connections(object(), tracer) == []
