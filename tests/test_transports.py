"""The core's guarantees on both transports (httpx, and aiohttp), on real loopback sockets: the
same typed errors, the same "may have been processed" verdicts, the same bytes on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
import types
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from commbox_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncCommBox,
    Attachment,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    NewObject,
    Processed,
    RateLimitError,
    ServerError,
)
from commbox_async.bulk import BulkMessage

from .conftest import TOKEN, serve_in_thread
from .conftest import socket_client as client
from .rawserver import raw_server, respond, unused_port

pytest.importorskip("aiohttp")

pytestmark = pytest.mark.anyio


def first_then_ok(action: tuple[Any, ...]) -> Any:
    calls = 0

    def behaviour(method: str, path: str, body: bytes) -> tuple[Any, ...]:
        nonlocal calls
        calls += 1
        return action if calls == 1 else respond(200, {"id": 1})

    return behaviour


FAILURES: dict[str, tuple[Any, ...]] = {
    "lost_response": ("close",),
    "reset": ("reset",),
    "read_timeout": ("hang",),
    "429": respond(429, headers={"Retry-After": "0"}),
    "503": respond(503, headers={"Retry-After": "0"}),
    "500": respond(500),
    "502": respond(502),
}
# (retried for GET, retried for POST, may_have_been_processed, error class)
EXPECTED: dict[str, tuple[bool, bool, bool, type[CommBoxError]]] = {
    "lost_response": (True, False, True, APIConnectionError),
    "reset": (True, False, True, APIConnectionError),
    "read_timeout": (True, False, True, APITimeoutError),
    "429": (True, True, False, RateLimitError),
    "503": (True, True, False, ServerError),
    "500": (True, False, True, ServerError),
    "502": (True, False, True, ServerError),
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_retry_matrix_on_both_transports(transport: str, method: str, failure: str) -> None:
    retried_get, retried_post, maybe, error = EXPECTED[failure]
    retried = retried_get if method == "GET" else retried_post
    async with raw_server(first_then_ok(FAILURES[failure])) as server:
        async with client(server.url, transport, timeout=0.3, max_retries=2) as cb:
            if retried:
                assert await cb.request(
                    method, "/objects/1", json={} if method == "POST" else None
                ) == {"id": 1}
                assert len(server.received) == 2
            else:
                with pytest.raises(error) as info:
                    await cb.request(method, "/objects/1", json={})
                assert type(info.value) is error
                assert info.value.may_have_been_processed is maybe
                assert len(server.received) == 1  # sent once, never repeated on its own
    if failure == "read_timeout" and not retried:
        assert info.value.reason == "read_timeout"  # never reported as a connect error


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("reused", [False, True], ids=["new-connection", "pooled-connection"])
async def test_a_dropped_connection_is_not_resent_behind_the_retry_rules(
    transport: str, method: str, reused: bool
) -> None:
    # aiohttp on its own sends an idempotent request once more when its connection drops
    # before the response; with max_retries=0 the server must see it exactly once.
    calls = 0

    def behaviour(m: str, p: str, b: bytes) -> tuple[Any, ...]:
        nonlocal calls
        calls += 1
        return respond(200, {"id": 1}) if reused and calls == 1 else ("close",)

    async with raw_server(behaviour) as server:
        async with client(server.url, transport, max_retries=0) as cb:
            if reused:
                await cb.request("GET", "/warm")
            with pytest.raises(APIConnectionError) as info:
                await cb.request(method, "/objects/1")
            assert info.value.may_have_been_processed
            assert sum(cb.metrics.retries.values()) == 0  # and nothing retried unseen
    assert [r[0] for r in server.received] == ["GET"] * reused + [method]


async def test_connection_refused_on_both_transports(transport: str) -> None:
    port = await unused_port()
    async with client(f"http://127.0.0.1:{port}", transport, max_retries=1) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("POST", "/x", json={})
        assert info.value.reason == "connect_error"
        assert not info.value.may_have_been_processed
        assert cb.metrics.retries["connect_error"] == 1


async def test_retry_after_pauses_on_both_transports(transport: str) -> None:
    async with raw_server(first_then_ok(respond(429, headers={"Retry-After": "1"}))) as server:
        async with client(server.url, transport) as cb:
            start = anyio.current_time()
            assert await cb.request("POST", "/x", json={}) == {"id": 1}
            assert anyio.current_time() - start >= 0.95


async def test_redaction_on_both_transports(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="commbox_async")
    texts: list[str] = []
    async with raw_server(lambda m, p, b: ("close",)) as server:
        async with client(server.url, transport, max_retries=0) as cb:
            texts.append(repr(cb))
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={})
    texts += [str(info.value), "".join(traceback.format_exception(info.value))]
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert all(TOKEN not in t for t in texts)


async def test_multipart_resent_whole_on_both_transports(transport: str, tmp_path: Path) -> None:
    files = []
    for name in ("report.pdf", "analysis.xlsx", "presentation.pptx"):
        path = tmp_path / name
        path.write_bytes(name.encode() * 20000)
        files.append(path)
    async with raw_server(first_then_ok(respond(503))) as server:
        async with client(server.url, transport) as cb:
            new = NewObject.email(
                subject="s", message="m", to=["a@b.example"], user_stream_provider_id="me@x.example"
            )
            assert await cb.objects.create(1, new, files=files) == 1
    assert len(server.received) == 2
    for _, _, body in server.received:
        for path in files:
            assert path.read_bytes() in body


async def test_lifecycle_on_both_transports(transport: str) -> None:
    async with raw_server(lambda m, p, b: respond(200, {"ok": True})) as server:
        cb = client(server.url, transport)
        async with cb:
            assert await cb.request("GET", "/x") == {"ok": True}
        with pytest.raises(ClientStateError, match="closed"):
            await cb.request("GET", "/x")


def test_aiohttp_transport_refuses_trio_clearly() -> None:
    cb = AsyncCommBox(token=TOKEN, transport="aiohttp", rate_limit=None)

    async def main() -> None:
        await cb.request("GET", "/x")

    with pytest.raises(ClientStateError, match="asyncio only"):
        anyio.run(main, backend="trio")


def test_aiohttp_transport_needs_http1() -> None:
    with pytest.raises(ConfigurationError, match=r"HTTP/1\.1"):
        AsyncCommBox(token=TOKEN, transport="aiohttp", http2=True)
    with pytest.raises(ConfigurationError, match="transport must be"):
        AsyncCommBox(token=TOKEN, transport="curl")  # type: ignore[arg-type]


def test_http2_without_the_h2_package_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "h2" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"commbox-async\[http2\]"):
        AsyncCommBox(token=TOKEN, http2=True)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_both_transports_put_the_same_request_on_the_wire() -> None:
    """The aiohttp path builds requests itself; they must be byte for byte httpx's: one-segment
    encoding (``/`` and ``=`` in an id), repeated and boolean query values, non-ASCII JSON,
    urlencoded forms, and multipart forms (up to the random boundary)."""

    async def calls(cb: AsyncCommBox) -> None:
        await cb.request(
            "GET",
            "/streams/{stream_id}/objects/{object_id}",
            stream_id="hNyR/N_f=",
            object_id=5,
            params={"includeChilds": True, "page": 2, "add": [1, 2], "q": "a b&c"},
        )
        await cb.objects.create(
            532, NewObject.sms(user_stream_provider_id="972500000000", message="שלום ✓")
        )
        await cb.request("POST", "/x", data={"name": "ידע", "n": 3})
        await cb.request(
            "POST", "/x", files=[Attachment(source=b"hello", filename="a.txt")], data={"data": "{}"}
        )
        await cb.request("DELETE", "/x/{id}", id="..")

    seen: dict[str, list[tuple[str, str, bytes, dict[str, str]]]] = {}
    for name in ("httpx", "aiohttp"):
        async with raw_server(lambda m, p, b: respond(200, {"objectId": 1})) as server:
            async with client(server.url, name) as cb:
                await calls(cb)
        seen[name] = [(*r, h) for r, h in zip(server.received, server.headers)]
    for (m1, p1, b1, h1), (m2, p2, b2, h2) in zip(seen["httpx"], seen["aiohttp"]):
        assert (m1, p1) == (m2, p2)
        t1, t2 = h1.get("content-type", ""), h2.get("content-type", "")
        if t1.startswith("multipart/form-data"):
            boundary1, boundary2 = t1.split("boundary=")[1], t2.split("boundary=")[1]
            assert b1.replace(boundary1.encode(), b"B") == b2.replace(boundary2.encode(), b"B")
        else:
            assert (b1, t1) == (b2, t2)
        for header in ("authorization", "accept", "user-agent"):
            assert h1.get(header) == h2.get(header), header
        if b1:  # (aiohttp also says "Content-Length: 0" on a DELETE without a body)
            assert h1["content-length"] == h2["content-length"]
    assert seen["aiohttp"][0][1] == (
        "/streams/hNyR%2FN_f%3D/objects/5?includeChilds=true&page=2&add=1&add=2&q=a+b%26c"
    )
    assert seen["aiohttp"][4][1] == "/x/%2E%2E"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_and_its_views_send_their_own_headers_on_both_transports() -> None:
    """aiohttp adds the client's static headers to a request itself (in place of its own
    defaults), so a call passes aiohttp its token alone; a view's own headers must still
    replace those values, once each, and add its own, exactly as on httpx."""
    sent: dict[str, list[list[tuple[str, str]]]] = {}
    for name in ("httpx", "aiohttp"):
        async with raw_server(lambda m, p, b: respond(200, {})) as server:
            async with client(server.url, name, default_headers={"X-Team": "a"}) as cb:
                view = cb.with_options(default_headers={"X-Team": "b", "X-Extra": "1"})
                await cb.request("GET", "/one")
                await view.request("POST", "/two", json={"k": 1})
                await view.request("GET", "/three")
                await cb.request("GET", "/four")
        sent[name] = [
            sorted(p for p in lines if p[0] not in ("host", "connection", "content-length"))
            for lines in server.header_lines
        ]
    assert sent["aiohttp"] == sent["httpx"]
    root = dict(sent["aiohttp"][0])
    assert root["x-team"] == "a" and "x-extra" not in root
    assert root["authorization"] == f"Bearer {TOKEN}"
    for lines in sent["aiohttp"]:
        names = [n for n, _ in lines]
        assert len(names) == len(set(names)), names  # no header sent twice
        assert {"accept", "accept-encoding", "user-agent", "authorization"} <= set(names)
    for lines in sent["aiohttp"][1:3]:
        assert ("x-team", "b") in lines and ("x-extra", "1") in lines
    assert sent["aiohttp"][3] == sent["aiohttp"][0]


async def test_a_header_given_in_other_letter_case_replaces_the_default_once(
    transport: str,
) -> None:
    """HTTP header names ignore case: a ``user-agent`` or ``accept`` of the user's replaces
    the client's own, and a view's ``x-team`` replaces the client's ``X-Team``, each sent
    once, on the client and on its views."""
    given = {"user-agent": "mine/1", "accept": "application/xml", "X-Team": "a"}
    async with raw_server(lambda m, p, b: respond(200, {})) as server:
        async with client(server.url, transport, default_headers=given) as cb:
            await cb.request("GET", "/root")
            await cb.with_options(timeout=7).request("GET", "/view")
            await cb.with_options(default_headers={"x-team": "b"}).request("GET", "/team")
    for lines in server.header_lines:
        names = [n for n, _ in lines]
        assert len(names) == len(set(names)), names  # no header sent twice
    for lines in server.header_lines:
        sent = dict(lines)
        assert sent["user-agent"] == "mine/1" and sent["accept"] == "application/xml"
    assert [dict(lines)["x-team"] for lines in server.header_lines] == ["a", "a", "b"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
async def test_a_json_body_with_a_non_finite_number_is_refused_on_both_transports(
    transport: str, value: float
) -> None:
    """httpx refuses NaN and the infinities (they are not JSON); the aiohttp path, which
    encodes the body itself, must refuse them too rather than send ``NaN`` to CommBox."""
    async with raw_server(lambda m, p, b: respond(200, {"ok": True})) as server:
        async with client(server.url, transport) as cb:
            with pytest.raises(ConfigurationError) as info:
                await cb.request("POST", "/x", json={"score": value})
            assert await cb.request("POST", "/x", json={"score": 1.5}) == {"ok": True}
    assert str(info.value) == (
        "the request could not be encoded: ValueError: Out of range float values are not JSON "
        "compliant"
    )
    assert server.received == [("POST", "/x", b'{"score":1.5}')]  # the refused one never left


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_closing_a_client_on_auto_closes_the_pool_it_chose(anyio_backend: str) -> None:
    """aiohttp's session on asyncio, the httpx pool on trio: whichever was chosen is closed
    with the client, and so is the httpx pool it owns."""
    async with raw_server(lambda m, p, b: respond(200, {"ok": True})) as server:
        async with client(server.url, "auto") as cb:
            await cb.request("GET", "/x")
            sender = cb._core.sender
            assert not sender.is_closed
        assert cb.transport == ("aiohttp" if anyio_backend == "asyncio" else "httpx")
    assert sender.is_closed
    assert sender._fallback.is_closed  # type: ignore[attr-defined]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_bulk_and_export_take_aiohttp_when_the_transport_is_left_unset() -> None:
    async with raw_server(lambda m, p, b: respond(200, {"objectId": 7})) as server:
        async with client(server.url, None) as cb:  # type: ignore[arg-type]
            assert cb.transport == "httpx"
            bulk_view = cb.bulk._client
            assert bulk_view.transport == "auto"
            report = await cb.bulk.send(
                [
                    BulkMessage(
                        key="k",
                        stream_id=1,
                        payload=NewObject.sms(user_stream_provider_id="9725", message="m"),
                    )
                ]
            )
            assert report.counts == {"sent": 1}
            assert bulk_view.transport == "aiohttp"
            assert cb.export._client.transport == "aiohttp"  # the same pool as the bulk sender
            assert cb.metrics.requests == 1  # shared counters
        async with client(server.url, "httpx") as pinned:
            await pinned.bulk.send([])
            # transport="httpx" keeps everything on httpx: the client's own pool
            assert pinned.bulk._client._core is pinned._core
            assert pinned.bulk._client._sender is None
        async with client(server.url, "auto") as auto:
            await auto.request("GET", "/x")
            assert auto.transport == "aiohttp"


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_auto_stays_on_httpx_under_trio() -> None:
    async with raw_server(lambda m, p, b: respond(200, {"ok": True})) as server:
        async with client(server.url, "auto") as cb:
            assert await cb.request("GET", "/x") == {"ok": True}
            assert cb.transport == "httpx"
        async with client(server.url, None) as cb:  # type: ignore[arg-type]
            await cb.bulk.send([])
            assert await cb.bulk._client.request("GET", "/x") == {"ok": True}
            assert cb.bulk._client.transport == "httpx"  # the client's own pool, not a second


def test_the_aiohttp_transport_without_aiohttp_says_which_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from commbox_async import MissingExtraError

    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(MissingExtraError, match=r"commbox-async\[aiohttp\]") as info:
        AsyncCommBox(token=TOKEN, transport="aiohttp")
    assert isinstance(info.value, ImportError) and info.value.extra == "aiohttp"


# -- read timeouts: from the last byte received, wherever the response stopped -----------------

READ = 0.3  # the read timeout of these tests
ENVELOPE = b'{"status":"200","description":"OK","data":{"id":1}}'
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
HEAD += b"content-length: %d\r\n\r\n" % len(ENVELOPE)


@pytest.mark.parametrize("answer", ["nothing", "head", "half-body"])
async def test_calls_in_flight_end_when_the_client_closes(transport: str, answer: str) -> None:
    # aiohttp's close lets go of a body being read without ending it: such a call waited
    # until its deadline (here 60 s), its read timeout dropped with the connection.
    sent = {"nothing": b"", "head": HEAD, "half-body": HEAD + ENVELOPE[:5]}[answer]
    errors: list[BaseException] = []
    async with raw_server(lambda m, p, b: ("raw", sent, "hang")) as server:
        cb = client(server.url, transport, timeout=60, max_retries=0)
        async with cb:

            async def call() -> None:
                try:
                    await cb.request("POST", "/x", json={})
                except BaseException as exc:
                    errors.append(exc)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(call)
                    while len(server.received) < 3:
                        await anyio.sleep(0.01)
                    await anyio.sleep(0.05)
                    await cb.aclose()
    assert len(errors) == 3
    assert all(type(e) is APIConnectionError for e in errors), errors
    assert all(e.may_have_been_processed for e in errors)
    if transport == "aiohttp":
        assert all(
            "ClientConnectionError: the client was closed during the call" in str(e) for e in errors
        ), errors


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_closing_fails_each_connection_in_use_past_one_still_opening() -> None:
    """What the close does to the connector's connections in use: a connection still being
    opened (aiohttp's placeholder) is left to aiohttp, and every one after it is failed and
    dropped; a connector without that set is left alone."""
    import aiohttp
    from aiohttp.client_proto import ResponseHandler

    from commbox_async._transport import _end_calls_in_flight

    class Transport:
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    protocol = ResponseHandler(asyncio.get_running_loop())
    transport = Transport()
    protocol.transport = transport  # type: ignore[assignment]
    connector = types.SimpleNamespace(_acquired=[object(), protocol])
    _end_calls_in_flight(aiohttp, connector)
    error = protocol.exception()
    assert isinstance(error, aiohttp.ClientConnectionError) and transport.aborted
    _end_calls_in_flight(aiohttp, object())  # nothing to fail, and no error


async def test_a_call_waiting_for_a_connection_when_the_client_closes_is_not_sent(
    transport: str,
) -> None:
    """One connection, held by a call the server never answers; a second call waits for it.
    Closing the client ends both: the first may have been processed, the second was not sent
    (httpx sent it after the close; aiohttp raised a bare CancelledError, though nothing
    cancelled the call)."""
    outcome: dict[str, BaseException] = {}
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        cb = client(server.url, transport, timeout=60, max_retries=0, max_connections=1)
        async with cb:

            async def call(name: str) -> None:
                try:
                    await cb.request("POST", f"/{name}", json={})
                except BaseException as exc:
                    outcome[name] = exc

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, "holding")
                    while not server.received:
                        await anyio.sleep(0.01)
                    tg.start_soon(call, "waiting")
                    await anyio.sleep(0.1)
                    await cb.aclose()
    holding, waiting = outcome["holding"], outcome["waiting"]
    assert type(holding) is APIConnectionError and holding.may_have_been_processed
    assert type(waiting) is ClientStateError and not waiting.may_have_been_processed
    assert [path for _, path, _ in server.received] == ["/holding"]
    assert server.connections == 1  # httpx opened one for the waiting call after the close


async def test_closing_the_client_during_an_upload_the_server_stopped_reading(
    transport: str,
) -> None:
    """The server reads the request's head and then nothing: the upload stalls with its
    buffers full. Closing the client ends the call at once, typed and "may have been
    processed", and the close itself returns (on aiohttp it waited to send the buffered
    body, forever)."""
    errors: list[BaseException] = []

    async def reader(stream: anyio.abc.SocketStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        await buffered.receive_until(b"\r\n\r\n", 65536)
        await anyio.sleep_forever()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as server:
            server.start_soon(listener.serve, reader)
            cb = client(f"http://127.0.0.1:{port}", transport, timeout=60, max_retries=0)
            async with cb:

                async def upload() -> None:
                    try:
                        await cb.request("POST", "/x", json={"blob": "x" * 20_000_000})
                    except BaseException as exc:
                        errors.append(exc)

                with anyio.fail_after(10):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(upload)
                        await anyio.sleep(1)
                        await cb.aclose()
            server.cancel_scope.cancel()
    [error] = errors
    assert isinstance(error, CommBoxError) and error.may_have_been_processed, error


async def test_a_call_cancelled_as_the_client_closes_is_cancelled(transport: str) -> None:
    """The same wait for the one connection, its scope cancelled just before the close: the
    call ends as cancelled (its scope catches it), not as a closed client's error."""
    outcome: list[BaseException] = []
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        cb = client(server.url, transport, timeout=60, max_retries=0, max_connections=1)
        async with cb:

            async def holding() -> None:
                with contextlib.suppress(APIConnectionError):
                    await cb.request("POST", "/holding", json={})

            async def waiting(scope: anyio.CancelScope) -> None:
                with scope:
                    try:
                        await cb.request("POST", "/waiting", json={})
                    except BaseException as exc:
                        outcome.append(exc)
                        raise

            scope = anyio.CancelScope()
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(holding)
                    while not server.received:
                        await anyio.sleep(0.01)
                    tg.start_soon(waiting, scope)
                    await anyio.sleep(0.1)
                    scope.cancel()
                    await cb.aclose()
    assert scope.cancelled_caught
    assert [type(e) for e in outcome] == [anyio.get_cancelled_exc_class()]
    assert [path for _, path, _ in server.received] == ["/holding"]


