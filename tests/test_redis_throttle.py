"""RedisThrottle against a real redis-server that this suite starts on a loopback port.

Under CI (CI=true) a missing redis-server is a failure, never a skip; .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("redis")

from commbox_async import AsyncCommBox
from commbox_async.redis_throttle import RedisThrottle, ThrottleUnavailableError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install -y redis-server)"
            if os.environ.get("CI") == "true":
                pytest.fail(message + ": required under CI")
            pytest.skip("SKIPPING the Redis throttle tests: " + message)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max(
        (bisect.bisect_right(stamps, t + window - 1e-9) - i for i, t in enumerate(stamps)),
        default=0,
    )


WORKER = textwrap.dedent("""
    import asyncio, json, sys, time
    from commbox_async.redis_throttle import RedisThrottle

    url, out = sys.argv[1], sys.argv[2]
    start_at, duration, callers = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

    async def main():
        throttle = RedisThrottle(url, key="commbox:test", rate=100, burst=10, timeout=2)
        stamps = []
        while time.time() < start_at:
            await asyncio.sleep(0.01)
        end = start_at + duration

        async def caller():
            while time.time() < end:
                await throttle.acquire()
                now = time.time()
                if now < end:
                    stamps.append(now)

        await asyncio.gather(*(caller() for _ in range(callers)))
        with open(out, "w") as fh:
            json.dump(stamps, fh)

    asyncio.run(main())
