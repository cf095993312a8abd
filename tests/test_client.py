"""AsyncCommBox: configuration, encoding, envelopes, errors, redaction, lifecycle, hooks."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commbox_async import (
    APIConnectionError,
    APIStatusError,
    AsyncCommBox,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    Hooks,
    InvalidArgumentError,
    InvalidResponseError,
    NotFoundError,
    NotImplementedAPIError,
    PartialSuccessError,
    Processed,
    ServerError,
    TokenError,
)
from commbox_async._response import _loads

from .conftest import TOKEN, envelope, make_client, ok

pytestmark = pytest.mark.anyio


# -- configuration ---------------------------------------------------------------------------


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMBOX_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="COMMBOX_TOKEN"):
        AsyncCommBox()


def test_token_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMBOX_TOKEN", TOKEN)
    monkeypatch.setenv("COMMBOX_BASE_URL", "https://api.mybrand.example")
    cb = AsyncCommBox()
    assert cb.base_url == "https://api.mybrand.example"


@pytest.mark.parametrize(
    "url",
    [
        "http://api.commbox.io",
        "http://10.0.0.5:8080",
        "ftp://api.commbox.io",
        "api.commbox.io",
        "https://api.commbox.io/?x=1",
    ],
)
def test_base_url_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncCommBox(token=TOKEN, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:9", "http://[::1]:80", "http://127.5.6.7"]
)
def test_plain_http_allowed_for_loopback(url: str) -> None:
    assert AsyncCommBox(token=TOKEN, base_url=url).base_url.startswith("http://")


def test_empty_token_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        AsyncCommBox(token="  ")


def test_authorization_header_cannot_be_smuggled_in() -> None:
    with pytest.raises(ConfigurationError, match="token="):
        AsyncCommBox(token=TOKEN, default_headers={"Authorization": "Bearer x"})


@pytest.mark.parametrize("name", ["Content-Type", "content-length", "Transfer-Encoding"])
def test_a_body_header_cannot_be_a_default(name: str) -> None:
    # httpx kept a default Content-Type over a JSON body's, aiohttp sent application/json;
    # over multipart it would drop the boundary.
    with pytest.raises(ConfigurationError, match="set per request from its body"):
        AsyncCommBox(token=TOKEN, default_headers={name: "text/plain"})
    cb = AsyncCommBox(token=TOKEN)
    with pytest.raises(ConfigurationError, match="set per request from its body"):
        cb.with_options(default_headers={name: "text/plain"})


async def test_brand_base_url_with_path_prefix() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return ok(1)

    async with make_client(handler, base_url="https://api.mybrand.example/v1/") as cb:
        await cb.request("GET", "/managers/{manager_id}", manager_id=7)
    assert seen == ["https://api.mybrand.example/v1/managers/7"]


# -- path encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hNyRN_fLUy7rrOrN9jLpipA==", "/streams/hNyRN_fLUy7rrOrN9jLpipA%3D%3D/objects"),
        ("a/b", "/streams/a%2Fb/objects"),
        ("..", "/streams/%2E%2E/objects"),
        (".", "/streams/%2E/objects"),
        ("x?admin=1#frag", "/streams/x%3Fadmin%3D1%23frag/objects"),
        ("50%", "/streams/50%25/objects"),
        ("a b", "/streams/a%20b/objects"),
        (532, "/streams/532/objects"),
    ],
)
async def test_path_parameters_are_one_encoded_segment(value: Any, expected: str) -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return ok([])

    async with make_client(handler) as cb:
        await cb.request("GET", "/streams/{stream_id}/objects", stream_id=value)
    assert seen[0].raw_path.decode() == expected
    assert seen[0].query == b""


async def test_path_template_errors_are_clear() -> None:
    async with make_client(lambda r: ok()) as cb:
        with pytest.raises(ConfigurationError, match="stream_id"):
            await cb.request("GET", "/streams/{stream_id}")
        with pytest.raises(ConfigurationError, match="no field"):
            await cb.request("GET", "/streams", stream_id=1)
        # as many values as fields, but under another name
        with pytest.raises(ConfigurationError, match="needs values for stream_id"):
            await cb.request("GET", "/streams/{stream_id}", stream=1)
        with pytest.raises(ConfigurationError, match="must not be empty"):
            await cb.request("GET", "/streams/{stream_id}", stream_id="")


# -- envelope and errors ---------------------------------------------------------------------


async def test_returns_data_and_raw_response_without_second_request() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=envelope({"id": 3}), headers={"x-request-id": "r-1"})

    async with make_client(handler) as cb:
        assert await cb.request("GET", "/managers/3") == {"id": 3}
        raw = await cb.with_raw_response.request("GET", "/managers/3")
    assert calls == 2
    assert raw.parsed == {"id": 3}
    assert raw.http_status == 200
    assert raw.envelope_status == 200
    assert raw.description == "OK"
    assert raw.response_time == "2024-08-06T07:51:52.2581942Z"
    assert raw.headers["x-request-id"] == "r-1"
    assert raw.json["data"] == {"id": 3}
    assert raw.attempts == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (500, ServerError),
        (501, NotImplementedAPIError),
        (418, APIStatusError),
    ],
)
async def test_status_errors_are_typed(status: int, cls: type[APIStatusError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={"status": status, "description": "Operation failed", "response_time": "t"},
            headers={"x-request-id": "req-42"},
        )

    async with make_client(handler, max_retries=0) as cb:
        with pytest.raises(cls) as info:
            await cb.request("POST", "/objects/{object_id}/remarks", object_id=9, json={})
    err = info.value
    assert type(err) is cls
    assert err.http_status == status
    assert err.envelope_status == status
    assert err.description == "Operation failed"
    assert err.method == "POST"
    assert err.path == "/objects/9/remarks"
    assert err.request_id == "req-42"
    assert "Operation failed" in str(err)
    assert "/objects/9/remarks" in str(err)


async def test_failure_envelope_inside_http_200_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(None, status="400", description="Missing Message"))

    async with make_client(handler) as cb:
        with pytest.raises(BadRequestError) as info:
            await cb.request("POST", "/streams/1/objects", json={})
    assert info.value.http_status == 200
    assert info.value.envelope_status == 400
    assert info.value.status_code == 400
    assert "Missing Message" in str(info.value)


async def test_206_partial_success_keeps_the_data() -> None:
    data = [{"phone": "972500000001", "status": 200}, {"phone": "972500000002", "status": 400}]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            206, json=envelope(data, status=206, description="Some messages failed")
        )

    async with make_client(handler) as cb:
        with pytest.raises(PartialSuccessError) as info:
            await cb.request("POST", "/v2/whatsapp/sendtemplatedmessage/{s}", s="abc==", json={})
        assert info.value.data == data
        assert info.value.description == "Some messages failed"
        assert info.value.may_have_been_processed
        # A caller that expects partial results (the WhatsApp resource) gets them as data.
        got = await cb.request(
            "POST", "/v2/whatsapp/sendtemplatedmessage/{s}", s="abc==", json={}, allow_partial=True
        )
        assert got == data


@pytest.mark.parametrize(
    ("body", "ctype", "fragment"),
    [
        (b"<html><body>Bad gateway</body></html>", "text/html", "<html>"),
        (b"", "application/json", ""),
        (b'{"status": "200", "data": {"id": 1', "application/json", '{"status"'),
    ],
)
async def test_non_json_success_body_is_a_typed_error(
    body: bytes, ctype: str, fragment: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": ctype})

    async with make_client(handler) as cb:
        with pytest.raises(InvalidResponseError) as info:
            await cb.request("GET", "/core/systemstatus")
    err = info.value
    assert err.http_status == 200
    assert err.content_type == ctype
    assert err.snippet.startswith(fragment)
    assert err.__cause__ is None
    assert err.__context__ is None  # no JSONDecodeError chained into what users see
    assert "JSONDecodeError" not in "".join(traceback.format_exception(err))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_JSON_VALUES,
    ascii_only=st.booleans(),
    before=st.sampled_from(["", " ", "\n", "\ufeff", "\u00a0"]),
    after=st.sampled_from(["", "\n", " \r\n\t", "x", "]", "\u00a0", "{}"]),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "latin-1"]),
)
def test_body_decoding_accepts_and_refuses_what_json_loads_does(
    value: Any, ascii_only: bool, before: str, after: str, encoding: str
) -> None:
    # The fast path (UTF-8, raw_decode) must agree with json.loads on every body.
    text = before + json.dumps(value, ensure_ascii=ascii_only) + after
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        content = text.encode("utf-8")
    try:
        expected: Any = json.loads(content)
    except ValueError as exc:
        expected = type(exc)
    try:
        got: Any = _loads(content)
    except ValueError as exc:
        got = type(exc)
    assert got == expected


def _holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_surrogate(v) for v in value)


@given(st.binary(max_size=64))
def test_body_decoding_of_arbitrary_bytes_matches_json_loads(content: bytes) -> None:
    try:
        expected: Any = json.loads(content)
    except ValueError:
        expected = ValueError
    if expected is not ValueError and _holds_surrogate(expected):
        expected = ValueError  # a lone surrogate: refused on purpose (json.loads lets it in)
    try:
        got: Any = _loads(content)
    except ValueError:
        got = ValueError
    assert got == expected


@pytest.mark.parametrize(
    "content",
    [
        '{"status": "200", "data": {"name": "שלום"}}\n'.encode(),
        b'\xef\xbb\xbf{"status": "200", "data": {"name": "x"}}',  # UTF-8 BOM
        '{"status": "200", "data": {"name": "שלום"}}'.encode("utf-16"),
        b'  \r\n{"status": "200", "data": {"name": "x"}}',
    ],
    ids=["hebrew-trailing-newline", "utf8-bom", "utf16", "leading-whitespace"],
)
async def test_json_bodies_off_the_fast_path_still_decode(content: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})

    async with make_client(handler) as cb:
        data = await cb.request("GET", "/core/systemstatus")
    assert data == json.loads(content)["data"]


async def test_envelope_status_that_is_not_a_decimal_number_is_left_out() -> None:
    # "²" passes str.isdigit() but int() refuses it: the status is unknown, not a crash.
    body = envelope([1], status="\u00b2")
    async with make_client(lambda r: httpx.Response(200, json=body)) as cb:
        raw = await cb.with_raw_response.request("GET", "/core/systemstatus")
    assert raw.parsed == [1]
    assert raw.envelope_status is None


async def test_html_error_page_from_a_proxy_is_a_status_error_with_snippet() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            502, content=b"<html>502 Bad Gateway</html>", headers={"content-type": "text/html"}
        )

    async with make_client(handler, max_retries=0) as cb:
        with pytest.raises(ServerError) as info:
            await cb.request("GET", "/core/systemstatus")
    assert info.value.http_status == 502
    assert info.value.envelope_status is None
    assert "502 Bad Gateway" in (info.value.description or "")


# -- redaction -------------------------------------------------------------------------------


async def test_token_never_in_repr_errors_logs_or_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="commbox_async")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if request.url.path.endswith("/boom"):
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(401, json=envelope(None, status=401, description="Unauthorized"))

    cb = make_client(handler, max_retries=1)
    texts = [repr(cb), str(cb), repr(cb.with_options(max_retries=0)), repr(cb._core.token)]
    async with cb:
        for path in ("/x", "/boom"):
            with pytest.raises(CommBoxError) as info:
                await cb.request("GET", path)
            texts += [str(info.value), repr(info.value)]
            texts.append("".join(traceback.format_exception(info.value)))
            texts.append(repr(info.value.__cause__))
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert caplog.records, "expected debug records"
    for text in texts:
        assert TOKEN not in text


async def test_one_debug_record_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="commbox_async")
    responses = iter([httpx.Response(503, json=envelope(status=503)), ok({"id": 1})])
    async with make_client(lambda r: next(responses)) as cb:
        await cb.request("GET", "/managers/{m}", m=1)
    records = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert [
        (r.commbox_method, r.commbox_path, r.commbox_status, r.commbox_attempt) for r in records
    ] == [  # type: ignore[attr-defined]
        ("GET", "/managers/1", 503, 1),
        ("GET", "/managers/1", 200, 2),
    ]
    assert all(r.commbox_elapsed >= 0 for r in records)  # type: ignore[attr-defined]


async def test_an_attempt_that_fails_on_the_wire_has_its_debug_record_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One DEBUG record per attempt, the failed ones included: what failed in place of the
    status, the same structured fields (commbox_status None)."""
    caplog.set_level(logging.DEBUG, logger="commbox_async")
    answers = iter(["refuse", "ok"])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        return ok({"id": 1})

    async with make_client(handler) as cb:
        start = time.monotonic()
        await cb.request("GET", "/managers/{m}", m=1)
        took = time.monotonic() - start
    records = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert [
        (r.commbox_method, r.commbox_path, r.commbox_status, r.commbox_attempt) for r in records
    ] == [  # type: ignore[attr-defined]
        ("GET", "/managers/1", None, 1),
        ("GET", "/managers/1", 200, 2),
    ]
    said = re.fullmatch(
        r"GET /managers/1 -> connect_error in (\d+\.\d{3})s \(attempt 1\)", records[0].getMessage()
    )
    assert said is not None
    assert float(said[1]) <= took + 0.0005  # the attempt's time, within the whole call's
    assert re.fullmatch(
        r"GET /managers/1 -> 200 in \d+\.\d{3}s \(attempt 2\)", records[1].getMessage()
    )


