"""Per-call deadlines on asyncio (``_deadline``): as exact as ``asyncio.timeout``, with a timer
per second of deadlines rather than per call, and ``asyncio.timeout``'s cancellation rules."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest

from commbox_async import APITimeoutError, DeadlineExceededError, _deadline
from commbox_async._deadline import Deadlines
from commbox_async._verdict import Processed

from .conftest import envelope, make_client, ok, socket_client
from .rawserver import raw_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> float:
    """Groups of 20 ms, so that a deadline of a tenth of a second waits in a group first."""
    monkeypatch.setattr(_deadline, "_WIDTH", 0.02)
    return 0.02


async def _sleeper(seconds: float) -> asyncio.Task[None]:
    task = asyncio.ensure_future(asyncio.sleep(seconds))
    await asyncio.sleep(0)
    return task


@pytest.mark.parametrize("seconds", [0.005, 0.1])  # its own timer at once; a group's first
async def test_a_deadline_cancels_at_its_time(narrow: float, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = await _sleeper(10)
    start = loop.time()
    expiry = deadlines.arm(task, seconds)  # type: ignore[arg-type]
    assert (expiry.group is None) is (seconds < 2 * narrow)
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = loop.time() - start
    assert seconds <= elapsed < seconds + 0.05
    assert expiry.fired
    assert deadlines.disarm(expiry, True)  # the deadline's cancellation: a timeout
    assert not deadlines._groups


async def test_a_call_that_ends_in_time_leaves_nothing_armed(narrow: float) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = await _sleeper(10)
    near = deadlines.arm(task, 0.01)  # type: ignore[arg-type]
    far = deadlines.arm(task, 0.2)  # type: ignore[arg-type]
    group = far.group
    assert near.handle is not None and group is not None and far in group
    assert not deadlines.disarm(near, False)
    assert not deadlines.disarm(far, False)
    assert [near.handle, far.group] == [None, None]
    assert far not in group
    await asyncio.sleep(0.3)
    assert not task.done()  # neither fired
    assert not near.fired and not far.fired
    task.cancel()


async def _body(deadlines: Deadlines, outcome: list[object]) -> None:
    """What BaseClient._run does with a deadline of 10 s, recording what disarm said."""
    task = asyncio.current_task()
    assert task is not None
    expiry = deadlines.arm(task, 10)  # type: ignore[arg-type]
    outcome.append(expiry)
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        outcome.append(deadlines.disarm(expiry, True))
        raise
    except BaseException:
        outcome.append(deadlines.disarm(expiry, False))
        raise


async def test_another_cancellation_is_not_the_deadlines() -> None:
    """As asyncio.timeout: when something else cancelled the task too, the cancellation is
    not a timeout (it propagates), and the deadline's own request is taken back."""
    deadlines = Deadlines(asyncio.get_running_loop())
    outcome: list[object] = []
    task = asyncio.ensure_future(_body(deadlines, outcome))
    await asyncio.sleep(0)
    Deadlines._expire(outcome[0])  # type: ignore[arg-type]  # its deadline passes
    task.cancel()  # and someone else cancels it in the same turn
    assert task.cancelling() == 2  # type: ignore[attr-defined]
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome[1] is False
    assert task.cancelling() == 1  # type: ignore[attr-defined]


async def test_the_deadlines_cancellation_alone_is_a_timeout() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    outcome: list[object] = []
    task = asyncio.ensure_future(_body(deadlines, outcome))
    await asyncio.sleep(0)
    Deadlines._expire(outcome[0])  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome[1] is True
    assert task.cancelling() == 0  # type: ignore[attr-defined]


