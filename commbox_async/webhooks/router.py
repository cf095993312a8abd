"""WebhookRouter: handlers per event class, per activity type, and a catch-all."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..models import ObjectActivityType
from .events import Event, ObjectNewActivity, WebhookActivity

__all__ = ["ActivityHandler", "Handler", "WebhookRouter"]

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None] | None]
ActivityHandler = Callable[[ObjectNewActivity, WebhookActivity], Awaitable[None] | None]
F = TypeVar("F", bound=Callable[..., Any])


class WebhookRouter:
    """Routes parsed events to handlers (async or sync).

    ``@router.on(ObjectNewChild)`` runs for that class and its subclasses;
    ``@router.on_activity(ObjectActivityType.REMARK)`` runs once per matching activity of an
    OnNewActivity event with ``(event, activity)``; ``@router.on_any()`` runs for every event.
    Handlers run in registration order; an exception propagates (so a receiver answers non-2xx
    and CommBox can re-deliver).
    """

    def __init__(self) -> None:
        self._by_class: list[tuple[type[Event], Handler]] = []
        self._by_activity: list[tuple[frozenset[int] | None, ActivityHandler]] = []
        self._any: list[Handler] = []

    def on(self, *event_classes: type[Event]) -> Callable[[F], F]:
        if not event_classes:
            raise TypeError("on() needs at least one event class")

        def register(fn: F) -> F:
            for cls in event_classes:
                self._by_class.append((cls, fn))
            return fn

        return register

    def on_activity(self, *types: ObjectActivityType | int) -> Callable[[F], F]:
        """Handlers for activities of these types (all types when none is given)."""
        wanted = frozenset(int(t) for t in types) or None

        def register(fn: F) -> F:
            self._by_activity.append((wanted, fn))
            return fn

        return register

    def on_any(self) -> Callable[[F], F]:
        def register(fn: F) -> F:
            self._any.append(fn)
            return fn

        return register

    async def dispatch(self, event: Event) -> int:
        """Run every matching handler; return how many ran."""
        ran = 0
        for cls, fn in self._by_class:
            if isinstance(event, cls):
                await _call(fn, event)
                ran += 1
        if isinstance(event, ObjectNewActivity) and self._by_activity:
            for activity in event.activities:
                for wanted, afn in self._by_activity:
                    if wanted is None or (
                        activity.type is not None and int(activity.type) in wanted
                    ):
                        await _call(afn, event, activity)
                        ran += 1
        for fn in self._any:
            await _call(fn, event)
            ran += 1
        return ran


async def _call(fn: Callable[..., Any], *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result
