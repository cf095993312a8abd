"""Hostile input: every parser answers in bounded time with the library's typed errors.

Dates with runs of whitespace (the old patterns backtracked in cubic time), JSON and XML nested
far deeper than anyone sends, numbers longer than ``int()`` converts, lone surrogates, dates
with no UTC equivalent: each is refused by ``parse_event`` (``WebhookParseError``), by the
models (``DecodeError``) and by response parsing (``InvalidResponseError`` or the status's
error), and the receivers answer 400, never 500.

The time bounds here are safety bounds with a margin of a thousand or more (the input that took
22 s before the fix takes about a millisecond), not speed targets: those are in
``benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import select
import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commbox_async import DEFAULT_MAX_DEPTH, DecodeError, InvalidResponseError, ServerError
from commbox_async._json import JSONLimitError, check, loads, nesting_depth
from commbox_async._response import parse_response
from commbox_async.models import (
    ObjectDetails,
    ObjectRecord,
    User,
    parse_date,
    parse_datetime,
    structure,
)
from commbox_async.webhooks import FormSubmit, WebhookParseError, parse_event
from commbox_async.webhooks._receiver import ReceiverConfig, Verdict, read_body

from .conftest import envelope, make_client, serve_in_thread
from .test_fuzz import exported_models
from .test_webhooks import _scope

UTC = timezone.utc
SAFETY = 1.0  # seconds: the fixed parsers take milliseconds, the old ones took 20 s and more


def spaced_date(spaces: int) -> str:
    return "2024-01-02 10:00" + " " * spaces + "x"


def activity_body(**activity: Any) -> bytes:
    return json.dumps(
        {"payload": {"StreamId": 1, "Activities": [{"Type": 1, **activity}]}}
    ).encode()


def xml_body(inner: str) -> bytes:
    return f'<Event Subscription="Object" Name="OnNew"><Object>{inner}</Object></Event>'.encode()


def respond(status: int, body: bytes, **kw: Any) -> Any:
    return parse_response(
        httpx.Response(status, content=body),
        method="GET",
        path="/objects/1",
        attempts=1,
        elapsed=0.0,
        allow_partial=False,
        **kw,
    )


def timed(fn: Any) -> tuple[float, BaseException | None]:
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:
        return time.perf_counter() - start, exc
    return time.perf_counter() - start, None


# -- dates -----------------------------------------------------------------------------------

_SPACES = 3000  # ~22 s with the old patterns (cubic: 1,000 took 0.8 s, 2,000 took 6.5 s)

DATE_ENTRY_POINTS = {
    "parse_datetime": (lambda: parse_datetime(spaced_date(_SPACES)), ValueError),
    "parse_date": (lambda: parse_date("1951-10-10" + " " * _SPACES + "x"), ValueError),
    "model field": (
        lambda: ObjectRecord.from_wire({"CreatedTime": spaced_date(_SPACES)}),
        DecodeError,
    ),
    "birthday field": (
        lambda: User.from_wire({"Birthday": "1951-10 10" + " " * _SPACES + "1:"}),
        DecodeError,
    ),
    "json webhook": (
        lambda: parse_event(activity_body(CreateDate=spaced_date(_SPACES))),
        WebhookParseError,
    ),
    "xml webhook": (
        lambda: parse_event(xml_body(f"<CreatedTime>{spaced_date(_SPACES)}</CreatedTime>")),
        WebhookParseError,
    ),
    "api response": (
        lambda: ObjectDetails.from_wire(
            respond(
                200, json.dumps(envelope({"objectId": 1, "createdTime": spaced_date(_SPACES)}))
            ).data
        ),
        DecodeError,
    ),
}


@pytest.mark.parametrize("entry", DATE_ENTRY_POINTS)
def test_a_date_with_a_run_of_whitespace_is_refused_in_bounded_time(entry: str) -> None:
    fn, error = DATE_ENTRY_POINTS[entry]
    elapsed, exc = timed(fn)
    assert isinstance(exc, error), exc
    assert elapsed < SAFETY, f"{entry}: {elapsed:.2f}s"


@pytest.mark.parametrize(
    "tail",
    [
        " " * 5000 + "x",
        "\t \n" * 2000 + "PM x",
        ":00" + " " * 5000 + "+",
        ":00." + "1" * 20000 + " " * 5000 + "x",
        " T " * 3000,
        "-" * 5000,
        " " * 3000 + "AM" + " " * 3000 + "Z" + " " * 3000 + "x",
    ],
)
def test_every_date_shape_is_linear(tail: str) -> None:
    for head in ("2024-01-02 10:00", "02-01-2024 10:00", "01/02/2024 10:00", "2024-01"):
        elapsed, exc = timed(lambda h=head: parse_datetime(h + tail))  # type: ignore[misc]
        assert isinstance(exc, ValueError), exc
        assert elapsed < SAFETY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02   10:00", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("  27-03-2017 \n\n 06:29:59  ", datetime(2017, 3, 27, 6, 29, 59, tzinfo=UTC)),
        ("2/29/2024 12:20:25   PM  ", datetime(2024, 2, 29, 12, 20, 25, tzinfo=UTC)),
        ("2024-06-02 T 15:47:50 Z", datetime(2024, 6, 2, 15, 47, 50, tzinfo=UTC)),
        ("2024-06-02 15:47:50 +0200", datetime(2024, 6, 2, 13, 47, 50, tzinfo=UTC)),
        ("2024-06-02 15:47:50.1234567 UTC", datetime(2024, 6, 2, 15, 47, 50, 123456, tzinfo=UTC)),
    ],
)
def test_whitespace_inside_a_date_still_parses(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


def test_a_date_text_past_its_length_limit_is_refused_before_it_is_read() -> None:
    from commbox_async.models._converter import MAX_DATE_CHARS

    spaced = "2024-01-02" + " " * (MAX_DATE_CHARS - 15) + "10:00"
    assert len(spaced) == MAX_DATE_CHARS
    assert parse_datetime(spaced) == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    for fn in (parse_datetime, parse_date):
        with pytest.raises(ValueError, match=f"a date of {MAX_DATE_CHARS + 1} characters"):
            fn(spaced + " ")
    # Before: split into ~87,000 words, which started the collector (bench_hostile: 3.4x
    # the time for twice the text).
    with pytest.raises(DecodeError, match="characters"):
        ObjectRecord.from_wire({"CreatedTime": "2024-01-02" + " T " * 100_000})


def test_a_date_with_no_utc_equivalent_is_a_typed_error_everywhere() -> None:
    for text in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+05:00"):
        with pytest.raises(ValueError, match="out of range"):
            parse_datetime(text)
        with pytest.raises(DecodeError, match="out of range"):
            ObjectRecord.from_wire({"CreatedTime": text})
        # Before: OverflowError escaped parse_event (and a receiver answered 500).
        with pytest.raises(WebhookParseError, match="out of range"):
            parse_event(activity_body(CreateDate=text))
    assert parse_date("9999-12-31") == date(9999, 12, 31)


# -- depth -----------------------------------------------------------------------------------

DEEP = 100_000


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_WEBHOOKS: dict[str, tuple[bytes, str]] = {
    "json arrays 100,000 deep": (deep_array(DEEP).encode(), "nested deeper"),
    "json objects 100,000 deep": (
        ('{"payload":' + deep_object(DEEP) + "}").encode(),
        "nested deeper",
    ),
    "json 1,500 deep": (('{"payload":{"StreamId":1,"x":' + deep_array(1500) + "}}").encode(), ""),
    "xml 2,000 deep": (xml_body("<a>" * 2000 + "</a>" * 2000), "nested deeper"),
    "xml 100,000 deep": (xml_body("<a>" * DEEP + "</a>" * DEEP), "nested deeper"),
    "Data holding json 100,000 deep": (activity_body(Data=deep_array(DEEP)), "nested deeper"),
    "Content holding json 100,000 deep": (
        json.dumps(
            {"payload": {"StreamId": 1, "Message": "m", "Content": deep_array(DEEP)}}
        ).encode(),
        "nested deeper",
    ),
    "a 5,000-digit number": (
        b'{"payload":{"StreamId":' + b"1" * 5000 + b',"Message":"m"}}',
        "long",
    ),
    "a 5,000-digit id string": (
        json.dumps({"payload": {"StreamId": "1" * 5000, "Message": "m"}}).encode(),
        "5000 characters",
    ),
    "a 5,000-digit activity type": (activity_body(Type="1" * 5000), ""),
    "a 5,000-digit xml id": (xml_body("<Id>" + "1" * 5000 + "</Id>"), "5000 characters"),
    "a lone surrogate escape": (b'{"payload":{"StreamId":1,"Message":"\\ud800"}}', "surrogate"),
    "a lone low surrogate escape": (
        b'{"payload":{"StreamId":1,"Message":"a\\udc00"}}',
        "surrogate",
    ),
    "surrogates encoded as bytes": (b'{"payload":{"StreamId":1,"Message":"\xed\xa0\x80"}}', ""),
    "a date with a run of spaces": (activity_body(CreateDate=spaced_date(_SPACES)), "date"),
    "a date past year 9999 in UTC": (
        activity_body(CreateDate="9999-12-31T23:00:00-05:00"),
        "out of range",
    ),
    # Encodings expat cannot read: before, LookupError, ValueError or UnicodeError, and 500.
    **{
        f"xml declaring {encoding}": (
            b'<?xml version="1.0" encoding="%s"?>' % encoding.encode()
            + b'<Event Subscription="Object" Name="OnNew"><Object><Id>1</Id></Object></Event>',
            "declared encoding",
        )
        for encoding in ("x-unknown", "utf-32", "EBCDIC", "shift_jis", "rot13", "idna", "punycode")
    },
    "xml declaring an encoding 1,000 letters long": (
        b'<?xml version="1.0" encoding="' + b"x" * 1000 + b'"?><Event/>',
        "declared encoding",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_WEBHOOKS)
def test_hostile_webhook_bodies_are_parse_errors(case: str) -> None:
    body, match = HOSTILE_WEBHOOKS[case]
    elapsed, exc = timed(lambda: parse_event(body, max_bytes=2 * len(body)))
    assert isinstance(exc, WebhookParseError), repr(exc)
    assert match in str(exc)
    assert len(str(exc)) < 500  # the message never echoes the whole hostile value
    assert elapsed < SAFETY


@pytest.mark.parametrize("bom", ["utf-8-sig", "utf-16"])
def test_an_xml_body_after_a_byte_order_mark_is_sniffed_as_xml(bom: str) -> None:
    # Before: sniffed as JSON when no content type said XML ("malformed JSON webhook").
    text = '<?xml version="1.0"?><Event Subscription="Object" Name="OnNew"><Object><Id>7</Id>'
    event = parse_event((text + "</Object></Event>").encode(bom))
    assert event.object.id == 7  # type: ignore[attr-defined]


def test_a_str_body_with_a_lone_surrogate_is_a_parse_error() -> None:
    # Before: UnicodeEncodeError, from encoding the body.
    with pytest.raises(WebhookParseError, match="surrogate"):
        parse_event('{"payload":{"StreamId":1,"Message":"\ud800"}}')


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_depth_limit_is_exact_and_configurable(fmt: str) -> None:
    def body(depth: int) -> bytes:
        # The payload's own object and the Event/Object elements count as levels too.
        if fmt == "json":
            return ('{"payload":{"StreamId":1,"x":' + deep_array(depth - 2) + "}}").encode()
        return xml_body("<a>" * (depth - 2) + "</a>" * (depth - 2))

    assert parse_event(body(DEFAULT_MAX_DEPTH))
    with pytest.raises(WebhookParseError, match=f"limit of {DEFAULT_MAX_DEPTH}"):
        parse_event(body(DEFAULT_MAX_DEPTH + 1))
    assert parse_event(body(10), max_depth=10)
    with pytest.raises(WebhookParseError, match="limit of 10"):
        parse_event(body(11), max_depth=10)
    assert parse_event(body(600), max_depth=600)


def test_json_in_a_string_field_takes_the_callers_depth() -> None:
    ok = activity_body(Data=json.dumps({"text": [[[1]]]}))
    assert parse_event(ok, max_depth=6)
    with pytest.raises(WebhookParseError, match="limit of 3"):
        parse_event(ok, max_depth=3)  # the body is 5 deep; its Data string holds 4 levels
    form = json.dumps({"payload": {"FormUrl": "u", "Properties": deep_array(300)}}).encode()
    with pytest.raises(WebhookParseError, match="nested deeper"):
        parse_event(form, subscription="Form", name="OnSubmit")
    event = parse_event(form, subscription="Form", name="OnSubmit", max_depth=400)
    assert isinstance(event, FormSubmit)
    with pytest.raises(DecodeError, match="nested deeper"):
        ObjectRecord.from_wire({"Content": deep_array(DEEP)})
    with pytest.raises(DecodeError, match="limit of 2"):
        structure({"Content": '{"a": {"b": {}}}'}, ObjectRecord, max_depth=2)
    assert structure({"Content": '{"a": {"b": {}}}'}, ObjectRecord, max_depth=3).content


def test_over_deep_response_bodies_are_typed_errors() -> None:
    body = b'{"status":200,"data":' + deep_array(DEEP).encode() + b"}"
    # Before: RecursionError from json.
    with pytest.raises(InvalidResponseError, match="nested deeper"):
        respond(200, body)
    with pytest.raises(ServerError):
        respond(500, deep_array(DEEP).encode())
    at_limit = b'{"status":200,"data":' + deep_array(DEFAULT_MAX_DEPTH - 1).encode() + b"}"
    assert respond(200, at_limit).data
    with pytest.raises(InvalidResponseError, match=f"limit of {DEFAULT_MAX_DEPTH}"):
        respond(200, b'{"status":200,"data":' + deep_array(DEFAULT_MAX_DEPTH).encode() + b"}")
    with pytest.raises(InvalidResponseError, match="limit of 5"):
        respond(200, b'{"data":[[[[[1]]]]]}', max_depth=5)
    # Strings full of brackets do not count.
    assert respond(200, json.dumps({"data": "[" * 5000 + "{" * 5000}).encode()).data


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"status":200,"data":{"objectId":' + b"1" * 5000 + b"}}", "number too long"),
        (b'{"status":200,"data":{"message":"\\ud800"}}', "surrogate"),
        (b'{"status":200,"data":{"message":"\xed\xa0\x80"}}', "surrogate"),
    ],
)
def test_limit_breaking_response_bodies_say_which_limit(body: bytes, match: str) -> None:
    with pytest.raises(InvalidResponseError, match=match):
        respond(200, body)


def test_an_absurdly_long_envelope_status_is_not_a_crash() -> None:
    # Before: ValueError (the int-digits limit) escaped parse_response.
    env = respond(200, b'{"status":"' + b"1" * 5000 + b'","data":{"objectId":1}}')
    assert env.envelope_status is None and env.data == {"objectId": 1}


def test_an_absurdly_long_number_in_a_model_is_a_short_decode_error() -> None:
    with pytest.raises(DecodeError, match="5000 characters") as info:
        ObjectRecord.from_wire({"Id": "1" * 5000})
    assert len(str(info.value)) < 400


@pytest.mark.anyio
async def test_a_client_call_with_an_over_deep_body_raises_invalid_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"status":"200","data":' + deep_array(DEEP).encode())

    async with make_client(handler) as cb:
        with pytest.raises(InvalidResponseError, match="nested deeper"):
            await cb.objects.get(1, 2)


# -- the depth scan and the surrogate scan themselves ----------------------------------------


def _depth(value: Any) -> int:
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(v) for v in items), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet='[]{}"\\/u\n ab\u05d0', max_size=8) | st.text(max_size=4)
_VALUES = st.recursive(
    st.none() | st.integers() | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, ascii_only=st.booleans(), wrap=st.integers(0, 40))
@example(value='"]]]]"', ascii_only=True, wrap=0)
@example(value=["]" * 20, "\\"], ascii_only=True, wrap=30)
def test_nesting_depth_is_exact_for_valid_json(value: Any, ascii_only: bool, wrap: int) -> None:
    for i in range(wrap):  # deeper than the peeling goes, with strings of closers beside
        value = [value, "]]}"] if i % 2 else {"k]\\": value}
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(text) == _depth(value)


_ESCAPES = st.lists(
    st.sampled_from(
        ["a", "\\\\", '\\"', "\\ud83d", "\\ude00", "\\uD83D\\uDE00", "\\ud800\\udc00", "\\u0041"]
    ),
    max_size=8,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(escapes=_ESCAPES, many=st.booleans())
@example(escapes="\\\\ud800\\udc00", many=False)  # escaped backslash, then a lone low half
@example(escapes="\\ud800\\\\udc00", many=False)  # a lone high half, then text
def test_the_surrogate_check_refuses_exactly_the_lone_halves(escapes: str, many: bool) -> None:
    # ``many`` pads with escapes so the regex path (more than a few escapes) is taken too.
    text = ('"' + ("\\n" * 70 if many else "") + escapes + '"').encode()
    decoded = json.loads(text)
    lone = any("\ud800" <= c <= "\udfff" for c in decoded)
    try:
        check(text)
    except JSONLimitError:
        assert lone
    else:
        assert not lone


def test_loads_refuses_what_json_loads_lets_through() -> None:
    assert json.loads(b'"\xed\xa0\x80"') == "\ud800"  # the standard library's behaviour
    with pytest.raises(JSONLimitError):
        loads(b'"\xed\xa0\x80"')
    with pytest.raises(JSONLimitError):
        loads('"\ud800"')
    with pytest.raises(JSONLimitError, match="number too long"):
        loads("1" * 5000)
    with pytest.raises(json.JSONDecodeError):
        loads(b"[1,")


# -- receivers -------------------------------------------------------------------------------


def _receiver_router() -> Any:
    from commbox_async.webhooks import WebhookRouter

    router = WebhookRouter()
    seen: list[Any] = []
    router.on_any()(seen.append)
    return router, seen


@pytest.mark.anyio
@pytest.mark.parametrize("case", HOSTILE_WEBHOOKS)
async def test_the_starlette_receiver_answers_400_to_hostile_bodies(case: str) -> None:
    from commbox_async.webhooks.starlette import webhook_app

    router, seen = _receiver_router()
    app = webhook_app(router)
    body, _ = HOSTILE_WEBHOOKS[case]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post("/", content=body)
    assert response.status_code == 400, response.text
    assert seen == []


@pytest.mark.parametrize("case", HOSTILE_WEBHOOKS)
def test_the_aiohttp_receiver_answers_400_to_hostile_bodies(case: str) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from commbox_async.webhooks.aiohttp import add_webhook_routes

    body, _ = HOSTILE_WEBHOOKS[case]

    async def main() -> int:
        router, seen = _receiver_router()
        app = web.Application()
        add_webhook_routes(app, router, prefix="/hooks")
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/hooks", data=body)
            assert seen == []
            return response.status

    assert asyncio.run(main()) == 400


@contextlib.contextmanager
def aiohttp_server(app: Any) -> Iterator[int]:
    """An aiohttp app served on loopback by its own loop in a thread; yields the port."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    runner = web.AppRunner(app)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(runner.addresses[0][1])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextlib.contextmanager
