"""Fuzzing: random JSON values, XML-ish text and bytes into every parser; only the library's
typed errors may escape.

- ``parse_event`` (JSON bodies, XML bodies, raw bytes): only ``WebhookParseError``;
- every model class the package exports, from a value and from its JSON text: ``DecodeError``;
- ``parse_response`` with any status and body: the library's ``CommBoxError`` subclasses.

The inputs lean on what breaks parsers: the models' own wire names (so values reach the field
decoders), dates with runs of whitespace or no UTC equivalent, numbers past the int-digits
limit, JSON in strings, deep nesting, entities, truncation. About 3,000 examples in the
default run (~15 s); ``COMMBOX_HYPOTHESIS_PROFILE=soak`` (``nox -s soak``) runs ten times as
many. What hypothesis found against the code before the fixes, and the hostile inputs of
issue 18, are kept below as ``@example``s, so they run every time.
"""

from __future__ import annotations

import contextlib
import functools
import json
import string
from typing import Any

import attrs
import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commbox_async import CommBoxError, DecodeError
from commbox_async._response import parse_response
from commbox_async.models import Model
from commbox_async.webhooks import WebhookParseError, parse_event

# 1 by default, 10 under the soak profile (tests/conftest.py): the profile's examples per 100.
SCALE = max(1, (settings.default.max_examples or 100) // 100)


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def exported_models() -> list[type[Any]]:
    """Every model class the package exports (models and webhooks)."""
    import commbox_async.models as models
    import commbox_async.webhooks as webhooks
    from commbox_async.models import Model

    found = {
        obj
        for module in (models, webhooks)
        for obj in (getattr(module, name) for name in module.__all__)
        if isinstance(obj, type) and issubclass(obj, Model) and obj is not Model
    }
    return sorted(found, key=lambda c: c.__name__)


MODELS = exported_models()
WIRE_NAMES = sorted(
    {
        name
        for cls in MODELS
        for field in attrs.fields(cls)
        for name in (
            str(field.metadata.get("commbox_wire") or field.name),
            *field.metadata.get("commbox_aliases", ()),
        )
        if name not in ("extra", "wire_keys")
    }
)
WEBHOOK_KEYS = [
    "payload", "Activities", "Activity", "Tags", "Tag", "Children", "Child", "User", "Object",
    "eventName", "groupId", "Score", "FormUrl", "Properties", "Data", "CreateDate", "Type",
]  # fmt: skip

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "null",
        "None",
        "undefined",
        "1,",
        " 7 ",
        "-0",
        "1e400",
        "NaN",
        "\u00b2",
        "\u0663",
        "9" * 5000,
        "-" + "1" * 4301,
        "2024-01-02 10:00" + " " * 200 + "x",
        "2024-01-02T10:00:00" + "\t" * 100,
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:30:00+05:00",
        "2/29/2023 12:20:25 PM",
        "31-02-2024 25:61:61",
        "01/01/1980",
        "2024-08-06T07:51:52.2581942Z",
        "{}",
        "[]",
        '{"a": [1, {"b": "2024-01-02"}]}',
        '{"text": "\u201ccurly\u201d"}}}',
        "[" * 300 + "]" * 300,
        '{"a":' * 300 + "1" + "}" * 300,
        '"\\ud800"',
        '{"x": "\\udc00"}',
        "true",
        "yes",
        "WhatsApp",
        "System Message",
    ]
)
TEXT = (
    st.text(max_size=12)
    | HOSTILE_TEXT
    | st.from_regex(
        r"[0-9]{1,5}[-/ ][0-9]{1,2}[-/ ][0-9]{1,5}"
        r"( [0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?( ?[AaPp][Mm])?"
        r"( ?Z| ?[+-][0-9]{2}:?[0-9]{2}| UTC)?",
        fullmatch=True,
    )
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | TEXT
)
KEYS = st.sampled_from(WIRE_NAMES + WEBHOOK_KEYS) | st.text(max_size=6)


def _values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(keys, inner, max_size=6)
            # JSON sent inside a string, as CommBox does for Data and Content
            | st.dictionaries(keys, inner, max_size=4).map(json.dumps)
        ),
        max_leaves=25,
    )


VALUES = _values(KEYS)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- parse_event -----------------------------------------------------------------------------

TRIGGERS = st.sampled_from(
    [
        (None, None),
        ("Object", "OnNew"),
        ("Object", "OnNewChild"),
        ("Object", "OnNewActivity"),
        ("Object", "OnUpdateTag"),
        ("User", "OnUpdate"),
        ("User", "OnUpdateTag"),
        ("Tag", "OnAdd"),
        ("Satisfaction", "OnSubmit"),
        ("Form", "OnSubmit"),
        ("Chat", "OnUserExit"),
        ("Nope", "Nothing"),
    ]
)