async def test_each_retry_is_logged_with_what_it_waits_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="commbox_async")
    responses = iter([httpx.Response(503, json=envelope(status=503)), ok({"id": 1})])
    async with make_client(lambda r: next(responses), max_retries=3) as cb:
        await cb.request("GET", "/managers/{m}", m=1)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(said) == 1
    assert re.fullmatch(
        r"retrying GET /managers/1 in \d+\.\d\ds after status_503 \(attempt 1 of 4\)", said[0]
    )


async def test_a_calls_timeouts_are_cut_to_what_is_left_of_its_deadline() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(1)

    async with make_client(handler, timeout=10, deadline=0.5) as cb:
        await cb.request("GET", "/x")
        await cb.with_options(deadline=60).request("GET", "/x")
    assert set(seen[0]) == {"connect", "read", "write", "pool"}
    assert all(0 < value <= 0.5 for value in seen[0].values())
    assert set(seen[1].values()) == {10}  # a deadline further off than the timeouts
    async with make_client(handler, timeout=None, deadline=0.5) as cb:  # no timeouts at all
        await cb.request("GET", "/x")
    assert all(0 < value <= 0.5 for value in seen[2].values())


async def test_a_timeout_shorter_than_what_is_left_of_the_deadline_stays_as_it_is() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(1)

    # One timeout longer than the 20 s deadline (cut to what is left), the others shorter.
    long_read = httpx.Timeout(connect=0.1, read=30, write=0.3, pool=0.4)
    long_write = httpx.Timeout(connect=0.1, read=0.2, write=30, pool=0.4)
    async with make_client(handler, deadline=20) as cb:
        await cb.with_options(timeout=long_read).request("GET", "/x")
        await cb.with_options(timeout=long_write).request("GET", "/x")
    assert 19 < seen[0].pop("read") <= 20
    assert 19 < seen[1].pop("write") <= 20
    assert seen == [
        {"connect": 0.1, "write": 0.3, "pool": 0.4},
        {"connect": 0.1, "read": 0.2, "pool": 0.4},
    ]


