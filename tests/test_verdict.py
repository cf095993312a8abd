""" "May have been processed": decided by the senders as it happens, carried unchanged through
deadlines, cancellation, retries and decoding, on both transports and real sockets."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import anyio
import httpx
import pytest

from commbox_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncCommBox,
    CommBoxError,
    ConfigurationError,
    DecodeError,
    InvalidResponseError,
    ServerError,
)
from commbox_async._exceptions import ResponseTooLargeError
from commbox_async._transport import _Tracer
from commbox_async._verdict import Exposure, Processed, for_status, tracking
from commbox_async.models import TemplateMessage

from .conftest import envelope, make_client, ok, socket_client
from .rawserver import raw_server, respond

pytestmark = pytest.mark.anyio

NO, MAYBE, YES = Processed.NO, Processed.MAYBE, Processed.YES


def test_the_status_table() -> None:
    expected = dict.fromkeys(range(200, 300), YES)
    expected |= dict.fromkeys(range(300, 500), NO)
    expected |= dict.fromkeys(range(500, 600), MAYBE)
    expected |= {501: NO, 503: NO}
    for status in range(100, 600):
        want = expected.get(status, MAYBE)
        assert for_status(status) is want, status


def test_a_call_is_as_processed_as_its_worst_attempt() -> None:
    exposure = Exposure()
    assert exposure.verdict() is NO
    exposure.sent = True
    assert exposure.verdict() is MAYBE
    exposure.status = 503
    assert exposure.verdict() is NO  # the status, once known, decides for the attempt
    assert exposure.end_attempt(NO) is NO
    exposure.sent = True
    assert exposure.end_attempt(MAYBE) is MAYBE
    assert not exposure.sent and exposure.status is None  # the next attempt starts clean
    exposure.status = 429
    assert exposure.verdict() is MAYBE  # an earlier attempt may have been processed
    assert exposure.end_attempt(NO) is MAYBE
    assert exposure.end_attempt(YES) is YES


# -- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", [0.05, 0.1, 0.2, 0.3])
async def test_a_processed_post_answered_after_the_deadline_may_have_been_processed(
    transport: str, deadline: float
) -> None:
    """The server reads the request (and acts on it), then answers after the deadline. The
    verdict was once read after cancellation had cleared the in-flight flag: "not processed",
    which made the bulk sender send it again."""
    async with raw_server(lambda m, p, b: ("late", 0.6, respond(200, {"objectId": 1}))) as server:
        async with socket_client(server.url, transport, deadline=deadline, timeout=10) as cb:
            with pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/streams/1/objects", json={"data": {}})
    if server.received:  # it reached the server (and was acted on) before the deadline
        assert info.value.processed is MAYBE
        assert info.value.may_have_been_processed
    else:  # on a loaded machine a 50 ms deadline can pass before the request is written
        assert info.value.processed in (NO, MAYBE)
    assert len(server.received) <= 1


async def test_a_deadline_before_anything_was_sent_is_not_processed(transport: str) -> None:
    """The only connection is busy, so the second call waits for the pool until its deadline:
    nothing of it was written."""
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, max_connections=1, timeout=10) as cb:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: cb.request("GET", "/busy"))
                await anyio.sleep(0.2)
                with pytest.raises(APITimeoutError) as info:
                    await cb.with_options(deadline=0.3).request("POST", "/x", json={})
                tg.cancel_scope.cancel()
    assert info.value.processed is NO
    assert [p for _, p, _ in server.received] == ["/busy"]


# -- cancellation -----------------------------------------------------------------------------


async def test_cancelled_while_waiting_in_the_throttle_was_not_sent(transport: str) -> None:
    async with raw_server(lambda m, p, b: respond(200, 1)) as server:
        async with socket_client(server.url, transport, rate_limit=1, burst=1) as cb:
            await cb.request("POST", "/first", json={})
            exposure = Exposure()
            with anyio.move_on_after(0.2), tracking(exposure):
                await cb.request("POST", "/second", json={})
    assert exposure.verdict() is NO
    assert [p for _, p, _ in server.received] == ["/first"]


async def test_cancelled_while_waiting_for_a_pooled_connection_was_not_sent(
    transport: str,
) -> None:
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, max_connections=1, timeout=10) as cb:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: cb.request("GET", "/busy"))
                await anyio.sleep(0.2)
                exposure = Exposure()
                with anyio.move_on_after(0.2), tracking(exposure):
                    await cb.request("POST", "/x", json={})
                tg.cancel_scope.cancel()
    assert exposure.verdict() is NO


async def test_a_call_already_cancelled_sends_nothing_over_a_warm_connection(
    transport: str,
) -> None:
    """A call whose cancel scope was cancelled before it reached the sender (``cb.bulk``'s
    stop does this to a request waiting for its journal write) stops before its first byte:
    aiohttp, given a pooled connection, once wrote the whole request before the cancellation
    could land, so a message the run meant to leave pending was taken by CommBox."""
    async with raw_server(lambda m, p, b: respond(200, {"objectId": 1})) as server:
        async with socket_client(server.url, transport) as cb:
            await cb.request("POST", "/warm", json={})  # a connection now waits in the pool
            exposure = Exposure()
            with anyio.CancelScope() as scope, tracking(exposure):
                scope.cancel()
                await cb.request("POST", "/x", json={})
            await anyio.sleep(0.1)  # time for a request that did leave to arrive
    assert scope.cancelled_caught
    assert exposure.verdict() is NO
    assert [p for _, p, _ in server.received] == ["/warm"]


async def test_a_stop_as_the_pooled_connection_frees_up_sends_nothing(transport: str) -> None:
    """A call waiting for a pooled connection, cancelled in the very turn the connection is
    handed to it: anyio defers a cancellation whose task is about to resume, and both HTTP
    libraries then write without waiting again, so the request went out and the stop (which
    cancels only calls with nothing on the wire) cut it off mid-request. Found by the model
    test (tests/test_model_faults.py) as "a graceful stop interrupted requests mid-way"."""

    async with raw_server(lambda m, p, b: respond(200, {"objectId": 1})) as server:
        async with socket_client(server.url, transport, max_connections=1, timeout=10) as cb:
            await cb.request("POST", "/warm", json={})
            exposure = Exposure()
            waiting = anyio.CancelScope()

            async def second() -> None:
                with waiting, tracking(exposure):
                    await cb.request("POST", "/x", json={})

            async def holder() -> None:
                await cb.request("POST", "/busy", json={})
                waiting.cancel()  # the same turn the pool handed its connection over

            async with anyio.create_task_group() as tg:
                tg.start_soon(holder)
                await anyio.sleep(0)  # the holder takes the one connection first
                tg.start_soon(second)
            await anyio.sleep(0.1)  # time for a request that did leave to arrive
    assert waiting.cancelled_caught
    assert exposure.verdict() is NO
    assert [p for _, p, _ in server.received] == ["/warm", "/busy"]


async def test_httpx_marks_a_request_sent_only_if_its_call_still_stands() -> None:
    """httpcore announces the headers it is about to write; a call cancelled by then raises
    there (its verdict stays "not sent") instead of being marked sent and cut off later."""
    exposure = Exposure()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await _Tracer(exposure, httpx.AsyncClient())("http11.send_request_headers.started", {})
    assert scope.cancelled_caught
    assert exposure.verdict() is NO


@pytest.mark.parametrize(
    ("event", "value"),
    [
        # httpcore's own shapes: HTTP/1.1 (version, status, reason, headers), HTTP/2 (status,
        # headers). HTTP/2 is checked here, as the tests have no HTTP/2 server.
        ("http11.receive_response_headers.complete", (b"HTTP/1.1", 503, b"X", [])),
        ("http2.receive_response_headers.complete", (503, [])),
    ],
)
async def test_httpx_records_the_status_as_soon_as_its_line_is_read(
    event: str, value: tuple[object, ...]
) -> None:
    exposure = Exposure()
    exposure.sent = True
    await _Tracer(exposure, httpx.AsyncClient())(event, {"return_value": value})
    assert exposure.status == 503
    assert exposure.verdict() is NO


async def test_a_status_line_read_before_httpx_fails_decides_the_verdict() -> None:
    """httpx fails after the status line arrived when a redirect's Location is no URL
    (RemoteProtocolError, before the sender sees the response): the 302 the tracer read says
    CommBox did not act, so the POST is not "maybe processed" and may be sent again."""
    answer = respond(302, {}, {"location": "http://host:abc/"})
    async with raw_server(lambda m, p, b: answer) as server:
        async with socket_client(server.url, "httpx", max_retries=2) as cb:
            with pytest.raises(APIConnectionError) as info:
                await cb.request("POST", "/x", json={})
    assert info.value.reason == "connection_lost"
    assert info.value.processed is NO
    assert len(server.received) == 3


async def test_a_call_already_cancelled_sends_nothing_in_process() -> None:
    """An untraced transport (a mock, ASGI, the fake in-process) is taken as sending from the
    moment it is called: an already cancelled call must not be handed to it at all."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return ok({"objectId": 1})

    async with make_client(handler) as cb:
        exposure = Exposure()
        with anyio.CancelScope() as scope, tracking(exposure):
            scope.cancel()
            await cb.request("POST", "/x", json={})
            await anyio.sleep(0)  # where it would have landed otherwise
    assert scope.cancelled_caught
    assert (calls, exposure.verdict()) == (0, NO)


