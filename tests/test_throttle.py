"""TokenBucket: exact bounds, FIFO fairness, cancellation safety and pauses; AdaptiveThrottle:
its defaults, refusals and boundaries.

The bound checks run on trio's virtual clock (autojump), so 10 s of 1,000 callers take
milliseconds and no timing is measured against a noisy machine; one smaller run on each real
backend checks the same invariants with the real clock.
"""

from __future__ import annotations

import bisect
import logging
import math
from typing import Any

import anyio
import pytest
import trio.testing

from commbox_async import AdaptiveThrottle, ConfigurationError, ResponseEvent, TokenBucket

from .test_ratelimit import saturate

pytestmark = pytest.mark.anyio


def max_in_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best = 0
    for i, t in enumerate(stamps):
        j = bisect.bisect_right(stamps, t + window - 1e-9)
        best = max(best, j - i)
    return best


async def run_load(bucket: TokenBucket, callers: int, duration: float) -> list[float]:
    stamps: list[float] = []
    start = anyio.current_time()

    async def caller() -> None:
        while anyio.current_time() - start < duration:
            await bucket.acquire()
            if anyio.current_time() - start < duration:
                stamps.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
    return stamps


@pytest.fixture
def virtual_trio() -> Any:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_bound_and_long_run_rate_with_1000_callers(anyio_backend: Any) -> None:
    rate, burst, duration = 200.0, 20, 10.0
    bucket = TokenBucket(rate, burst)
    stamps = await run_load(bucket, 1000, duration)
    for window in (0.1, 0.5, 1.0, 2.5):
        assert max_in_window(stamps, window) <= burst + rate * window + 1e-9
    long_run = (len(stamps) - burst) / duration
    assert abs(long_run - rate) / rate < 0.01


async def test_bound_on_real_clock() -> None:
    rate, burst = 500.0, 5
    bucket = TokenBucket(rate, burst)
    stamps = await run_load(bucket, 200, 0.6)
    # Real sleeps only ever oversleep, which can lower the count but never raise it.
    assert max_in_window(stamps, 0.2) <= burst + rate * 0.2
    assert len(stamps) <= burst + rate * 0.6 + 1


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_waiters_are_served_first_come_first_served(anyio_backend: Any) -> None:
    bucket = TokenBucket(10, 1)
    order: list[int] = []

    async def caller(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(caller, i)
            await anyio.sleep(0.001)  # arrive in order
    assert order == list(range(30))


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_cancelled_waiters_consume_nothing_and_block_no_one(anyio_backend: Any) -> None:
    rate = 10.0
    bucket = TokenBucket(rate, 1)
    await bucket.acquire()  # empty the bucket
    got: list[tuple[int, float]] = []
    start = anyio.current_time()

    async def waiter(i: int, cancel_after: float | None) -> None:
        with anyio.move_on_after(math.inf if cancel_after is None else cancel_after):
            await bucket.acquire()
            got.append((i, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        # 0 is the head and gets cancelled while sleeping on the clock; 1..3 are cancelled while
        # queued; 4 and 5 must then be served at the steady rate as if the others never were.
        tg.start_soon(waiter, 0, 0.05)
        await anyio.sleep(0)
        for i in (1, 2, 3):
            tg.start_soon(waiter, i, 0.02)
            await anyio.sleep(0)
        tg.start_soon(waiter, 4, None)
        await anyio.sleep(0)
        tg.start_soon(waiter, 5, None)
    assert [i for i, _ in got] == [4, 5]
    assert got[0][1] == pytest.approx(1 / rate, abs=1e-6)
    assert got[1][1] == pytest.approx(2 / rate, abs=1e-6)


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_pause_stops_everyone_then_resumes_at_rate(anyio_backend: Any) -> None:
    bucket = TokenBucket(100, 10)
    start = anyio.current_time()
    await bucket.pause(2.0)
    stamps = []
    for _ in range(3):
        await bucket.acquire()
        stamps.append(anyio.current_time() - start)
    assert stamps[0] >= 2.0
    assert stamps[2] - stamps[0] == pytest.approx(0.02, abs=1e-6)
    # A shorter pause does not shorten a longer one.
    await bucket.pause(5.0)
    await bucket.pause(1.0)
    t = anyio.current_time()
    await bucket.acquire()
    assert anyio.current_time() - t >= 5.0 - 1e-9


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_a_zero_or_negative_pause_leaves_the_burst_untouched(anyio_backend: Any) -> None:
    # A 429 with "Retry-After: 0" asks for no pause: the bucket must not be emptied as a
    # real pause empties it.
    bucket = TokenBucket(1, 3)
    await bucket.pause(0.0)
    await bucket.pause(-1.0)
    assert [await bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await bucket.acquire() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_tokens_accrue_from_the_end_of_a_pause_when_no_one_asks_at_once(
    anyio_backend: Any,
) -> None:
    # The bucket is empty when the pause ends and refills at the rate from then on: half a
    # second later at 10/s it holds 5 tokens, whether or not anyone asked in between.
    bucket = TokenBucket(10, 10)
    start = anyio.current_time()
    await bucket.pause(1.0)
    await anyio.sleep_until(start + 1.5)
    assert [await bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert await bucket.acquire() == pytest.approx(0.1)


class TestOnAFreshVirtualClock:
    """Tests that need the virtual clock to start at exactly 0 get a clock of their own (one
    made at import is shared by every run of the test in a process, as mutmut's are)."""

    @pytest.fixture
    def anyio_backend(self) -> Any:
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})

    async def test_a_token_short_by_no_more_than_the_refill_rounding_is_served_at_once(
        self, anyio_backend: Any
    ) -> None:
        # Refill arithmetic leaves a hair less than a whole token; within 1e-9 of one it counts
        # as one: the caller is served without a wait (and no throttle wait is reported).
        bucket = TokenBucket(1, 1)
        start = anyio.current_time()
        assert start == 0.0  # the virtual clock: the instants below are exact
        assert await bucket.acquire() == 0.0
        await anyio.sleep_until(1.0 - 1e-9)
        assert await bucket.acquire() == 0.0


async def test_fast_path_does_not_wait() -> None:
    bucket = TokenBucket(1, 3)
    assert [await bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0)])
def test_invalid_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ConfigurationError):
        TokenBucket(rate, burst)


