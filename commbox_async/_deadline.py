"""Per-call deadlines on asyncio, without a timer per call.

``asyncio.timeout`` arms a timer in the loop's heap for every call and cancels it when the call
ends: with thousands of short calls a second under a 300 s deadline that is a third of what
the client costs per request on aiohttp (the heap fills with cancelled timers, each push
compares in Python). Here a call only joins the set of calls whose deadline falls in the same
second, one timer per such second. That timer fires a second or two ahead, and only then do
the calls still running get a timer of their own, at their exact deadline: a deadline is as
exact as with ``asyncio.timeout``, and a call that ends in time never armed one.

What a deadline does when it passes is ``asyncio.timeout``'s (Python 3.11+): the task is
cancelled, and that cancellation, unless another one is pending too (``Task.uncancel``), is
the deadline's to report.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Deadlines", "Expiry", "clock_of"]


def clock_of(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's clock: asyncio's own is ``time.monotonic``, then called directly (no Python
    frame per reading)."""
    base = getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time
    return time.monotonic if base else loop.time


class _Task(Protocol):
    """What is used of an ``asyncio.Task`` (``cancelling`` and ``uncancel``: Python 3.11+)."""

    def cancel(self, msg: Any = None) -> bool: ...

    def cancelling(self) -> int: ...

    def uncancel(self) -> int: ...


#: The width of a group of deadlines, in seconds: a call's own timer is armed between one and
#: two widths before its deadline (at once when the deadline is nearer).
_WIDTH = 1.0


class Expiry:
    """One call's deadline (what :meth:`Deadlines.arm` fills in and returns). A call's own
    object may be one (a subclass): then arming a deadline creates no object."""

    __slots__ = ("cancelling", "fired", "group", "handle", "task", "when")

    task: _Task
    when: float
    #: The task's pending cancellations when the deadline was armed.
    cancelling: int
    #: Set when the deadline passed and cancelled the task.
    fired: bool
    #: The call's own timer, once armed.
    handle: asyncio.TimerHandle | None
    #: The group of deadlines it waits in until then.
    group: set[Expiry] | None


class Deadlines:
    """The deadlines of the calls in flight on one asyncio loop."""

    __slots__ = ("_groups", "_loop", "_time")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._groups: dict[int, set[Expiry]] = {}
        self._time = clock_of(loop)

    def arm(self, task: _Task, seconds: float, expiry: Expiry | None = None) -> Expiry:
        """Cancel ``task`` ``seconds`` from now unless :meth:`disarm` is called first; the
        deadline is kept in ``expiry`` (a new one when None), which is returned."""
        loop = self._loop
        now = self._time()
        if expiry is None:
            expiry = Expiry()
        expiry.task = task
        expiry.when = when = now + seconds
        expiry.cancelling = task.cancelling()
        expiry.fired = False
        expiry.handle = None
        key = math.floor(when / _WIDTH)
        group = self._groups.get(key)
        if group is None:
            if (key - 1) * _WIDTH <= now:  # too near for a group: its own timer now
                expiry.group = None
                expiry.handle = loop.call_at(when, self._expire, expiry)
                return expiry
            group = self._groups[key] = set()
            loop.call_at((key - 1) * _WIDTH, self._arm_group, key)
        group.add(expiry)
        expiry.group = group
        return expiry

    def _arm_group(self, key: int) -> None:
        group = self._groups.pop(key, ())
        for expiry in group:
            expiry.group = None
            expiry.handle = self._loop.call_at(expiry.when, self._expire, expiry)

    @staticmethod
    def _expire(expiry: Expiry) -> None:
        expiry.handle = None
        expiry.fired = True
        expiry.task.cancel()

    @staticmethod
    def disarm(expiry: Expiry, cancelled: bool) -> bool:
        """The call ended (``cancelled``: with a ``CancelledError``). True when that
        cancellation was the deadline's, and no other is pending: the call timed out."""
        if expiry.group is not None:
            expiry.group.discard(expiry)
            expiry.group = None
        elif expiry.handle is not None:
            expiry.handle.cancel()
            expiry.handle = None
        if not expiry.fired:
            return False
        # As asyncio.timeout: the deadline's cancellation is taken back whatever the call
        # ended with, and is the call's outcome only if nothing else cancelled it too.
        return expiry.task.uncancel() <= expiry.cancelling and cancelled