async def test_cancelled_after_the_request_was_written_may_have_been_processed(
    transport: str,
) -> None:
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, timeout=10) as cb:
            exposure = Exposure()
            with anyio.move_on_after(0.3), tracking(exposure):
                await cb.request("POST", "/x", json={"a": 1})
    assert exposure.verdict() is MAYBE
    assert len(server.received) == 1


async def test_cancelled_while_reading_a_2xx_body_was_processed(transport: str) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"
    async with raw_server(lambda m, p, b: ("raw", head, "hang")) as server:
        async with socket_client(server.url, transport, timeout=10) as cb:
            exposure = Exposure()
            with anyio.move_on_after(0.3), tracking(exposure):
                await cb.request("POST", "/x", json={})
    assert exposure.verdict() is YES


# -- the status line decides a cut-off body ----------------------------------------------------


@pytest.mark.parametrize(("status", "processed"), [(200, YES), (503, NO), (500, MAYBE)])
async def test_a_body_cut_off_after_its_status_line(
    transport: str, status: int, processed: Processed
) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n"
    async with raw_server(lambda m, p, b: ("raw", head.encode() + b'{"st', "close")) as server:
        async with socket_client(server.url, transport, max_retries=2) as cb:
            with pytest.raises(APIConnectionError) as info:
                await cb.request("POST", "/x", json={})
    assert info.value.processed is processed
    # Retried only when CommBox certainly did not act on it.
    assert len(server.received) == (3 if processed is NO else 1)


