"""When to retry, and how long to wait: the retry rules in one place.

Idempotent methods (GET, DELETE, ...) are retried on connection errors, timeouts, 429 and
500/502/503/504. POST and PATCH create conversations and send messages, so they are retried
only when CommBox certainly did not act on them (``processed`` is ``NO``: a connect failure,
429, 503), unless the caller opts in with ``retry_uncertain=True``. Whether a request was
processed is the verdict table's business (:mod:`commbox_async._verdict`), not this module's.

The waits and the attempt cap are tenacity's strategies (exponential backoff with jitter,
``stop_after_attempt``); ``Retry-After`` replaces the backoff when CommBox sends one.
"""

from __future__ import annotations

import email.utils
import math
import time
from datetime import datetime, timezone

import tenacity

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    CommBoxError,
    InvalidResponseError,
    ResponseTooLargeError,
)
from ._verdict import Processed

__all__ = ["IDEMPOTENT_METHODS", "RetryPolicy", "parse_retry_after", "retry_reason"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
#: Statuses worth another attempt: throttled, overloaded, or a failure of the moment.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    A value that is neither, or a date no calendar can hold, is ignored (None).
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 64:  # both forms are short; anything longer is not one
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            target = when.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        return max(0.0, target - current)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_reason(exc: BaseException) -> str:
    """A short label for metrics and logs: ``status_503``, ``connect_error``, ``read_timeout``."""
    if isinstance(exc, APIStatusError):
        return f"status_{exc.status_code}"
    if isinstance(exc, APIConnectionError):
        return exc.reason
    return type(exc).__name__


def is_retryable(exc: BaseException, *, method: str, retry_uncertain: bool) -> bool:
    """The retry matrix. Anything that is not a CommBoxError (cancellation!) is never retried."""
    if not isinstance(exc, CommBoxError):
        return False
    if isinstance(exc, APIStatusError):
        if exc.status_code not in TRANSIENT_STATUSES:
            return False
    elif isinstance(exc, ResponseTooLargeError):
        return False  # the same request gets the same answer
    elif not isinstance(exc, (APIConnectionError, InvalidResponseError)):
        return False
    return method in IDEMPOTENT_METHODS or retry_uncertain or exc.processed is Processed.NO


class RetryPolicy:
    """The retry rules of one set of options: which failure is retried, after how long, and
    when to give up (attempts, ``max_retry_after``, the call's deadline)."""

    __slots__ = ("_owner", "_stop", "_wait", "max_retries", "max_retry_after", "retry_uncertain")

    def __init__(
        self,
        *,
        max_retries: int,
        initial_backoff: float,
        max_backoff: float,
        max_retry_after: float,
        retry_uncertain: bool,
    ) -> None:
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.retry_uncertain = retry_uncertain
        # initial * 2**(n-1), capped at max_backoff, plus up to `initial` of jitter.
        self._wait: tenacity.wait.wait_base = tenacity.wait_exponential(
            multiplier=initial_backoff, max=max_backoff
        ) + tenacity.wait_random(0, initial_backoff)
        self._stop = tenacity.stop_after_attempt(max_retries + 1)
        self._owner = tenacity.AsyncRetrying(stop=self._stop, wait=self._wait)

    def backoff(self, retry: int) -> float:
        """The backoff before retry number ``retry`` (1-based)."""
        return self._wait(self._state(retry))

    def _state(self, attempts: int) -> tenacity.RetryCallState:
        state = tenacity.RetryCallState(self._owner, None, (), {})
        state.attempt_number = attempts
        return state

    def next_wait(
        self, exc: CommBoxError, *, method: str, retries: int, deadline_at: float | None
    ) -> float | None:
        """Seconds to wait before retrying after ``exc`` (the call's ``retries`` + 1th
        failure), or None to give up and raise it. A wait that is over ``max_retry_after``
        or would pass the deadline gives up at once, recording why in ``exc.gave_up_reason``
        rather than sleeping for nothing."""
        if not is_retryable(exc, method=method, retry_uncertain=self.retry_uncertain):
            return None
        state = self._state(retries + 1)
        if self._stop(state):
            return None
        retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
        wait = retry_after if retry_after is not None else self._wait(state)
        if retry_after is not None and wait > self.max_retry_after:
            exc.gave_up_reason = (
                f"Retry-After {wait:g}s exceeds max_retry_after={self.max_retry_after:g}s"
            )
            return None
        if deadline_at is not None:
            left = deadline_at - time.monotonic()
            if wait >= left:
                exc.gave_up_reason = (
                    f"waiting {wait:.3g}s would pass the call's deadline "
                    f"({max(0.0, left):.3g}s left)"
                )
                return None
        return wait
