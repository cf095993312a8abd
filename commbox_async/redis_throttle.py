"""One rate limit shared by every worker, through Redis (the ``redis`` extra).

    throttle = RedisThrottle("redis://localhost:6379/0", key="commbox:mybrand", rate=20, burst=10)
    async with AsyncCommBox(token=..., throttle=throttle) as cb: ...

GCRA: one theoretical arrival time (TAT) per key, read and updated by a single Lua script so
the read-modify-write is atomic, on Redis's own clock (``TIME``) so skewed worker clocks cannot
overshoot; the key expires when idle. A caller that must wait is told how long and sleeps
locally. A 429 seen by any worker pauses all of them (the pause is a key too). A cancelled
caller never keeps a slot it did not use: a slot granted to a caller that was cancelled while
the reply was on its way is given back.

Redis's answers are checked, not trusted: a wait must be a whole number of microseconds between
0 and the throttle's ``max_wait``, so a key someone else wrote (``inf``, ``1e300``, a time a
year ahead) or a clock that went back is a :class:`ThrottleUnavailableError` (or the fallback),
never a ``ValueError`` from the sleep nor a silent sleep of hours.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import anyio

from ._exceptions import CommBoxError, ConfigurationError
from ._extras import missing_extra
from ._throttle import TokenBucket

__all__ = ["RedisThrottle", "ThrottleUnavailableError"]

logger = logging.getLogger("commbox_async")

# KEYS: tat, pause. ARGV: interval_us, tolerance_us. Returns 0 (granted) or microseconds to wait.
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < paused then return paused - now end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return 0
"""

# Give back one slot (a caller cancelled after it was granted). KEYS: tat. ARGV: interval_us.
_REFUND = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat - tonumber(ARGV[1]) >= now then
  redis.call('SET', KEYS[1], string.format('%.0f', tat - tonumber(ARGV[1])), 'KEEPTTL')
end
return 0
"""

# KEYS: pause. ARGV: seconds in microseconds. Pauses never shorten an existing pause.
_PAUSE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  local ttl_ms = math.ceil(tonumber(ARGV[1]) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', ttl_ms)
end
return 0
"""


#: The longest a shared throttle believes it must wait, by default (seconds): five times the
#: client's default ``max_retry_after``, so no pause the client records is cut short.
DEFAULT_MAX_WAIT = 300.0


class ThrottleUnavailableError(CommBoxError):
    """The shared throttle's Redis could not be reached, answered with an error (a key of the
    limit holding another kind of value: WRONGTYPE) or with something the script never returns
    (not an integer; a wait below 0 or beyond ``max_wait``), and no fallback was enabled."""