# -- retries ----------------------------------------------------------------------------------


async def test_a_call_cancelled_while_waiting_to_retry_a_503_was_not_processed() -> None:
    """The 503 said CommBox did not act; the next attempt had not started when the call was
    cancelled in the wait before it: nothing may have been processed."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=envelope(status=503), headers={"Retry-After": "5"})

    async with make_client(handler) as cb:
        exposure = Exposure()
        with anyio.move_on_after(0.3) as scope, tracking(exposure):
            await cb.request("POST", "/x", json={})
    assert scope.cancelled_caught
    assert exposure.verdict() is NO


async def test_the_worst_attempt_wins_when_uncertain_posts_are_retried(transport: str) -> None:
    """retry_uncertain=True: a 500 (maybe processed), then 503s (not processed). The error
    raised is the last 503, but the call as a whole may have been processed."""
    answers = iter([respond(500), respond(503), respond(503)])
    async with raw_server(lambda m, p, b: next(answers)) as server:
        async with socket_client(server.url, transport, max_retries=2) as cb:
            with pytest.raises(ServerError) as info:
                await cb.with_options(retry_uncertain=True).request("POST", "/x", json={})
    assert info.value.http_status == 503
    assert info.value.processed is MAYBE
    assert len(server.received) == 3


async def test_a_401_then_a_503_keeps_the_call_not_processed() -> None:
    answers = iter([401, 503, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json=envelope(status=status))

    async with make_client(handler, token=lambda: "fresh", max_retries=1) as cb:
        with pytest.raises(ServerError) as info:
            await cb.request("POST", "/x", json={})
    assert info.value.processed is NO


# -- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        [{"recipient": "972500000000", "status": "sent!", "object_id": 5}],
        [{"recipient": "972500000000", "status": 200, "object_id": "x9"}],
        "a bare string",
    ],
)
async def test_a_2xx_whose_results_do_not_decode_was_processed(data: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return ok(data)

    message = TemplateMessage(to="972500000000", name="t", language="en")
    async with make_client(handler) as cb:
        with pytest.raises(DecodeError) as info:
            await cb.whatsapp.send_template("hNyRN_fLUy7rrOrN9jLpipA==", [message])
    assert info.value.processed is YES


async def test_a_parser_failure_is_typed_and_keeps_the_status_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import commbox_async._base_client as base

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(base, "parse_response", broken)
    async with make_client(lambda r: ok(1), max_retries=3) as cb:
        with pytest.raises(InvalidResponseError) as info:
            await cb.request("POST", "/x", json={})
    assert "RecursionError" in str(info.value)
    assert info.value.processed is YES


async def test_a_parser_failure_shows_the_body_start_as_text_whatever_its_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the error shows of the body: its first 200 bytes as text, bytes that are not
    UTF-8 (here a stray one, and a character cut in two at byte 200) replaced, never an
    error of its own in place of the typed one."""
    import commbox_async._base_client as base

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(base, "parse_response", broken)
    body = b"\xff" + b"a" * 198 + "\u00e9".encode() + b"tail"
    kind = "application/json; charset=utf-8"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": kind})

    async with make_client(handler) as cb:
        with pytest.raises(InvalidResponseError) as info:
            await cb.request("GET", "/x")
    assert info.value.snippet == "\ufffd" + "a" * 198 + "\ufffd"
    assert info.value.content_type == kind


