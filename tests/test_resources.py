"""Every endpoint in the seeds: exact request (method, path, query, body) and typed decoding."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from commbox_async import (
    Attachment,
    ConfigurationError,
    CustomIndicator,
    InvalidResponseError,
    NewChild,
    NewObject,
    NotFoundError,
    ObjectActivityType,
    ObjectStatusType,
    StreamProviderType,
)
from commbox_async.models import ObjectDetails

from .conftest import BASE, envelope, make_client
from .seeds import response_example

pytestmark = pytest.mark.anyio

ENC = "hNyRN_fLUy7rrOrN9jLpipA=="
ENC_PATH = "hNyRN_fLUy7rrOrN9jLpipA%3D%3D"


class Recorder:
    """An httpx handler that records requests and answers from a queue."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def answer(data: Any = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=envelope(data, status=str(status)))


def raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode().split("?")[0]


# -- creating --------------------------------------------------------------------------------

SMS = NewObject.sms(
    user_stream_provider_id="972544444444", message="some message", manager_id=36197
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (293854, 293854),
        ("293854", 293854),
        ({"objectId": 7}, 7),
        ({"Id": "3377699720568713"}, 3377699720568713),
        ([{"id": 5}], 5),
    ],
)
async def test_create_json_and_id_shapes(data: Any, expected: int) -> None:
    rec = Recorder(answer(data))
    async with make_client(rec) as cb:
        assert await cb.objects.create(ENC, SMS) == expected
    req = rec.last
    assert req.method == "POST"
    assert raw_path(req) == f"/streams/{ENC_PATH}/objects"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {"data": SMS.to_wire()}


async def test_create_with_unexpected_data_keeps_raw_body() -> None:
    rec = Recorder(answer({"weird": True}))
    async with make_client(rec) as cb:
        with pytest.raises(InvalidResponseError) as info:
            await cb.objects.create(1, SMS)
    assert info.value.body["data"] == {"weird": True}
    assert info.value.may_have_been_processed


async def test_create_refuses_missing_message_before_sending() -> None:
    rec = Recorder(answer(1))
    async with make_client(rec) as cb:
        with pytest.raises(ConfigurationError, match="message"):
            await cb.objects.create(1, NewObject(type=4))
    assert rec.requests == []


