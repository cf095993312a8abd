"""Small async helpers the library's parts share: one home for each."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["aiterate", "call", "put", "take"]

T = TypeVar("T")


async def call(fn: Callable[..., Awaitable[T] | T], *args: Any) -> T:
    """Call a sync or async callable (hooks, handlers, token callables) and return its value."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


async def aiterate(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """The items of a plain or an async iterable, read lazily."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


# A memory stream's send() and receive() yield to the event loop before every item, even when
# one is ready: at thousands of messages a second that is a loop cycle per item spent on
# nothing. These take the ready case without yielding, and wait (and yield) only when they
# must. Every item still goes through an await (its request), so cancellation is not starved.


async def put(stream: MemoryObjectSendStream[T], item: T) -> None:
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


async def take(stream: MemoryObjectReceiveStream[T]) -> T | None:
    """The next item, or None at the end of the stream."""
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        try:
            return await stream.receive()
        except anyio.EndOfStream:
            return None
    except anyio.EndOfStream:
        return None
