from __future__ import annotations

import json as jsonlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import settings

from commbox_async import AsyncCommBox

# ``nox -s soak`` sets COMMBOX_HYPOTHESIS_PROFILE=soak: ten times hypothesis's default number of
# examples for every property test that does not fix its own (tests/test_fuzz.py scales with it).
settings.register_profile("soak", max_examples=1000, deadline=None)
if os.environ.get("COMMBOX_HYPOTHESIS_PROFILE") == "soak":
    settings.load_profile("soak")

# mutmut's stats run (``nox -s mutation``) marks itself with MUTANT_UNDER_TEST=stats; a
# subprocess a test starts (the CLI, an example) would inherit it and then look for mutmut's
# configuration in its own working directory. The test process keeps mutmut's own copy of the
# mark; children run the code unmarked. A mutant's name, unlike "stats", is passed on.
if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    del os.environ["MUTANT_UNDER_TEST"]

TOKEN = "tok-SUPER-secret-0123456789"
BASE = "https://api.commbox.io"


@pytest.fixture(autouse=True)
def _no_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's COMMBOX_RATE_LIMIT must not change what a test's client does."""
    monkeypatch.delenv("COMMBOX_RATE_LIMIT", raising=False)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def envelope(
    data: Any = None, status: int | str = "200", description: str = "OK"
) -> dict[str, Any]:
    return {
        "status": status,
        "description": description,
        "response_time": "2024-08-06T07:51:52.2581942Z",
        "data": data,
    }


def ok(data: Any = None, **kw: Any) -> httpx.Response:
    return httpx.Response(200, json=envelope(data), **kw)


def make_client(handler: Callable[[httpx.Request], Any] | None = None, **kw: Any) -> AsyncCommBox:
    """A client on httpx.MockTransport (or respx when no handler), fast backoff, no throttle."""
    kw.setdefault("rate_limit", None)
    kw.setdefault("initial_backoff", 0.001)
    kw.setdefault("max_backoff", 0.002)
    if handler is not None:
        kw.setdefault("transport", httpx.MockTransport(handler))
    return AsyncCommBox(token=kw.pop("token", TOKEN), base_url=kw.pop("base_url", BASE), **kw)


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Both transports (aiohttp only under asyncio: it refuses trio, tested separately)."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport is asyncio-only (refusal tested separately)")
    return str(request.param)


def socket_client(url: str, transport: str | None, **kw: Any) -> AsyncCommBox:
    """A client on a real socket, fast backoff, no throttle."""
    kw.setdefault("rate_limit", None)
    kw.setdefault("initial_backoff", 0.001)
    kw.setdefault("max_backoff", 0.002)
    kw.setdefault("token", TOKEN)
    if transport is None:
        return AsyncCommBox(base_url=url, **kw)
    return AsyncCommBox(base_url=url, transport=transport, **kw)  # type: ignore[arg-type]


def body_json(request: httpx.Request) -> Any:
    return jsonlib.loads(request.content)


@contextmanager
def serve_in_thread(app: Any, **options: Any) -> Iterator[str]:
    """A real uvicorn server for an ASGI app, on a free loopback port; yields its URL.
    ``options`` go to ``uvicorn.Config`` (e.g. ``access_log=True, log_level="info"``)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options.setdefault("log_level", "critical")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
