"""Observability: hook events and cheap counters, so apps export metrics without parsing logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from ._aio import call

__all__ = [
    "ClientStats",
    "Hooks",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "ThrottleEvent",
]

E = TypeVar("E")


@attrs.frozen(kw_only=True)
class RequestEvent:
    """An attempt is about to be sent. ``path`` is encoded and carries no secrets."""

    method: str
    path: str
    attempt: int


@attrs.frozen(kw_only=True)
class ResponseEvent:
    """An attempt got an HTTP response (any status)."""

    method: str
    path: str
    attempt: int
    http_status: int
    elapsed: float


@attrs.frozen(kw_only=True)
class RetryEvent:
    """An attempt failed and another one is scheduled after ``wait`` seconds."""

    method: str
    path: str
    attempt: int
    reason: str
    wait: float
    error: BaseException


@attrs.frozen(kw_only=True)
class ThrottleEvent:
    """The client-side throttle held a request back for ``waited`` seconds."""

    method: str
    path: str
    waited: float


HookFn = Callable[[E], Awaitable[None] | None]


@attrs.frozen(kw_only=True)
class Hooks:
    """Callables (sync or async) run at each stage of a request. Exceptions from hooks propagate."""

    on_request: Sequence[HookFn[RequestEvent]] = ()
    on_response: Sequence[HookFn[ResponseEvent]] = ()
    on_retry: Sequence[HookFn[RetryEvent]] = ()
    on_throttle: Sequence[HookFn[ThrottleEvent]] = ()


async def emit(fns: Sequence[HookFn[E]], event: E) -> None:
    for fn in fns:
        await call(fn, event)


@attrs.define(kw_only=True)
class ClientStats:
    """Counters shared by a client and its ``with_options`` views."""

    requests: int = 0
    responses: int = 0
    retries: Counter[str] = attrs.field(factory=Counter)
    rate_limited: int = 0
    throttle_wait_seconds: float = 0.0
    throttle_waits: int = 0
    token_refreshes: int = 0

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def snapshot(self) -> dict[str, Any]:
        """A plain dict of the counters, for a metrics exporter."""
        return {
            "requests": self.requests,
            "responses": self.responses,
            "retries": dict(self.retries),
            "total_retries": self.total_retries,
            "rate_limited": self.rate_limited,
            "throttle_wait_seconds": self.throttle_wait_seconds,
            "throttle_waits": self.throttle_waits,
            "token_refreshes": self.token_refreshes,
        }