async def test_a_body_that_keeps_coming_is_not_a_read_timeout(transport: str) -> None:
    """The body's last 15 bytes one every READ / 3, four read timeouts in all: each byte is
    progress."""
    drip = ("drip", HEAD + ENVELOPE[:-15], ENVELOPE[-15:], READ / 3)
    async with raw_server(lambda m, p, b: drip) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            start = anyio.current_time()
            assert await cb.request("POST", "/x", json={}) == {"id": 1}
            assert anyio.current_time() - start > 4 * READ


@pytest.mark.parametrize("sent", [b"", HEAD, HEAD + ENVELOPE[:10]], ids=["none", "head", "half"])
async def test_a_response_that_stops_ends_at_its_read_timeout(transport: str, sent: bytes) -> None:
    """Nothing back, only the headers, or half the body, and then silence: a read timeout no
    sooner than READ after the last byte and not much later, with the verdict of how far the
    response got (a status line of 200 means CommBox acted)."""
    async with raw_server(lambda m, p, b: ("raw", sent, "hang")) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            start = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", json={})
            elapsed = anyio.current_time() - start
    assert info.value.reason == "read_timeout"
    assert READ <= elapsed < 3 * READ
    assert info.value.processed is (Processed.YES if sent else Processed.MAYBE)


async def test_a_read_timeout_counts_from_the_last_progress(transport: str) -> None:
    """Headers that come late, then silence: the timeout runs from the headers, not from
    the request."""
    late = ("late", READ * 2 / 3, ("raw", HEAD + ENVELOPE[:10], "hang"))
    async with raw_server(lambda m, p, b: late) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            start = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(APITimeoutError):
                await cb.request("POST", "/x", json={})
            assert anyio.current_time() - start >= READ * 5 / 3


