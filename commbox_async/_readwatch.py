"""Read timeouts for the aiohttp sender, on one timer for all the attempts in flight.

aiohttp's own read timeout (``sock_read``) arms a loop timer once the request is written and
again on every chunk received: two timers a request, which is a quarter of what the client
adds to a request on aiohttp (benchmarks/bench_transport). Here an attempt joins a set, and
one timer per sender ticks while the set is not empty. A tick fails each attempt that has made
no progress for its read timeout the way aiohttp's timer does: the connection's protocol, and
the body's stream once there is one, are given aiohttp's ``SocketTimeoutError`` (which the
sender maps to ``httpx.ReadTimeout``), and the connection is closed rather than reused.

Progress is the request being handed its connection (the clock starts there), the response's
headers arriving, and the body's byte count growing, the last seen at ticks. A tick comes
every quarter of the shortest read timeout in flight, and at least once a second, so a
timeout fires no sooner than ``read`` after the last progress and at most two ticks later.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._deadline import clock_of

__all__ = ["ReadWatch", "Watched"]

#: The longest gap between two ticks, in seconds.
_MAX_TICK = 1.0
#: The shortest, so that a read timeout near zero cannot spin the loop.
_MIN_TICK = 0.005


class Watched:
    """One attempt's read timeout, from :meth:`ReadWatch.start` to :meth:`ReadWatch.stop`."""

    __slots__ = ("connection", "last", "read", "seen", "stream")

    def __init__(self, read: float) -> None:
        self.read = read
        #: aiohttp's ``Connection``: its ``protocol`` is None once released to the pool.
        self.connection: Any = None
        #: The response body's ``StreamReader``, once the headers are in.
        self.stream: Any = None
        #: When progress was last seen, on the loop's clock.
        self.last = 0.0
        #: The body's byte count at that moment.
        self.seen = 0


class ReadWatch:
    """The read timeouts of one aiohttp sender's attempts in flight, on one asyncio loop."""

    __slots__ = ("_attempts", "_clock", "_every", "_handle", "_loop", "_timeout_error")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_error: type[Exception]) -> None:
        self._loop = loop
        self._clock = clock_of(loop)
        self._timeout_error = timeout_error
        self._attempts: set[Watched] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._every = _MAX_TICK

    def start(self, attempt: Watched, connection: Any) -> None:
        """``attempt`` has its connection and is about to write: its clock starts."""
        attempt.connection = connection
        attempt.last = self._clock()
        self._attempts.add(attempt)
        if self._handle is None or attempt.read < 4 * self._every:  # it needs a nearer tick
            self._arm(_tick_for(attempt.read))

    def responded(self, attempt: Watched, stream: Any) -> None:
        """The response's headers are in; from now on its body's bytes count as progress."""
        attempt.stream = stream
        attempt.seen = stream.total_bytes
        attempt.last = self._clock()

    def stop(self, attempt: Watched) -> None:
        """The attempt is over, however it ended."""
        self._attempts.discard(attempt)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._attempts.clear()

    def _arm(self, every: float) -> None:
        """Tick within ``every`` seconds, and every ``every`` seconds after that. A tick
        already due sooner stays: attempts coming faster than their tick must not put it off."""
        self._every = every
        at = self._clock() + every
        if self._handle is not None:
            if self._handle.when() <= at:
                return
            self._handle.cancel()
        self._handle = self._loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._handle = None
        now = self._clock()
        expired: list[Watched] = []
        every = _MAX_TICK
        for attempt in self._attempts:
            stream = attempt.stream
            if stream is not None and stream.total_bytes != attempt.seen:
                attempt.seen = stream.total_bytes
                attempt.last = now
            elif now - attempt.last >= attempt.read:
                expired.append(attempt)
                continue
            every = min(every, _tick_for(attempt.read))
        for attempt in expired:
            self._attempts.discard(attempt)
            self._fail(attempt)
        if self._attempts:
            self._arm(every)

    def _fail(self, attempt: Watched) -> None:
        protocol = attempt.connection.protocol
        if protocol is None:
            # Released: its response was read whole in the moment before this tick, and the
            # connection may already serve another request, which must not be failed.
            return
        error = self._timeout_error("Timeout on reading data from socket")
        protocol.set_exception(error)
        if attempt.stream is not None:
            attempt.stream.set_exception(error)


def _tick_for(read: float) -> float:
    return min(_MAX_TICK, max(_MIN_TICK, read / 4))