def serve(kind: str, **options: Any) -> Iterator[int]:
    """The receiver of ``kind`` on a real server (uvicorn, aiohttp); yields its port."""
    router, _ = _receiver_router()
    if kind == "starlette":
        from commbox_async.webhooks.starlette import webhook_app

        with serve_in_thread(webhook_app(router, **options)) as url:
            yield int(url.rsplit(":", 1)[1])
    else:
        from aiohttp import web

        from commbox_async.webhooks.aiohttp import add_webhook_routes

        app = web.Application()
        add_webhook_routes(app, router, prefix="/", **options)
        with aiohttp_server(app) as port:
            yield port


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0


def send_forever(port: int, *, give_up: int = 512 * 1024 * 1024) -> tuple[int, bytes]:
    """POST a chunked body that never ends, until the server hangs up (or ``give_up`` bytes
    went out); returns the bytes sent and the start of the server's answer."""
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.settimeout(5)
        try:
            while sent < give_up:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # reset or broken pipe: the server stopped reading, as it should
        try:
            answer = sock.recv(200)
        except OSError:
            answer = b""
    return sent, answer


@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_a_receiver_stops_reading_a_body_past_its_cap(kind: str) -> None:
    # Before: both servers read the endless body and threw it away, for ever (uvicorn) or for
    # aiohttp's 10 s of lingering: the client sent its whole 512 MiB.
    with serve(kind, max_bytes=64 * 1024) as port:
        sent, answer = send_forever(port)
    assert sent < 64 * 1024 * 1024, f"the server read {sent / 2**20:.0f} MiB"
    assert _status(answer) in (413, 0)  # 0: the reset came before the answer was read


