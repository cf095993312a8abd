"""Client-side rate limiting.

The client talks to a throttle only through :class:`Throttle` (``acquire`` before each attempt,
``pause`` after a 429), so a shared backend (e.g. Redis) can replace the in-memory bucket.
:class:`AdaptiveThrottle` is a bucket whose rate follows CommBox's answers; it hears them through
the client's ``on_response`` hook, so the request pipeline knows nothing about it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Protocol, runtime_checkable

import anyio

from ._exceptions import ConfigurationError
from ._hooks import ResponseEvent

__all__ = ["AdaptiveThrottle", "Throttle", "TokenBucket"]

logger = logging.getLogger("commbox_async")

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


class AdaptiveThrottle(TokenBucket):
    """A token bucket whose rate finds the highest one CommBox grants (``rate_limit="adaptive"``).

    Additive increase, multiplicative decrease (AIMD), the way TCP finds a link's capacity:

    - It starts at ``start`` requests/s (the client's default, 10/s).
    - While the limit is what holds the work back (a caller waited for it within the last
      second), every answer CommBox gives that is neither a 429 nor a 5xx raises the rate by
      ``increase / rate``: ``increase`` requests/s per second. After the first 429 the rise is
      ``probe_increase`` per second instead, so the rate stays close to the limit it found;
      after ``reprobe_after`` seconds without a 429 it climbs at ``increase`` again (the limit
      may have been raised).
    - A 429 multiplies the rate by ``decrease`` and, as in :class:`TokenBucket`, pauses every
      caller for the ``Retry-After``. One cut per episode: the 429s that come back until a
      second after the pause ended answer requests sent at the old rate and cut nothing.
    - The rate stays within ``min_rate`` and ``max_rate`` (``None``: no ceiling).

    The bucket's guarantee holds at every moment for the current rate: over any window of
    ``T`` seconds at most ``burst + rate * T`` calls start. It hears CommBox's answers through
    :meth:`on_response`, which :class:`~commbox_async.AsyncCommBox` registers as a hook. It is
    one process's throttle: workers that share an API key share a fixed limit through
    :class:`~commbox_async.redis_throttle.RedisThrottle` instead.
    """

    __slots__ = (
        "_decrease",
        "_hold_until",
        "_increase",
        "_last_cut",
        "_limited_at",
        "_max_rate",
        "_min_rate",
        "_probe_increase",
        "_reprobe_after",
        "cuts",
    )

    #: Seconds after a caller last waited during which the limit counts as the bottleneck.
    SATURATED_FOR = 1.0
    #: Seconds after a pause ends during which 429s still answer requests sent before the cut.
    SETTLE = 1.0

    def __init__(
        self,
        start: float = 10.0,
        burst: int | None = 10,
        *,
        increase: float = 5.0,
        probe_increase: float = 0.25,
        decrease: float = 0.9,
        min_rate: float = 1.0,
        max_rate: float | None = None,
        reprobe_after: float = 30.0,
    ) -> None:
        super().__init__(start, burst)
        for name, value in (
            ("increase", increase),
            ("probe_increase", probe_increase),
            ("min_rate", min_rate),
            ("reprobe_after", reprobe_after),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        if not 0 < decrease < 1:
            raise ConfigurationError(f"decrease must be a factor between 0 and 1, got {decrease!r}")
        if max_rate is not None and not max_rate >= max(start, min_rate):
            raise ConfigurationError(
                f"max_rate must be at least start and min_rate, got {max_rate!r}"
            )
        if start < min_rate:
            raise ConfigurationError(f"start must be at least min_rate, got {start!r}")
        self._increase = float(increase)
        self._probe_increase = float(probe_increase)
        self._decrease = float(decrease)
        self._min_rate = float(min_rate)
        self._max_rate = math.inf if max_rate is None else float(max_rate)
        self._reprobe_after = float(reprobe_after)
        self._limited_at = -math.inf
        self._last_cut: float | None = None
        self._hold_until = -math.inf
        #: How many times a 429 has cut the rate.
        self.cuts = 0

    def __repr__(self) -> str:
        return f"AdaptiveThrottle(rate={self._rate:.1f}, burst={self._burst}, cuts={self.cuts})"

    def _delay(self, now: float) -> float:
        delay = super()._delay(now)
        if delay > 0.0 and now >= self._paused_until:
            self._limited_at = now
        return delay

    def _set_rate(self, now: float, rate: float) -> None:
        self._refill(now)  # what accrued until now accrued at the old rate
        self._rate = rate

    def on_response(self, event: ResponseEvent) -> None:
        """The client's ``on_response`` hook: an answer that is neither a 429 nor a 5xx is a
        sign the rate may rise."""
        status = event.http_status
        if status != 429 and status < 500:
            self.answered(anyio.current_time())

    def answered(self, now: float) -> None:
        """CommBox answered a request at ``now`` (the additive increase)."""
        if now < self._paused_until or now - self._limited_at > self.SATURATED_FOR:
            return  # paused, or the callers, not the limit, set the pace: nothing to learn
        probing = self._last_cut is not None and now - self._last_cut < self._reprobe_after
        step = self._probe_increase if probing else self._increase
        self._set_rate(now, min(self._max_rate, self._rate + step / self._rate))

    def throttled(self, now: float, seconds: float) -> None:
        """CommBox answered 429 at ``now``, asking for a pause of ``seconds`` (the cut)."""
        if now < self._hold_until:
            return
        before = self._rate
        self._set_rate(now, max(self._min_rate, before * self._decrease))
        self._last_cut = now
        self._hold_until = now + max(0.0, seconds) + self.SETTLE
        self.cuts += 1
        logger.info(
            "429 from CommBox: the adaptive rate limit goes from %.1f to %.1f requests/s",
            before,
            self._rate,
        )

    async def pause(self, seconds: float) -> None:
        self.throttled(anyio.current_time(), seconds)
        await super().pause(seconds)