async def test_the_retry_hook_is_told_which_call_retries_why_and_after_how_long() -> None:
    events: list[Any] = []

    async def on_retry(event: Any) -> None:
        events.append(event)

    responses = iter([httpx.Response(503, json=envelope(status=503)), ok({"id": 1})])
    hooks = Hooks(on_retry=[on_retry])
    async with make_client(lambda r: next(responses), hooks=hooks) as cb:
        await cb.request("GET", "/managers/{m}", m=1)
    [event] = events
    assert (event.method, event.path, event.attempt, event.reason) == (
        "GET",
        "/managers/1",
        1,
        "status_503",
    )
    assert 0 <= event.wait <= 0.002 + 0.001  # max_backoff plus at most initial of jitter
    assert isinstance(event.error, ServerError) and event.error.http_status == 503


# -- token rotation --------------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
async def test_rotating_token_is_asked_again_once_after_401(is_async: bool) -> None:
    tokens = iter(["old-token", "new-token", "newer-token"])
    asked: list[str] = []

    def next_token() -> str:
        asked.append(value := next(tokens))
        return value

    async def next_token_async() -> str:
        return next_token()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old-token":
            return httpx.Response(401, json=envelope(status=401))
        return ok("fine")

    source = next_token_async if is_async else next_token
    async with make_client(handler, token=source) as cb:
        assert await cb.request("POST", "/objects/1/remarks", json={}) == "fine"
        assert asked == ["old-token", "new-token"]
        assert cb.metrics.token_refreshes == 1
        # Consulted per request:
        assert await cb.request("GET", "/x") == "fine"
        assert asked[-1] == "newer-token"


