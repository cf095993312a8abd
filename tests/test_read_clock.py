"""The aiohttp read timeouts on one clock (commbox_async/_read_clock.py).

The clock itself runs on a fake loop whose time only moves when a test says so, so each bound
is exact: a timeout never fires before ``read`` seconds without bytes, and fires at most two
ticks after. The protocol is aiohttp's own ``ResponseHandler`` with the clock installed; the
end-to-end timeouts (both transports) are in test_transports.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest

pytest.importorskip("aiohttp")

from commbox_async import APITimeoutError, _read_clock
from commbox_async._read_clock import ReadClock, clocked_protocol

from .conftest import socket_client as client
from .rawserver import raw_server, respond

pytestmark = pytest.mark.anyio


class FakeHandle:
    def __init__(self, loop: FakeLoop, when: float, callback: Callable[[], None]) -> None:
        self.loop, self._when, self.callback, self.cancelled = loop, when, callback, False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """What ReadClock uses of a loop: time() and call_at(), with time moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.handles: list[FakeHandle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle(self, when, callback)
        self.handles.append(handle)
        return handle

    def pending(self) -> list[FakeHandle]:
        return [h for h in self.handles if not h.cancelled and h.callback is not None]

    def advance(self, seconds: float) -> None:
        """Move time on, running each timer at its exact moment, in order."""
        end = self.now + seconds
        while True:
            due = [h for h in self.pending() if h.when() <= end]
            if not due:
                break
            handle = min(due, key=lambda h: h.when())
            self.now = max(self.now, handle.when())
            callback, handle.callback = handle.callback, None  # type: ignore[assignment]
            callback()
        self.now = end


class Proto:
    """Stands in for the clocked protocol: the attributes the clock reads and writes."""

    def __init__(self, read: float | None) -> None:
        self._read_timeout = read
        self.running = False
        self.fresh = False
        self.since = 0.0
        self.expired_at: list[float] = []
        self.loop: FakeLoop | None = None

    def _on_read_timeout(self) -> None:
        assert self.loop is not None
        self.expired_at.append(self.loop.now)


def setup(*reads: float | None) -> tuple[FakeLoop, ReadClock, list[Proto]]:
    loop = FakeLoop()
    clock = ReadClock(loop)  # type: ignore[arg-type]
    protos = [Proto(r) for r in reads]
    for p in protos:
        p.loop = loop
    return loop, clock, protos


def test_silence_for_the_read_timeout_expires_no_sooner_and_at_most_two_ticks_later() -> None:
    loop, clock, (p,) = setup(2.0)  # a tick every 0.5 s
    clock.start(p)
    loop.advance(1.999)
    assert p.expired_at == []
    loop.advance(2.0)
    # The clock starts at the write, exactly: the first tick at or after the read timeout.
    assert p.expired_at == [1002.0]
    assert not p.running and loop.pending() == []  # nothing left to watch: no more ticks


def test_silence_from_the_start_expires_at_most_one_tick_late() -> None:
    loop, clock, (p,) = setup(1.0)  # a tick every 0.25 s
    loop.now = 1000.1  # not on a tick's grid
    clock.start(p)
    loop.advance(5.0)
    assert len(p.expired_at) == 1
    assert 1.0 <= p.expired_at[0] - 1000.1 <= 1.0 + 0.25 + 1e-9


def test_bytes_within_each_read_timeout_keep_it_alive() -> None:
    loop, clock, (p,) = setup(1.0)
    clock.start(p)
    for _ in range(40):  # ten read timeouts, bytes every 0.9 of one
        loop.advance(0.9)
        p.fresh = True  # what the protocol's _reschedule_timeout does while running
    assert p.expired_at == [] and p.running


def test_the_timeout_counts_from_the_last_bytes_never_sooner() -> None:
    loop, clock, (p,) = setup(1.0)  # a tick every 0.25 s
    clock.start(p)
    loop.advance(0.26)  # just past the first tick
    p.fresh = True
    last_bytes = loop.now
    loop.advance(3.0)
    assert len(p.expired_at) == 1
    assert 1.0 <= p.expired_at[0] - last_bytes <= 1.0 + 2 * 0.25


def test_a_stopped_timeout_never_fires_and_the_ticks_stop() -> None:
    loop, clock, (p,) = setup(1.0)
    clock.start(p)
    loop.advance(0.5)
    clock.stop(p)
    loop.advance(5.0)
    assert p.expired_at == [] and not p.running
    assert loop.pending() == []


def test_a_shorter_read_timeout_gets_a_nearer_tick() -> None:
    """A long timeout armed the tick a second away; one of 0.2 s started after it must still
    end within two of its own ticks (0.05 s), not at the long one's next tick."""
    loop, clock, (long_, short) = setup(30.0, 0.2)
    clock.start(long_)
    loop.advance(0.1)
    clock.start(short)
    started = loop.now
    loop.advance(0.4)
    assert len(short.expired_at) == 1
    assert 0.2 <= short.expired_at[0] - started <= 0.2 + 2 * 0.05
    assert long_.expired_at == [] and long_.running


def test_ticks_come_at_least_once_a_second_and_at_most_every_5ms() -> None:
    loop, clock, (long_, tiny) = setup(300.0, 0.0001)
    clock.start(long_)
    assert [round(h.when() - loop.now, 6) for h in loop.pending()] == [1.0]
    mid_loop, mid_clock, (mid,) = setup(2.0)
    mid_clock.start(mid)
    assert [h.when() - 1000.0 for h in mid_loop.pending()] == [0.5]
    clock.start(tiny)
    assert min(h.when() - loop.now for h in loop.pending()) == pytest.approx(0.005)
    loop.advance(0.02)
    assert len(tiny.expired_at) == 1


def test_a_read_timeout_unset_while_running_stops_without_expiring() -> None:
    loop, clock, (p,) = setup(1.0)
    clock.start(p)
    p._read_timeout = None  # aiohttp does this for a websocket
    loop.advance(3.0)
    assert p.expired_at == [] and not p.running


def test_closing_the_clock_cancels_its_tick_and_forgets_every_connection() -> None:
    loop, clock, protos = setup(1.0, 2.0)
    for p in protos:
        clock.start(p)
    clock.close()
    assert loop.pending() == []
    assert not any(p.running for p in protos)
    loop.advance(5.0)
    assert all(p.expired_at == [] for p in protos)


def test_many_connections_expire_each_on_its_own_time() -> None:
    loop, clock, protos = setup(*[0.5 + i * 0.25 for i in range(8)])
    for p in protos:
        clock.start(p)
    loop.advance(10.0)
    for i, p in enumerate(protos):
        read = 0.5 + i * 0.25
        assert len(p.expired_at) == 1
        assert read <= p.expired_at[0] - 1000.0 <= read + 2 * min(1.0, read / 4) + 0.002


def test_a_connector_built_some_other_way_is_left_alone() -> None:
    class Connector:  # no _factory: an aiohttp that builds its protocols otherwise
        pass

    connector = Connector()
    assert _read_clock.install(connector, FakeLoop()) is None  # type: ignore[arg-type]
    assert vars(connector) == {}


# -- the protocol: aiohttp's ResponseHandler with the clock in place of its timers -------------


async def _protocol(clock: ReadClock) -> Any:
    cls = clocked_protocol()
    assert cls is not None, "this aiohttp lacks the methods the clock stands in for"
    return cls(asyncio.get_running_loop(), clock=clock)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_protocol_runs_the_clock_where_aiohttp_runs_its_timer() -> None:
    clock = ReadClock(asyncio.get_running_loop())
    proto = await _protocol(clock)
    proto._read_timeout = 5.0
    proto.start_timeout()  # aiohttp: the request is written
    assert proto.running and proto._read_timeout_handle is None  # no loop timer of its own
    proto._reschedule_timeout()  # aiohttp: bytes came
    assert proto.fresh
    proto._drop_timeout()  # aiohttp: the body ended
    assert not proto.running
    proto._read_timeout = None
    proto.start_timeout()  # no read timeout: nothing runs
    assert not proto.running
    clock.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_protocol_expires_with_aiohttps_own_timeout_error() -> None:
    import aiohttp

    clock = ReadClock(asyncio.get_running_loop())
    proto = await _protocol(clock)
    proto._read_timeout = 0.05
    proto.start_timeout()
    with anyio.fail_after(2), pytest.raises(aiohttp.SocketTimeoutError):
        await proto.read()  # the protocol's queue of responses
    assert not proto.running
    clock.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_sender_builds_its_connections_on_the_clock() -> None:
    seen: list[str] = []
    async with raw_server(lambda m, p, b: respond(200, {"id": 1})) as server:
        async with client(server.url, "aiohttp", timeout=0.3) as cb:
            await cb.request("GET", "/x")
            sender: Any = cb._core.sender
            connector = sender._session.connector
            for conns in connector._conns.values():
                seen += [type(proto).__name__ for proto, _ in conns]
            clock = sender._read_clock
            assert clock is not None
            # An idle pooled connection has no read timeout running: three read timeouts
            # later the same connection serves the next call.
            await anyio.sleep(1.0)
            assert not clock._running
            await cb.request("GET", "/x")
        assert clock._handle is None and not clock._running  # closed with the client
    assert seen == ["ClockedProtocol"]
    assert len(server.received) == 2 and server.connections == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_without_the_hooks_aiohttp_keeps_its_own_timers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aiohttp without the methods the clock stands in for: its connections are its own
    and a stalled response still ends at the read timeout."""
    monkeypatch.setattr(_read_clock, "clocked_protocol", lambda: None)
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with client(server.url, "aiohttp", timeout=0.3, max_retries=0) as cb:
            with anyio.fail_after(5), pytest.raises(APITimeoutError):
                await cb.request("GET", "/x")
            assert cb._core.sender._read_clock is None  # type: ignore[attr-defined]