async def test_an_http_library_failure_is_typed() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise RuntimeError("the library broke")

    async with make_client(handler, max_retries=3) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("POST", "/x", json={})
    assert info.value.reason == "transport_error"
    assert info.value.processed is MAYBE  # the mock was called: it may have been sent
    assert calls == 1


async def test_a_body_that_cannot_be_encoded_is_a_configuration_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return ok(1)

    async with make_client(handler) as cb:
        with pytest.raises(ConfigurationError, match="could not be encoded"):
            await cb.request("POST", "/x", json={"when": object()})
    assert calls == 0


# -- response size ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "processed"), [(200, YES), (503, NO), (502, MAYBE)])
async def test_a_declared_body_over_the_limit_is_not_read(
    transport: str, status: int, processed: Processed
) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
    head += "content-length: 300000000\r\n\r\n"
    async with raw_server(lambda m, p, b: ("raw", head.encode() + b"{", "hang")) as server:
        async with socket_client(
            server.url, transport, max_response_bytes=100_000, timeout=10
        ) as cb:
            with anyio.fail_after(5), pytest.raises(ResponseTooLargeError) as info:
                await cb.request("POST", "/x", json={})
    assert info.value.processed is processed
    assert info.value.declared == 300_000_000
    assert info.value.content_type == "application/json"
    assert "max_response_bytes=100,000" in str(info.value)


async def test_a_response_over_the_limit_is_not_asked_for_again() -> None:
    """The same request gets the same too large answer: a GET (retried on a 503 otherwise) is
    sent once."""
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return httpx.Response(503, content=b"x" * 2000)

    async with make_client(handler, max_response_bytes=1000, max_retries=3) as cb:
        with pytest.raises(ResponseTooLargeError):
            await cb.request("GET", "/x")
    assert attempts == 1


def _body_of_about(size: int) -> bytes:
    """An envelope about ``size`` bytes long (two network reads' worth at 100 kB)."""
    return json.dumps(envelope("x" * size)).encode()


