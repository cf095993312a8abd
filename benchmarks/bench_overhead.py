"""The client's own cost per call: AsyncCommBox against a stub sender that answers at once.

No sockets and no HTTP library: the stub returns a canned CommBox envelope, so what is timed is
the request pipeline itself (path building, options, headers, throttle check, attempt and retry
bookkeeping, verdict tracking, response parsing, decoding into a model). The baseline, measured
in the same run, is a bare loop calling the same stub and ``json.loads`` on its body: the
least any client must do. Reported: microseconds per call for each, and the difference (the
client's cost per call), the median of 15 rounds of 20,000 calls each.

Reproduce: ``nox -s bench -- bench_overhead``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
from collections.abc import Mapping
from typing import Any

from _common import report

from commbox_async import AsyncCommBox

N = 20_000
ROUNDS = 15
BODY = json.dumps(
    {
        "status": "200",
        "description": "OK",
        "response_time": "2024-08-06T07:51:52.2581942Z",
        "data": {"objectId": 3377699720568713},
    }
).encode()


class _Response:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self) -> None:
        self.status_code = 200
        self.headers: Mapping[str, str] = {"content-type": "application/json"}
        self.content = BODY


class StubSender:
    """Answers every request at once with the same envelope."""

    name = "stub"
    is_closed = False

    def __init__(self) -> None:
        self.response = _Response()

    async def send(self, out: Any) -> Any:
        return self.response

    async def aclose(self) -> None:
        return None


async def bare(stub: StubSender) -> float:
    start = time.perf_counter()
    for _ in range(N):
        response = await stub.send(None)
        json.loads(response.content)["data"]["objectId"]
    return time.perf_counter() - start


async def client(cb: AsyncCommBox) -> float:
    start = time.perf_counter()
    for _ in range(N):
        await cb.request("POST", "/streams/{stream_id}/objects", stream_id=532, json={"a": 1})
    return time.perf_counter() - start


async def main() -> None:
    stub = StubSender()
    cb = AsyncCommBox(token="t", base_url="http://127.0.0.1:9", rate_limit=None)
    cb._core.sender = stub  # the benchmark's seam: no HTTP library at all
    async with cb:
        await client(cb)  # warm up
        await bare(stub)
        timed: dict[str, list[float]] = {name: [] for name in ("bare", "client", "deadline")}
        runs = [
            ("bare", lambda: bare(stub)),
            ("client", lambda: client(cb)),
            ("deadline", lambda: client(cb.with_options(deadline=30))),
        ]
        for i in range(ROUNDS):
            gc.collect()
            for name, run in runs if i % 2 == 0 else runs[::-1]:
                timed[name].append(await run() / N * 1e6)
    b, c, d = (statistics.median(timed[k]) for k in ("bare", "client", "deadline"))
    report(
        "bench_overhead",
        [
            {"what": "bare stub + json.loads", "us_per_call": b},
            {"what": "AsyncCommBox.request (throttle off)", "us_per_call": c},
            {"what": "the same with a 30 s deadline", "us_per_call": d},
        ],
        {
            "client cost per call (us)": c - b,
            "with a deadline (us)": d - b,
            "client / bare": c / b,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