async def test_each_token_refresh_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # Two calls, each refused once with the token it started with: two refreshes.
    tokens = iter(["old-1", "new-1", "old-2", "new-2"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"].startswith("Bearer old"):
            return httpx.Response(401, json=envelope(status=401))
        return ok("fine")

    caplog.set_level(logging.INFO, logger="commbox_async")
    async with make_client(handler, token=lambda: next(tokens)) as cb:
        assert await cb.request("GET", "/a") == "fine"
        assert await cb.request("POST", "/b", json={}) == "fine"
        assert cb.metrics.token_refreshes == 2
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "401 on GET /a: asking the token callable again" in said
    assert "401 on POST /b: asking the token callable again" in said


async def test_a_token_refresh_retries_at_once(caplog: pytest.LogCaptureFixture) -> None:
    # No backoff before asking with the new token: the retry fits in a deadline shorter than
    # any wait would be.
    tokens = iter(["old", "new"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json=envelope(status=401))
        return ok("fine")

    async with make_client(handler, token=lambda: next(tokens), deadline=0.5) as cb:
        assert await cb.request("GET", "/a") == "fine"


async def test_401_twice_raises_and_static_token_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401, json=envelope(status=401))

    async with make_client(handler, token=lambda: "always-bad") as cb:
        with pytest.raises(AuthenticationError):
            await cb.request("GET", "/x")
    assert calls == 2
    calls = 0
    async with make_client(handler) as cb:
        with pytest.raises(AuthenticationError):
            await cb.request("GET", "/x")
    assert calls == 1


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (123, "the token callable returned int, not a str"),
        (None, "the token callable returned NoneType, not a str"),
        (b"tok", "the token callable returned bytes, not a str"),
        ("  ", "the token the token callable returned is empty"),
    ],
)
async def test_a_token_callable_returning_no_usable_token_says_what_it_returned(
    returned: Any, message: str
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return ok()

    async with make_client(handler, token=lambda: returned) as cb:
        with pytest.raises(TokenError) as info:
            await cb.request("GET", "/x")
    assert str(info.value) == message
    assert calls == 0


@pytest.mark.parametrize(("token", "kind"), [(b"tok", "bytes"), (123, "int")])
def test_a_token_neither_text_nor_callable_is_refused_naming_its_type(
    token: Any, kind: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncCommBox(token=token)
    assert str(info.value) == f"token must be a string or a callable returning one, got {kind}"


# -- lifecycle -------------------------------------------------------------------------------


async def test_closed_client_raises_clear_error() -> None:
    cb = make_client(lambda r: ok())
    async with cb:
        await cb.request("GET", "/x")
    assert cb.is_closed
    with pytest.raises(ClientStateError, match="closed"):
        await cb.request("GET", "/x")
    view = cb.with_options(max_retries=5)
    with pytest.raises(ClientStateError, match="closed"):
        await view.request("GET", "/x")
    await cb.aclose()  # idempotent


async def test_user_http_client_is_used_and_not_closed() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: ok("mine")))
    async with AsyncCommBox(token=TOKEN, http_client=http, rate_limit=None) as cb:
        assert await cb.request("GET", "/x") == "mine"
    assert not http.is_closed
    await http.aclose()
    cb2 = AsyncCommBox(token=TOKEN, http_client=http, rate_limit=None)
    with pytest.raises(ClientStateError, match=r"httpx\.AsyncClient"):
        await cb2.request("GET", "/x")


