"""Client overhead and transports, against one uvicorn server in another process on loopback.

Part 1 (the core's target): GETs at concurrency 16, AsyncCommBox (throttle off) vs a bare
``httpx.AsyncClient`` doing the same requests and JSON decoding: >= 0.9x.

Part 2 (the transports): GETs at concurrency 1, 8, 32 and 128 for AsyncCommBox on each
transport, bare httpx, bare aiohttp, and (for reference) bare httpx over the httpx-aiohttp
transport. ``transport="aiohttp"`` sends through aiohttp directly, so its own bare transport is
bare aiohttp. Goals: AsyncCommBox >= 0.9x of its own bare transport at every concurrency, and
AsyncCommBox on aiohttp >= 0.5x of bare aiohttp at concurrency 32.

Each run is ``concurrency`` workers taking calls until all are done: how ``cb.bulk`` and
``cb.export`` drive the client, and what a service with a fixed pool of workers does.

Part 3 (information, no goal) also runs concurrency 128 the other common way,
``asyncio.gather`` over all calls behind a semaphore. That creates every task up front, and
those waiting tasks make CPython's cyclic collector run more often: any client that keeps a few
more objects per request pays for it unevenly (see the README). Part 4 (a control) measures
bare httpx and bare aiohttp against themselves at concurrency 32: the ratio noise alone gives.

How a ratio is measured (see ``rounds``): a round is one run of 2,000 calls for the client and
one for its bare transport, back to back, each through a freshly opened client, the order
reversed every other round. The ratio is the median of the rounds' ratios (7 to 41 rounds, as
many as fit in about 45 s), shown with its interquartile range; the req/s shown is each
client's median run.
Reproduce: ``nox -s bench -- bench_transport``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import httpx
from _common import ratio, report, static_server
from httpx_aiohttp import AiohttpTransport

from commbox_async import AsyncCommBox

PATH = "/managers/520760"
HEADERS = {"Authorization": "Bearer t"}
#: Calls per run (one run per client per round).
N = 2000
#: Rounds per group of clients: at least MIN_ROUNDS, then more while the group has used less
#: than BUDGET seconds, up to MAX_ROUNDS. Client and server share two cores here, so a single
#: round moves by 5-10% (and httpx at concurrency 128 by 2x: see ``rounds``).
MIN_ROUNDS = 7
MAX_ROUNDS = 41
BUDGET = 45.0


One = Callable[[], Awaitable[object]]
Client = Callable[[int], AbstractAsyncContextManager[One]]


async def workers(n: int, concurrency: int, one: One) -> None:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def gather_all(n: int, concurrency: int, one: One) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def task() -> None:
        async with sem:
            await one()

    await asyncio.gather(*(task() for _ in range(n)))


Driver = Callable[[int, int, One], Awaitable[None]]


def limits(c: int) -> httpx.Limits:
    return httpx.Limits(max_connections=c, max_keepalive_connections=c)


@asynccontextmanager
async def bare_httpx(base: str, c: int, aio: bool = False) -> AsyncIterator[One]:
    kw = {"transport": AiohttpTransport(limits=limits(c))} if aio else {"limits": limits(c)}
    async with httpx.AsyncClient(base_url=base, **kw) as client:

        async def one() -> None:
            r = await client.get(PATH, headers=HEADERS)
            r.raise_for_status()
            r.json()

        yield one


@asynccontextmanager
async def bare_aiohttp(base: str, c: int) -> AsyncIterator[One]:
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=c)) as session:

        async def one() -> None:
            async with session.get(PATH, headers=HEADERS) as r:
                r.raise_for_status()
                await r.json()

        yield one


@asynccontextmanager
async def commbox(base: str, c: int, transport: str) -> AsyncIterator[One]:
    async with AsyncCommBox(
        token="t",
        base_url=base,
        rate_limit=None,
        transport=transport,  # type: ignore[arg-type]
        max_connections=c,
        max_keepalive_connections=c,
    ) as cb:

        async def one() -> None:
            await cb.request("GET", "/managers/{manager_id}", manager_id=520760)

        yield one


async def run(open_: Client, n: int, c: int, driver: Driver) -> float:
    """req/s of ``n`` calls at concurrency ``c`` through a freshly opened client."""
    async with open_(c) as one:
        await one()
        # Every client starts from a collected heap: otherwise the garbage the previous client
        # left (and httpx leaves a lot) is collected during this one's run, and the order of
        # the clients decides who pays for it.
        gc.collect()
        start = time.perf_counter()
        await driver(n, c, one)
        return n / (time.perf_counter() - start)


async def rounds(
    group: dict[str, Client],
    c: int,
    driver: Driver,
    *,
    n: int = N,
    min_rounds: int = MIN_ROUNDS,
    max_rounds: int = MAX_ROUNDS,
) -> dict[str, list[float]]:
    """Each client's req/s in each round: one run each, back to back, with the order reversed
    every other round (A B, B A, ...) so that neither side always runs first.

    Each run opens its client afresh. That matters for httpx: at concurrency 128 its pool
    settles at ~350 or ~650 req/s depending on how many connections httpcore keeps (15-27
    seen), whichever client it is, and a fresh pool rolls again. (Keeping both clients open
    and taking turns in chunks of 500 calls was tried: httpx at concurrency 128 then ran at
    120-260 req/s on both sides, far below its whole-run rate, so that measured httpcore's pool
    under a restart every chunk rather than the client.)
    """
    rates: dict[str, list[float]] = {name: [] for name in group}
    names = list(group)
    started = time.perf_counter()
    done = 0
    while done < min_rounds or (done < max_rounds and time.perf_counter() - started < BUDGET):
        for name in names if done % 2 == 0 else names[::-1]:
            rates[name].append(await run(group[name], n, c, driver))
        done += 1
    return rates


def median_rate(rates: dict[str, list[float]], name: str) -> int:
    return round(statistics.median(rates[name]))


def spread(**ratios: dict[str, Any]) -> str:
    """Each ratio's interquartile range over its rounds, and how many rounds there were."""
    return ", ".join(f"{k} {r['q1']:.2f}-{r['q3']:.2f} ({r['rounds']})" for k, r in ratios.items())