# -- AdaptiveThrottle: its defaults, its checks and its boundaries ----------------------------
#
# The AIMD arithmetic itself is in tests/test_ratelimit.py; these pin what the docstring and the
# signature promise at the edges. The virtual clock starts at 0, so every instant below is an
# exact binary fraction and "exactly when the pause ends" is a time the clock really reaches.

VIRTUAL = ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


async def waited_at(throttle: AdaptiveThrottle) -> float:
    """Empty the bucket and make one caller wait for the limit; return when it started to
    (the throttle's own reading of the clock: an instant worked back from the wait's end can
    be an ulp off it, and tests here compare at the edges)."""
    while True:
        start = anyio.current_time()
        if await throttle.acquire() > 0.0:
            return start


def answer(status: int) -> ResponseEvent:
    return ResponseEvent(method="GET", path="/x", attempt=1, http_status=status, elapsed=0.01)


def test_adaptive_defaults_are_the_client_default_10_per_second_burst_10() -> None:
    t = AdaptiveThrottle()
    assert (t.rate, t.burst, t.cuts) == (10.0, 10, 0)
    assert repr(t) == "AdaptiveThrottle(rate=10.0, burst=10, cuts=0)"


def test_adaptive_keeps_the_burst_it_is_given() -> None:
    assert AdaptiveThrottle(20.0, 5).burst == 5
    assert AdaptiveThrottle(2.0, 7).burst == 7
    assert AdaptiveThrottle(20.0, None).burst == 20  # None: as TokenBucket, ceil(rate)


def test_adaptive_default_steps_are_5_then_a_quarter_per_second() -> None:
    t = AdaptiveThrottle()
    saturate(t, 0.0)
    t.answered(0.0)
    assert t.rate == pytest.approx(10.0 + 5.0 / 10.0)  # increase=5: + increase / rate
    t = AdaptiveThrottle()
    t.throttled(0.0, 0.0)  # 10 -> 9 (decrease=0.9)
    saturate(t, 2.0)
    t.answered(2.0)
    assert t.rate == pytest.approx(9.0 + 0.25 / 9.0)  # probe_increase=0.25 after a 429


def test_adaptive_default_floor_is_1_per_second() -> None:
    assert AdaptiveThrottle(1.0, 1).rate == 1.0  # start may equal min_rate (default 1)
    t = AdaptiveThrottle(2.0, 1)
    now = 0.0
    for _ in range(20):
        t.throttled(now, 0.0)
        now += 10.0
    assert t.rate == 1.0 and t.cuts == 20


def test_adaptive_default_reprobe_is_after_exactly_30_seconds_without_a_429() -> None:
    t = AdaptiveThrottle(20.0, 10)
    t.throttled(0.0, 0.0)
    assert t.rate == pytest.approx(18.0)
    saturate(t, 30.0)
    t.answered(30.0)  # 30 s after the cut: climbing at full speed again
    assert t.rate == pytest.approx(18.0 + 5.0 / 18.0)