def test_client_from_another_event_loop_is_refused() -> None:
    cb = make_client(lambda r: ok())

    async def use() -> None:
        await cb.request("GET", "/x")

    anyio.run(use)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            anyio.run(use)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], ClientStateError)
    assert "another event loop" in str(errors[0])


def test_client_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(make_client(lambda r: ok()))


async def test_with_options_shares_pool_throttle_and_stats() -> None:
    async with make_client(lambda r: ok(), rate_limit=100) as cb:
        view = cb.with_options(max_retries=0, timeout=5, deadline=2)
        assert view._core is cb._core
        assert view.throttle is cb.throttle
        await view.request("GET", "/x")
        assert cb.metrics.requests == 1
        assert view._options.max_retries == 0
        assert cb._options.max_retries == 2
        assert view._options.timeout.read == 5


async def test_default_headers_are_sent_and_with_options_adds_to_them() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return ok()

    async with make_client(
        handler, user_agent="shop/2", default_headers={"X-Tenant": "a", "Accept": "text/x"}
    ) as cb:
        view = cb.with_options(default_headers={"X-Trace": "t1", "X-Tenant": "b"})
        await view.request("GET", "/x")
        await cb.request("GET", "/x")
    via_view, via_client = seen
    assert via_view["x-tenant"] == "b"
    assert via_view["x-trace"] == "t1"
    assert via_client["x-tenant"] == "a"
    assert "x-trace" not in via_client
    for headers in seen:
        assert headers["user-agent"] == "shop/2"
        assert headers["accept"] == "text/x"  # the caller's default wins over ours
        assert headers["authorization"] == f"Bearer {TOKEN}"
    # The token is added per attempt, never kept in the options.
    assert TOKEN not in repr(view._options.static_headers)


