"""Webhooks: every documented example, hostile XML, arbitrary input, the router and receivers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commbox_async.models import ObjectActivityType, ObjectStatusType, StreamProviderType
from commbox_async.webhooks import (
    AmbiguousObjectEvent,
    AmbiguousUserEvent,
    AssignmentData,
    AttachmentsData,
    ChatUserExit,
    ConversationSummaryData,
    FollowUpData,
    FormSubmit,
    ForwardData,
    ForwardReplyData,
    IntentUpdateData,
    ObjectNew,
    ObjectNewActivity,
    ObjectNewChild,
    ObjectUpdateTag,
    RemarkData,
    RoutedData,
    SatisfactionSubmit,
    StatusChangeData,
    StreamChangeData,
    TagAdd,
    TagDelete,
    TagGroupAdd,
    TagGroupDelete,
    TagUpdate,
    TargetStreamChangeData,
    UnknownEvent,
    UserNew,
    UserUpdate,
    UserUpdateTag,
    WebhookParseError,
    WebhookRouter,
    WebhookTooLargeError,
    parse_event,
)
from commbox_async.webhooks.starlette import webhook_app

from .seeds import data

UTC = timezone.utc


def xml_examples() -> list[str]:
    return list(data("webhook_xml_examples.json"))


def json_examples() -> list[dict[str, Any]]:
    """The JSON page's payload examples, as ``tests/data/extract.py`` repaired them (the page's
    tool damaged four; the repairs are made on the documentation, never in the parser)."""
    return list(data("webhook_json_examples.json"))


# -- every XML example -----------------------------------------------------------------------


def test_every_xml_example_parses_with_values() -> None:
    events = [parse_event(x.encode()) for x in xml_examples()]
    assert len(events) == 28
    kinds = [type(e).__name__ for e in events]
    assert kinds == (
        ["ObjectNew", "ObjectNew", "ObjectNewChild"]
        + ["ObjectNewActivity"] * 17
        + [
            "ObjectUpdateTag",
            "ObjectUpdateTag",
            "UserNew",
            "UserUpdate",
            "UserUpdateTag",
            "SatisfactionSubmit",
            "FormSubmit",
            "ChatUserExit",
        ]
    )
    for e in events:
        assert e.subscription and e.name and e.raw

    first, on_new, child = events[0], events[1], events[2]
    assert isinstance(first, ObjectNew) and first.brand is None
    assert first.object.created_time == datetime(2024, 9, 23, 12, 39, 11, tzinfo=UTC)
    assert first.object.content == {"num_likes": 5, "user_likes": False, "num_shares": 2}
    assert first.user is not None and first.user.birthday == date(1951, 10, 10)
    assert isinstance(on_new, ObjectNew) and on_new.brand == "commbox"
    assert on_new.object.status_id is ObjectStatusType.OPEN
    assert on_new.object.stream_provider_type is StreamProviderType.MAIL
    assert on_new.user is not None and on_new.user.birthday == date(
        1951, 10, 10
    )  # broken across lines
    assert (
        on_new.user.identity is not None
        and on_new.user.identity.stream_provider_type is StreamProviderType.FACEBOOK
    )
    assert isinstance(child, ObjectNewChild)
    (msg,) = child.children
    assert msg.id == 2099753 and msg.message == "Hello" and msg.content == {"sessionId": 133}
    assert msg.created_time == datetime(2023, 3, 26, 6, 36, 15, tzinfo=UTC)
    assert msg.user is not None and msg.user.identity is not None
    assert msg.user.identity.thumbnail_url is not None

    acts = {int(e.activity.type): e.activity for e in events[3:20]}  # type: ignore[union-attr]
    assert acts[1].data == RemarkData(text="New remark")
    assert acts[1].id == 565533 and acts[1].user is not None and acts[1].user.id == 433178
    assert acts[1].created == datetime(2023, 3, 27, 6, 29, 59, tzinfo=UTC)
    assert (
        isinstance(acts[2].data, StatusChangeData)
        and acts[2].data.status_id is ObjectStatusType.IN_PROCESS
    )
    assert isinstance(acts[3].data, ForwardData) and acts[3].data.recipients == (
        "john.k@gmail.com",
    )
    assert acts[3].data.allow_email_reply is True
    assert isinstance(acts[4].data, ForwardReplyData) and acts[4].data.message == "test\n\ntest"
    assert acts[4].created == datetime(2017, 3, 27, 6, 29, 59, tzinfo=UTC)
    assert (
        isinstance(acts[5].data, StreamChangeData)
        and acts[5].data.new_object_stream_name == "new_stream_name"
    )
    assert isinstance(acts[6].data, AssignmentData) and acts[6].data.assigned_manager_id == 4342094
    assert acts[7].data.is_remove_tag is False and acts[7].data.group_name == "group1"  # type: ignore[union-attr]
    assert isinstance(acts[8].data, FollowUpData)
    assert acts[8].data.scheduled_time == datetime(2017, 3, 28, 5, 30, tzinfo=UTC)
    assert isinstance(acts[9].data, IntentUpdateData) and acts[9].data.intent_ids == (11,)
    assert (
        isinstance(acts[10].data, AttachmentsData)
        and acts[10].data.attachment_type == "videoCapture"
    )
    assert acts[10].data.files[0]["name"] == "test_image"
    assert (
        isinstance(acts[11].data, RoutedData) and acts[11].data.tag_name == "plus_tag"
    )  # stray "}" tolerated
    assert acts[13].data.change_publicity_to_public is False  # type: ignore[union-attr]
    assert acts[15].data.file_extension == "jpeg" and acts[15].data.invalid_activity == 15  # type: ignore[union-attr]
    assert acts[16].data.max_file_size_allow == 10  # type: ignore[union-attr]
    assert acts[17].data.description == "media dos not enabled"  # type: ignore[union-attr]
    assert acts[19].data.added_participant_name == "tomer_b"  # type: ignore[union-attr]

    add, remove = events[20], events[21]
    assert (
        isinstance(add, ObjectUpdateTag) and add.tags[0].id == 1608 and add.tags[0].action == "Add"
    )
    assert isinstance(remove, ObjectUpdateTag) and remove.tags[0].action == "Remove"
    user_new, user_update, user_tag = events[22], events[23], events[24]
    assert isinstance(user_new, UserNew) and user_new.user.email == "john.doe@gmail.com"
    assert user_new.user.identity is not None and user_new.user.identity.user_name == "michaelk"
    assert (
        isinstance(user_update, UserUpdate) and user_update.user.gender == "M"
    )  # "</User />" repaired
    assert isinstance(user_tag, UserUpdateTag) and user_tag.tags[0].id == 1073
    sat, form, chat = events[25], events[26], events[27]
    assert isinstance(sat, SatisfactionSubmit) and (sat.object_id, sat.score, sat.description) == (
        901733,
        100,
        "excellent",
    )
    assert isinstance(form, FormSubmit) and form.object_id == 901733  # "<Form" without ">" repaired
    assert form.properties == {"field_0": "Jhon", "my_own_param": "1234"}  # curly quotes
    assert isinstance(chat, ChatUserExit) and (chat.user_id, chat.object_id) == (901733, 901735)


# -- every JSON example ----------------------------------------------------------------------


def test_every_json_example_parses_with_values() -> None:
    examples = json_examples()
    assert len(examples) == 33
    events = [parse_event(json.dumps(e).encode()) for e in examples]
    names = [type(e).__name__ for e in events]
    assert names[:2] == ["AmbiguousObjectEvent", "AmbiguousObjectEvent"]
    assert all(n == "ObjectNewActivity" for n in names[2:18])
    assert names[18:] == [
        "ObjectUpdateTag",
        "AmbiguousObjectEvent",
        "AmbiguousObjectEvent",
        "AmbiguousUserEvent",
        "AmbiguousUserEvent",
        "AmbiguousUserEvent",
        "AmbiguousUserEvent",
        "SatisfactionSubmit",
        "TagAdd",
        "TagUpdate",
        "TagDelete",
        "TagGroupAdd",
        "TagGroupDelete",
        "FormSubmit",
        "ChatUserExit",
    ]
    on_new = events[0]
    assert isinstance(on_new, AmbiguousObjectEvent) and on_new.candidates == ("OnNew", "OnNewChild")
    assert on_new.object_id == 3377699720568713
    # Told the trigger, the same body is the specific event.
    told = parse_event(json.dumps(examples[0]).encode(), subscription="Object", name="OnNew")
    assert isinstance(told, ObjectNew) and told.object.stream_provider_type == "BumpYard"
    told_child = parse_event(
        json.dumps(examples[1]).encode(), subscription="Object", name="OnNewChild"
    )
    assert isinstance(told_child, ObjectNewChild) and told_child.object.message == "Hello World"

    by_type = {}
    for e in events[2:18]:
        assert isinstance(e, ObjectNewActivity)
        by_type.setdefault(int(e.activity.type), []).append(e)  # type: ignore[union-attr]
    remark = by_type[1][0]
    assert remark.object_id == 3377699720568713 and remark.stream_id == 24569
    assert remark.activity.data == RemarkData(text="Message On Remark")  # type: ignore[union-attr]
    assert remark.activity.id == 3377699720762016  # type: ignore[union-attr]
    assert remark.activity.created == datetime(2024, 6, 9, 7, 32, tzinfo=UTC)  # type: ignore[union-attr]
    status = by_type[2][0].activity.data
    assert isinstance(status, StatusChangeData) and status.status_id is ObjectStatusType.RESOLVED
    assert status.request_ip == "213.57.31.162"
    assert by_type[4][0].activity.data.attachments == "null"  # type: ignore[union-attr]
    stream = by_type[5][0].activity.data
    assert isinstance(stream, StreamChangeData) and stream.new_object_stream_id == 15802
    assert stream.request_ip == ["213.57.31.162"]
    follow = by_type[8][0].activity.data
    assert isinstance(follow, FollowUpData) and follow.scheduled_time == datetime(
        2024, 6, 9, 11, 55, tzinfo=UTC
    )
    attach = by_type[10][0].activity.data
    assert isinstance(attach, AttachmentsData) and attach.files[0]["size"] == 302442
    assert by_type[15][0].activity.data.invalid_activity == 15  # type: ignore[union-attr]
    summary = by_type[21][0].activity.data
    assert isinstance(summary, ConversationSummaryData)
    assert summary.customer_details == {"email": "test@gmail.com"}
    assert summary.conversation_details is not None
    assert summary.conversation_details.created_time == datetime(2024, 6, 2, 15, 47, 50, tzinfo=UTC)
    assert summary.text is not None and summary.text.startswith("-**Customer approached")
    assert by_type[23][0].activity.data.extra == {}  # type: ignore[union-attr]
    # Type 20's example is printed with Type "5"; told it is type 20, the data class follows.
    target = parse_event(
        json.dumps(
            {
                "payload": {
                    "Activities": {"Activity": {"Type": "20", "Data": {"newObjectStreamId": 1}}},
                    "Id": "1",
                    "StreamId": "2",
                }
            }
        ).encode()
    )
    assert isinstance(target.activity.data, TargetStreamChangeData)  # type: ignore[union-attr]

    tag = events[18]
    assert isinstance(tag, ObjectUpdateTag) and tag.tags[0].id == 3377699720528304
    users = events[21:25]
    assert all(isinstance(u, AmbiguousUserEvent) for u in users)
    assert users[1].user.phone1 == " 19175012555"  # type: ignore[attr-defined]
    assert users[2].user.content == {"_isEmailVerified": True, "_activationState": "Handled"}  # type: ignore[attr-defined]
    sat = events[25]
    assert isinstance(sat, SatisfactionSubmit) and (sat.score, sat.object_id) == (
        50,
        3377699720568738,
    )
    add, update, delete, add_group, del_group = events[26:31]
    assert (
        isinstance(add, TagAdd)
        and add.tag_name == "TestADD"
        and add.is_object is True
        and add.is_user is False
    )
    assert isinstance(update, TagUpdate) and update.unit_validation == {"min": "1", "max": "1111"}
    assert update.default_value == "10" and update.group_id == 3377699720528190
    assert isinstance(delete, TagDelete) and delete.tag_id == 21958
    assert isinstance(add_group, TagGroupAdd) and add_group.tag_name == "TestAddGroup"
    assert isinstance(del_group, TagGroupDelete) and del_group.group_id == 3377699720531126
    form, chat = events[31], events[32]
    assert isinstance(form, FormSubmit) and form.properties == {
        "field_0": "TESTNAME",
        "field_1": "true",
    }
    assert isinstance(chat, ChatUserExit) and chat.user_id == 3377699720575717


# -- forward compatibility and malformed input -----------------------------------------------


def test_unknown_kinds_and_fields_are_kept() -> None:
    e = parse_event(b'<Event Subscription="Billing" Name="OnPay" Brand="b"><Bill Id="1"/></Event>')
    assert isinstance(e, UnknownEvent) and e.raw == {"Bill": {"Id": "1"}} and e.brand == "b"
    e = parse_event(b'{"payload": {"Something": 1}}')
    assert isinstance(e, UnknownEvent) and e.raw == {"payload": {"Something": 1}}
    e = parse_event(
        b'{"payload": {"Activities": {"Activity": {"Type": "99", "Data": {"x": 1}}}, "Id": "5"}}'
    )
    assert isinstance(e, ObjectNewActivity)
    assert e.activity is not None and e.activity.type == 99 and e.activity.data == {"x": 1}
    e = parse_event(
        b'{"payload": {"Id": "5", "StreamId": "1", "NewField": true, "Message": "m"}}',
        subscription="Object",
        name="OnNew",
    )
    assert isinstance(e, ObjectNew) and e.object.extra == {"NewField": True}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not a webhook",
        b"<Event Subscription='Object' Name='OnNew'><Object Id='1'>",
        b"<Root/>",
        b'{"payload": {"Id": "1"',
        b"[1, 2]",
        b'{"payload": 5}',
        b"\xff\xfe<bad",
        b"<Event><Object Id='x'></Event>",
    ],
)
def test_malformed_input_is_one_typed_error(body: bytes) -> None:
    with pytest.raises(WebhookParseError):
        parse_event(body)


def test_bad_values_in_a_known_kind_are_a_parse_error() -> None:
    with pytest.raises(WebhookParseError, match="Object OnNew"):
        parse_event(
            b'{"payload": {"Id": "not-a-number", "StreamId": "1"}}',
            subscription="Object",
            name="OnNew",
        )


def test_size_limit() -> None:
    body = b'{"payload": {"Message": "' + b"x" * 2000 + b'"}}'
    with pytest.raises(WebhookTooLargeError):
        parse_event(body, max_bytes=1000)
    assert parse_event(body, max_bytes=4000)


XXE = b"""<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Event Subscription="Object" Name="OnNew"><Object Id="1"><Message>&x;</Message></Object></Event>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><Event Subscription="Object" Name="OnNew">'
    + b"<Object Id='1'><Message>&lol9;</Message></Object></Event>"
)