def _parts(request: httpx.Request) -> list[tuple[str, str | None, str | None, bytes]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    out = []
    for part in msg.iter_parts():
        params = dict(part.get_params(header="content-disposition") or [])
        out.append(
            (
                params.get("name"),
                params.get("filename"),
                part.get("content-type"),
                part.get_payload(decode=True),
            )
        )
    return out


EMAIL = NewObject.email(
    subject="Monthly Report and Analysis",
    message="Please review the attached monthly report and analysis.",
    to=[("manager@example.com", "Jane Manager")],
    cc=[("team@example.com", "Team Lead")],
    user_stream_provider_id="sender@yourdomain.com",
    manager_id=28361974,
    status_id=ObjectStatusType.SENT,
)


@pytest.fixture
def three_files(tmp_path: Path) -> list[Path]:
    paths = []
    for name, size in (
        ("report.pdf", 70_000),
        ("analysis.xlsx", 1234),
        ("presentation.pptx", 300_001),
    ):
        p = tmp_path / name
        p.write_bytes(bytes((i * 7 + len(name)) % 256 for i in range(size)))
        paths.append(p)
    return paths


async def test_multipart_with_three_attachments(three_files: list[Path]) -> None:
    rec = Recorder(answer({"objectId": 11}))
    async with make_client(rec) as cb:
        assert await cb.objects.create(17, EMAIL, files=three_files) == 11
    req = rec.last
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = _parts(req)
    assert [p[0] for p in parts] == ["data", "file", "file", "file"]
    assert json.loads(parts[0][3]) == EMAIL.to_wire()  # the unwrapped {"Type": 5, ...} form
    assert parts[0][3].startswith(b'{"Type": 5, "StatusId": 13, "StreamProviderType": 4')
    assert [(p[1], p[2]) for p in parts[1:]] == [
        ("report.pdf", "application/pdf"),
        ("analysis.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (
            "presentation.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
    ]
    assert [p[3] for p in parts[1:]] == [f.read_bytes() for f in three_files]


async def test_multipart_accepts_bytes_and_file_objects(three_files: list[Path]) -> None:
    rec = Recorder(answer(3))
    with three_files[0].open("rb") as fh:
        files = [
            Attachment(source=b"hello", filename="note.txt"),
            fh,
            Attachment(
                source=io.BytesIO(b"\x00\x01"), filename="blob", content_type="application/x-mine"
            ),
        ]
        async with make_client(rec) as cb:
            await cb.objects.create(17, EMAIL, files=files)
    parts = _parts(rec.last)
    assert [(p[1], p[2], p[3]) for p in parts[1:]] == [
        ("note.txt", "text/plain", b"hello"),
        ("report.pdf", "application/pdf", three_files[0].read_bytes()),
        ("blob", "application/x-mine", b"\x00\x01"),
    ]


async def test_retried_upload_resends_all_three_whole(three_files: list[Path]) -> None:
    rec = Recorder(answer(None, status=503), answer({"objectId": 12}))
    async with make_client(rec) as cb:
        assert await cb.objects.create(17, EMAIL, files=three_files) == 12
    assert len(rec.requests) == 2
    for req in rec.requests:
        assert [p[3] for p in _parts(req)[1:]] == [f.read_bytes() for f in three_files]


async def test_missing_or_unreadable_file_fails_before_sending(tmp_path: Path) -> None:
    rec = Recorder(answer(1))
    async with make_client(rec) as cb:
        with pytest.raises(ConfigurationError, match=r"files\[1\].*does not exist"):
            await cb.objects.create(
                17,
                EMAIL,
                files=[
                    b"x" and Attachment(source=b"x", filename="a.txt"),
                    tmp_path / "missing.pdf",
                ],
            )
        with pytest.raises(ConfigurationError, match="filename"):
            await cb.objects.create(17, EMAIL, files=[b"raw bytes without a name"])
    assert rec.requests == []


async def test_create_child_by_object_id() -> None:
    rec = Recorder(answer({"id": 294159}))
    child = NewChild.from_agent(
        user_identity=36574658,
        user_stream_provider_id="972542660000",
        user_stream_provider_type=StreamProviderType.WHATSAPP,
        message="hi",
    )
    async with make_client(rec) as cb:
        assert await cb.objects.create_child(ENC, "12/34", child) == 294159
    assert rec.last.method == "POST"
    assert raw_path(rec.last) == f"/streams/{ENC_PATH}/objects/12%2F34/child"
    assert json.loads(rec.last.content) == {
        "data": {
            "IsManager": True,
            "UserIdentity": 36574658,
            "Type": 4,
            "UserStreamProviderId": "972542660000",
            "UserStreamProviderType": 7,
            "Message": "hi",
        }
    }


async def test_create_child_by_stream_provider() -> None:
    rec = Recorder(answer(5))
    child = NewChild.from_customer(
        user_stream_provider_id="MrDoe@gmail.com",
        user_stream_provider_type=4,
        message="A message on behalf of Mr. John Doe",
    )
    async with make_client(rec) as cb:
        assert (
            await cb.objects.create_child_for_provider(
                532, "CAEooBmqRVHRrfRm5NY+NA@mail.gmail.com", StreamProviderType.MAIL, child
            )
            == 5
        )
    assert (
        raw_path(rec.last)
        == "/streams/532/objects/CAEooBmqRVHRrfRm5NY%2BNA%40mail.gmail.com/4/child"
    )
    assert json.loads(rec.last.content)["data"]["Message"] == "A message on behalf of Mr. John Doe"


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({}, ""),
        ({"include_children": True}, "includeChilds=true"),
        (
            {"include_children": True, "include_activity_log": True},
            "includeChilds=true&includeActivityLog=true",
        ),
        ({"include_activity_log": True}, "includeActivityLog=true"),
    ],
)
async def test_get_object(kwargs: dict[str, bool], query: str) -> None:
    body = response_example("/streams/{STREAM_ID}/objects/{OBJECT_ID}", "get")
    rec = Recorder(httpx.Response(200, json=body))
    async with make_client(rec) as cb:
        obj = await cb.objects.get(ENC, 293854, **kwargs)
    assert rec.last.method == "GET"
    assert raw_path(rec.last) == f"/streams/{ENC_PATH}/objects/293854"
    assert rec.last.url.query.decode() == query
    assert isinstance(obj, ObjectDetails)
    assert obj.object_id == 293854
    assert obj.created_time == datetime(2024, 8, 6, 7, 51, 52, 258194, tzinfo=timezone.utc)
    assert [c.id for c in obj.messages] == [123456, 978944]


async def test_get_object_empty_data_is_not_found() -> None:
    async with make_client(Recorder(answer([]))) as cb:
        with pytest.raises(NotFoundError):
            await cb.objects.get(1, 2)


async def test_activities() -> None:
    body = response_example("/objects/{OBJECT_ID}/activities", "get")
    rec = Recorder(httpx.Response(200, json=body))
    async with make_client(rec) as cb:
        acts = await cb.objects.activities(56575395, ObjectActivityType.REMARK)
    assert raw_path(rec.last) == "/objects/56575395/activities"
    assert rec.last.url.query == b"activityType=1"
    assert acts[0].type is ObjectActivityType.REMARK
    assert acts[0].data == {"text": "Sent a link to video Chat - not responded"}


async def test_transcript() -> None:
    body = response_example("/streams/{STREAM_ID}/objects/{OBJECT_ID}/transcript", "get")
    rec = Recorder(httpx.Response(200, json=body))
    async with make_client(rec) as cb:
        tr = await cb.objects.transcript(532, 293854)
    assert raw_path(rec.last) == "/streams/532/objects/293854/transcript"
    assert tr.object_id == 378015
    assert tr.transcript is not None
    assert tr.transcript.startswith("\\n[2/29/2024 12:20:25 PM]")


