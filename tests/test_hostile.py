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

import json
import time
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

from .conftest import envelope, make_client

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
}


@pytest.mark.parametrize("case", HOSTILE_WEBHOOKS)
def test_hostile_webhook_bodies_are_parse_errors(case: str) -> None:
    body, match = HOSTILE_WEBHOOKS[case]
    elapsed, exc = timed(lambda: parse_event(body, max_bytes=2 * len(body)))
    assert isinstance(exc, WebhookParseError), repr(exc)
    assert match in str(exc)
    assert len(str(exc)) < 500  # the message never echoes the whole hostile value
    assert elapsed < SAFETY


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
