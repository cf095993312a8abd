"""The retry rules: what is retried, for which method, how long it waits, and what it re-sends."""

from __future__ import annotations

import email.utils
import io
import os
import time
from typing import Any

import anyio
import httpx
import pytest

from commbox_async import (
    APIConnectionError,
    APITimeoutError,
    Attachment,
    CommBoxError,
    DeadlineExceededError,
    RateLimitError,
    ServerError,
)
from commbox_async._retry import RetryPolicy, parse_retry_after

from .conftest import envelope, make_client, ok
from .rawserver import raw_server, respond, unused_port

pytestmark = pytest.mark.anyio


def _fail(kind: str, request: httpx.Request) -> httpx.Response:
    if kind == "connect_error":
        raise httpx.ConnectError("refused", request=request)
    if kind == "connect_timeout":
        raise httpx.ConnectTimeout("slow connect", request=request)
    if kind == "read_timeout":
        raise httpx.ReadTimeout("slow read", request=request)
    if kind == "lost_response":
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if kind == "reset":
        raise httpx.ReadError("Connection reset by peer", request=request)
    status = int(kind)
    return httpx.Response(status, json=envelope(status=status, description=f"status {status}"))


FAILURES = [
    "connect_error",
    "connect_timeout",
    "read_timeout",
    "lost_response",
    "reset",
    "429",
    "500",
    "502",
    "503",
    "504",
    "400",
    "404",
    "501",
]
# Which failures each kind of method retries by default.
RETRIED = {
    "GET": {
        "connect_error",
        "connect_timeout",
        "read_timeout",
        "lost_response",
        "reset",
        "429",
        "500",
        "502",
        "503",
        "504",
    },
    "DELETE": {
        "connect_error",
        "connect_timeout",
        "read_timeout",
        "lost_response",
        "reset",
        "429",
        "500",
        "502",
        "503",
        "504",
    },
    "POST": {"connect_error", "connect_timeout", "429", "503"},
    "PATCH": {"connect_error", "connect_timeout", "429", "503"},
}
MAYBE_PROCESSED = {"read_timeout", "lost_response", "reset", "500", "502", "504"}


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST", "PATCH"])
@pytest.mark.parametrize("failure", FAILURES)
async def test_retry_matrix(method: str, failure: str) -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return _fail(failure, request)
        return ok({"id": 1})

    async with make_client(handler, max_retries=3) as cb:
        if failure in RETRIED[method]:
            assert await cb.request(method, "/objects/1") == {"id": 1}
            assert attempts == 2
            assert sum(cb.metrics.retries.values()) == 1
        else:
            with pytest.raises(CommBoxError) as info:
                await cb.request(method, "/objects/1")
            assert attempts == 1
            assert info.value.may_have_been_processed == (failure in MAYBE_PROCESSED)


@pytest.mark.parametrize("failure", sorted(MAYBE_PROCESSED))
async def test_post_retry_of_maybe_processed_is_opt_in(failure: str) -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return _fail(failure, request) if attempts == 1 else ok(5)

    async with make_client(handler) as cb:
        assert await cb.with_options(retry_uncertain=True).request("POST", "/x") == 5
    assert attempts == 2


async def test_retries_are_bounded_and_last_error_raised() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return _fail("502", request)

    async with make_client(handler, max_retries=2) as cb:
        with pytest.raises(ServerError) as info:
            await cb.request("GET", "/x")
        assert info.value.http_status == 502
        assert attempts == 3
        attempts = 0
        with pytest.raises(ServerError):
            await cb.with_options(max_retries=0).request("GET", "/x")
        assert attempts == 1


def test_parse_retry_after_both_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_retry_after_is_honoured(form: str) -> None:
    stamps: list[float] = []
    wait = 1.0

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            value = (
                str(wait)
                if form == "seconds"
                else email.utils.formatdate(time.time() + 2, usegmt=True)
            )
            return httpx.Response(429, json=envelope(status=429), headers={"Retry-After": value})
        return ok("done")

    async with make_client(handler, max_backoff=0.001) as cb:
        assert await cb.request("POST", "/x") == "done"
    # The HTTP-date has one-second resolution, so it may mean a little over 1 s from now.
    assert stamps[1] - stamps[0] >= 0.9


async def test_429_pauses_the_whole_bucket() -> None:
    stamps: dict[str, float] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        if key == "/first" and key not in stamps:
            stamps[key] = time.monotonic()
            return httpx.Response(429, json=envelope(status=429), headers={"Retry-After": "0.5"})
        stamps.setdefault(key + "-ok", time.monotonic())
        return ok()

    async with make_client(handler, rate_limit=1000, burst=100) as cb:
        await cb.request(
            "GET",
            "/first",
        )
        t0 = stamps["/first"]
        # Another caller, not the one that was throttled, is held back too.
        await cb.request("GET", "/second")
    assert stamps["/second-ok"] - t0 >= 0.45