async def test_a_deadline_whose_call_ended_otherwise_is_taken_back(narrow: float) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = await _sleeper(10)
    expiry = deadlines.arm(task, 0.01)  # type: ignore[arg-type]
    await asyncio.sleep(0.03)
    assert expiry.fired
    assert not deadlines.disarm(expiry, False)  # the call raised something else
    assert task.cancelling() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_call_deadline_through_a_group_ends_the_call(narrow: float, transport: str) -> None:
    """A deadline far enough off to wait in a group ends a call held by a dripping server at
    its time, with the verdict of how far the call got."""
    body = json.dumps(envelope({"id": 1})).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\n\r\n".encode()
    async with raw_server(lambda m, p, b: ("drip", head, body, 0.05)) as server:
        async with socket_client(server.url, transport, timeout=5, deadline=0.3) as cb:
            start = anyio.current_time()
            with pytest.raises(DeadlineExceededError) as info:
                await cb.request("POST", "/x", json={})
            assert 0.3 <= anyio.current_time() - start < 1
            assert cb._core.deadlines is not None and not cb._core.deadlines._groups
            assert await asyncio.wait_for(asyncio.sleep(0, result=1), 1) == 1  # not cancelled
    assert isinstance(info.value, APITimeoutError)
    assert info.value.processed is Processed.YES


async def test_a_call_on_asyncio_waits_in_the_grouped_deadlines() -> None:
    """On asyncio a call's deadline joins the loop's grouped deadlines (no timer of its own, no
    cancel scope): while the request is out it waits in a group, and leaves it when done."""
    waiting: list[int] = []

    def count() -> int:
        assert cb._core.deadlines is not None
        return sum(len(group) for group in cb._core.deadlines._groups.values())

    def handler(request: object) -> object:
        waiting.append(count())
        return ok()

    async with make_client(handler, deadline=300) as cb:
        await cb.request("GET", "/x")
        waiting.append(count())
    assert waiting == [1, 0]


class _Task:
    def __init__(self) -> None:
        self.cancelled_at: float | None = None
        self.clock: _Loop | None = None

    def cancel(self, msg: object = None) -> bool:
        assert self.clock is not None
        self.cancelled_at = self.clock.now
        return True

    def cancelling(self) -> int:
        return 0

    def uncancel(self) -> int:
        return 0


class _Handle:
    def cancel(self) -> None:
        pass


class _Loop:
    """A loop reduced to a clock and its timers, run by hand: the instants are exact."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, int, object, tuple[object, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object, *args: object) -> _Handle:
        self.timers.append((when, len(self.timers), callback, args))
        return _Handle()

    def run(self) -> None:
        while self.timers:
            self.timers.sort(key=lambda t: (t[0], t[1]))
            when, _, callback, args = self.timers.pop(0)
            self.now = max(self.now, when)
            callback(*args)  # type: ignore[operator]


def test_every_deadline_waiting_in_a_group_fires_at_its_exact_time() -> None:
    loop = _Loop()
    deadlines = Deadlines(loop)  # type: ignore[arg-type]
    tasks = [_Task(), _Task()]
    for task in tasks:
        task.clock = loop
    first = deadlines.arm(tasks[0], 5.25)  # type: ignore[arg-type]
    second = deadlines.arm(tasks[1], 5.5)  # type: ignore[arg-type]
    assert first.group is not None  # both wait in the group of second 105
    loop.run()
    assert [task.cancelled_at for task in tasks] == [105.25, 105.5]
    assert deadlines.disarm(first, True) and deadlines.disarm(second, True)


async def test_a_deadline_without_the_grouped_timers_is_kept_by_a_cancel_scope() -> None:
    """Where the grouped deadlines are not available (trio, or asyncio before 3.11), the same
    deadline is kept by an anyio cancel scope: a hung call ends at it, as a deadline error."""
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with make_client(base_url=server.url, deadline=0.3, timeout=10) as cb:
            cb._core.deadlines = None
            start = anyio.current_time()
            with pytest.raises(DeadlineExceededError) as info:
                await cb.request("GET", "/x")
            assert anyio.current_time() - start < 5
    assert info.value.reason == "deadline"