def _gzip(data: bytes, *, repeat: int = 1) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join([*(packer.compress(data) for _ in range(repeat)), packer.flush()])


def _post(port: int, body: bytes, **headers: str) -> tuple[int, str]:
    response = httpx.post(f"http://127.0.0.1:{port}/", content=body, headers=headers, timeout=10)
    return response.status_code, response.text


@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_a_compressed_body_is_read_inflated_and_bounded_the_same_by_both_receivers(
    kind: str,
) -> None:
    """Starlette hands the receiver the body as sent: gzip was a 400 there (not JSON) while
    aiohttp, which inflates request bodies itself, took it. Both now read it, and both stop a
    small body that inflates past max_bytes (50 MiB of zeros in 50 KiB) at the cap."""
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    with serve(kind, max_bytes=64 * 1024) as port:
        assert _post(port, _gzip(activity_body()), **gz)[0] == 200
        bomb = _gzip(b"0" * 2**20, repeat=50)
        assert len(bomb) < 100_000
        status, text = _post(port, bomb, **gz)
        assert status == 413, text
        status, text = _post(port, b"\x1f\x8b not gzip at all", **gz)
        assert status == 400, text
        if kind == "starlette":  # (aiohttp refuses one it cannot decode itself, with a 400)
            status, text = _post(port, activity_body(), **{**gz, "Content-Encoding": "br"})
            assert status == 415 and "'br'" in text, text