async def test_a_429_holds_back_a_call_already_under_way_for_its_retry_after() -> None:
    """The throttle pauses for the Retry-After, not for the backoff: a second caller that
    starts while the throttled one waits is held back too."""
    stamps: dict[str, float] = {}
    throttled = anyio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        if key == "/first" and key not in stamps:
            stamps[key] = time.monotonic()
            throttled.set()
            return httpx.Response(429, json=envelope(status=429), headers={"Retry-After": "0.5"})
        stamps.setdefault(key + "-ok", time.monotonic())
        return ok()

    async def second(cb: Any) -> None:
        await throttled.wait()
        await cb.request("GET", "/second")

    async with make_client(handler, rate_limit=1000, burst=100, max_backoff=0.001) as cb:
        async with anyio.create_task_group() as tg:
            tg.start_soon(second, cb)
            await cb.request("GET", "/first")
        assert cb.metrics.rate_limited == 1
    assert stamps["/second-ok"] - stamps["/first"] >= 0.45


async def test_each_429_is_counted() -> None:
    answers = iter([429, 429])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        if status == 429:
            return httpx.Response(429, json=envelope(status=429), headers={"Retry-After": "0"})
        return ok()

    async with make_client(handler) as cb:
        await cb.request("GET", "/x")
        assert cb.metrics.rate_limited == 2


async def test_retry_after_beyond_cap_raises_at_once_with_the_wait() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return httpx.Response(429, json=envelope(status=429), headers={"Retry-After": "3600"})

    async with make_client(handler, max_retry_after=30) as cb:
        start = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await cb.request("GET", "/x")
    assert time.monotonic() - start < 5
    assert attempts == 1
    assert info.value.retry_after == 3600
    assert "3600" in str(info.value)
    assert "max_retry_after" in str(info.value)


async def test_retry_after_beyond_deadline_raises_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=envelope(status=503), headers={"Retry-After": "20"})

    async with make_client(handler, deadline=5) as cb:
        start = time.monotonic()
        with pytest.raises(ServerError) as info:
            await cb.request("GET", "/x")
    assert time.monotonic() - start < 3
    assert "deadline" in (info.value.gave_up_reason or "")


