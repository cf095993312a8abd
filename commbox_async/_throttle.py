"""Client-side rate limiting.

The client talks to a throttle only through :class:`Throttle` (``acquire`` before each attempt,
``pause`` after a 429), so a shared backend (e.g. Redis) can replace the in-memory bucket.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol, runtime_checkable

import anyio

from ._exceptions import ConfigurationError

__all__ = ["Throttle", "TokenBucket"]

_EPSILON = 1e-9


@runtime_checkable
class Throttle(Protocol):
    """What :class:`~commbox_async.AsyncCommBox` needs from a rate limiter."""

    async def acquire(self) -> float:
        """Wait until one request may start; return the seconds spent waiting.

        A caller cancelled while waiting must consume nothing.
        """
        ...

    async def pause(self, seconds: float) -> None:
        """Stop every caller from starting requests for ``seconds`` (a 429's Retry-After)."""
        ...


class TokenBucket:
    """An exact, fair, cancellation-safe token bucket on anyio primitives.

    Over any window of ``T`` seconds at most ``burst + rate * T`` acquisitions return. Waiters
    are served first-come-first-served: only the head of the queue sleeps on the clock, the
    rest wait for their turn, so a cancelled waiter leaves the queue without having taken a
    token and without delaying anyone behind it.
    """

    __slots__ = ("_burst", "_last", "_paused_until", "_rate", "_tokens", "_waiters")

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ConfigurationError(f"rate must be a positive number of requests/s, got {rate!r}")
        if burst is None:
            burst = max(1, math.ceil(rate))
        if burst < 1:
            raise ConfigurationError(f"burst must be at least 1, got {burst!r}")
        self._rate = float(rate)
        self._burst = int(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self._paused_until = -math.inf
        self._waiters: deque[anyio.Event] = deque()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self._rate:g}, burst={self._burst})"

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        if now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now

    def _delay(self, now: float) -> float:
        """Seconds until a token can be taken (0 when one can be taken now)."""
        if now < self._paused_until:
            return self._paused_until - now
        self._refill(now)
        # Refill arithmetic leaves e.g. 0.9999999999 tokens; without the tolerance the head
        # would sleep ~1e-18 s, which does not advance the clock, and spin.
        if self._tokens >= 1.0 - _EPSILON:
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def _take(self) -> None:
        self._tokens -= 1.0

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].set()

    async def acquire(self) -> float:
        now = anyio.current_time()
        if not self._waiters and self._delay(now) == 0.0:
            self._take()
            return 0.0
        start = now
        me = anyio.Event()
        self._waiters.append(me)
        if self._waiters[0] is me:
            me.set()
        try:
            while True:
                await me.wait()
                # Only the head gets here: it sleeps on the clock, then re-checks, because a
                # pause may have been added while it slept.
                now = anyio.current_time()
                delay = self._delay(now)
                if delay <= 0.0:
                    break
                await anyio.sleep(delay)
                now = anyio.current_time()
                if self._delay(now) <= 0.0:
                    break
        except BaseException:
            was_head = bool(self._waiters) and self._waiters[0] is me
            self._waiters.remove(me)
            if was_head:
                self._wake_head()
            raise
        self._take()
        self._waiters.popleft()
        self._wake_head()
        return anyio.current_time() - start

    async def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        now = anyio.current_time()
        until = now + seconds
        if until > self._paused_until:
            self._paused_until = until
            # Resume at the steady rate rather than with a full burst into an API that just
            # said it was overloaded.
            self._tokens = 0.0
            self._last = until
