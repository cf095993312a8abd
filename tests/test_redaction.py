"""The token is unreachable from any error: its str, repr, attributes (walked recursively), its
chain, and its traceback rendered with every frame's locals, on both transports."""

from __future__ import annotations

import pickle
import traceback
from typing import Any

import anyio
import pytest

from commbox_async import AsyncCommBox, CommBoxError, ConfigurationError
from commbox_async._secret import Secret

from .conftest import TOKEN, socket_client
from .rawserver import raw_server, respond, unused_port

pytestmark = pytest.mark.anyio

HTML = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<html></html>"


def reachable_texts(exc: BaseException) -> list[str]:
    """Everything an error reporter could show of an exception: its str and repr, every
    attribute reachable from it (recursively), its cause and context chain, and its
    traceback rendered with locals."""
    texts: list[str] = []
    seen: set[int] = set()

    def walk(value: Any, depth: int) -> None:
        if id(value) in seen or depth > 8:
            return
        seen.add(id(value))
        try:
            texts.append(repr(value))
            texts.append(str(value))
        except Exception:
            pass
        if isinstance(value, (str, bytes, int, float, bool)) or value is None:
            if isinstance(value, bytes):
                texts.append(value.decode("latin-1"))
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k, depth + 1)
                walk(v, depth + 1)
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                walk(v, depth + 1)
            return
        for name in dir(value):
            if name.startswith("__") and name not in ("__cause__", "__context__", "__dict__"):
                continue
            try:
                attr = getattr(value, name)
            except Exception:
                continue
            if callable(attr) and not isinstance(attr, BaseException):
                continue
            walk(attr, depth + 1)

    walk(exc, 0)
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    texts.append("".join(rendered.format()))
    return texts


def assert_no_token(exc: BaseException) -> None:
    for text in reachable_texts(exc):
        assert TOKEN not in text, text[:500]


async def _failure(transport: str, kind: str, **options: Any) -> BaseException:
    behaviours: dict[str, Any] = {
        "timeout": lambda m, p, b: ("hang",),
        "lost": lambda m, p, b: ("close",),
        "401": lambda m, p, b: respond(401),
        "429": lambda m, p, b: respond(429, headers={"Retry-After": "0"}),
        "undecodable": lambda m, p, b: ("raw", HTML, "close"),
    }
    if kind == "refused":
        port = await unused_port()
        async with socket_client(f"http://127.0.0.1:{port}", transport, **options) as cb:
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={"a": 1})
        return info.value
    async with raw_server(behaviours[kind]) as server:
        async with socket_client(server.url, transport, timeout=0.3, **options) as cb:
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={"a": 1})
    return info.value


@pytest.mark.parametrize("kind", ["refused", "timeout", "lost", "401", "429", "undecodable"])
@pytest.mark.parametrize("token", ["static", "callable"])
async def test_no_error_reaches_the_token(transport: str, kind: str, token: str) -> None:
    options: dict[str, Any] = {"max_retries": 1}
    if token == "callable":
        options["token"] = lambda: TOKEN
    exc = await _failure(transport, kind, **options)
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert_no_token(exc)


async def test_a_cancelled_call_leaves_no_token_in_its_traceback(transport: str) -> None:
    """Cancellation passes through the HTTP library's own frames, whose locals hold the
    request's headers in plain bytes: the sender clears them on the way out."""
    captured: list[BaseException] = []
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, timeout=10) as cb:
            with anyio.move_on_after(0.3):
                try:
                    await cb.request("POST", "/x", json={"a": 1})
                except BaseException as exc:
                    captured.append(exc)
                    raise
    assert captured
    rendered = traceback.TracebackException.from_exception(captured[0], capture_locals=True)
    assert TOKEN not in "".join(rendered.format())


def test_the_client_and_its_secret_never_show_the_token() -> None:
    cb = AsyncCommBox(token=TOKEN)
    assert TOKEN not in repr(cb) and TOKEN not in str(cb)
    assert TOKEN not in repr(cb._core.token.static)
    with pytest.raises(TypeError):
        pickle.dumps(cb)
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))


def test_a_construction_error_does_not_show_the_token_in_its_locals() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncCommBox(token=TOKEN, base_url="http://example.com")  # plain HTTP: refused
    rendered = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    frames = [f for f in rendered.stack if "commbox_async" in f.filename]
    assert frames  # the library's own frames are there, with their locals...
    assert all(TOKEN not in repr(f.locals) for f in frames)  # ...but not the token