def _chunked(body: bytes, piece: int) -> bytes:
    parts = [body[i : i + piece] for i in range(0, len(body), piece)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_a_body_of_exactly_the_limit_is_read_whole_however_it_is_framed(
    transport: str, framing: str
) -> None:
    body = _body_of_about(100_000)
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    if framing == "content-length":
        raw = f"{head}content-length: {len(body)}\r\n\r\n".encode() + body
    elif framing == "chunked":
        raw = f"{head}transfer-encoding: chunked\r\n\r\n".encode() + _chunked(body, 30_000)
    else:
        raw = f"{head}connection: close\r\n\r\n".encode() + body
    async with raw_server(lambda m, p, b: ("raw", raw, "close")) as server:
        async with socket_client(server.url, transport, max_response_bytes=len(body)) as cb:
            assert await cb.request("GET", "/x") == "x" * 100_000


async def test_a_body_with_neither_length_nor_chunks_is_capped_too(transport: str) -> None:
    """Read until the server closes: nothing declares its size, so the limit is checked as it
    comes in."""
    body = _body_of_about(300_000)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
    async with raw_server(lambda m, p, b: ("raw", head + body, "close")) as server:
        async with socket_client(server.url, transport, max_response_bytes=100_000) as cb:
            with pytest.raises(ResponseTooLargeError) as info:
                await cb.request("GET", "/x")
    assert info.value.declared is None


@pytest.mark.parametrize(
    ("length", "declared"),
    [
        ("1" + "0" * 17, 10**17),  # 18 digits: read as a length, over the limit at once
        ("1" + "0" * 18, None),  # 19 digits: no length a body can have, ignored
    ],
)
async def test_a_declared_length_is_believed_up_to_18_digits(
    length: str, declared: int | None
) -> None:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    piece = b"x" * 65536
    async with raw_server(lambda m, p, b: ("raw", head.encode() + piece * 4, "close")) as server:
        async with socket_client(server.url, "httpx", max_response_bytes=100_000) as cb:
            with pytest.raises(ResponseTooLargeError) as info:
                await cb.request("GET", "/x")
    assert info.value.declared == declared


async def test_a_chunked_body_stops_being_read_at_the_limit(transport: str) -> None:
    chunk = b"x" * 65536
    piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    # 32 MiB offered; the client must stop after about 1 MiB.
    async with raw_server(lambda m, p, b: ("raw", head + piece * 512, "close")) as server:
        async with socket_client(server.url, transport, max_response_bytes=1 << 20) as cb:
            with pytest.raises(ResponseTooLargeError) as info:
                await cb.request("GET", "/x")
    assert info.value.processed is YES
    assert info.value.declared is None


async def test_a_compressed_body_is_capped_after_decompression(transport: str) -> None:
    bomb = gzip.compress(b"[" + b"0," * 5_000_000 + b"0]")  # 10 MB of JSON in ~10 KB
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        + f"content-length: {len(bomb)}\r\n\r\n".encode()
    )
    async with raw_server(lambda m, p, b: ("raw", head + bomb, "close")) as server:
        async with socket_client(server.url, transport, max_response_bytes=1 << 20) as cb:
            with pytest.raises(ResponseTooLargeError):
                await cb.request("GET", "/x")
            # Without the limit (per call), the same body is read whole.
            body = await cb.with_options(max_response_bytes=None).request("GET", "/x")
            assert len(body) == 5_000_001


