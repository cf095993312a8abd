"""ReadWatch on its own: the aiohttp sender's read timeouts on one timer (the behaviour on real
sockets is in test_transports.py's read-timeout tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from commbox_async._readwatch import ReadWatch, Watched

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the aiohttp sender's, and asyncio's timers


class Failing:
    """A stand-in for aiohttp's protocol or StreamReader: records what it was given."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.total_bytes = 0

    def set_exception(self, error: BaseException) -> None:
        self.errors.append(error)


class Connection:
    def __init__(self) -> None:
        self.protocol: Any = Failing()


class Timeout(Exception):
    pass


def watch() -> ReadWatch:
    return ReadWatch(asyncio.get_running_loop(), Timeout)


async def test_an_attempt_without_progress_fails_after_its_read_timeout_and_not_before() -> None:
    w, attempt, connection = watch(), Watched(0.08), Connection()
    w.start(attempt, connection)
    await asyncio.sleep(0.05)
    assert connection.protocol.errors == []
    await asyncio.sleep(0.1)
    [error] = connection.protocol.errors
    assert isinstance(error, Timeout)
    assert str(error) == "Timeout on reading data from socket"  # aiohttp's own words
    assert w._handle is None  # nothing left to watch: no timer


async def test_a_failed_attempt_is_failed_once_and_its_stream_too() -> None:
    w, attempt, connection = watch(), Watched(0.02), Connection()
    w.start(attempt, connection)
    stream = Failing()
    w.responded(attempt, stream)
    other = Watched(10)
    w.start(other, Connection())  # keeps the watch ticking
    await asyncio.sleep(0.15)
    assert len(connection.protocol.errors) == 1
    assert stream.errors == connection.protocol.errors
    assert w._handle is not None
    w.close()
    assert w._handle is None


async def test_body_bytes_are_progress() -> None:
    w, attempt, connection = watch(), Watched(0.06), Connection()
    w.start(attempt, connection)
    stream = Failing()
    w.responded(attempt, stream)
    for _ in range(8):  # 0.16 s in all, a byte every 0.02
        await asyncio.sleep(0.02)
        stream.total_bytes += 1
    assert connection.protocol.errors == []
    w.stop(attempt)
    await asyncio.sleep(0.1)
    assert connection.protocol.errors == []
    assert w._handle is None


async def test_a_released_connection_is_not_failed() -> None:
    """Its response was read whole just before the tick; the connection may already carry
    another request, which must not get this one's timeout."""
    w, attempt, connection = watch(), Watched(0.02), Connection()
    w.start(attempt, connection)
    protocol, connection.protocol = connection.protocol, None
    stream = Failing()
    attempt.stream = stream
    await asyncio.sleep(0.1)
    assert protocol.errors == [] and stream.errors == []
    assert not w._attempts


async def test_the_tick_follows_the_shortest_read_timeout_in_flight() -> None:
    w = watch()
    long, short = Watched(30), Watched(0.4)
    w.start(long, Connection())
    assert w._every == 1.0  # at least once a second
    w.start(short, Connection())
    assert w._every == pytest.approx(0.1)  # a quarter of the shortest
    w.stop(short)
    await asyncio.sleep(0.15)  # the next tick sees only the long one
    assert w._every == 1.0
    w.close()


async def test_a_read_timeout_near_zero_does_not_spin_the_loop() -> None:
    w, attempt = watch(), Watched(0.0)
    w.start(attempt, Connection())
    assert w._every == 0.005
    w.close()


async def test_attempts_arriving_faster_than_the_tick_do_not_put_it_off() -> None:
    """Calls whose read timeouts are tiny (a deadline about to end clamps them) start every
    millisecond: the tick still comes, and an older attempt still times out."""
    w, old, connection = watch(), Watched(0.05), Connection()
    w.start(old, connection)
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.3
    while loop.time() < end and not connection.protocol.errors:
        w.start(Watched(0.001), Connection())
        await asyncio.sleep(0.001)
    assert connection.protocol.errors
    assert loop.time() < end - 0.1  # at its time, not when the stream of calls stopped
    w.close()


async def test_one_attempt_with_a_long_read_timeout_starts_a_tick_a_second_away() -> None:
    w = watch()
    loop = asyncio.get_running_loop()
    w.start(Watched(30), Connection())
    assert w._handle is not None
    assert 0.9 < w._handle.when() - loop.time() <= 1.0
    w.close()