@pytest.mark.anyio
async def test_the_asgi_receiver_pulls_no_chunk_past_the_cap() -> None:
    from commbox_async.webhooks.starlette import webhook_app

    router, seen = _receiver_router()
    app = webhook_app(router, max_bytes=10_000)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}  # endless

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(), receive, send)
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert pulled == 11  # 11 x 1,000 bytes is the first past 10,000; nothing read after it
    assert seen == []


def drip(port: int, *, seconds: float) -> tuple[float, bytes]:
    """Declare a 1,000-byte body and send it one byte every 50 ms; returns when the server
    answers (or after ``seconds``) with the time taken and the answer."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        sock.setblocking(False)
        answer = b""
        while time.monotonic() - start < seconds:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    answer = sock.recv(200)
                except OSError:
                    answer = b""
                break
            try:
                sock.send(b"x")
            except OSError:
                break
    return time.monotonic() - start, answer


@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_a_receiver_cuts_off_a_client_dripping_its_body(kind: str) -> None:
    # Before: no body timeout: the dripping client held its connection for as long as it liked
    # (here, it would have finished after 50 s and been answered 400).
    with serve(kind, body_timeout=0.5) as port:
        elapsed, answer = drip(port, seconds=8)
    assert _status(answer) == 408, answer
    assert 0.4 < elapsed < 5


BROKEN_BODIES: dict[str, tuple[bytes, bool]] = {
    # (the request, whether the client hangs up after sending it)
    "a body cut short": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n<Event", True),
    "a broken chunk": (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        False,
    ),
    "gzip that is not": (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n"
        b"notgzip!!!",
        False,
    ),
}


@pytest.mark.parametrize("case", BROKEN_BODIES)
@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_a_body_the_server_cannot_read_is_no_error_of_the_receiver(kind: str, case: str) -> None:
    # Before: the receiver let the server's exception out: aiohttp answered 500 to gzip that
    # is not gzip (RequestPayloadError), and both logged a traceback at ERROR for a client that
    # hung up mid-body (ClientDisconnect, ConnectionResetError) or broke its chunks.
    request, hang_up = BROKEN_BODIES[case]
    names = ("uvicorn.error",) if kind == "starlette" else ("aiohttp.server", "aiohttp.web")
    with serve(kind) as port, rendered_log(*names) as lines:
        with socket.create_connection(("127.0.0.1", port), 5) as sock:
            sock.sendall(request)
            if hang_up:
                sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            try:
                answer = sock.recv(200)
            except OSError:
                answer = b""
        time.sleep(0.3)  # what the server logs, it logs after the connection ends
    assert _status(answer) in (400, 0), answer  # 0: hung up before an answer
    # aiohttp's parser logs what it refuses itself (at ERROR, with its exception: see the
    # redaction test above); nothing may come through the receiver, nor be "Unhandled".
    errors = [
        line
        for line in lines
        if " ERROR " in line.split("\n", 1)[0]
        and ("commbox_async" in line or "Unhandled" in line or "ASGI" in line)
    ]
    assert errors == [], errors[0] if errors else None


@contextlib.contextmanager
def access_records(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """What a logger emits, as a handler added to it sees it (after its filters)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _logged_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(
        record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        for record in records
    )