async def test_a_read_timeout_closes_the_connection_it_ended(transport: str) -> None:
    """The next call after a read timeout does not get the silent connection back."""
    async with raw_server(first_then_ok(("raw", HEAD, "hang"))) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            with pytest.raises(APITimeoutError):
                await cb.request("POST", "/x", json={})
            with anyio.fail_after(5):
                assert await cb.request("POST", "/x", json={}) == {"id": 1}
    assert len(server.received) == 2


@pytest.mark.parametrize("body", ["multipart", "large json"])
async def test_an_upload_written_over_time_has_a_read_timeout_too(
    transport: str, body: str, tmp_path: Path
) -> None:
    """A server that reads a streamed or large body whole and never answers ends the call at
    its read timeout."""
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF" * 50000)
    if body == "multipart":
        upload: dict[str, Any] = {"data": {"a": "1"}, "files": [path]}
    else:
        upload = {"json": {"text": "x" * 200_000}}
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            with anyio.fail_after(10), pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", **upload)
    assert info.value.reason == "read_timeout"
    assert len(server.received) == 1 and len(server.received[0][2]) > 65536


def test_the_aiohttp_sender_gives_aiohttp_each_timeout_once_per_timeout(
    anyio_backend: str,
) -> None:
    """The pool wait is aiohttp's ``connect``, the connect its ``sock_connect``, the read
    timeout its ``sock_read``; built once for the client's one Timeout, not per call."""
    import httpx

    from commbox_async._transport import AiohttpSender

    async def main() -> None:
        sender = AiohttpSender(limits=httpx.Limits(max_connections=4))
        sender._open()
        timeout = httpx.Timeout(READ, connect=0.7, pool=0.9)
        given = sender._client_timeout(timeout)
        assert (given.total, given.connect, given.sock_connect, given.sock_read) == (
            None,
            0.9,
            0.7,
            READ,
        )
        assert sender._client_timeout(timeout) is given
        await sender.aclose()

    if anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport is asyncio-only")
    anyio.run(main)