async def test_a_retry_after_an_unreadable_answer_is_counted_under_its_error_class() -> None:
    answers = iter([httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ok(1)

    async with make_client(handler) as cb:
        assert await cb.request("GET", "/x") == 1
        assert dict(cb.metrics.retries) == {"InvalidResponseError": 1}


def _unavailable(retry_after: float) -> ServerError:
    return ServerError(
        "503",
        http_status=503,
        envelope_status=503,
        description=None,
        method="GET",
        path="/x",
        retry_after=retry_after,
    )


def _policy(max_retry_after: float = 60.0) -> RetryPolicy:
    return RetryPolicy(
        max_retries=3,
        initial_backoff=0.001,
        max_backoff=0.002,
        max_retry_after=max_retry_after,
        retry_uncertain=False,
    )


def test_a_retry_after_of_exactly_max_retry_after_is_waited() -> None:
    # "over max_retry_after" gives up; the cap itself is still a wait the caller accepted.
    policy = _policy(max_retry_after=5.0)
    assert policy.next_wait(_unavailable(5.0), method="GET", retries=0, deadline_at=None) == 5.0
    over = _unavailable(5.5)
    assert policy.next_wait(over, method="GET", retries=0, deadline_at=None) is None
    assert over.gave_up_reason == "Retry-After 5.5s exceeds max_retry_after=5s"


def test_a_wait_that_would_end_at_the_deadline_gives_up_saying_what_was_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry that would start as the deadline passes could only be cut off: give up, and
    say how much of the deadline was left (a quarter of a second, not rounded up)."""
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)
    policy = _policy()
    at_the_deadline = _unavailable(0.25)
    assert policy.next_wait(at_the_deadline, method="GET", retries=0, deadline_at=100.25) is None
    assert at_the_deadline.gave_up_reason == (
        "waiting 0.25s would pass the call's deadline (0.25s left)"
    )
    assert policy.next_wait(_unavailable(0.2), method="GET", retries=0, deadline_at=100.25) == 0.2


def test_a_retry_after_of_just_64_characters_is_read_and_a_longer_one_ignored() -> None:
    assert parse_retry_after("0" * 63 + "7") == 7.0
    assert parse_retry_after("0" * 64 + "7") is None
    assert parse_retry_after("") is None


@pytest.fixture
def eastern_time() -> Any:
    """The process's local time zone set to UTC-5 (no DST) for the test, then restored."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EST+05"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.parametrize("zone", ["GMT", "-0000", "+0100"])
def test_a_retry_after_date_means_the_same_instant_in_any_local_time_zone(
    eastern_time: Any, zone: str
) -> None:
    # A date "in 30 s": GMT (what RFC 9110 asks), -0000 (which email.utils reads as a date
    # without a zone) and an offset; none may be read in the machine's own local time.
    now = 1_700_000_000.0
    offset = 3600 if zone == "+0100" else 0
    date = time.strftime("%a, %d %b %Y %H:%M:%S", time.gmtime(now + 30 + offset))
    assert parse_retry_after(f"{date} {zone}", now=now) == 30.0


async def test_per_call_deadline_covers_all_attempts() -> None:
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with make_client(base_url=server.url, deadline=0.5, timeout=10, max_retries=5) as cb:
            start = time.monotonic()
            with pytest.raises(DeadlineExceededError) as info:
                await cb.request("GET", "/x")
            elapsed = time.monotonic() - start
    assert elapsed < 2.5
    assert isinstance(info.value, APITimeoutError)
    assert info.value.reason == "deadline"


async def test_files_are_resent_whole_on_retry(tmp_path: Any) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-" + bytes(range(256)) * 400)
    fileobj = io.BytesIO(b"HEADER" + b"x" * 70000)
    fileobj.seek(100)  # left mid-way by the caller: still sent whole, on every attempt
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        if len(bodies) == 1:
            return httpx.Response(503, json=envelope(status=503))
        return ok(1)

    files = [
        path,
        Attachment(source=fileobj, filename="data.bin"),
        Attachment(source=b"abc", filename="a.txt"),
    ]
    async with make_client(handler) as cb:
        await cb.request("POST", "/streams/{s}/objects", s=1, data={"data": "{}"}, files=files)
    assert len(bodies) == 2
    assert bodies[0] == bodies[1].replace(*_boundaries(bodies[1], bodies[0]))
    assert path.read_bytes() in bodies[1]
    assert b"HEADER" + b"x" * 70000 in bodies[0]
    assert b"HEADER" + b"x" * 70000 in bodies[1]


def _boundaries(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    # The two attempts use different multipart boundaries; compare the rest byte for byte.
    return a.split(b"\r\n", 1)[0], b.split(b"\r\n", 1)[0]


async def test_cancellation_is_never_retried_or_swallowed() -> None:
    attempts = 0

    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with make_client(base_url=server.url, max_retries=5) as cb:

            async def call() -> None:
                nonlocal attempts
                attempts += 1
                await cb.request("GET", "/x")

            with anyio.move_on_after(0.3) as scope:
                await call()
            assert scope.cancelled_caught
            assert cb.metrics.total_retries == 0
            assert len(server.received) == 1


# -- real sockets ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_lost_response_after_processing(method: str) -> None:
    """The server reads the whole request, acts on it, then drops the connection."""
    async with raw_server(lambda m, p, b: ("close",)) as server:
        async with make_client(base_url=server.url, max_retries=2) as cb:
            with pytest.raises(APIConnectionError) as info:
                await cb.request(method, "/streams/1/objects", json={"data": {"Message": "hi"}})
    assert info.value.may_have_been_processed
    assert not isinstance(info.value, APITimeoutError)
    # POST reached the server exactly once: the library never re-sends it on its own.
    assert len(server.received) == (3 if method == "GET" else 1)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_read_timeout_is_not_a_connect_error(method: str) -> None:
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with make_client(base_url=server.url, timeout=0.2, max_retries=1) as cb:
            with pytest.raises(APITimeoutError) as info:
                await cb.request(method, "/x", json={} if method == "POST" else None)
    assert info.value.reason == "read_timeout"
    assert info.value.may_have_been_processed
    assert len(server.received) == (2 if method == "GET" else 1)


async def test_connection_refused_is_retried_even_for_post() -> None:
    port = await unused_port()
    async with make_client(base_url=f"http://127.0.0.1:{port}", max_retries=2) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("POST", "/x", json={})
        assert info.value.reason == "connect_error"
        assert not info.value.may_have_been_processed
        assert cb.metrics.retries["connect_error"] == 2


async def test_real_server_503_then_success_for_post() -> None:
    calls = 0

    def behaviour(method: str, path: str, body: bytes) -> tuple[Any, ...]:
        nonlocal calls
        calls += 1
        return (
            respond(503, headers={"Retry-After": "0"}) if calls == 1 else respond(200, {"id": 77})
        )

    async with raw_server(behaviour) as server, make_client(base_url=server.url) as cb:
        assert await cb.request("POST", "/x", json={"a": 1}) == {"id": 77}
    assert [b for _, _, b in server.received] == [b'{"a":1}', b'{"a":1}']


class _RecordingThrottle:
    """A throttle that lets everything through and records the pauses it is asked for."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def acquire(self) -> float:
        return 0.0

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def test_a_429_without_retry_after_pauses_the_throttle_for_the_backoff() -> None:
    answers = iter([httpx.Response(429, json=envelope(status=429)), ok("done")])
    throttle = _RecordingThrottle()
    async with make_client(
        lambda r: next(answers), throttle=throttle, initial_backoff=0.01, max_backoff=1.0
    ) as cb:
        assert await cb.request("POST", "/x") == "done"
    # The first retry's backoff: initial * 2**0, plus up to `initial` of jitter.
    assert len(throttle.pauses) == 1
    assert 0.01 <= throttle.pauses[0] <= 0.02