def _access_log_of_two_receivers(kind: str) -> str:
    """Requests to a receiver with the default redaction (?secret=s3cret-A) and to one
    without it (?key=s3cret-B, the control), through a real server; its access log's text."""
    router, _ = _receiver_router()
    redacted = {"secret": "s3cret-A"}
    control = {"secret": "s3cret-B", "secret_param": "key", "redact_access_log": False}
    if kind == "starlette":
        from commbox_async.webhooks.starlette import webhook_app

        records: list[logging.LogRecord] = []
        for options, query in ((redacted, "secret=s3cret-A"), (control, "key=s3cret-B")):
            app = webhook_app(router, **options)
            with serve_in_thread(app, access_log=True, log_level="info") as url:
                # uvicorn configures its loggers as it starts: capture from then on
                with access_records("uvicorn.access") as got:
                    httpx.post(f"{url}/?x=1&{query}", content=b"<x")
                records += got
        return _logged_text(records)
    from aiohttp import web

    from commbox_async.webhooks.aiohttp import add_webhook_routes

    app = web.Application()
    add_webhook_routes(app, router, prefix="/a", **redacted)
    add_webhook_routes(app, router, prefix="/b", **control)
    with aiohttp_server(app) as port, access_records("aiohttp.access") as got:
        httpx.post(f"http://127.0.0.1:{port}/a?x=1&secret=s3cret-A", content=b"<x")
        httpx.post(f"http://127.0.0.1:{port}/b?key=s3cret-B", content=b"<x")
        time.sleep(0.2)  # the access log is written after the answer
    return _logged_text(got)


@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_the_query_secret_never_reaches_the_access_log(kind: str) -> None:
    text = _access_log_of_two_receivers(kind)
    assert "secret=***" in text
    assert "s3cret-A" not in text
    # The control proves the capture sees what the server logs: an unfiltered parameter shows.
    assert "s3cret-B" in text