async def test_a_pool_wait_timeout_sends_nothing_on_both_transports(transport: str) -> None:
    """One connection, held by a call the server never answers: the next call waits for it
    no longer than the pool timeout, and is not sent."""
    import httpx

    timeout = httpx.Timeout(5, pool=0.2)
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with (
            client(server.url, transport, timeout=timeout, max_retries=0, max_connections=1) as cb,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(cb.request, "GET", "/held")
            await anyio.sleep(0.1)
            start = anyio.current_time()
            with anyio.fail_after(3), pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", json={})
            assert anyio.current_time() - start < 2
            tg.cancel_scope.cancel()
    assert info.value.processed is Processed.NO
    assert [r[1] for r in server.received] == ["/held"]


async def test_a_connect_timeout_sends_nothing_on_both_transports(transport: str) -> None:
    """A listener whose accept queue is full (backlog 0, one connection waiting): the
    connect hangs and ends at the connect timeout."""
    import socket

    import httpx

    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        timeout = httpx.Timeout(5, connect=0.2)
        async with client(
            f"http://127.0.0.1:{port}", transport, timeout=timeout, max_retries=0
        ) as cb:
            start = anyio.current_time()
            with anyio.fail_after(3), pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", json={})
            assert anyio.current_time() - start < 2
    assert info.value.reason == "connect_timeout"
    assert info.value.processed is Processed.NO


@pytest.mark.parametrize("kind", ["headers in pieces", "103 early hints"])
async def test_bytes_before_the_headers_are_complete_are_progress(
    transport: str, kind: str
) -> None:
    """Headers that come a piece at a time, or a 1xx before the final status, each gap
    shorter than the read timeout and the whole longer: no read timeout (an outsider's attack
    on a read timeout that counted from the complete headers only: both timed out)."""
    early = b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"
    if kind == "headers in pieces":
        pieces = [HEAD[:20], HEAD[20:40], HEAD[40:], ENVELOPE]
    else:
        pieces = [early, HEAD + ENVELOPE]
    async with raw_server(lambda m, p, b: ("pieces", pieces, READ * 2 / 3)) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0) as cb:
            start = anyio.current_time()
            with anyio.fail_after(5):
                assert await cb.request("POST", "/x", json={}) == {"id": 1}
            assert anyio.current_time() - start > READ * 4 / 3


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"],
    ids=["100", "103"],
)
async def test_a_1xx_then_silence_is_a_read_timeout(transport: str, interim: bytes) -> None:
    """A 1xx has no body, and aiohttp stops the read timeout at the end of every message
    without one: the call then waited for the final status until its deadline (an outsider's
    attack; the same on aiohttp's own timer). It ends at a read timeout, as on httpx."""
    async with raw_server(lambda m, p, b: ("raw", interim, "hang")) as server:
        async with client(server.url, transport, timeout=READ, max_retries=0, deadline=30) as cb:
            with anyio.fail_after(5), pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", json={})
    assert info.value.reason == "read_timeout"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("method", ["HEAD", "DELETE"])