@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_hostile_xml_is_rejected_quickly(body: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(WebhookParseError, match="refused"):
        parse_event(body)
    assert time.perf_counter() - start < 0.5


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_errors(body: bytes) -> None:
    with contextlib.suppress(WebhookParseError):
        parse_event(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Id",
                    "StreamId",
                    "Message",
                    "Activities",
                    "Activity",
                    "Type",
                    "Data",
                    "Tags",
                    "Tag",
                    "User",
                    "Object",
                    "eventName",
                    "groupId",
                    "Score",
                    "FormUrl",
                    "Email",
                    "CreateDate",
                    "Children",
                    "x",
                ]
            ),
            c,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=_json,
    told=st.sampled_from([None, ("Object", "OnNew"), ("User", "OnUpdate"), ("Tag", "OnAdd")]),
)
def test_arbitrary_json_raises_only_parse_errors(payload: Any, told: Any) -> None:
    sub, name = told or (None, None)
    with contextlib.suppress(WebhookParseError):
        parse_event(json.dumps({"payload": payload}).encode(), subscription=sub, name=name)


# -- the router ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_router_dispatch() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on(ObjectNewChild)
    async def on_child(event: ObjectNewChild) -> None:
        seen.append(f"child {event.object_id}")

    @router.on_activity(ObjectActivityType.REMARK)
    def on_remark(event: ObjectNewActivity, activity: Any) -> None:
        seen.append(f"remark {activity.data.text}")

    @router.on_any()
    def everything(event: Any) -> None:
        seen.append(type(event).__name__)

    examples = xml_examples()
    assert await router.dispatch(parse_event(examples[2].encode())) == 2
    assert await router.dispatch(parse_event(examples[3].encode())) == 2
    assert await router.dispatch(parse_event(examples[4].encode())) == 1
    assert seen == [
        "child 901730",
        "ObjectNewChild",
        "remark New remark",
        "ObjectNewActivity",
        "ObjectNewActivity",
    ]