async def test_manager_get() -> None:
    body = response_example("/managers/{MANAGER_ID}", "get")
    rec = Recorder(httpx.Response(200, json=body))
    async with make_client(rec) as cb:
        mgr = await cb.managers.get(520760)
        raw = await cb.with_raw_response.managers.get(520760)
    assert raw_path(rec.last) == "/managers/520760"
    assert mgr.first_name == "John"
    assert mgr.email == "john.s@gmail.com"
    assert raw.parsed == mgr
    assert raw.http_status == 200


# -- writing ---------------------------------------------------------------------------------


async def test_set_status_content_log_remark_indicator_and_deletes() -> None:
    rec = Recorder(answer(None))
    async with make_client(rec) as cb:
        await cb.objects.set_status(901731, ObjectStatusType.RESOLVED)
        await cb.objects.set_content(901731, {"num_likes": 8, "is_hidden": False})
        await cb.objects.add_activity_log(901731, "test!", source="testing", manager_id=1111)
        await cb.objects.add_activity_log(901731, "only text")
        await cb.objects.add_remark(901731, "test!", manager_id=1111)
        await cb.objects.set_indicator(
            901731,
            CustomIndicator(
                indicator_id="home",
                title="Working from home",
                display_class="icon-home",
                link="www.commbox.io",
            ),
        )
        await cb.objects.delete_indicator(901731, "home/x")
        await cb.objects.remove_tag(ENC, 901731, 1608)
    got = [
        (r.method, raw_path(r), json.loads(r.content) if r.content else None) for r in rec.requests
    ]
    assert got == [
        ("POST", "/objects/901731/status/2", None),
        ("POST", "/objects/901731/content", {"data": {"num_likes": 8, "is_hidden": False}}),
        (
            "POST",
            "/objects/901731/activitylog",
            {"data": {"Text": "test!", "Source": "testing", "ManagerId": 1111}},
        ),
        ("POST", "/objects/901731/activitylog", {"data": {"Text": "only text"}}),
        ("POST", "/objects/901731/remarks", {"data": {"Text": "test!", "ManagerId": 1111}}),
        (
            "POST",
            "/objects/901731/indicators",
            {
                "data": {
                    "IndicatorId": "home",
                    "Title": "Working from home",
                    "DisplayClass": "icon-home",
                    "Link": "www.commbox.io",
                }
            },
        ),
        ("DELETE", "/objects/901731/indicators/home%2Fx", None),
        ("DELETE", f"/streams/{ENC_PATH}/objects/901731/tags/1608", None),
    ]


async def test_indicator_rules_checked_before_sending() -> None:
    rec = Recorder(answer(None))
    async with make_client(rec) as cb:
        with pytest.raises(ConfigurationError, match="display_class or icon"):
            await cb.objects.set_indicator(1, CustomIndicator(indicator_id="x", title="no icon"))
        with pytest.raises(ConfigurationError, match="status"):
            await cb.objects.set_status(1, "open")  # type: ignore[arg-type]
    assert rec.requests == []


async def test_raw_response_views_for_objects() -> None:
    rec = Recorder(
        httpx.Response(200, json=envelope({"objectId": 9}), headers={"x-request-id": "abc"})
    )
    async with make_client(rec) as cb:
        raw = await cb.with_raw_response.objects.create(1, SMS)
    assert raw.parsed == 9
    assert raw.headers["x-request-id"] == "abc"
    assert raw.json["data"] == {"objectId": 9}


@respx.mock(base_url=BASE, assert_all_called=True)
async def test_works_with_respx_routes(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"/streams/{ENC_PATH}/objects").respond(json=envelope({"objectId": 1}))
    async with make_client() as cb:
        assert await cb.objects.create(ENC, SMS) == 1
    assert route.call_count == 1


# -- streaming -------------------------------------------------------------------------------


async def test_200mb_upload_streams_from_disk(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    size = 200 * 1024 * 1024
    big = tmp_path / "big.pdf"
    with big.open("wb") as fh:
        chunk = bytes(range(256)) * 4096  # 1 MiB, not sparse
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    received = 0

    async def handle(stream: anyio.abc.SocketStream) -> None:
        nonlocal received
        from anyio.streams.buffered import BufferedByteReceiveStream

        async with stream:
            buf = BufferedByteReceiveStream(stream)
            head = await buf.receive_until(b"\r\n\r\n", 65536)
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while received < length:
                received += len(await buf.receive(min(65536, length - received)))
            payload = json.dumps(envelope({"objectId": 1})).encode()
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )

    proc = psutil.Process()
    peak = base = proc.memory_info().rss
    done = anyio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            await anyio.sleep(0.005)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        tg.start_soon(sample)
        async with make_client(base_url=f"http://127.0.0.1:{port}", timeout=120) as cb:
            assert await cb.objects.create(1, EMAIL, files=[big]) == 1
        done.set()
        tg.cancel_scope.cancel()
    assert received > size
    assert peak - base < 20 * 1024 * 1024, f"peak RSS grew by {(peak - base) / 2**20:.1f} MiB"
