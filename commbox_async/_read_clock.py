"""aiohttp's read timeout (``sock_read``) for all of one connector's connections, on one timer.

aiohttp arms a loop timer for a connection's read timeout once the request is written, again
on every chunk received, and cancels it at the end of the body: two timers and three heap
operations per request, each comparing in Python, about a quarter of what the client adds per
request on aiohttp (benchmarks/bench_transport). The protocol here keeps aiohttp's decisions of
when the timeout runs: aiohttp calls ``_reschedule_timeout`` and ``_drop_timeout`` wherever
its own timer starts, restarts or stops (after the write, on every chunk, at the end of the
body, on a pause, on an error, when the connection closes), with one exception: after a 1xx
(100 Continue, 103 Early Hints) it runs on, where aiohttp's own stops until the next bytes,
whenever they come. Otherwise only the timer is replaced. A
connection whose timeout runs joins its clock's set, and one timer per clock ticks while the
set is not empty. A connection that received nothing for its read timeout gets aiohttp's own
expiry, ``_on_read_timeout``: the same error on the protocol and on the body's stream.

Bytes seen at a tick restart the connection's clock at that tick, which is never before the
bytes came. A tick comes every quarter of the shortest read timeout in the set, and at least
once a second, so a timeout fires no sooner than ``read`` after the last bytes and at most two
ticks later.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from ._deadline import clock_of

__all__ = ["ReadClock", "clocked_protocol", "install"]

#: The longest gap between two ticks, in seconds.
_MAX_TICK = 1.0
#: The shortest, so that a read timeout near zero cannot spin the loop.
_MIN_TICK = 0.005
#: The ResponseHandler methods the clock stands in for (private to aiohttp, checked once).
_HOOKS = ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout")


class ReadClock:
    """The running read timeouts of one connector's connections, on one asyncio loop."""

    __slots__ = ("_every", "_handle", "_loop", "_running", "_time")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._time = clock_of(loop)
        self._running: set[Any] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._every = _MAX_TICK

    def start(self, protocol: Any) -> None:
        """aiohttp starts ``protocol``'s read timeout (the request is written, or reading
        resumes); while it runs, bytes received only set ``protocol.fresh``."""
        protocol.running = True
        protocol.fresh = False
        protocol.since = self._time()
        self._running.add(protocol)
        read = protocol._read_timeout
        if self._handle is None or read < 4 * self._every:  # it may need a nearer tick
            self._arm(_tick_for(read))

    def stop(self, protocol: Any) -> None:
        """aiohttp stops ``protocol``'s read timeout."""
        protocol.running = False
        self._running.discard(protocol)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for protocol in self._running:
            protocol.running = False
        self._running.clear()

    def _arm(self, every: float) -> None:
        """Tick within ``every`` seconds, and every ``every`` seconds after that. A tick
        already due sooner stays: connections restarting faster than their tick must not
        put it off."""
        self._every = every
        at = self._time() + every
        if self._handle is not None:
            if self._handle.when() <= at:
                return
            self._handle.cancel()
        self._handle = self._loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._handle = None
        now = self._time()
        ended: list[Any] = []
        every = _MAX_TICK
        for protocol in self._running:
            read = protocol._read_timeout
            if read and protocol.fresh:
                protocol.fresh = False
                protocol.since = now
            elif not read or now - protocol.since >= read:
                ended.append(protocol)
                continue
            every = min(every, _tick_for(read))
        for protocol in ended:
            self.stop(protocol)
            # Unset while running (aiohttp does that for websockets): stopped, not expired.
            if protocol._read_timeout:
                protocol._on_read_timeout()
        if self._running:
            self._arm(every)


def _tick_for(read: float) -> float:
    return min(_MAX_TICK, max(_MIN_TICK, read / 4))


@functools.cache
def clocked_protocol() -> type[Any] | None:
    """aiohttp's ``ResponseHandler`` with its read timeout on a :class:`ReadClock` (built with
    ``loop=`` and ``clock=``), or None when this aiohttp lacks the methods the clock stands in
    for: then its own timers run, as they would without this module."""
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.streams import EMPTY_PAYLOAD

    if not all(callable(getattr(ResponseHandler, name, None)) for name in _HOOKS):
        return None

    class ClockedProtocol(ResponseHandler):
        def __init__(self, loop: asyncio.AbstractEventLoop, *, clock: ReadClock) -> None:
            self.clock = clock
            self.running = False
            self.fresh = False
            self.since = 0.0
            super().__init__(loop)

        def _reschedule_timeout(self) -> None:
            if not self._read_timeout:
                self._drop_timeout()
            elif self.running:
                self.fresh = True  # bytes came: the clock restarts at its next tick
            else:
                self.clock.start(self)

        def _drop_timeout(self) -> None:
            if self.running:
                self.clock.stop(self)
                if self._payload is EMPTY_PAYLOAD:  # a message without a body: maybe a 1xx
                    self._loop.call_soon(self._await_final_head)

        def _await_final_head(self) -> None:
            # aiohttp stops the read timeout at the end of every message without a body, a
            # 1xx (100 Continue, 103 Early Hints) too; the response then waits for its real
            # head with no timeout, until the deadline. By now the response has read that
            # message: if it is waiting for another, the timeout runs again.
            if (
                getattr(self, "_waiter", None) is not None
                and not self.running
                and self._read_timeout
                and self.is_connected()
            ):
                self.clock.start(self)

    return ClockedProtocol


def install(connector: Any, loop: asyncio.AbstractEventLoop) -> ReadClock | None:
    """Have ``connector`` build its connections' protocols on a new :class:`ReadClock`; None
    (and the connector left alone) when this aiohttp builds them some other way."""
    protocol: Any = clocked_protocol()
    if protocol is None or not callable(getattr(connector, "_factory", None)):
        return None
    clock = ReadClock(loop)
    connector._factory = functools.partial(protocol, loop=loop, clock=clock)
    return clock