# -- receivers -------------------------------------------------------------------------------


def _router(fail: bool = False) -> tuple[WebhookRouter, list[Any]]:
    router = WebhookRouter()
    got: list[Any] = []

    @router.on_any()
    async def handler(event: Any) -> None:
        if fail:
            raise RuntimeError("handler failed")
        got.append(event)

    return router, got


@pytest.mark.anyio
async def test_starlette_receiver() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    router, got = _router()
    app = Starlette(
        routes=[Mount("/commbox", webhook_app(router, secret="s3cret", max_bytes=4096))]
    )
    xml = xml_examples()[2].encode()
    on_new = json.dumps(json_examples()[0]).encode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        assert (await http.post("/commbox/", content=xml)).status_code == 401
        assert (await http.post("/commbox/?secret=wrong", content=xml)).status_code == 401
        r = await http.post(
            "/commbox/?secret=s3cret", content=xml, headers={"content-type": "application/xml"}
        )
        assert r.status_code == 200
        r = await http.post(
            "/commbox/object/onnew", content=on_new, headers={"X-CommBox-Secret": "s3cret"}
        )
        assert r.status_code == 200
        assert (await http.post("/commbox/?secret=s3cret", content=b"x" * 5000)).status_code == 413
        # A Content-Length of a non-ASCII digit ("²" passes str.isdigit, not int) is ignored
        # rather than crashing the receiver; the body itself is still measured.
        r = await http.post(
            "/commbox/?secret=s3cret", content=b"x" * 5000, headers={"content-length": b"\xb2"}
        )
        assert r.status_code == 413
        # 5,000 digits: more than int() reads (a ValueError and a 500, before); 413 at once.
        r = await http.post(
            "/commbox/?secret=s3cret", content=b"x", headers={"content-length": "9" * 5000}
        )
        assert r.status_code == 413
        assert (await http.post("/commbox/?secret=s3cret", content=b"<nope")).status_code == 400
        assert (
            await http.post("/commbox/nope/nothing?secret=s3cret", content=on_new)
        ).status_code == 404
    assert [type(e) for e in got] == [ObjectNewChild, ObjectNew]

    failing, _ = _router(fail=True)
    app = Starlette(routes=[Mount("/commbox", webhook_app(failing))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    ) as http:
        assert (await http.post("/commbox/", content=xml)).status_code == 500


@pytest.mark.anyio
async def test_starlette_receiver_background_mode() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    router, got = _router()
    app = Starlette(routes=[Mount("/hooks", webhook_app(router, background=True))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        r = await http.post("/hooks/", content=xml_examples()[0].encode())
    assert r.status_code == 200 and r.text == "accepted"
    assert len(got) == 1


def test_aiohttp_receiver() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    from commbox_async.webhooks.aiohttp import add_webhook_routes

    async def main() -> None:
        router, got = _router()
        app = aiohttp.web.Application()
        add_webhook_routes(app, router, prefix="/commbox", secret="s3cret", max_bytes=4096)
        failing, _ = _router(fail=True)
        add_webhook_routes(app, failing, prefix="/failing")
        async with TestClient(TestServer(app)) as client:
            xml = xml_examples()[2].encode()
            assert (await client.post("/commbox", data=xml)).status == 401
            assert (await client.post("/commbox?secret=s3cret", data=xml)).status == 200
            on_new = json.dumps(json_examples()[0]).encode()
            assert (
                await client.post(
                    "/commbox/object/onnew", data=on_new, headers={"X-CommBox-Secret": "s3cret"}
                )
            ).status == 200
            assert (await client.post("/commbox?secret=s3cret", data=b"x" * 5000)).status == 413
            assert (await client.post("/commbox?secret=s3cret", data=b"{broken")).status == 400
            assert (await client.post("/failing", data=xml)).status == 500
        assert [type(e) for e in got] == [ObjectNewChild, ObjectNew]

    asyncio.run(main())


# -- what the receivers answer, and why ------------------------------------------------------


def _app(**options: Any) -> Any:
    router, got = _router()
    return webhook_app(router, **options), got


def _http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.anyio
async def test_a_receiver_says_why_it_refuses_a_body() -> None:
    app, got = _app(max_bytes=4096)
    on_new = json.dumps(json_examples()[0]).encode()
    async with _http(app) as http:
        declared = await http.post("/", content=b"x", headers={"content-length": "9" * 20})
        assert (declared.status_code, declared.text) == (
            413,
            "payload too large (limit 4096 bytes)",
        )

        async def chunks() -> Any:  # no Content-Length: the cap is found while reading
            for _ in range(5):
                yield b"x" * 1000

        streamed = await http.post("/", content=chunks())
        assert (streamed.status_code, streamed.text) == (
            413,
            "payload too large (limit 4096 bytes)",
        )
        nowhere = await http.post("/nope/nothing", content=on_new)
        assert (nowhere.status_code, nowhere.text) == (404, "no CommBox trigger 'nope/nothing'")
        broken = await http.post("/", content=b'{"payload": ')
        assert broken.status_code == 400
        assert broken.text.startswith("malformed JSON webhook: ")
    assert got == []


@pytest.mark.anyio
async def test_a_body_sent_in_chunks_is_read_whole() -> None:
    app, got = _app()
    xml = xml_examples()[2].encode()

    async def chunks() -> Any:
        for start in range(0, len(xml), 100):
            yield xml[start : start + 100]

    async with _http(app) as http:
        r = await http.post("/", content=chunks())
    assert (r.status_code, r.text) == (200, "ok")
    assert [type(e) for e in got] == [ObjectNewChild]


@pytest.mark.anyio
async def test_a_content_length_is_compared_as_a_number() -> None:
    xml = xml_examples()[2].encode()
    app, got = _app(max_bytes=len(xml))
    async with _http(app) as http:
        # Exactly the limit, and as many digits as the limit has: accepted.
        exact = await http.post("/", content=xml)
        assert exact.status_code == 200, exact.text
        # Leading zeros say nothing: the length is the number's.
        zeros = await http.post("/", content=xml, headers={"content-length": f"{len(xml):012d}"})
        assert zeros.status_code == 200, zeros.text
        # One byte over the limit is refused before the body is read.
        over = await http.post("/", content=xml, headers={"content-length": str(len(xml) + 1)})
        assert over.status_code == 413
        # A length that is not a number is no reason to refuse: the body is measured instead.
        junk = await http.post("/", content=xml, headers={"content-length": "12x"})
        assert junk.status_code == 200, junk.text
        # Zero (or all zeros) is a length under any limit: the empty body is refused as such.
        empty = await http.post("/", content=b"", headers={"content-length": "000"})
        assert empty.status_code == 400
        assert empty.text.startswith("malformed JSON webhook: ")
    assert [type(e) for e in got] == [ObjectNewChild] * 3


@pytest.mark.anyio
async def test_the_route_and_the_content_type_decide_the_parse() -> None:
    app, got = _app()
    shapeless = json.dumps({"payload": {"Id": "5", "StreamId": "1"}}).encode()
    async with _http(app) as http:
        # The route names the subscription: this body's shape alone would make it an Object's.
        assert (await http.post("/user/onnew", content=shapeless)).status_code == 200
        # A JSON body declared as XML is parsed as XML, and so refused.
        r = await http.post("/", content=shapeless, headers={"content-type": "application/xml"})
        assert r.status_code == 400 and r.text.startswith("malformed XML webhook: ")
    assert [type(e) for e in got] == [UserNew]


@pytest.mark.anyio
async def test_the_body_limits_are_the_receivers_own() -> None:
    nested = json.dumps({"payload": {"Id": "1", "StreamId": "2", "x": [[[[1]]]]}}).encode()
    shallow, _ = _app(max_depth=3)
    async with _http(shallow) as http:
        r = await http.post("/", content=nested)
    assert (r.status_code, r.text) == (
        400,
        "refused JSON webhook: JSON nested deeper than the limit of 3 levels",
    )
    # A limit above the parser's default (1 MiB) is the one that holds.
    big = json.dumps({"payload": {"Id": "1", "StreamId": "2", "Message": "x" * 1_500_000}})
    roomy, got = _app(max_bytes=2 * 1024 * 1024)
    async with _http(roomy) as http:
        r = await http.post("/object/onnew", content=big.encode())
    assert (r.status_code, r.text) == (200, "ok")
    assert len(got[0].object.message) == 1_500_000


def _scope(path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("t", 80),
        "client": ("c", 1),
    }


async def _call(app: Any, receive: Any) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(), receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.anyio
async def test_a_body_that_does_not_come_is_answered_408() -> None:
    import anyio

    app, got = _app(body_timeout=0.05)
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"<Event", "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    assert await _call(app, receive) == (408, b"body not received within 0.05s")
    assert got == []


@pytest.mark.anyio
async def test_a_client_gone_mid_body_is_answered_400_naming_why() -> None:
    app, got = _app()
    messages = [
        {"type": "http.request", "body": b"<Event", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    assert await _call(app, receive) == (
        400,
        b"the request body could not be read (ClientDisconnect)",
    )
    assert got == []


@pytest.mark.anyio
async def test_the_secret_is_required_whatever_it_is() -> None:
    # Nothing sent is compared as nothing: not as any default text a secret could equal.
    app, got = _app(secret="XXXX")
    async with _http(app) as http:
        assert (await http.post("/", content=xml_examples()[2].encode())).status_code == 401
    assert got == []


def test_the_receiver_options_accept_their_smallest_values() -> None:
    from commbox_async import ConfigurationError
    from commbox_async.webhooks import ReceiverConfig

    config = ReceiverConfig(max_depth=1, max_bytes=0)
    assert (config.max_depth, config.max_bytes) == (1, 0)
    with pytest.raises(ConfigurationError, match=r"^max_bytes must not be negative, got -1$"):
        ReceiverConfig(max_bytes=-1)
    with pytest.raises(ConfigurationError, match=r"^max_depth must be a positive int, got 0$"):
        ReceiverConfig(max_depth=0)


def test_the_parse_verdict_of_a_body() -> None:
    """What both receivers answer with comes from one verdict: its status and message (and,
    for a 200, the event), whichever receiver reads the body."""
    from commbox_async.webhooks import ReceiverConfig
    from commbox_async.webhooks._receiver import Verdict, check

    xml = xml_examples()[2].encode()
    ok = check(ReceiverConfig(), xml, content_type=None, trigger=None)
    assert (ok.status, ok.message, type(ok.event)) == (200, "ok", ObjectNewChild)
    # A body over the limit (read_body refuses it first in a receiver; check does too).
    big = check(ReceiverConfig(max_bytes=10), xml, content_type=None, trigger=None)
    assert big == Verdict(413, f"webhook body of {len(xml)} bytes exceeds the limit of 10")
    bad = check(ReceiverConfig(), b"<nope", content_type=None, trigger=None)
    assert bad.status == 400 and bad.message.startswith("malformed XML webhook: ")
    assert bad.event is None
