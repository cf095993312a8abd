"""The rate limit a user meets: its default, COMMBOX_RATE_LIMIT, the one INFO record when it
first holds a request back, and rate_limit="adaptive" (AIMD).

The adaptive throttle is checked three ways: its arithmetic on explicit times; a whole client
against a server-side limit on trio's virtual clock (45 s of traffic in about a second, the
same every run); and, marked slow (``nox -s soak``), against ``commbox fake-server --rate-limit
50`` on a real socket.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from commbox_async import (
    DEFAULT_BURST,
    DEFAULT_RATE_LIMIT,
    AdaptiveThrottle,
    AsyncCommBox,
    ConfigurationError,
    InvalidArgumentError,
    RateLimitError,
    TokenBucket,
)
from commbox_async._ratelimit import describe_rate_limit

from .conftest import BASE, TOKEN, envelope

VIRTUAL = ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMBOX_RATE_LIMIT", raising=False)


def client(**kw: Any) -> AsyncCommBox:
    return AsyncCommBox(token=TOKEN, base_url=BASE, **kw)


# -- the default and where a setting comes from -------------------------------------------------


def test_the_default_is_10_per_second_burst_10() -> None:
    assert (DEFAULT_RATE_LIMIT, DEFAULT_BURST) == (10.0, 10)
    throttle = client().throttle
    assert isinstance(throttle, TokenBucket) and not isinstance(throttle, AdaptiveThrottle)
    assert (throttle.rate, throttle.burst) == (10.0, 10)
    assert describe_rate_limit(throttle, "default") == "10/s, burst 10 (default)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [("25", 25.0), (" 2.5 ", 2.5), ("off", None), ("OFF", None), ("none", None), ("", 10.0)],
)
def test_commbox_rate_limit_sets_it(
    monkeypatch: pytest.MonkeyPatch, env: str, expected: float | None
) -> None:
    monkeypatch.setenv("COMMBOX_RATE_LIMIT", env)
    throttle = client().throttle
    if expected is None:
        assert throttle is None
    else:
        assert isinstance(throttle, TokenBucket) and throttle.rate == expected
        assert throttle.burst == DEFAULT_BURST


def test_commbox_rate_limit_adaptive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMBOX_RATE_LIMIT", "adaptive")
    throttle = client().throttle
    assert isinstance(throttle, AdaptiveThrottle) and throttle.rate == DEFAULT_RATE_LIMIT


def test_an_explicit_argument_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMBOX_RATE_LIMIT", "25")
    throttle = client(rate_limit=5).throttle
    assert isinstance(throttle, TokenBucket) and throttle.rate == 5
    assert client(rate_limit=None).throttle is None
    assert isinstance(client(rate_limit="adaptive").throttle, AdaptiveThrottle)
    mine = TokenBucket(3, 1)
    assert client(throttle=mine).throttle is mine


@pytest.mark.parametrize("env", ["fast", "0", "-5", "nan", "inf"])
def test_a_bad_variable_names_itself(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("COMMBOX_RATE_LIMIT", env)
    with pytest.raises(ConfigurationError) as info:
        client()
    assert str(info.value) == (
        "COMMBOX_RATE_LIMIT must be a positive number of requests/s, 'adaptive' or 'off', "
        f"got {env!r}"
    )


@pytest.mark.parametrize("value", ["fast", "20", True, [10]])
def test_a_bad_argument_is_a_typed_error(value: Any) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client(rate_limit=value)
    assert isinstance(info.value, TypeError)
    assert info.value.param == "rate_limit"
    assert str(info.value).startswith(
        "rate_limit takes a number of requests/s, 'adaptive' or None (off), got "
        f"{type(value).__name__}"
    )


# -- the first delay is logged once per client -------------------------------------------------


def ok_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=envelope({"ok": True}))


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
@pytest.mark.anyio
async def test_the_first_delay_is_logged_once_at_info(
    anyio_backend: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="commbox_async")
    async with client(transport=httpx.MockTransport(ok_handler)) as cb:
        for _ in range(DEFAULT_BURST):  # the burst: nobody waits, nothing is logged
            await cb.request("GET", "/core/systemstatus")
        assert not [r for r in caplog.records if "rate limit" in r.getMessage()]
        for _ in range(15):
            await cb.request("GET", "/core/systemstatus")
        async with cb.with_options(max_retries=0) as view:  # a view is the same client
            await view.request("GET", "/core/systemstatus")
    notes = [r for r in caplog.records if "client-side rate limit" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO
    message = notes[0].getMessage()
    assert message.startswith(
        "the client-side rate limit, 10/s, burst 10 (default), held GET /core/systemstatus back"
    )
    assert "COMMBOX_RATE_LIMIT" in message and "'adaptive'" in message
    assert cb.metrics.throttle_waits == 16

    caplog.clear()  # another client logs its own first delay
    async with client(transport=httpx.MockTransport(ok_handler), rate_limit=2, burst=1) as cb:
        for _ in range(3):
            await cb.request("GET", "/core/systemstatus")
    notes = [r for r in caplog.records if "client-side rate limit" in r.getMessage()]
    assert len(notes) == 1 and "2/s, burst 1 (rate_limit=)" in notes[0].getMessage()


# -- AIMD arithmetic, on explicit times --------------------------------------------------------


def saturate(throttle: AdaptiveThrottle, now: float) -> None:
    """Make a caller wait at ``now`` (the limit is what holds the work back)."""
    throttle._tokens = 0.0
    throttle._last = now
    assert throttle._delay(now) > 0


def test_additive_increase_only_while_the_limit_holds_work_back() -> None:
    t = AdaptiveThrottle(10.0, 10, increase=5.0)
    t.answered(0.0)
    assert t.rate == 10.0  # nobody waited: the callers set the pace, nothing to learn
    saturate(t, 1.0)
    t.answered(1.0)
    assert t.rate == pytest.approx(10.5)  # + increase / rate
    # A second of answers at the rate's own pace raises it by `increase` requests/s.
    now = 1.0
    while now < 2.0:
        now += 1 / t.rate
        saturate(t, now)
        t.answered(now)
    assert t.rate == pytest.approx(10.5 + 5.0, abs=0.3)
    rate = t.rate
    t.answered(now + AdaptiveThrottle.SATURATED_FOR + 0.01)  # no caller waited for > 1 s
    assert t.rate == rate


def test_a_429_cuts_multiplicatively_once_per_episode() -> None:
    t = AdaptiveThrottle(40.0, 10, decrease=0.9)
    t.throttled(100.0, 1.0)
    assert t.rate == pytest.approx(36.0) and t.cuts == 1
    # The 429s of requests sent before the cut (until the pause ends + SETTLE) cut nothing.
    t.throttled(100.5, 1.0)
    t.throttled(101.0 + AdaptiveThrottle.SETTLE - 0.01, 1.0)
    assert t.rate == pytest.approx(36.0) and t.cuts == 1
    t.throttled(101.0 + AdaptiveThrottle.SETTLE, 1.0)
    assert t.rate == pytest.approx(32.4) and t.cuts == 2


def test_after_a_429_it_probes_slowly_then_climbs_again() -> None:
    t = AdaptiveThrottle(20.0, 10, increase=5.0, probe_increase=0.25, reprobe_after=30.0)
    t.throttled(0.0, 1.0)
    assert t.rate == pytest.approx(18.0)
    t.answered(1.5)  # answers during the pause are from before it: ignored
    saturate(t, 5.0)
    t.answered(5.0)
    assert t.rate == pytest.approx(18.0 + 0.25 / 18.0)
    rate = t.rate
    saturate(t, 31.0)  # 30 s without a 429: the limit may have moved, climb at full speed
    t.answered(31.0)
    assert t.rate == pytest.approx(rate + 5.0 / rate)


def test_the_rate_stays_within_its_bounds() -> None:
    t = AdaptiveThrottle(2.0, 1, decrease=0.5, min_rate=1.5, max_rate=2.2)
    saturate(t, 0.0)
    for _ in range(10):
        t.answered(0.0)
    assert t.rate == 2.2
    t.throttled(1.0, 0.0)
    assert t.rate == 1.5


def test_a_rate_change_keeps_what_accrued_at_the_old_rate() -> None:
    t = AdaptiveThrottle(10.0, 10)
    t._tokens, t._last = 0.0, 0.0
    t.throttled(0.5, 0.0)  # 0.5 s at 10/s accrued 5 tokens before the cut to 9/s
    assert t._tokens == pytest.approx(5.0)


@pytest.mark.parametrize(
    "kw",
    [{"increase": 0}, {"probe_increase": -1}, {"decrease": 1.0}, {"decrease": 0}, {"min_rate": 0}],
)
def test_bad_parameters_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        AdaptiveThrottle(**kw)  # type: ignore[arg-type]


# -- the whole client against a server-side limit, on the virtual clock ------------------------


class ServerLimit:
    """A server-side token bucket like the fake's: 429 with Retry-After in whole seconds."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = float(burst), 0.0
        self.ok: list[float] = []
        self.rejected = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = anyio.current_time()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.ok.append(now)
            return httpx.Response(200, json=envelope({"ok": True}))
        self.rejected += 1
        wait = math.ceil((1 - self.tokens) / self.rate)
        return httpx.Response(
            429, json=envelope(None, 429, "Too Many Requests"), headers={"retry-after": str(wait)}
        )