@fuzz(800)
@given(payload=VALUES, trigger=TRIGGERS, wrapped=st.booleans())
@example(payload={"Activities": [{"Type": "1" * 5000}]}, trigger=(None, None), wrapped=True)
@example(
    payload={"Activities": {"Type": 1, "CreateDate": "9999-12-31T23:00:00-05:00"}},
    trigger=("Object", "OnNewActivity"),
    wrapped=True,
)
@example(
    payload={"FormUrl": 1, "Properties": "[" * 300 + "]" * 300}, trigger=(None, None), wrapped=True
)
def test_parse_event_of_any_json_raises_only_parse_errors(
    payload: Any, trigger: tuple[str | None, str | None], wrapped: bool
) -> None:
    body = _json_bytes({"payload": payload} if wrapped else payload)
    with contextlib.suppress(WebhookParseError):
        parse_event(body, subscription=trigger[0], name=trigger[1])


# Encodings a declaration may name: ones expat reads, ones Python does not know, multi-byte
# ones expat refuses, and codecs that are not text encodings or fail on the bytes.
ENCODINGS = st.sampled_from(
    ["utf-8", "UTF-16", "iso-8859-1", "cp1252", "cp037", "x-unknown", "utf-32", "EBCDIC",
     "shift_jis", "utf-7", "rot13", "hex", "idna", "punycode", "undefined", "unicode_escape"]
) | st.text(string.ascii_letters + string.digits + "-_", max_size=12)  # fmt: skip
UNREADABLE_DECLARATIONS = [
    '<?xml version="1.0" encoding="x-unknown"?><Event Subscription="Object" Name="OnNew"/>',
    '<?xml version="1.0" encoding="utf-32"?><Event/>',
    '<?xml version="1.0" encoding="EBCDIC"?><Event/>',
    '<?xml version="1.0" encoding="idna"?><Event/>',
    '<?xml version="1.0" encoding="punycode"?><Event><a>\u00e9</a></Event>',
]

TAGS = st.sampled_from(
    ["Event", "Object", "User", "Activities", "Activity", "Tags", "Tag", "Children", "Child",
     "Id", "Type", "StreamId", "Data", "CreatedTime", "CreateDate", "Message", "Email", "a"]
)  # fmt: skip


@st.composite
def xml_text(draw: st.DrawFn) -> str:
    """An XML-ish document: a random tree of CommBox's tags and hostile text, sometimes with a
    declaration, a DTD, entities, comments or CDATA, sometimes unescaped or cut short."""

    def text() -> str:
        value = draw(TEXT)
        return value if draw(st.booleans()) else value.replace("&", "&amp;").replace("<", "&lt;")

    def element(depth: int) -> str:
        tag = draw(TAGS)
        attrs_ = "".join(
            f' {name}="{draw(TEXT).replace(chr(34), "")}"'
            for name in draw(
                st.lists(st.sampled_from(["Id", "Type", "x"]), max_size=2, unique=True)
            )
        )
        if depth > 3 or draw(st.booleans()):
            return f"<{tag}{attrs_}>{text()}</{tag}>"
        kids = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{tag}{attrs_}>{kids}</{tag}>"

    sub, name = draw(TRIGGERS)
    head = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0"?>',
                '<!DOCTYPE e [<!ENTITY x "y">]>',
                "<!-- c -->",
                "<![CDATA[ <x> ]]>",
            ]
        )
        | ENCODINGS.map(lambda e: f'<?xml version="1.0" encoding="{e}"?>')
    )
    attrs_ = f' Subscription="{sub}" Name="{name}"' if sub else ""
    doc = f"{head}<Event{attrs_}>{element(0)}</Event>"
    cut = draw(st.none() | st.integers(0, len(doc)))
    return doc if cut is None else doc[:cut]


@fuzz(400)
@given(doc=xml_text(), declared=st.booleans())
# Declarations of encodings expat cannot read raised LookupError, ValueError or UnicodeError
# (found by the outsider review); the receivers answered 500.
@example(doc=UNREADABLE_DECLARATIONS[0], declared=True)
@example(doc=UNREADABLE_DECLARATIONS[1], declared=True)
@example(doc=UNREADABLE_DECLARATIONS[2], declared=False)
@example(doc=UNREADABLE_DECLARATIONS[3], declared=False)
@example(doc=UNREADABLE_DECLARATIONS[4], declared=True)
@example(
    doc='<Event Subscription="Object" Name="OnNew"><Object></User /></Object></Event>',
    declared=True,
)
def test_parse_event_of_any_xml_raises_only_parse_errors(doc: str, declared: bool) -> None:
    with contextlib.suppress(WebhookParseError):
        parse_event(doc.encode(), content_type="application/xml" if declared else None)


