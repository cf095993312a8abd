"""Whether CommBox may have acted on a request: the verdict table, in one place.

CommBox has no idempotency keys, so whether a failed POST may be sent again depends only on
what reached it. That is decided where it is known:

- by the senders, as it happens: whether any byte of the request may have left the machine
  (:attr:`Exposure.sent`) and whether a response's status line came back
  (:attr:`Exposure.status`);
- by the status, once there is one (:func:`for_status`);
- and for a call of several attempts, as the worst of them: a call is "not processed" only if
  every attempt it made was certainly not processed.

The verdict then travels unchanged with the call's error (``CommBoxError.processed``), through
deadlines (the attempt in flight is read as it stood), retries (the worst attempt wins) and
decoding (a 2xx answer means CommBox acted, whatever its body). ``cb.bulk`` reads the same
:class:`Exposure` when a send is cancelled, through :func:`tracking`.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Awaitable, Callable

__all__ = ["Exposure", "Processed", "current_exposure", "for_status", "tracking"]


class Processed(enum.IntEnum):
    """Whether CommBox acted on a request. Ordered: a call is as processed as its worst attempt."""

    #: CommBox certainly did not act on it (nothing reached it, or it said so: 4xx, 429, 503).
    NO = 0
    #: It may have (the request may have arrived, and no answer says what happened).
    MAYBE = 1
    #: It did (a 2xx status came back, even if its body could not be read).
    YES = 2


def for_status(status: int) -> Processed:
    """What an HTTP (or envelope) status says about the request.

    2xx: CommBox acted. 3xx: it sent the request elsewhere (redirects are not followed).
    4xx: it refused before acting (429 included: throttled). 501 and 503: it did not act (not
    supported, overloaded). 500, 502, 504 and anything else: a failure after the request may
    have been acted on (a gateway cannot know, and a 500 may follow the write).
    """
    if 200 <= status < 300:
        return Processed.YES
    if 300 <= status < 500 or status == 501 or status == 503:
        return Processed.NO
    return Processed.MAYBE


class Exposure:
    """How far one call has got onto the wire, written by its senders as it happens.

    ``sent`` becomes True as soon as a byte of the current attempt may be out (a sender that
    cannot tell sets it as the send starts); ``status`` is the current attempt's response
    status once its status line has arrived. ``settled`` is the worst verdict of the call's
    finished attempts. ``before_send`` (set by ``cb.bulk``) is awaited once, before the first
    byte of the call's first attempt may leave, after the throttle let it go.
    """

    __slots__ = ("before_send", "sent", "settled", "status")

    def __init__(self, before_send: Callable[[], Awaitable[None]] | None = None) -> None:
        self.sent = False
        self.status: int | None = None
        self.settled = Processed.NO
        self.before_send = before_send

    def attempt(self) -> Processed:
        """The current attempt's verdict, as it stands."""
        if self.status is not None:
            return for_status(self.status)
        return Processed.MAYBE if self.sent else Processed.NO

    def verdict(self) -> Processed:
        """The call's verdict as it stands: its worst attempt, the current one included."""
        current = self.attempt()
        return current if current > self.settled else self.settled

    def end_attempt(self, processed: Processed) -> Processed:
        """The current attempt ended with ``processed``; returns the call's verdict."""
        if processed > self.settled:
            self.settled = processed
        self.sent = False
        self.status = None
        return self.settled

    def __repr__(self) -> str:
        return f"Exposure(sent={self.sent}, status={self.status}, settled={self.settled.name})"


_current: contextvars.ContextVar[Exposure | None] = contextvars.ContextVar(
    "commbox_exposure", default=None
)


#: The exposure a caller asked the next call to report into (see :func:`tracking`), else None:
#: the context variable's own ``get``, called once per request with no Python frame.
current_exposure: Callable[[], Exposure | None] = _current.get


class tracking:  # named as the context manager it replaced: ``with tracking(exposure):``
    """Calls made inside the block record their progress in ``exposure``: the caller can then
    tell, even after cancelling the call, whether any byte of it may have reached CommBox.
    (A class rather than a generator: ``cb.bulk`` enters one per request.)"""

    __slots__ = ("_exposure", "_token")

    def __init__(self, exposure: Exposure) -> None:
        self._exposure = exposure

    def __enter__(self) -> Exposure:
        self._token = _current.set(self._exposure)
        return self._exposure

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