@contextlib.contextmanager
def rendered_log(*logger_names: str) -> Iterator[list[str]]:
    """Every record the loggers emit, as a plain handler renders it: message and traceback."""
    lines: list[str] = []

    class Render(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Render()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


# Request lines and header lines aiohttp's parser refuses, and so echoes in the exception it
# logs on aiohttp.server at ERROR.
MALFORMED = [
    b"GET /%s?x=1&%s HTTP/9.9\r\nHost: t\r\n\r\n",
    b"GET /%s?%s\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /%s?%s" + b"x" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
]


def _send_raw(port: int, request: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(request)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            sock.recv(500)


def test_a_malformed_request_line_leaves_no_query_secret_in_the_server_error_log() -> None:
    # Before: aiohttp.server logged "Error handling request" with the parser's exception,
    # which quotes the request line: ?secret=s3cret-A in the error log (found by the outsider
    # review). The control (?key=s3cret-B, a receiver that does not redact) shows the capture
    # sees what the server writes.
    from aiohttp import web

    from commbox_async.webhooks.aiohttp import add_webhook_routes

    router, _ = _receiver_router()
    app = web.Application()
    add_webhook_routes(app, router, prefix="/a", secret="s3cret-A")
    add_webhook_routes(
        app, router, prefix="/b", secret="s3cret-B", secret_param="key", redact_access_log=False
    )
    with aiohttp_server(app) as port, rendered_log("aiohttp.server", "aiohttp.access") as lines:
        for shape in MALFORMED:
            _send_raw(port, shape % (b"a", b"secret=s3cret-A"))
            _send_raw(port, shape % (b"b", b"key=s3cret-B"))
        _send_raw(port, b"GET /a HTTP/1.1\r\nHost: t\r\nX-CommBox-Secret: s3cret-A\x01\r\n\r\n")
        time.sleep(0.2)  # the logs are written after the answer
    text = "\n".join(lines)
    assert "Error handling request" in text
    assert text.count("s3cret-B") >= len(MALFORMED)
    assert "secret=***" in text
    assert "s3cret-A" not in text


@pytest.mark.parametrize("kind", ["starlette", "aiohttp"])
def test_the_server_error_logs_are_filtered_too(kind: str) -> None:
    # uvicorn 0.54 logs no request line for a malformed request (h11 or httptools), but an
    # error log is where a traceback quoting a URL lands: its error logger is filtered too.
    names = (
        ("uvicorn.access", "uvicorn.error")
        if kind == "starlette"
        else ("aiohttp.access", "aiohttp.server")
    )
    router, _ = _receiver_router()
    if kind == "starlette":
        from commbox_async.webhooks.starlette import webhook_app

        webhook_app(router, secret="s")
    else:
        from aiohttp import web

        from commbox_async.webhooks.aiohttp import add_webhook_routes

        add_webhook_routes(web.Application(), router, secret="s")
    for name in names:
        logger = logging.getLogger(name)
        try:
            raise ValueError("bad request line b'POST /hooks?secret=s3cret-C HTTP/1.1'")
        except ValueError:
            with rendered_log(name) as lines:
                logger.exception("Error handling request %s", "/hooks?a=1&secret=s3cret-C")
                logger.warning(ValueError("/hooks?secret=s3cret-C"))
                logger.warning("got %r", {"x-commbox-secret": "s3cret-C"})
        text = "\n".join(lines)
        assert "Traceback" in text and "secret=***" in text, text
        assert "s3cret-C" not in text, (name, text)


def test_the_redacting_filter_covers_message_args_and_extra_fields() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    f = SecretRedactingFilter()
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, '%s "%s"', ("1.2.3.4", "POST /h?secret=abc HTTP/1.1"), None
    )
    record.first_request_line = "POST /h?a=1&SECRET=abc%20d HTTP/1.1"
    record.headers = {"line": "/h;secret=abc"}
    assert f.filter(record)
    assert "abc" not in _logged_text([record])
    assert f.redact("/h?secrets=keep&secret=") == "/h?secrets=keep&secret=***"


# -- secret fields ---------------------------------------------------------------------------

SECRET = "SECRET-0123456789"


def _secret_fields() -> list[tuple[type[Any], Any]]:
    import attrs

    from commbox_async.models._converter import is_secret

    return [
        (cls, field) for cls in exported_models() for field in attrs.fields(cls) if is_secret(field)
    ]


def _reachable(exc: BaseException) -> str:
    """Everything a reporter could show of an error: str, repr, args, attributes (walked),
    and the same for its cause and context."""
    seen: set[int] = set()
    parts: list[str] = []

    def walk(value: Any, depth: int = 0) -> None:
        if id(value) in seen or depth > 6:
            return
        seen.add(id(value))
        parts.append(repr(value))
        if isinstance(value, BaseException):
            parts.append(str(value))
            walk(value.args, depth + 1)
            walk(value.__cause__, depth + 1)
            walk(value.__context__, depth + 1)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k, depth + 1)
                walk(v, depth + 1)
        elif isinstance(value, (list, tuple, set)):
            for v in value:
                walk(v, depth + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            walk(vars(value), depth + 1)

    walk(exc)
    return "\n".join(parts)


def test_the_secret_fields_are_marked() -> None:
    import attrs

    from commbox_async.models import ManagerData, Ticket

    marked = {(cls.__name__, field.name) for cls, field in _secret_fields()}
    assert {("Ticket", "ticket"), ("ManagerData", "password")} <= marked
    # Any field named like a credential must be marked (a guard for fields added later).
    for cls in exported_models():
        for field in attrs.fields(cls):
            wire_name = str(field.metadata.get("commbox_wire", ""))
            looks_secret = any(
                word in f"{field.name} {wire_name}".lower()
                for word in ("password", "secret", "token", "ticket", "encpryptedstring")
            )
            if looks_secret:
                assert (cls.__name__, field.name) in marked, (cls, field.name)
    assert SECRET not in repr(Ticket(ticket=SECRET))
    assert SECRET not in repr(ManagerData(password=SECRET))


@pytest.mark.parametrize(
    "bad", [{"token": SECRET}, [SECRET], {"nested": [SECRET]}, True, [1, SECRET]], ids=repr
)
def test_a_decode_error_on_a_secret_field_never_shows_the_value(bad: Any) -> None:
    fields = _secret_fields()
    assert fields
    for cls, field in fields:
        wire_name = field.metadata["commbox_wire"]
        with pytest.raises(DecodeError) as info:
            cls.from_wire({wire_name: bad, "other": 1})
        exc = info.value
        assert exc.secret and exc.path == wire_name
        assert SECRET not in _reachable(exc)
        assert exc.__context__ is None and exc.__cause__ is None
    # A non-secret field says what it got, as before.
    with pytest.raises(DecodeError) as info:
        ObjectRecord.from_wire({"Message": {"token": SECRET}})
    assert SECRET in str(info.value) and not info.value.secret


def _library_locals_showing(exc: BaseException, secret: str) -> list[str]:
    """The library's frames whose locals, as a traceback with locals renders them, show it."""
    import traceback

    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return [
        f"{frame.name}: {sorted(k for k, v in frame.locals.items() if secret in v)}"
        for frame in rendered.stack
        if "commbox_async" in frame.filename
        and frame.locals
        and any(secret in v for v in frame.locals.values())
    ]


def test_no_library_frame_of_a_secret_decode_error_holds_the_value() -> None:
    """Reporters that capture frame locals (rich's show_locals, Sentry...) render each frame's
    variables: the decoders' frames and the entry points' input held the secret's value."""
    from commbox_async.models import ManagerData, Ticket

    for decode in (
        lambda: Ticket.from_wire({"encpryptedString": {"token": SECRET}, "other": 1}),
        lambda: ManagerData.from_wire({"Password": [SECRET]}),
        lambda: structure([{"encpryptedString": {"x": SECRET}}], tuple[Ticket, ...]),
        lambda: Ticket.from_wire('{"encpryptedString": ["' + SECRET + '"]}'),
    ):
        with pytest.raises(DecodeError) as info:
            decode()
        assert info.value.secret
        assert _library_locals_showing(info.value, SECRET) == []


@pytest.mark.anyio
async def test_a_ticket_answer_that_does_not_decode_leaves_no_frame_holding_it() -> None:
    answer = {"encpryptedString": {"x": SECRET}}
    async with make_client(lambda request: httpx.Response(200, json=envelope(answer))) as cb:
        with pytest.raises(DecodeError) as info:
            await cb.auth.create_ticket(brand="acme", email="a@b.c", username="a")
    assert info.value.secret
    assert _library_locals_showing(info.value, SECRET) == []


@pytest.mark.parametrize(
    "data",
    [
        '{"encpryptedString": "' + SECRET + '"',  # truncated JSON
        ["encpryptedString", SECRET],
        '["' + SECRET + '"]',
    ],
    ids=["truncated", "a list", "a json list"],
)
def test_an_object_holding_a_secret_is_not_shown_either(data: Any) -> None:
    from commbox_async.models import Ticket

    with pytest.raises(DecodeError) as info:
        Ticket.from_wire(data)
    assert info.value.secret
    assert SECRET not in _reachable(info.value)
    with pytest.raises(DecodeError) as info:
        structure([{"encpryptedString": {"x": SECRET}}], tuple[Ticket, ...])
    assert SECRET not in _reachable(info.value)


# -- journals --------------------------------------------------------------------------------


def _journal_with_rows(path: Any, n: int = 5000) -> None:
    from commbox_async.bulk import Journal, Outcome

    with Journal(path) as journal:
        run = journal.begin_run()
        keys = [f"key-{i:06d}" for i in range(n)]
        journal.sending(*keys, run=run)
        journal.settle(*(Outcome(key=k, outcome="sent", id=i) for i, k in enumerate(keys)))


def _truncate(path: Any, fraction: float) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(int(path.stat().st_size * fraction))


def _scribble(path: Any) -> None:
    with open(path, "r+b") as fh:  # one page in the middle: the schema still reads fine
        fh.seek(path.stat().st_size // 2)
        fh.write(b"\xff" * 1024)


def _other_sqlite(path: Any) -> None:
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE messages (body TEXT)")
    db.commit()
    db.close()


BAD_JOURNALS: dict[str, tuple[Any, str]] = {
    "not sqlite": (lambda p: p.write_bytes(b"key,state\n" * 100), "is not a SQLite file"),
    "truncated to half": (lambda p: (_journal_with_rows(p), _truncate(p, 0.5)), "corrupt"),
    "truncated by a page": (lambda p: (_journal_with_rows(p), _truncate(p, 0.99)), "corrupt"),
    "truncated to its header": (lambda p: (_journal_with_rows(p), _truncate(p, 0.01)), "corrupt"),
    "a damaged page": (lambda p: (_journal_with_rows(p), _scribble(p)), "corrupt"),
    "a directory": (lambda p: p.mkdir(), "is a directory"),
    "in a missing folder": (lambda p: None, "does not exist"),
    "another program's database": (_other_sqlite, "not a commbox journal"),
}


@pytest.mark.parametrize("case", BAD_JOURNALS)
def test_an_unusable_journal_is_a_journal_error_naming_the_file(case: str, tmp_path: Any) -> None:
    from commbox_async import JournalError
    from commbox_async.bulk import Journal

    make, what = BAD_JOURNALS[case]
    path = tmp_path / ("missing" if case == "in a missing folder" else "") / "send.sqlite"
    make(path)
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert str(path) in str(info.value) and what in str(info.value)
    assert info.value.path == str(path)
    assert "in use" not in str(info.value)


def _make_read_only(path: Any) -> Any:
    """Make ``path`` unwritable even for root (chattr +i), or by permissions otherwise;
    returns the undo, or None when neither works here."""
    import os
    import subprocess

    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: path.chmod(mode)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("which", ["the file", "its folder"])
def test_a_read_only_journal_is_not_reported_as_in_use(which: str, tmp_path: Any) -> None:
    from commbox_async import JournalError
    from commbox_async.bulk import Journal

    folder = tmp_path / "journals"
    folder.mkdir()
    path = folder / "send.sqlite"
    _journal_with_rows(path, 10)
    for leftover in folder.glob("send.sqlite-*"):
        leftover.unlink()
    undo = _make_read_only(path if which == "the file" else folder)
    if undo is None:
        pytest.skip("cannot make a file read-only here (root without chattr)")
    try:
        with pytest.raises(JournalError) as info:
            Journal(path)
    finally:
        undo()
    # Before: ConfigurationError "journal ... is in use by another run".
    message = str(info.value)
    assert str(path) in message and "read-only" in message and "in use" not in message


def test_a_journal_in_use_is_still_reported_as_in_use(tmp_path: Any) -> None:
    from commbox_async import ConfigurationError
    from commbox_async.bulk import Journal

    with Journal(tmp_path / "j.sqlite"), pytest.raises(ConfigurationError, match="in use"):
        Journal(tmp_path / "j.sqlite")


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["not sqlite", "a damaged page", "a directory"])
async def test_nothing_is_sent_through_an_unusable_journal(case: str, tmp_path: Any) -> None:
    from commbox_async import JournalError, NewObject
    from commbox_async.bulk import BulkMessage

    path = tmp_path / "send.sqlite"
    BAD_JOURNALS[case][0](path)
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=envelope({"objectId": 1}))

    messages = [
        BulkMessage(
            key=f"k{i}",
            stream_id=532,
            payload=NewObject.sms(user_stream_provider_id="972500000000", message="hi"),
        )
        for i in range(5)
    ]
    async with make_client(handler) as cb:
        with pytest.raises(JournalError, match=r"send\.sqlite"):
            await cb.bulk.send(messages, journal=path)
    assert requests == []