@fuzz(500)
@given(body=st.binary(max_size=400), kind=st.sampled_from([None, "application/json", "text/xml"]))
@example(body=b'{"payload":{"StreamId":1,"Message":"\xed\xa0\x80"}}', kind=None)
@example(body=b"\xef\xbb\xbf<Event/>", kind=None)
@example(body=b'<?xml version="1.0" encoding="x-unknown"?><Event/>', kind=None)
@example(body=b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-32"?><Event/>', kind="text/xml")
@example(body='<?xml version="1.0" encoding="EBCDIC"?><Event/>'.encode("utf-16"), kind=None)
def test_parse_event_of_any_bytes_raises_only_parse_errors(body: bytes, kind: str | None) -> None:
    with contextlib.suppress(WebhookParseError):
        parse_event(body, content_type=kind)


# -- the models ------------------------------------------------------------------------------


@functools.cache
def _model_values(cls: type[Model]) -> st.SearchStrategy[Any]:
    """Values for one model: objects keyed mostly by its own wire names (built once)."""
    names = [
        str(f.metadata.get("commbox_wire") or f.name)
        for f in attrs.fields(cls)
        if f.name not in ("extra", "wire_keys")
    ]
    keys = st.sampled_from(names) | KEYS if names else KEYS
    return st.dictionaries(keys, _values(keys), max_size=8) | VALUES


MODEL_INPUTS = st.sampled_from(MODELS).flatmap(
    lambda cls: st.tuples(st.just(cls), _model_values(cls))
)


@fuzz(700)
@given(case=MODEL_INPUTS, as_text=st.booleans())
@example(case=(exported_models()[0], {"id": "9" * 5000}), as_text=False)
def test_every_model_decodes_any_value_or_raises_decode_error(
    case: tuple[type[Model], Any], as_text: bool
) -> None:
    cls, value = case
    try:
        cls.from_wire(json.dumps(value) if as_text else value)
    except DecodeError as exc:
        str(exc), repr(exc)  # the message itself never fails


# -- parse_response --------------------------------------------------------------------------


def _printable(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as they can arrive on the wire (bytes, no line breaks)."""
    return {
        k: v.encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"")
        for k, v in headers.items()
    }


ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "status": st.integers(100, 599) | TEXT,
        "description": SCALARS,
        "response_time": TEXT,
        "data": VALUES,
    },
)
BODIES = (
    st.binary(max_size=300)
    | ENVELOPES.map(_json_bytes)
    | VALUES.map(_json_bytes)
    | st.sampled_from(
        [
            b"",
            b"<html>502 Bad Gateway</html>",
            b'{"status": "' + b"5" * 5000 + b'"}',
            b'{"data": ' + b"[" * 2000 + b"]" * 2000 + b"}",
            b'{"status":200,"data":{"message":"\\ud800"}}',
            b'\xff\xfe{\x00"\x00}\x00',
        ]
    )
)


HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "content-type", "x-request-id", "content-encoding"]),
    TEXT
    | st.sampled_from(
        [
            "Fri, 31 Dec 99999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "1e999",
            "-1",
            "9" * 5000,
            "nan",
        ]
    ),
    max_size=3,
)


@fuzz(600)
@given(
    status=st.integers(100, 599) | st.sampled_from([200, 204, 206, 400, 429, 500, 503]),
    body=BODIES,
    allow_partial=st.booleans(),
    headers=HEADERS,
)
# Found by hypothesis on the code before these fixes: RecursionError, and ValueError from int().
@example(
    status=100,
    body=b'{"data": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    allow_partial=False,
    headers={},
)
@example(status=100, body=b'{"status": "' + b"5" * 5000 + b'"}', allow_partial=False, headers={})
@example(status=200, body=b'{"status": "' + b"5" * 5000 + b'"}', allow_partial=False, headers={})
# A Retry-After past year 9999 raised OverflowError from every 4xx/5xx (issue 18).
@example(
    status=429,
    body=b"{}",
    allow_partial=False,
    headers={"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT"},
)
def test_parse_response_raises_only_typed_errors(
    status: int, body: bytes, allow_partial: bool, headers: dict[str, str]
) -> None:
    try:
        parse_response(
            httpx.Response(status, content=body, headers=_printable(headers)),
            method="POST",
            path="/streams/1/objects",
            attempts=1,
            elapsed=0.0,
            allow_partial=allow_partial,
        )
    except CommBoxError as exc:
        str(exc), repr(exc)


def test_the_fuzzers_reach_every_model_and_its_fields() -> None:
    assert len(MODELS) > 40
    assert {"Ticket", "ManagerData", "ObjectDetails", "ObjectRecord", "User"} <= {
        c.__name__ for c in MODELS
    }
    assert "encpryptedString" in WIRE_NAMES and "CreatedTime" in WIRE_NAMES
    assert set(string.ascii_letters) & {k[0] for k in WIRE_NAMES}