class RedisThrottle:
    """A :class:`~commbox_async.Throttle` whose limit is shared through Redis.

    - ``redis``: a URL or a ``redis.asyncio.Redis`` client (used as-is, not closed).
    - ``key``: the limit's name; every worker of one CommBox API key uses the same one.
    - ``rate`` (requests/s) and ``burst``: as the in-memory bucket.
    - ``timeout``: seconds to wait for Redis before it counts as unreachable.
    - ``fallback_workers``: opt in to a local bucket at ``rate / fallback_workers`` while Redis is
      unreachable or answers with an error (with a logged warning); without it,
      :class:`ThrottleUnavailableError`.
    - ``max_wait``: the longest wait (seconds, default 300) believed from Redis, and the longest
      pause :meth:`pause` records (a longer one is cut to it: set it at least as high as the
      client's ``max_retry_after``). A wait Redis answers beyond ``max_wait`` (or beyond the
      whole burst, ``burst / rate``, when that is longer), below 0 or not an integer means a
      key of the limit holds a time no worker wrote, or Redis's clock went back: it is treated
      as Redis being unavailable (the fallback, or :class:`ThrottleUnavailableError`).
    """

    def __init__(
        self,
        redis: Any,
        *,
        key: str,
        rate: float,
        burst: int | None = None,
        timeout: float = 1.0,
        fallback_workers: int | None = None,
        retry_redis_after: float = 5.0,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        try:
            import redis.asyncio as redis_asyncio
            import redis.exceptions as redis_exceptions
        except ImportError as exc:
            raise missing_extra(exc, extra="redis", what="RedisThrottle") from None
        if not (rate > 0 and math.isfinite(rate)):
            raise ConfigurationError(f"rate must be a positive number of requests/s, got {rate!r}")
        burst = max(1, math.ceil(rate)) if burst is None else burst
        if burst < 1:
            raise ConfigurationError(f"burst must be at least 1, got {burst!r}")
        if fallback_workers is not None and fallback_workers < 1:
            raise ConfigurationError("fallback_workers must be at least 1")
        if not (max_wait > 0 and math.isfinite(max_wait)):
            raise ConfigurationError(
                f"max_wait must be a positive number of seconds, got {max_wait!r}"
            )
        if isinstance(redis, str):
            redis = redis_asyncio.Redis.from_url(
                redis, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._redis = redis
        self._errors = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError, OSError)
        # Redis answered, but with an error: WRONGTYPE (a key of the limit holds a list, a
        # hash...), a value the script cannot read, a refused script, a denied command.
        self._refusals = (redis_exceptions.RedisError, TypeError, ValueError)
        self.key = key
        self.rate = float(rate)
        self.burst = int(burst)
        self.timeout = timeout
        self.max_wait = float(max_wait)
        self._interval_us = 1_000_000.0 / self.rate
        self._tolerance_us = (self.burst - 1) * self._interval_us
        # A worker of this limit asks for at most max_wait (a pause) or one interval (a slot;
        # a whole burst covers workers briefly configured with another rate); 1 ms for rounding.
        self._max_wait_us = max(self.max_wait * 1_000_000, self.burst * self._interval_us) + 1000
        self._keys = (f"{key}:tat", f"{key}:pause")
        self._acquire = redis.register_script(_ACQUIRE)
        self._refund = redis.register_script(_REFUND)
        self._pause = redis.register_script(_PAUSE)
        self._fallback = (
            TokenBucket(self.rate / fallback_workers, max(1, self.burst // fallback_workers))
            if fallback_workers
            else None
        )
        self._retry_redis_after = retry_redis_after
        self._redis_down_until = 0.0
        # Callers in this process queue here (anyio's Lock is FIFO); only the head talks to
        # Redis and sleeps, so a process makes one call at a time however many callers wait.
        self._head = anyio.Lock()

    def __repr__(self) -> str:
        return f"RedisThrottle(key={self.key!r}, rate={self.rate:g}, burst={self.burst})"

    async def _call(self, script: Any, keys: Any, args: Any) -> int:
        try:
            with anyio.fail_after(self.timeout):
                reply = await script(keys=keys, args=args)
        except TimeoutError:
            raise ThrottleUnavailableError(
                f"Redis did not answer within {self.timeout:g}s (throttle {self.key!r})"
            ) from None
        except self._errors as exc:
            raise ThrottleUnavailableError(
                f"Redis is unreachable for throttle {self.key!r}: {exc}"
            ) from None
        except self._refusals as exc:
            raise ThrottleUnavailableError(
                f"Redis refused the script of throttle {self.key!r} ({type(exc).__name__}: "
                f"{exc}); if a key of the limit ({', '.join(keys)}) holds another kind of "
                "value, delete it or choose another key"
            ) from None
        if type(reply) is not int:  # the scripts return integers; bool, float, bytes are not
            raise ThrottleUnavailableError(
                f"Redis answered {_short(reply)} to the script of throttle {self.key!r}, "
                "which returns an integer"
            )
        return reply

    def _checked_wait(self, wait_us: int) -> int:
        """The microseconds Redis says to wait, if a worker of this limit can have asked for
        them."""
        if 0 <= wait_us <= self._max_wait_us:
            return wait_us
        raise ThrottleUnavailableError(
            f"Redis told throttle {self.key!r} to wait {_short(wait_us)} µs, outside "
            f"0 to {self._max_wait_us / 1_000_000:g} s (max_wait): a key of the limit "
            f"({', '.join(self._keys)}) holds a time no worker of it wrote, or Redis's clock went "
            "back; delete the keys"
        )

    async def _unavailable(self, exc: ThrottleUnavailableError) -> float:
        if self._fallback is None:
            raise exc
        if time.monotonic() >= self._redis_down_until:
            logger.warning(
                "%s; falling back to a local limit of %g requests/s for %gs",
                exc,
                self._fallback.rate,
                self._retry_redis_after,
            )
        self._redis_down_until = time.monotonic() + self._retry_redis_after
        return await self._fallback.acquire()

    async def acquire(self) -> float:
        start = anyio.current_time()
        async with self._head:
            return await self._acquire_as_head(start)

    async def _acquire_as_head(self, start: float) -> float:
        while True:
            if self._fallback is not None and time.monotonic() < self._redis_down_until:
                return await self._fallback.acquire() + (anyio.current_time() - start)
            try:
                # Shielded: once the script is sent, its answer is read, so a granted slot is
                # known and can be given back if this caller was cancelled meanwhile.
                with anyio.CancelScope(shield=True):
                    wait_us = self._checked_wait(
                        await self._call(
                            self._acquire, self._keys, (self._interval_us, self._tolerance_us)
                        )
                    )
            except ThrottleUnavailableError as exc:
                return await self._unavailable(exc) + (anyio.current_time() - start)
            if wait_us == 0:
                try:
                    await anyio.lowlevel.checkpoint_if_cancelled()
                except BaseException:
                    # If Redis is gone the slot expires with the key; nothing else to give back.
                    with (
                        anyio.CancelScope(shield=True),
                        contextlib.suppress(ThrottleUnavailableError),
                    ):
                        await self._call(self._refund, self._keys[:1], (self._interval_us,))
                    raise
                return anyio.current_time() - start
            await anyio.sleep(wait_us / 1_000_000)

    async def pause(self, seconds: float) -> None:
        if not seconds > 0:  # NaN too
            return
        seconds = min(seconds, self.max_wait)
        try:
            await self._call(self._pause, self._keys[1:], (seconds * 1_000_000,))
        except ThrottleUnavailableError as exc:
            if self._fallback is None:
                raise
            logger.warning("%s; pausing the local fallback only", exc)
            await self._fallback.pause(seconds)


def _short(value: Any) -> str:
    """A value for a message: its repr, cut to 60 characters."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"  # repr fails past 4,300 digits
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