def convergence(ok: list[float], limit: float, end: float, window: float = 10.0) -> float | None:
    """The first second from which the trailing ``window``-second rate of answered requests
    stays within 10% of ``limit`` until ``end``, or None."""
    ok = sorted(ok)
    trail = [
        (s, (bisect.bisect_left(ok, s) - bisect.bisect_left(ok, s - window)) / window)
        for s in range(int(window), int(end) + 1)
    ]
    for i, (s, _) in enumerate(trail):
        if all(abs(rate - limit) <= 0.1 * limit for _, rate in trail[i:]):
            return s
    return None


async def drive(cb: AsyncCommBox, seconds: float, workers: int = 16) -> None:
    end = anyio.current_time() + seconds

    async def worker() -> None:
        while anyio.current_time() < end:
            with contextlib.suppress(RateLimitError):
                await cb.request("GET", "/core/systemstatus")

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
@pytest.mark.anyio
async def test_adaptive_finds_a_server_limit_of_50_per_second(anyio_backend: Any) -> None:
    server = ServerLimit(50.0, 50)  # what `commbox fake-server --rate-limit 50` does
    async with client(transport=httpx.MockTransport(server), rate_limit="adaptive") as cb:
        start = anyio.current_time()
        await drive(cb, 45.0)
        throttle = cb.throttle
    assert isinstance(throttle, AdaptiveThrottle)
    ok = [t - start for t in server.ok]
    converged = convergence(ok, 50.0, 45.0)
    share = server.rejected / (server.rejected + len(ok))
    assert converged is not None and converged <= 30, (converged, throttle)
    assert share < 0.05
    last15 = sum(1 for t in ok if 30.0 <= t < 45.0) / 15.0
    assert 45.0 <= last15 <= 55.0
    assert throttle.cuts >= 1  # it found the limit by meeting it, not by luck
    assert 40.0 <= throttle.rate <= 65.0
    print(
        f"\nvirtual clock: converged at {converged} s, {last15:.1f}/s over the last 15 s, "
        f"{share:.2%} answered 429, {throttle.cuts} cuts, rate now {throttle.rate:.1f}/s"
    )