# -- hooks and counters ----------------------------------------------------------------------


async def test_hooks_and_counters() -> None:
    events: list[tuple[str, Any]] = []

    async def on_retry(e: Any) -> None:
        events.append(("retry", (e.reason, e.attempt)))

    hooks = Hooks(
        on_request=[lambda e: events.append(("request", e.attempt))],
        on_response=[lambda e: events.append(("response", e.http_status))],
        on_retry=[on_retry],
        on_throttle=[lambda e: events.append(("throttle", e.waited > 0))],
    )
    responses = iter(
        [httpx.Response(429, json=envelope(status=429), headers={"Retry-After": "0"}), ok(), ok()]
    )
    # 20/s, burst 1: the second request waits unless the first took 50 ms (1000/s waited only
    # when calls were faster than 1 ms, which a loaded machine or mutmut's tracing is not).
    async with make_client(lambda r: next(responses), hooks=hooks, rate_limit=20, burst=1) as cb:
        await cb.request("GET", "/x")
        await cb.request("GET", "/x")
        snap = cb.metrics.snapshot()
    assert ("retry", ("status_429", 1)) in events
    assert ("request", 2) in events
    assert events.count(("response", 200)) == 2
    assert ("throttle", True) in events
    assert snap["requests"] == 3
    assert snap["responses"] == 3  # the 429 was an answer too
    assert snap["retries"] == {"status_429": 1}
    assert snap["rate_limited"] == 1
    assert snap["throttle_waits"] >= 1
    assert snap["throttle_wait_seconds"] > 0


async def test_the_response_hook_is_told_how_long_the_send_took() -> None:
    """``ResponseEvent.elapsed`` is the attempt's send, in seconds: never more than the whole
    call took, never negative."""
    events: list[Any] = []
    async with make_client(lambda r: ok(), hooks=Hooks(on_response=[events.append])) as cb:
        before = time.monotonic()
        await cb.request("GET", "/x")
        took = time.monotonic() - before
    (event,) = events
    assert 0 <= event.elapsed <= took


NAN = float("nan")