@pytest.mark.anyio
async def test_an_export_file_with_an_over_deep_line_is_refused_typed(tmp_path: Any) -> None:
    from commbox_async import ConfigurationError

    out = tmp_path / "out.jsonl"
    out.write_text(deep_array(DEEP) + "\n")  # before: RecursionError from json.loads

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing is fetched")

    async with make_client(handler) as cb:
        with pytest.raises(ConfigurationError, match="nested deeper"):
            await cb.export.jsonl(out, [(1, 2)])


def test_limits_that_make_no_sense_are_configuration_errors() -> None:
    from commbox_async import ConfigurationError
    from commbox_async.webhooks import ReceiverConfig

    for bad in (0, -1, 2.5):
        with pytest.raises(ConfigurationError, match="max_depth"):
            parse_event(b"{}", max_depth=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="max_depth"):
            ReceiverConfig(max_depth=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="body_timeout"):
        ReceiverConfig(body_timeout=0)
    assert "s3cret" not in repr(ReceiverConfig(secret="s3cret"))


# -- the receivers' inflation (found by the outside review) ----------------------------------

BODY = b'{"payload": {}}'


async def _chunks(first: bytes, then: bytes = b"", times: int = 0) -> AsyncIterator[bytes]:
    yield first
    for _ in range(times):
        yield then