async def test_stacked_encodings_are_refused_before_they_inflate(transport: str) -> None:
    """Nested gzip: a few KB on the wire, a gigabyte once both layers are undone."""
    inner = gzip.compress(b" " * (64 << 20))
    body = gzip.compress(inner)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + b"content-encoding: gzip, gzip\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    async with raw_server(lambda m, p, b: ("raw", head + body, "close")) as server:
        async with socket_client(server.url, transport, max_retries=0) as cb:
            with pytest.raises(InvalidResponseError, match="stacked Content-Encoding") as info:
                await cb.request("POST", "/x", json={})
    assert info.value.processed is YES
    # The error says what came back: its content type, and no body (none could be read).
    assert info.value.content_type == "application/json"
    assert info.value.snippet == ""
    assert "content-type application/json, body starts ''" in str(info.value)


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
async def test_deflate_with_and_without_its_zlib_header_is_read(transport: str, wbits: int) -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = c.compress(json.dumps(envelope({"id": 7})).encode()) + c.flush()
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: deflate\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    async with raw_server(lambda m, p, b: ("raw", head + body, "close")) as server:
        async with socket_client(server.url, transport) as cb:
            assert await cb.request("GET", "/x") == {"id": 7}
        assert server.headers[0]["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_small_length_over_a_chunked_body_does_not_lift_the_cap() -> None:
    """Transfer-Encoding overrides Content-Length: the body is framed by its chunks, so the
    declared 10 bytes must not let 300 MB through (httpx; aiohttp refuses the pair)."""
    chunk = b"x" * 65536
    piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    async with raw_server(lambda m, p, b: ("raw", head + piece * 64, "close")) as server:
        async with socket_client(server.url, "httpx", max_response_bytes=1 << 20) as cb:
            with pytest.raises(ResponseTooLargeError):
                await cb.request("GET", "/x")


@pytest.mark.parametrize("what", ["body", "headers"])
async def test_a_server_dripping_its_answer_cannot_hold_a_call(transport: str, what: str) -> None:
    """A byte every 50 ms never trips a read timeout; the call's deadline (300 s by default,
    here 0.5 s) ends it, with the verdict of how far it got."""
    body = json.dumps(envelope({"id": 1})).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\n\r\n".encode()
    at_once, dripped = (head, body) if what == "body" else (b"", head + body)
    assert AsyncCommBox(token="t")._options.deadline == 300
    async with raw_server(lambda m, p, b: ("drip", at_once, dripped, 0.05)) as server:
        async with socket_client(server.url, transport, timeout=5, deadline=0.5) as cb:
            start = anyio.current_time()
            with pytest.raises(APITimeoutError) as info:
                await cb.request("POST", "/x", json={})
            assert anyio.current_time() - start < 2
    assert info.value.processed is (YES if what == "body" else MAYBE)


async def test_the_depth_limit_is_a_client_option() -> None:
    deep = b'{"status": "200", "data": ' + b"[" * 300 + b"]" * 300 + b"}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=deep)

    async with make_client(handler, max_retries=0) as cb:
        with pytest.raises(InvalidResponseError, match="deeper"):
            await cb.request("POST", "/x", json={})
        assert len(await cb.with_options(max_depth=400).request("GET", "/x")) == 1
    with pytest.raises(ConfigurationError, match="max_depth"):
        make_client(handler, max_depth=0)


async def test_max_response_bytes_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        make_client(lambda r: ok(), max_response_bytes=0)


# -- what errors say ---------------------------------------------------------------------------


async def test_connection_errors_name_the_host(transport: str) -> None:
    from .rawserver import unused_port

    port = await unused_port()
    async with socket_client(f"http://127.0.0.1:{port}", transport, max_retries=0) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("GET", "/x")
    assert "127.0.0.1" in str(info.value)
    assert info.value.cause_type is not None
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("raised", "message", "reason"),
    [
        (
            httpx.ConnectError("connection refused"),
            "could not connect to api.commbox.io: connection refused",
            "connect_error",
        ),
        # httpcore's timeouts often carry no message: the class then says what happened.
        (
            httpx.ReadTimeout(""),
            "timed out waiting for the response of api.commbox.io: ReadTimeout",
            "read_timeout",
        ),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            "connection to api.commbox.io failed after the request was sent: "
            "peer closed connection",
            "connection_lost",
        ),
        (
            httpx.ReadError(""),
            "connection to api.commbox.io failed after the request was sent: ReadError",
            "connection_lost",
        ),
    ],
)
async def test_a_transport_failure_says_what_the_library_said_and_names_its_class(
    raised: httpx.TransportError, message: str, reason: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async with make_client(handler, max_retries=0) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("GET", "/x")
    assert (info.value.message, info.value.reason) == (message, reason)
    assert info.value.cause_type == type(raised).__name__


async def test_a_401_says_what_to_check() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=envelope(status=401, description="Unauthorized"))

    async with make_client(handler) as cb:
        with pytest.raises(CommBoxError) as info:
            await cb.request("GET", "/x")
    assert "COMMBOX_TOKEN" in str(info.value)
    assert "callable" in str(info.value)
    async with make_client(handler, token=lambda: "rotated") as cb:
        with pytest.raises(CommBoxError) as info:
            await cb.request("GET", "/x")
    assert "asked again" in str(info.value)


def test_retry_after_dates_no_calendar_holds_are_ignored() -> None:
    from commbox_async._retry import parse_retry_after

    assert parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT") is None
    assert parse_retry_after("Sat, 01 Jan 10000 00:00:00 GMT") is None
    assert parse_retry_after("1e999") is None
    assert parse_retry_after("9" * 5000) is None
    assert parse_retry_after("Mon, 01 Jan 0001 00:00:00 GMT") == 0.0


async def test_a_hostile_retry_after_is_a_typed_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": "Fri, 31 Dec 99999 23:59:59 GMT"}
        return httpx.Response(429, json=envelope(status=429), headers=headers)

    async with make_client(handler, max_retries=1) as cb:
        with pytest.raises(CommBoxError) as info:
            await cb.request("GET", "/x")
    assert info.value.processed is NO


def test_a_lone_surrogate_in_an_id_is_a_configuration_error() -> None:
    from commbox_async._urls import build_path

    with pytest.raises(ConfigurationError, match="object_id is not valid text"):
        build_path("/objects/{object_id}", {"object_id": "12\udcff"})


@pytest.mark.parametrize("token", ["tökén", "tok en", "tok\nen", "\u200btok"])
def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_client(lambda r: ok(), token=token)
    assert "position" in str(info.value)
    assert token not in str(info.value)


async def test_a_token_callable_returning_a_bad_token_is_refused() -> None:
    async with make_client(lambda r: ok(), token=lambda: "ünicode") as cb:
        with pytest.raises(ConfigurationError, match="token callable"):
            await cb.request("GET", "/x")


async def test_a_token_read_with_its_newline_still_works() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return ok(json.loads("1"))

    async with make_client(handler, token="abc123\n") as cb:
        await cb.request("GET", "/x")
    assert seen == ["Bearer abc123"]
