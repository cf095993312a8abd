"""What can go wrong on the way: the fault kinds, the injector that picks them (at random,
reproducibly, or scripted) and the server-side rate limit.

To add a fault kind, add one entry to :data:`FAULTS`: whether the request is processed before
it strikes, and what the client gets instead of the handler's reply.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import ClassVar

import attrs

from ._wire import Reply


def _as_is(reply: Reply) -> Reply:
    return reply


def _truncated(reply: Reply) -> Reply:
    return attrs.evolve(reply, payload=reply.payload[: max(1, len(reply.payload) // 2)])


@attrs.frozen
class Unprocessed:
    """The request never reaches a handler: ``reply()`` goes on the wire instead (``None``: the
    connection drops before the request is read)."""

    reply: Callable[[], Reply | None]
    processed: ClassVar[bool] = False


@attrs.frozen
class Processed:
    """The request is processed (after the fake's ``slow_seconds`` if ``slow``), then ``spoil``
    turns the handler's reply into what goes on the wire (``None``: the response is lost)."""

    spoil: Callable[[Reply], Reply | None] = _as_is
    slow: bool = False
    processed: ClassVar[bool] = True


Fault = Unprocessed | Processed

FAULTS: Mapping[str, Fault] = MappingProxyType(
    {
        # Processed, then an error: the duplicate trap for a naive retry.
        "500": Processed(lambda _: Reply.error(500, "Operation failed")),
        "502": Unprocessed(lambda: Reply.error(502, "Service unavailable")),
        "503": Unprocessed(lambda: Reply.error(503, "Service unavailable")),
        "drop_before": Unprocessed(lambda: None),
        "lost_after": Processed(lambda _: None),
        "slow": Processed(slow=True),
        "truncated": Processed(_truncated),
        # A proxy's HTML error page.
        "html": Unprocessed(
            lambda: Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        ),
    }
)

#: A request without a fault: processed, its reply as it is.
NO_FAULT = Processed()

#: Fault kinds, and whether the request is processed before the fault strikes.
FAULT_KINDS: dict[str, bool] = {kind: fault.processed for kind, fault in FAULTS.items()}
DEFAULT_FAULTS = ("500", "502", "503", "drop_before", "lost_after", "slow")


def check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")


class FaultInjector:
    """Picks the fault for each request: the first scripted one whose path matches, else one of
    ``kinds`` at ``rate``, from a generator seeded with ``seed``."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.kinds: tuple[str, ...] = DEFAULT_FAULTS
        self._random = random.Random()  # noqa: S311 - reproducible test faults, not crypto
        self._script: deque[tuple[str, str | None]] = deque()

    def configure(
        self, *, rate: float | None, kinds: Iterable[str] | None, seed: int | None
    ) -> None:
        """Change what is given; always restart the random sequence from ``seed``."""
        if rate is not None:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault_rate must be within 0..1, got {rate}")
            self.rate = rate
        if kinds is not None:
            chosen = tuple(kinds)
            unknown = set(chosen) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(
                    f"unknown fault kinds {sorted(unknown)}; known: {sorted(FAULT_KINDS)}"
                )
            self.kinds = chosen
        self._random = random.Random(seed)  # noqa: S311 - reproducible test faults, not crypto

    def script(self, kind: str, *, times: int, path: str | None) -> None:
        check_kind(kind)
        self._script.extend([(kind, path)] * times)

    def clear_script(self) -> None:
        self._script.clear()

    def pick(self, path: str) -> str | None:
        for i, (kind, only) in enumerate(self._script):
            if only is None or only == path:
                del self._script[i]
                return kind
        if self.rate and self._random.random() < self.rate:
            return self._random.choice(self.kinds)
        return None


class TokenBucket:
    """The server-side rate limit: ``rate`` requests/s with bursts of ``burst`` (``None``: no
    limit)."""

    def __init__(self, rate: float | None, burst: int | None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(rate or 1))
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    def take(self) -> float | None:
        """Take a token; return ``None``, or how many seconds until one is there."""
        if self.rate is None:
            return None
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self.rate