""")


def test_four_processes_share_one_limit(redis_server: RedisServer, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start_at = time.time() + 2.0
    duration = 10.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                redis_server.url,
                str(tmp_path / f"{i}.json"),
                str(start_at),
                str(duration),
                "250",
            ]
        )
        for i in range(4)
    ]
    for p in procs:
        assert p.wait(60) == 0
    stamps = [
        t - start_at for i in range(4) for t in json.loads((tmp_path / f"{i}.json").read_text())
    ]
    long_run = (len(stamps) - 10) / duration
    print(
        f"4x250 callers, 100/s burst 10: max in 1 s {max_in_window(stamps, 1.0)}, "
        f"long-run {long_run:.2f}/s"
    )
    # The bound is the safety claim and holds however slow the machine is; how close the
    # long-run rate comes to 100/s depends on the machine keeping up, so bench_throttle
    # measures that (0.2% off in its 4-process row), and the test only checks it is not above.
    assert max_in_window(stamps, 1.0) <= 110
    assert 20 <= long_run <= 100 * 1.02, long_run
    per_process = [len(json.loads((tmp_path / f"{i}.json").read_text())) for i in range(4)]
    assert min(per_process) > 100  # every worker got a share


def test_a_pause_in_one_worker_stops_the_others(redis_server: RedisServer) -> None:
    async def main() -> None:
        a = RedisThrottle(redis_server.url, key="commbox:pause", rate=100, burst=5)
        b = RedisThrottle(redis_server.url, key="commbox:pause", rate=100, burst=5)
        await b.acquire()
        await a.pause(1.0)
        start = time.monotonic()
        await b.acquire()
        assert time.monotonic() - start >= 0.95
        await a.pause(0.2)  # a shorter pause does not shorten a longer one
        await a.pause(0.8)
        start = time.monotonic()
        await b.acquire()
        assert time.monotonic() - start >= 0.75

    asyncio.run(main())


def test_a_429_seen_by_one_client_pauses_a_client_elsewhere(redis_server: RedisServer) -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/throttled":
            return httpx.Response(429, json={"status": 429}, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"status": "200", "data": 1})

    async def main() -> None:
        one = AsyncCommBox(
            token="t",
            transport=httpx.MockTransport(handler),
            max_retries=0,
            throttle=RedisThrottle(redis_server.url, key="commbox:429", rate=50, burst=5),
        )
        other = AsyncCommBox(
            token="t",
            transport=httpx.MockTransport(handler),
            throttle=RedisThrottle(redis_server.url, key="commbox:429", rate=50, burst=5),
        )
        async with one, other:
            with pytest.raises(Exception, match="429"):
                await one.request("GET", "/throttled")
            start = time.monotonic()
            assert await other.request("GET", "/fine") == 1
            assert time.monotonic() - start >= 0.9

    asyncio.run(main())


def test_cancelled_waiters_keep_no_slot(redis_server: RedisServer) -> None:
    async def main() -> None:
        throttle = RedisThrottle(redis_server.url, key="commbox:cancel", rate=10, burst=1)
        await throttle.acquire()  # the next slot is 100 ms away
        for _ in range(5):
            task = asyncio.create_task(throttle.acquire())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        start = time.monotonic()
        await throttle.acquire()
        assert time.monotonic() - start < 0.15  # nobody cancelled kept a slot

    asyncio.run(main())


def test_redis_down_is_a_typed_error_within_one_timeout(redis_server: RedisServer) -> None:
    async def main() -> None:
        throttle = RedisThrottle(
            redis_server.url, key="commbox:down", rate=100, burst=10, timeout=0.5
        )
        await throttle.acquire()
        redis_server.stop()
        start = time.monotonic()
        with pytest.raises(ThrottleUnavailableError, match="commbox:down"):
            await throttle.acquire()
        assert time.monotonic() - start < 1.5

    asyncio.run(main())


def test_redis_down_falls_back_to_a_local_share_when_asked(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        throttle = RedisThrottle(
            redis_server.url, key="commbox:fb", rate=100, burst=10, timeout=0.5, fallback_workers=4
        )
        await throttle.acquire()
        redis_server.stop()
        stamps = []
        start = time.monotonic()
        for _ in range(8):
            await throttle.acquire()
            stamps.append(time.monotonic() - start)
        # 100/s over 4 workers: 25/s locally, burst 2; the 8th request ~0.24 s in.
        assert stamps[-1] >= 0.2

    asyncio.run(main())
    assert any("falling back to a local limit of 25" in r.getMessage() for r in caplog.records)


def test_unreachable_from_the_start(tmp_path: Path) -> None:
    async def main() -> None:
        throttle = RedisThrottle(
            f"redis://127.0.0.1:{_free_port()}/0", key="k", rate=5, timeout=0.5
        )
        with pytest.raises(ThrottleUnavailableError):
            await throttle.acquire()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (("LPUSH", "commbox:wrong:tat", "x"), "tat"),  # WRONGTYPE
        (("HSET", "commbox:wrong:pause", "a", "1"), "pause"),  # WRONGTYPE
        (("SET", "commbox:wrong:tat", "not a number"), "tat"),  # the script cannot read it
    ],
    ids=["list", "hash", "garbage"],
)
def test_a_key_of_the_wrong_type_is_a_typed_error_or_the_fallback(
    redis_server: RedisServer, command: tuple[str, ...], key: str
) -> None:
    import redis as redis_module

    async def main() -> None:
        setup = redis_module.asyncio.Redis.from_url(redis_server.url)
        await setup.execute_command(*command)
        try:
            throttle = RedisThrottle(redis_server.url, key="commbox:wrong", rate=100, burst=10)
            # Before: redis.ResponseError escaped acquire() and pause().
            with pytest.raises(ThrottleUnavailableError, match=f"commbox:wrong:{key}"):
                await throttle.acquire()
            if key == "pause":  # the pause script reads only that key
                with pytest.raises(ThrottleUnavailableError, match="commbox:wrong"):
                    await throttle.pause(0.01)
            fallback = RedisThrottle(
                redis_server.url, key="commbox:wrong", rate=100, burst=10, fallback_workers=4
            )
            for _ in range(3):
                await fallback.acquire()  # the local quarter-share, as when Redis is down
            await fallback.pause(0.01)
        finally:
            await setup.aclose()

    asyncio.run(main())


# -- answers no worker of the limit can have written ------------------------------------------


class FakeRedis:
    """Just enough of ``redis.asyncio.Redis`` for RedisThrottle: every script answers
    ``reply``, and the calls are counted."""

    def __init__(self, reply: object) -> None:
        self.reply = reply
        self.calls = 0

    def register_script(self, source: str) -> object:
        async def script(*, keys: object, args: object) -> object:
            self.calls += 1
            return self.reply

        return script


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reply",
    [
        float("inf"),  # before: OverflowError from int()
        float("nan"),  # before: ValueError from int()
        1e300,  # before: a sleep of 1e294 s (or OverflowError)
        -1,  # before: ValueError from the sleep (trio) or a loop asking Redis without a pause
        -(2**63),  # what Redis makes of a Lua inf
        10**30,
        10**400,  # too large for a float
        10**5000,  # too long for repr()
        400 * 1_000_000,  # 400 s: past max_wait (300 s), before a silent sleep
        True,
        b"12",
        "0",
        None,
        [0],
    ],
    ids=lambda v: f"int of {v.bit_length()} bits" if isinstance(v, int) else repr(v),
)
async def test_an_answer_no_worker_writes_is_a_typed_error_or_the_fallback(
    reply: object, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeRedis(reply)
    throttle = RedisThrottle(fake, key="commbox:odd", rate=100, burst=10)
    with pytest.raises(ThrottleUnavailableError, match="commbox:odd") as info, anyio.fail_after(5):
        await throttle.acquire()  # fail_after: before, some of these slept for ever
    assert fake.calls == 1  # refused at once, no loop asking Redis again
    assert len(str(info.value)) < 400
    fallback = RedisThrottle(fake, key="commbox:odd", rate=100, burst=10, fallback_workers=4)
    for _ in range(3):
        await fallback.acquire()  # the local quarter-share
    assert fake.calls == 2  # Redis is asked again only after retry_redis_after
    assert any("falling back" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_wait_within_max_wait_is_believed() -> None:
    # The bound is max(max_wait, burst / rate): a whole burst at 1/s, burst 10, is 10 s.
    assert RedisThrottle(FakeRedis(0), key="k", rate=1, burst=10, max_wait=2)._checked_wait(
        10_000_000
    )
    short = RedisThrottle(FakeRedis(2_500_000), key="k", rate=100, burst=10, max_wait=2)
    with pytest.raises(ThrottleUnavailableError, match="max_wait"), anyio.fail_after(5):
        await short.acquire()  # 2.5 s > max_wait of 2 s (and the 0.1 s burst)
    assert short._checked_wait(2_000_000) == 2_000_000


@pytest.mark.parametrize("max_wait", [0, -1, float("inf"), float("nan")])
def test_max_wait_must_be_a_positive_number(max_wait: float) -> None:
    from commbox_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_wait"):
        RedisThrottle(FakeRedis(0), key="k", rate=1, max_wait=max_wait)


def _redis_now_us(redis_time: tuple[int, int]) -> int:
    return int(redis_time[0]) * 1_000_000 + int(redis_time[1])


@pytest.mark.parametrize("key", ["tat", "pause"])
@pytest.mark.parametrize("stored", ["inf", "1e300", "9" * 30, "a year ahead", "1e18"])
def test_a_key_holding_an_absurd_time_is_a_typed_error_or_the_fallback(
    redis_server: RedisServer, key: str, stored: str
) -> None:
    import redis as redis_module

    async def main() -> None:
        setup = redis_module.asyncio.Redis.from_url(redis_server.url)
        try:
            value = (
                str(_redis_now_us(await setup.time()) + 365 * 86400 * 1_000_000)
                if stored == "a year ahead"
                else stored
            )
            await setup.set(f"commbox:absurd:{key}", value)
            throttle = RedisThrottle(redis_server.url, key="commbox:absurd", rate=100, burst=10)
            # Before: ValueError from the sleep (inf, 1e300, 9...9: Redis turns the Lua
            # number into -2**63) or a sleep of a year (a year ahead, 1e18).
            with pytest.raises(ThrottleUnavailableError, match="commbox:absurd:tat"):
                await asyncio.wait_for(throttle.acquire(), 10)
            fallback = RedisThrottle(
                redis_server.url, key="commbox:absurd", rate=100, burst=10, fallback_workers=4
            )
            for _ in range(3):
                await asyncio.wait_for(fallback.acquire(), 10)
        finally:
            await setup.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("seconds", [float("inf"), 1e18, 1e300, float("nan"), 9.0])
def test_a_pause_is_recorded_for_at_most_max_wait(
    redis_server: RedisServer, seconds: float
) -> None:
    import redis as redis_module

    async def main() -> None:
        setup = redis_module.asyncio.Redis.from_url(redis_server.url)
        try:
            throttle = RedisThrottle(
                redis_server.url, key="commbox:long", rate=100, burst=10, max_wait=2
            )
            # Before: inf, 1e18 and 1e300 made the pause script fail (ThrottleUnavailableError,
            # as if Redis were down): the 429's pause reached no other worker.
            await throttle.pause(seconds)
            ttl_ms = await setup.pttl("commbox:long:pause")
            if seconds != seconds:  # NaN: no pause at all
                assert ttl_ms == -2
            else:
                assert 0 < ttl_ms <= 3000  # max_wait 2 s, and the key's 1 s of grace
                stored = int(await setup.get("commbox:long:pause"))
                assert 0 < stored - _redis_now_us(await setup.time()) <= 2_000_000
        finally:
            await setup.aclose()

    asyncio.run(main())
