"""The client-side rate limit as a user sets it: the default, ``COMMBOX_RATE_LIMIT``, the
``rate_limit`` argument, and how each is described in messages and logs.

Precedence: an explicit ``rate_limit=`` (or the CLI's ``--rate-limit``), then
``$COMMBOX_RATE_LIMIT``, then :data:`DEFAULT_RATE_LIMIT` (10/s, burst 10). A value is a
positive number of requests/s, ``"adaptive"`` (:class:`~commbox_async.AdaptiveThrottle`), or
off: ``None`` in Python, ``off`` in the environment variable and on the command line.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Literal

from ._exceptions import ConfigurationError, InvalidArgumentError
from ._hooks import ThrottleEvent
from ._throttle import AdaptiveThrottle, Throttle, TokenBucket

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_RATE_LIMIT",
    "RATE_LIMIT_ENV",
    "FirstDelayNotice",
    "RateLimit",
    "describe_rate_limit",
    "make_throttle",
    "parse_rate_limit",
    "resolve_rate_limit",
]

logger = logging.getLogger("commbox_async")

#: CommBox publishes no rate limit. 10 requests/s with a burst of 10 stays well clear of
#: throttling on a single API key; 429 handling (with Retry-After) carries the rest, and
#: ``rate_limit="adaptive"`` finds the rate CommBox actually grants.
DEFAULT_RATE_LIMIT = 10.0
DEFAULT_BURST = 10
RATE_LIMIT_ENV = "COMMBOX_RATE_LIMIT"

#: A rate limit setting: requests/s, ``"adaptive"``, or ``None`` for none.
RateLimit = float | Literal["adaptive"] | None

_OFF = ("off", "none")


def parse_rate_limit(text: str, where: str) -> RateLimit:
    """A rate limit written as text (the environment variable, the CLI): a positive number,
    ``adaptive`` or ``off``. ``where`` names the source in the error."""
    value = text.strip().lower()
    if value in _OFF:
        return None
    if value == "adaptive":
        return "adaptive"
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not (rate > 0 and math.isfinite(rate)):
        raise ConfigurationError(
            f"{where} must be a positive number of requests/s, 'adaptive' or 'off', got {text!r}"
        )
    return rate


def _check(value: object) -> RateLimit:
    if value is None or value == "adaptive":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(
            "rate_limit takes a number of requests/s, 'adaptive' or None (off), "
            f"got {type(value).__name__} {value!r}",
            param="rate_limit",
            expected="a number, 'adaptive' or None",
            got=type(value).__name__,
        )
    return float(value)


def resolve_rate_limit(value: object, *, given: bool) -> tuple[RateLimit, str]:
    """The rate limit in force and where it came from: ``"rate_limit="`` (given),
    ``"COMMBOX_RATE_LIMIT"`` or ``"default"``."""
    if given:
        return _check(value), "rate_limit="
    text = os.environ.get(RATE_LIMIT_ENV, "")
    if text.strip():
        return parse_rate_limit(text, RATE_LIMIT_ENV), RATE_LIMIT_ENV
    return DEFAULT_RATE_LIMIT, "default"


def make_throttle(rate_limit: RateLimit, burst: int | None) -> Throttle | None:
    """The throttle of a setting: a :class:`TokenBucket`, an :class:`AdaptiveThrottle` that
    starts at the default rate, or none."""
    if rate_limit is None:
        return None
    if rate_limit == "adaptive":
        return AdaptiveThrottle(DEFAULT_RATE_LIMIT, burst)
    return TokenBucket(rate_limit, burst)


def describe_rate_limit(
    throttle: Throttle | None, source: str | None = None, *, burst: bool = True
) -> str:
    """``10/s, burst 10 (default)``, ``adaptive, now 37.5/s (COMMBOX_RATE_LIMIT)``, ``off``...
    (``burst=False`` leaves the burst out, for a progress bar)."""
    if throttle is None:
        text = "off"
    elif isinstance(throttle, (AdaptiveThrottle, TokenBucket)):
        rate = (
            f"{throttle.rate:.1f}"
            if isinstance(throttle, AdaptiveThrottle)
            else f"{throttle.rate:g}"
        )
        text = f"adaptive, now {rate}/s" if isinstance(throttle, AdaptiveThrottle) else f"{rate}/s"
        if burst:
            text += f", burst {throttle.burst}"
    else:
        text = repr(throttle)
    return f"{text} ({source})" if source else text


class FirstDelayNotice:
    """An ``on_throttle`` hook logging, once per client at INFO, that the client-side rate
    limit held a request back: the limit is the first thing to suspect when work is slow."""

    __slots__ = ("_source", "_throttle", "logged")

    def __init__(self, throttle: Throttle, source: str) -> None:
        self._throttle = throttle
        self._source = source
        self.logged = False

    def __call__(self, event: ThrottleEvent) -> None:
        if self.logged:
            return
        self.logged = True
        logger.info(
            "the client-side rate limit, %s, held %s %s back for %.3fs (logged once per client); "
            "set rate_limit= or %s (a number, 'adaptive' or 'off') to change it",
            describe_rate_limit(self._throttle, self._source),
            event.method,
            event.path,
            event.waited,
            RATE_LIMIT_ENV,
        )