async def test_a_response_without_a_body_leaves_its_connection_off_the_read_clock(
    method: str,
) -> None:
    """A HEAD's answer and a 204 are messages without a body too, the one a 1xx is looked
    for after: the connection goes back to the pool with no read timeout running, and is
    reused after idling for several read timeouts without a spurious one."""
    no_body = b"HTTP/1.1 204 No Content\r\n\r\n"
    answers = iter([("raw", no_body, "keep"), respond(200, {"id": 2})])

    def behaviour(m: str, p: str, b: bytes) -> tuple[Any, ...]:
        return next(answers)

    async with raw_server(behaviour) as server:
        async with client(server.url, "aiohttp", timeout=READ, max_retries=0) as cb:
            await cb.request(method, "/objects/1")
            await anyio.sleep(0.01)  # what aiohttp schedules at the end of the message
            clock = cb._core.sender._read_clock  # type: ignore[attr-defined]
            assert clock is not None and not clock._running
            await anyio.sleep(READ * 3)
            assert await cb.request("GET", "/objects/2") == {"id": 2}
    assert server.connections == 1


async def test_a_stall_after_headers_that_came_while_the_loop_was_blocked_still_times_out(
    transport: str,
) -> None:
    """The headers and a part of the body arrive while the client's loop is blocked past the
    read timeout (a long collection, sync work), then the server goes quiet: the call still
    ends at a read timeout. (An outsider's attack on a read timeout kept by a periodic tick:
    the tick and the queued headers met in one loop iteration and the body read went
    unwatched, so the call hung until its deadline.)"""
    import time

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await anyio.sleep(0.1)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(ENVELOPE)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ENVELOPE[:10], "more_body": True})
        await anyio.sleep(3)

    with serve_in_thread(app) as url:
        async with client(url, transport, timeout=READ, max_retries=0, deadline=None) as cb:
            async with anyio.create_task_group() as tg:
                errors: list[BaseException] = []

                async def call() -> None:
                    try:
                        await cb.request("POST", "/x", json={})
                    except APITimeoutError as exc:
                        errors.append(exc)

                tg.start_soon(call)
                await anyio.sleep(0.05)
                time.sleep(READ * 1.5)  # the loop blocked: the headers arrive meanwhile
                with anyio.fail_after(2):
                    while not errors:
                        await anyio.sleep(0.01)
    [error] = errors
    assert isinstance(error, APITimeoutError) and error.reason == "read_timeout"