@pytest.mark.parametrize(
    ("option", "value", "error", "says"),
    [
        ("max_retries", "x", InvalidArgumentError, "max_retries must be an int, got str"),
        ("max_retries", 2.5, InvalidArgumentError, "max_retries must be an int, got float"),
        ("max_retries", True, InvalidArgumentError, "max_retries must be an int, got bool"),
        ("max_retries", -1, ConfigurationError, "max_retries must be >= 0"),
        ("initial_backoff", -1, ConfigurationError, "initial_backoff must be >= 0 seconds"),
        ("initial_backoff", "1", InvalidArgumentError, "initial_backoff must be a number"),
        ("max_backoff", NAN, ConfigurationError, "max_backoff must be >= 0 seconds, got nan"),
        ("max_retry_after", NAN, ConfigurationError, "max_retry_after must be >= 0 seconds"),
        ("max_retry_after", -5, ConfigurationError, "max_retry_after must be >= 0 seconds"),
        ("deadline", NAN, ConfigurationError, "deadline must be positive seconds, got nan"),
        ("deadline", 0, ConfigurationError, "deadline must be positive seconds"),
        ("deadline", float("inf"), ConfigurationError, "None for no limit"),
        ("timeout", NAN, ConfigurationError, "timeout must be positive seconds, got nan"),
        ("timeout", -1.0, ConfigurationError, "timeout must be positive seconds"),
        ("timeout", "5", InvalidArgumentError, "timeout must be a number of seconds, got str"),
        ("timeout", httpx.Timeout(5, read=NAN), ConfigurationError, r"timeout \(read\)"),
    ],
)
async def test_a_bad_option_is_refused_where_it_is_given(
    option: str, value: Any, error: type[Exception], says: str
) -> None:
    """NaN compares false with everything: accepted, it would turn a limit off (a Retry-After
    of years waited out); a str or a float count would fail later, untyped."""
    with pytest.raises(error, match=says):
        AsyncCommBox(token=TOKEN, **{option: value})
    if option in ("initial_backoff", "max_backoff"):
        return  # client-wide: with_options does not take them
    async with AsyncCommBox(token=TOKEN) as cb:
        with pytest.raises(error, match=says):
            cb.with_options(**{option: value})


# -- what an unexpected failure of the HTTP library becomes -----------------------------------


async def test_an_http_library_failure_is_a_connection_error_that_names_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the library broke")

    async with make_client(handler, max_retries=0) as cb:
        with pytest.raises(APIConnectionError) as info:
            await cb.request("POST", "/objects/{id}", id=5, json={})
    error = info.value
    assert error.message == "the HTTP library failed: RuntimeError: the library broke"
    assert (error.method, error.path) == ("POST", "/objects/5")
    assert (error.reason, error.cause_type) == ("transport_error", "RuntimeError")
    assert str(error).startswith(
        "the HTTP library failed: RuntimeError: the library broke (POST /objects/5; "
    )
    assert error.__cause__ is None


async def test_a_body_that_cannot_be_encoded_says_why() -> None:
    async with make_client(lambda r: ok()) as cb:
        with pytest.raises(ConfigurationError) as info:
            await cb.request("POST", "/x", json={"when": object()})
    assert not isinstance(info.value, APIConnectionError)
    assert str(info.value) == (
        "the request could not be encoded: TypeError: Object of type object is not JSON "
        "serializable"
    )


class _FailsBeforeSending(httpx.AsyncHTTPTransport):
    """A real httpcore transport (traced: the client knows when the first byte leaves) that
    fails before it writes anything, as a broken proxy setup or a plugin might."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("no route to the pool")


async def test_a_library_failure_before_sending_is_a_connection_error_not_a_bad_request() -> None:
    async with make_client(transport=_FailsBeforeSending(), max_retries=0) as cb:
        with pytest.raises(CommBoxError) as info:
            await cb.request("POST", "/x", json={})
    assert type(info.value) is APIConnectionError
    assert info.value.cause_type == "RuntimeError"
    assert info.value.processed is Processed.NO  # nothing was written
    assert not info.value.may_have_been_processed


async def test_a_pool_closed_during_the_call_is_a_client_state_error() -> None:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(503, json=envelope(status=503, description="busy"))
        )
    )

    async def close_the_pool(event: Any) -> None:
        await http.aclose()  # while the call waits to retry

    async with AsyncCommBox(
        token=TOKEN,
        http_client=http,
        rate_limit=None,
        initial_backoff=0.001,
        max_backoff=0.002,
        hooks=Hooks(on_retry=close_the_pool),
    ) as cb:
        with pytest.raises(ClientStateError) as info:
            await cb.request("GET", "/x")
    assert str(info.value) == "the connection pool under AsyncCommBox was closed during the call"


async def test_multipart_without_files_sends_each_field_as_a_part() -> None:
    """``multipart=True`` with a form and no file (a WhatsApp campaign by audience id): the
    fields go as multipart parts, each with its value, never as a urlencoded form."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return ok(None)

    async with make_client(handler) as cb:
        await cb._request("POST", "/whatsapp/campaign", data={"a": "1", "b": 2}, multipart=True)
    (request,) = seen
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content.decode()
    assert 'name="a"\r\n\r\n1\r\n' in body and 'name="b"\r\n\r\n2\r\n' in body
    assert "filename" not in body
