"""When to retry, and how long to wait: the safety rules in one place.

Idempotent methods (GET, DELETE, ...) are retried on connection errors, timeouts, 429 and
500/502/503/504. POST and PATCH create conversations and send messages, so they are retried
only when the request certainly was not processed (connect failure, 429, 503), unless the
caller opts in with ``retry_uncertain=True``.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import anyio
import tenacity

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    CommBoxError,
    InvalidResponseError,
)

__all__ = ["RetryPolicy", "parse_retry_after", "retry_reason"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that prove the server did not act on the request.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        return max(0.0, when.timestamp() - current)
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
        status = exc.status_code
        if status not in RETRYABLE_STATUSES:
            return False
        if method in IDEMPOTENT_METHODS or retry_uncertain:
            return True
        return status in NOT_PROCESSED_STATUSES
    if isinstance(exc, APIConnectionError):
        if method in IDEMPOTENT_METHODS or retry_uncertain:
            return True
        return not exc.may_have_been_processed
    if isinstance(exc, InvalidResponseError):
        # A truncated or HTML body on a success status: the request went through.
        return method in IDEMPOTENT_METHODS or retry_uncertain
    return False


class RetryPolicy:
    """Builds the tenacity controller for one call."""

    def __init__(
        self,
        *,
        max_retries: int,
        initial_backoff: float,
        max_backoff: float,
        max_retry_after: float,
        jitter: float = 0.25,
    ) -> None:
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.jitter = jitter

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with +-jitter for the wait after ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))  # noqa: S311 - not crypto

    def wait_for(self, exc: BaseException | None, attempt: int) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return self.backoff(attempt)

    def controller(
        self,
        *,
        method: str,
        retry_uncertain: bool,
        max_retries: int,
        deadline_at: float | None,
        before_sleep: Callable[[BaseException, float, int], Awaitable[None]],
    ) -> tenacity.AsyncRetrying:
        """A tenacity ``AsyncRetrying`` with this policy's rules for one call.

        ``deadline_at`` is on :func:`time.monotonic`. A wait longer than ``max_retry_after`` or
        than the deadline left stops at once and re-raises the error with the reason attached,
        rather than sleeping for it.
        """

        def should_retry(state: tenacity.RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or not outcome.failed:
                return False
            exc = outcome.exception()
            return exc is not None and is_retryable(
                exc, method=method, retry_uncertain=retry_uncertain
            )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(exc, state.attempt_number)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number > max_retries:
                return True
            exc = state.outcome.exception() if state.outcome else None
            upcoming = state.upcoming_sleep
            reason = None
            if getattr(exc, "retry_after", None) is not None and upcoming > self.max_retry_after:
                reason = (
                    f"Retry-After {upcoming:g}s exceeds max_retry_after={self.max_retry_after:g}s"
                )
            elif deadline_at is not None and time.monotonic() + upcoming >= deadline_at:
                left = max(0.0, deadline_at - time.monotonic())
                reason = (
                    f"waiting {upcoming:.3g}s would pass the call's deadline ({left:.3g}s left)"
                )
            if reason is not None:
                if isinstance(exc, APIStatusError):
                    exc.gave_up_reason = reason
                return True
            return False

        async def sleep(seconds: float) -> None:
            await anyio.sleep(seconds)

        async def before(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            assert exc is not None
            await before_sleep(exc, state.upcoming_sleep, state.attempt_number)

        return tenacity.AsyncRetrying(
            retry=should_retry,
            wait=wait,
            stop=stop,
            sleep=sleep,
            before_sleep=before,
            reraise=True,
        )