def test_a_throttled_rate_can_be_cut_again_a_settle_after_a_zero_pause() -> None:
    t = AdaptiveThrottle(10.0, 10)
    t.throttled(0.0, 0.0)  # Retry-After 0: the episode ends SETTLE (1 s) later
    t.throttled(AdaptiveThrottle.SETTLE - 0.25, 0.0)
    assert t.cuts == 1
    t.throttled(AdaptiveThrottle.SETTLE, 0.0)
    assert t.cuts == 2 and t.rate == pytest.approx(8.1)
    t.throttled(10.0, -5.0)  # a negative pause counts as none
    t.throttled(10.0 + AdaptiveThrottle.SETTLE, 0.0)
    assert t.cuts == 4


def test_a_cut_is_logged_with_both_rates(caplog: pytest.LogCaptureFixture) -> None:
    t = AdaptiveThrottle(10.0, 10)
    with caplog.at_level(logging.INFO, logger="commbox_async"):
        t.throttled(0.0, 1.0)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "commbox_async",
            logging.INFO,
            "429 from CommBox: the adaptive rate limit goes from 10.0 to 9.0 requests/s",
        )
    ]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"increase": 0}, "increase must be a positive number, got 0"),
        ({"probe_increase": -1}, "probe_increase must be a positive number, got -1"),
        ({"min_rate": 0.0}, "min_rate must be a positive number, got 0.0"),
        ({"reprobe_after": math.inf}, "reprobe_after must be a positive number, got inf"),
        ({"decrease": 1.0}, "decrease must be a factor between 0 and 1, got 1.0"),
        ({"max_rate": 5.0}, "max_rate must be at least start and min_rate, got 5.0"),
        ({"start": 0.5}, "start must be at least min_rate, got 0.5"),
    ],
)
def test_adaptive_refusals_name_the_parameter_and_the_value(
    kw: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AdaptiveThrottle(**kw)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_adaptive_bounds_may_be_equal() -> None:
    t = AdaptiveThrottle(10.0, 10, max_rate=10.0)  # a ceiling at the start: a fixed rate
    saturate(t, 0.0)
    t.answered(0.0)
    assert t.rate == 10.0
    assert AdaptiveThrottle(3.0, 1, min_rate=3.0, max_rate=3.0).rate == 3.0


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
@pytest.mark.parametrize(
    ("status", "rises"),
    [
        *[(200, True), (201, True), (404, True), (499, True), (430, True)],
        *[(429, False), (500, False), (501, False), (503, False)],
    ],
)
async def test_only_answers_that_are_neither_429_nor_5xx_raise_the_rate(
    anyio_backend: Any, status: int, rises: bool
) -> None:
    t = AdaptiveThrottle(4.0, 1)
    await waited_at(t)
    t.on_response(answer(status))
    assert t.rate == (pytest.approx(4.0 + 5.0 / 4.0) if rises else 4.0)


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
async def test_a_wait_a_second_ago_still_counts_as_the_limit_holding_work_back(
    anyio_backend: Any,
) -> None:
    t = AdaptiveThrottle(4.0, 1)
    since = await waited_at(t)
    t.answered(since + AdaptiveThrottle.SATURATED_FOR)  # "within the last second": inclusive
    assert t.rate == pytest.approx(4.0 + 5.0 / 4.0)


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
async def test_an_answer_as_the_pause_ends_is_learned_from(anyio_backend: Any) -> None:
    t = AdaptiveThrottle(4.0, 1)
    await waited_at(t)
    until = anyio.current_time() + 0.5
    await t.pause(0.5)  # 4 -> 3.6
    t.answered(until - 0.25)  # during the pause: from before it, ignored
    assert t.rate == pytest.approx(3.6)
    t.answered(until)  # the pause is over at its end
    assert t.rate == pytest.approx(3.6 + 0.25 / 3.6)


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
async def test_a_caller_waiting_as_the_pause_ends_waits_for_the_limit(anyio_backend: Any) -> None:
    t = AdaptiveThrottle(4.0, 1)
    until = anyio.current_time() + 2.0
    await t.pause(2.0)  # no caller waited before: nothing saturated yet
    t.answered(until)
    assert t.rate == pytest.approx(3.6)
    await anyio.sleep_until(until)
    assert anyio.current_time() == until
    # At the pause's end the bucket is empty (it resumes at the steady rate): this caller
    # waits for the limit, not for the pause, so the limit is what holds the work back.
    await t.acquire()
    t.answered(anyio.current_time())
    assert t.rate == pytest.approx(3.6 + 0.25 / 3.6)