@pytest.mark.anyio
async def test_data_after_the_end_of_a_gzip_body_is_refused_not_read_into_memory() -> None:
    """After the gzip stream's end zlib keeps every further byte in ``unused_data``
    (re-concatenated on each chunk: quadratic), and read_inflated keeps reading: with the
    defaults (1 MiB, 5 s) a client makes the receiver hold ~60 MB and spin for the whole
    body_timeout, then answers 408; a shorter junk tail is silently accepted as the body.
    Expected: a 400 (a corrupt compressed body) at the first byte past the stream's end."""
    config = ReceiverConfig(max_bytes=64 * 1024)
    pulled = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal pulled
        async for chunk in _chunks(gzip.compress(BODY), b"\0" * 65536, 256):  # 16 MiB
            pulled += 1
            yield chunk

    verdict = await read_body(counted(), config, declared=None, encoding="gzip")
    assert isinstance(verdict, Verdict) and verdict.status == 400, verdict
    assert pulled <= 2


@pytest.mark.anyio
async def test_a_second_gzip_member_is_not_silently_dropped() -> None:
    """RFC 1952: a gzip file may be several members; only the first was read, the rest thrown
    away, and the body handed on cut (here, half of a JSON object). Expected: all of it, or
    a 400 for the encoding; never a body that is not the one sent."""
    body = gzip.compress(BODY[:7]) + gzip.compress(BODY[7:])
    got = await read_body(_chunks(body), ReceiverConfig(), declared=None, encoding="gzip")
    assert got == BODY or (isinstance(got, Verdict) and got.status == 400), got


@pytest.mark.anyio
async def test_a_truncated_gzip_body_is_refused_not_handed_on_as_its_prefix() -> None:
    """The stream never ends (its last bytes, or its trailer, cut off): read_inflated takes
    whatever it inflated so far as the body. Expected: 400, the body could not be read."""
    packed = gzip.compress(b'{"payload": {"a": "' + b"x" * 5000 + b'"}}')
    got = await read_body(
        _chunks(packed[: len(packed) // 2]), ReceiverConfig(), declared=None, encoding="gzip"
    )
    assert isinstance(got, Verdict) and got.status == 400, got


@pytest.mark.anyio
async def test_raw_deflate_arriving_in_small_chunks_is_read() -> None:
    """Content-Encoding: deflate without the zlib header (raw) is accepted, but only when
    zlib's header check fails on the first chunk: a first chunk of one byte passes it, the
    retry as raw deflate starts at the second chunk, and the body is a 400."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = packer.compress(BODY) + packer.flush()

    async def bytewise() -> AsyncIterator[bytes]:
        for i in range(len(raw)):
            yield raw[i : i + 1]

    got = await read_body(bytewise(), ReceiverConfig(), declared=None, encoding="deflate")
    assert got == BODY, got


@pytest.mark.anyio
async def test_a_compressed_body_inflating_past_the_cap_is_stopped_there() -> None:
    """max_bytes bounds what a body inflates to, not what was sent: 16 KiB of gzip that
    inflate to 16 MiB are a 413 as soon as the inflated bytes pass the cap, with no chunk read
    after the one that crossed it (not inflated whole and refused afterwards by the parse)."""
    config = ReceiverConfig(max_bytes=64 * 1024)
    packed = _gzip(b"0" * 2**20, repeat=16)
    pulled = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal pulled
        for i in range(0, len(packed), 1024):
            pulled += 1
            yield packed[i : i + 1024]

    verdict = await read_body(counted(), config, declared=None, encoding="gzip")
    assert isinstance(verdict, Verdict) and verdict.status == 413, verdict
    assert verdict.close
    assert pulled == 1  # its first KiB already inflates past 64 KiB


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [b"\x1f\x8b not gzip at all", gzip.compress(BODY)[:-4], gzip.compress(BODY) + b"junk"],
    ids=["not gzip", "cut off", "junk after its end"],
)
async def test_a_body_whose_compression_is_corrupt_is_a_400_that_closes_the_connection(
    body: bytes,
) -> None:
    """Reading stopped at the corruption: what follows on the connection is not a request,
    so the answer says ``Connection: close`` (as for a body too large or too slow)."""
    from commbox_async.webhooks.starlette import webhook_app

    router, seen = _receiver_router()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=webhook_app(router)), base_url="http://test"
    ) as http:
        response = await http.post("/", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400, response.text
    assert "could not be read" in response.text
    assert response.headers.get("connection") == "close"
    assert seen == []
