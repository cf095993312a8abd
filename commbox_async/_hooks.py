"""Observability: hook events and cheap counters, so apps export metrics without parsing logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from ._aio import call
from ._exceptions import InvalidArgumentError

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


@attrs.frozen(init=False)
class Hooks:
    """Callables (sync or async) run at each stage of a request. Exceptions from hooks propagate.

    Each stage takes one callable or a sequence of them: ``Hooks(on_request=log)`` or
    ``Hooks(on_request=[log, count])``. Anything else is refused here, with
    :class:`~commbox_async.InvalidArgumentError`, rather than at the first request.

    - ``on_request``: an attempt is about to be sent (:class:`RequestEvent`).
    - ``on_response``: an attempt got an HTTP response, any status (:class:`ResponseEvent`).
    - ``on_retry``: an attempt failed and another is scheduled (:class:`RetryEvent`).
    - ``on_throttle``: the client-side rate limit held a request back (:class:`ThrottleEvent`).
    """

    on_request: tuple[HookFn[RequestEvent], ...]
    on_response: tuple[HookFn[ResponseEvent], ...]
    on_retry: tuple[HookFn[RetryEvent], ...]
    on_throttle: tuple[HookFn[ThrottleEvent], ...]

    def __init__(
        self,
        *,
        on_request: HookFn[RequestEvent] | Sequence[HookFn[RequestEvent]] = (),
        on_response: HookFn[ResponseEvent] | Sequence[HookFn[ResponseEvent]] = (),
        on_retry: HookFn[RetryEvent] | Sequence[HookFn[RetryEvent]] = (),
        on_throttle: HookFn[ThrottleEvent] | Sequence[HookFn[ThrottleEvent]] = (),
    ) -> None:
        self.__attrs_init__(
            on_request=_callables("on_request", on_request),
            on_response=_callables("on_response", on_response),
            on_retry=_callables("on_retry", on_retry),
            on_throttle=_callables("on_throttle", on_throttle),
        )


def _callables(name: str, value: Any) -> tuple[Any, ...]:
    """One hook or a sequence of them, as a tuple; anything not callable is refused."""
    if callable(value):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"Hooks({name}=...) takes a callable or a sequence of callables, "
            f"got {type(value).__name__}",
            param=name,
            expected="a callable or a sequence of callables",
            got=type(value).__name__,
        )
    for i, fn in enumerate(value):
        if not callable(fn):
            raise InvalidArgumentError(
                f"Hooks({name}=...): item {i} is {type(fn).__name__}, not a callable",
                param=f"{name}[{i}]",
                expected="a callable",
                got=type(fn).__name__,
            )
    return tuple(value)


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