@pytest.mark.parametrize("anyio_backend", [VIRTUAL])
@pytest.mark.anyio
async def test_a_fixed_limit_never_adapts(anyio_backend: Any) -> None:
    server = ServerLimit(50.0, 50)
    async with client(transport=httpx.MockTransport(server)) as cb:
        start = anyio.current_time()
        await drive(cb, 10.0)
    ok = [t - start for t in server.ok if t - start < 10.0]
    assert server.rejected == 0
    assert len(ok) <= DEFAULT_BURST + 10 * DEFAULT_RATE_LIMIT + 1  # 10/s, burst 10: no more


# -- the real thing: commbox fake-server --rate-limit 50, on a socket (slow) --------------------


@pytest.fixture
def fake_server_50() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commbox_async.cli",
            "fake-server",
            "--port",
            str(port),
            "--rate-limit",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_fake/state", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_adaptive_converges_on_the_fake_servers_limit(
    anyio_backend: str, fake_server_50: str
) -> None:
    """Within 10% of 50/s within 30 s, under 5% of requests answered 429 (real clock)."""
    ok: list[float] = []
    rejected = 0
    rates: list[tuple[float, float]] = []
    async with AsyncCommBox(
        token=TOKEN, base_url=fake_server_50, rate_limit="adaptive", max_retries=0
    ) as cb:
        throttle = cb.throttle
        assert isinstance(throttle, AdaptiveThrottle)
        start = time.monotonic()
        end = start + 45.0

        async def worker() -> None:
            nonlocal rejected
            while time.monotonic() < end:
                try:
                    await cb.system.status()
                    ok.append(time.monotonic() - start)
                except RateLimitError:
                    rejected += 1

        async def sample() -> None:
            while time.monotonic() < end:
                rates.append((time.monotonic() - start, throttle.rate))
                await anyio.sleep(1.0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            for _ in range(16):
                tg.start_soon(worker)
    converged = convergence(ok, 50.0, 45.0)
    share = rejected / (rejected + len(ok))
    last15 = sum(1 for t in ok if 30.0 <= t < 45.0) / 15.0
    print(
        f"\nadaptive vs fake-server --rate-limit 50: converged at {converged} s, "
        f"{last15:.1f}/s over the last 15 s, {share:.2%} answered 429, "
        f"{throttle.cuts} cuts, rate now {throttle.rate:.1f}/s; samples {rates[::5]}"
    )
    assert converged is not None and converged <= 30
    assert share < 0.05
    assert 45.0 <= last15 <= 55.0