HTTPX_RATIO = "CB httpx / bare httpx"
AIOHTTP_RATIO = "CB aiohttp / bare aiohttp"


async def cell(
    c: int,
    driver: Driver,
    httpx_pair: dict[str, Client],
    aiohttp_pair: dict[str, Client],
    reference: dict[str, Client] | None = None,
) -> dict[str, Any]:
    """One table row: each pair's rounds at concurrency ``c`` (and the reference client's),
    every client's median req/s, and each AsyncCommBox's ratio to its own bare transport."""
    on_httpx = await rounds(httpx_pair, c, driver)
    on_aiohttp = await rounds(aiohttp_pair, c, driver)
    ref = await rounds(reference, c, driver, max_rounds=MIN_ROUNDS) if reference else {}
    r_httpx = ratio(on_httpx, "AsyncCommBox httpx", "bare httpx")
    r_aiohttp = ratio(on_aiohttp, "AsyncCommBox aiohttp", "bare aiohttp")
    every = {**on_httpx, **on_aiohttp, **ref}
    return {
        "concurrency": c,
        **{name: median_rate(every, name) for name in every},
        HTTPX_RATIO: r_httpx["median"],
        AIOHTTP_RATIO: r_aiohttp["median"],
        "spread (rounds)": spread(httpx=r_httpx, aiohttp=r_aiohttp),
    }


async def main() -> None:
    with static_server() as base:
        httpx_pair: dict[str, Client] = {
            "bare httpx": lambda c: bare_httpx(base, c),
            "AsyncCommBox httpx": lambda c: commbox(base, c, "httpx"),
        }
        aiohttp_pair: dict[str, Client] = {
            "bare aiohttp": lambda c: bare_aiohttp(base, c),
            "AsyncCommBox aiohttp": lambda c: commbox(base, c, "aiohttp"),
        }
        reference: dict[str, Client] = {
            "bare httpx + httpx-aiohttp": lambda c: bare_httpx(base, c, aio=True),
        }

        # Part 1
        rates = await rounds(httpx_pair, 16, workers, n=5000, min_rounds=5)
        core = ratio(rates, "AsyncCommBox httpx", "bare httpx")
        report(
            "bench_transport_core",
            [
                {"client": "bare httpx.AsyncClient", "req/s": median_rate(rates, "bare httpx")},
                {
                    "client": "AsyncCommBox (throttle off)",
                    "req/s": median_rate(rates, "AsyncCommBox httpx"),
                },
            ],
            {
                "calls per round": 5000,
                "concurrency": 16,
                "ratio": core["median"],
                "spread": spread(ratio=core),
                "target": ">= 0.9",
                "met": core["median"] >= 0.9,
            },
        )
        print()

        # Part 2
        rows = []
        goals = {}
        for c in (1, 8, 32, 128):
            row = await cell(c, workers, httpx_pair, aiohttp_pair, reference)
            rows.append(row)
            httpx_ratio, aio_ratio = row[HTTPX_RATIO], row[AIOHTTP_RATIO]
            goals[f"c={c}: >= 0.9x own transport"] = httpx_ratio >= 0.9 and aio_ratio >= 0.9
            if c == 32:
                goals["c=32: CB aiohttp >= 0.5x bare aiohttp"] = aio_ratio >= 0.5
        report("bench_transport", rows, goals)
        print()

        # Part 3 (information): concurrency 128 with every task created up front.
        row = await cell(128, gather_all, httpx_pair, aiohttp_pair)
        report("bench_transport_gather", [row], {})
        print()

        # Part 4 (information): the same measurement with the same client on both sides, to
        # show how far from 1.0 the machine's noise alone moves a ratio.
        rows = []
        for name, open_ in (
            ("bare httpx", httpx_pair["bare httpx"]),
            ("bare aiohttp", aiohttp_pair["bare aiohttp"]),
        ):
            same = await rounds({name: open_, f"{name} again": open_}, 32, workers)
            r = ratio(same, f"{name} again", name)
            rows.append(
                {
                    "client against itself, c=32": name,
                    "ratio": r["median"],
                    "spread (rounds)": spread(ratio=r),
                }
            )
        report("bench_transport_control", rows, {})


if __name__ == "__main__":
    asyncio.run(main())
