"""FakeCommBox: state, status codes, faults, rate limit, inspection API, real-server mode, CLI."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from commbox_async import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    CustomIndicator,
    InvalidResponseError,
    NewChild,
    NewObject,
    NotFoundError,
    NotImplementedAPIError,
    ObjectActivityType,
    ObjectStatusType,
    RateLimitError,
    ServerError,
)
from commbox_async.testing import FakeCommBox

from .conftest import serve_in_thread

pytestmark = pytest.mark.anyio

STREAM = "hNyRN_fLUy7rrOrN9jLpipA=="
SMS = NewObject.sms(
    user_stream_provider_id="972544444444", message="some message", manager_id=36197
)


def fast(fake: FakeCommBox, **kw: Any) -> Any:
    kw.setdefault("initial_backoff", 0.001)
    kw.setdefault("max_backoff", 0.002)
    return fake.client(**kw)


async def test_the_resource_flow_end_to_end(tmp_path: Any) -> None:
    fake = FakeCommBox()
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"%PDF-1.4 test")
    async with fast(fake) as cb:
        email = NewObject.email(
            subject="Invoice",
            message="Attached.",
            to=[("c@example.com", "C")],
            user_stream_provider_id="sender@example.com",
        )
        email_id = await cb.objects.create(STREAM, email, files=[pdf, pdf])
        oid = await cb.objects.create(STREAM, SMS)
        assert oid >= 3377699720568713  # ids shaped like the webhooks page shows
        await cb.objects.create_child(
            STREAM,
            oid,
            NewChild.from_agent(
                user_identity=36574658,
                user_stream_provider_id="972544444444",
                user_stream_provider_type=5,
                message="agent reply",
            ),
        )
        await cb.objects.create_child_for_provider(
            STREAM,
            "972544444444",
            5,
            NewChild.from_customer(
                user_stream_provider_id="972544444444",
                user_stream_provider_type=5,
                message="customer again",
            ),
        )
        await cb.objects.set_status(oid, ObjectStatusType.IN_PROCESS)
        await cb.objects.set_content(oid, {"num_likes": 8})
        await cb.objects.add_activity_log(oid, "synced", source="crm", manager_id=1)
        await cb.objects.add_remark(oid, "VIP")
        await cb.objects.set_indicator(
            oid, CustomIndicator(indicator_id="home", display_class="icon-home")
        )
        await cb.request("POST", "/streams/{s}/objects/{o}/tags/{t}", s=STREAM, o=oid, t=1608)

        last_only = await cb.objects.get(STREAM, oid)
        assert [m.message for m in last_only.messages] == ["customer again"]
        full = await cb.objects.get(STREAM, oid, include_children=True, include_activity_log=True)
        assert [m.message for m in full.messages] == [
            "customer again",
            "agent reply",
            "some message",
        ]
        assert full.status_id is ObjectStatusType.IN_PROCESS
        assert full.content == {"num_likes": 8}
        assert {a.type for a in full.activity_log} == {
            ObjectActivityType.STATUS_CHANGE,
            ObjectActivityType.REMARK,
        }
        remarks = await cb.objects.activities(oid, ObjectActivityType.REMARK)
        assert remarks[0].data == {"text": "VIP"}
        transcript = await cb.objects.transcript(STREAM, oid)
        assert "agent reply" in (transcript.transcript or "")
        await cb.objects.delete_indicator(oid, "home")
        await cb.objects.remove_tag(STREAM, oid, 1608)
        assert (await cb.managers.get(520760)).team_name == "VIP"

    state = fake.state()["streams"][STREAM]
    by_id = {o["id"]: o for o in state}
    assert (
        by_id[email_id]["attachments"]
        == [
            {
                "field": "file",
                "filename": "invoice.pdf",
                "content_type": "application/pdf",
                "size": 13,
            }
        ]
        * 2
    )
    sms = by_id[oid]
    assert sms["remarks"] == [{"Text": "VIP"}]
    assert sms["activity_log"] == [{"Text": "synced", "Source": "crm", "ManagerId": 1}]
    assert sms["indicators"] == [] and sms["tags"] == []
    assert [e["name"] for e in fake.outbox][:2] == ["OnNew", "OnNew"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda cb: cb.request(
                "POST", "/streams/{s}/objects", s=STREAM, json={"data": {"Type": 4}}
            ),
            BadRequestError,
        ),
        (lambda cb: cb.objects.get(STREAM, 1), NotFoundError),
        (lambda cb: cb.objects.set_status(1, 2), NotFoundError),
        (lambda cb: cb.request("PATCH", "/objects/{o}/remarks", o=1), NotImplementedAPIError),
        (lambda cb: cb.request("GET", "/no/such/endpoint"), NotFoundError),
        (lambda cb: cb.managers.get(1), NotFoundError),
    ],
)
async def test_documented_status_codes(call: Any, error: type[Exception]) -> None:
    fake = FakeCommBox()
    async with fast(fake) as cb:
        with pytest.raises(error):
            await call(cb)


async def test_bad_status_id_and_fixed_streams() -> None:
    fake = FakeCommBox(streams=[532])
    async with fast(fake) as cb:
        oid = await cb.objects.create(532, SMS)
        with pytest.raises(BadRequestError, match="invalid status id 12"):
            await cb.objects.set_status(oid, 12)
        with pytest.raises(BadRequestError, match="Unknown stream"):
            await cb.objects.create(999, SMS)
        with pytest.raises(NotFoundError):
            await cb.objects.get(999, oid)


async def test_auth() -> None:
    fake = FakeCommBox(token="right")
    async with fast(fake, token="wrong") as cb:
        with pytest.raises(AuthenticationError):
            await cb.objects.get(1, 1)
    async with fast(fake, token="right") as cb:
        with pytest.raises(NotFoundError):
            await cb.objects.get(1, 1)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://x") as raw:
        assert (await raw.get("/managers/520760")).status_code == 401


async def test_rate_limit_answers_429_with_retry_after() -> None:
    fake = FakeCommBox(rate_limit=1, burst=2)
    async with fast(fake, max_retries=0) as cb:
        await cb.managers.get(520760)
        await cb.managers.get(520760)
        with pytest.raises(RateLimitError) as info:
            await cb.managers.get(520760)
    assert info.value.retry_after == 1


@pytest.mark.parametrize(
    ("kind", "error", "processed"),
    [
        ("500", ServerError, True),
        ("502", ServerError, False),
        ("503", ServerError, False),
        ("drop_before", APIConnectionError, False),
        ("lost_after", APIConnectionError, True),
        ("truncated", InvalidResponseError, True),
        ("html", ServerError, False),
    ],
)
async def test_every_fault_kind(kind: str, error: type[Exception], processed: bool) -> None:
    fake = FakeCommBox()
    fake.fail_next(kind, times=5)
    async with fast(fake, max_retries=0) as cb:
        with pytest.raises(error) as info:
            await cb.objects.create(STREAM, SMS)
    assert len(fake.objects) == (1 if processed else 0)
    assert fake.requests[-1].fault == kind
    # The verdict may be cautious (a 502 might have been forwarded), never wrong the other way:
    # what was processed is never reported as "certainly not processed".
    if processed:
        assert info.value.may_have_been_processed
    if kind in ("503", "drop_before"):
        assert not info.value.may_have_been_processed


async def test_slow_fault_and_scripted_path() -> None:
    fake = FakeCommBox(slow_seconds=0.2)
    fake.fail_next("slow", path="/managers/520760")
    async with fast(fake) as cb:
        await cb.objects.get(STREAM, await cb.objects.create(STREAM, SMS))  # not the scripted path
        start = time.monotonic()
        await cb.managers.get(520760)
        assert time.monotonic() - start >= 0.19
        fake.fail_next("slow")
        with pytest.raises(TimeoutError), anyio.fail_after(0.05):
            await cb.managers.get(520760)


async def test_random_faults_are_reproducible_with_a_seed() -> None:
    async def run(seed: int) -> list[str | None]:
        fake = FakeCommBox(fault_rate=0.5, seed=seed, faults=["502", "503", "500"])
        async with fast(fake, max_retries=0) as cb:
            for _ in range(30):
                with contextlib.suppress(ServerError):
                    await cb.managers.get(520760)
        return [r.fault for r in fake.requests]

    first, second = await run(3), await run(3)
    assert first == second
    assert 5 < sum(f is not None for f in first) < 25


async def test_client_retries_make_no_duplicates_under_faults() -> None:
    fake = FakeCommBox(fault_rate=0.3, seed=11)
    keys: dict[str, str] = {}
    async with fast(fake, max_retries=5) as cb:
        for i in range(200):
            try:
                await cb.objects.create(
                    STREAM,
                    NewObject.sms(user_stream_provider_id="972500000000", message=f"key-{i}"),
                )
                keys[f"key-{i}"] = "sent"
            except Exception as exc:
                keys[f"key-{i}"] = "uncertain" if exc.may_have_been_processed else "failed"  # type: ignore[attr-defined]
    messages = [o["message"] for o in fake.all_objects()]
    assert len(messages) == len(set(messages))
    assert all(keys[m] in ("sent", "uncertain") for m in messages)
    assert all(f"key-{i}" in messages for i in range(200) if keys[f"key-{i}"] == "sent")


async def test_routing_a_literal_segment_beats_a_parameter() -> None:
    fake = FakeCommBox()
    headers = {"authorization": "Bearer t"}
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="https://x", headers=headers
    ) as raw:

        async def answer(method: str, path: str) -> tuple[int, Any]:
            r = await raw.request(method, path)
            return r.status_code, r.json()["description"] if r.status_code >= 400 else r.json()

        assert (await answer("GET", "/managers/teams"))[1]["data"] == [
            {"teamId": 431, "name": "VIP"}
        ]
        assert (await answer("GET", "/managers/520760"))[1]["data"]["userName"] == "john.s"
        # One path segment, URL-decoded; the fewest parameters win, the first listed on a tie.
        assert await answer("GET", "/managers/a%2Fb") == (404, "Manager a/b not found")
        assert await answer("GET", "/managers/teams/presence") == (
            404,
            "Manager teams not found",
        )
        assert await answer("GET", "/managers/profiles/assignments") == (
            404,
            "Profile assignments not found",
        )
        assert await answer("PUT", "/managers") == (
            501,
            "Not Implemented: PUT is not supported on /managers",
        )
        assert await answer("GET", "/managers/1/nothing") == (
            404,
            "Not found: /managers/1/nothing",
        )


async def test_inspection_api() -> None:
    fake = FakeCommBox()
    async with fast(fake) as cb:
        oid = await cb.objects.create(STREAM, SMS)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://fake") as raw:
        state = (await raw.get("/_fake/state")).json()
        assert state["streams"][STREAM][0]["id"] == oid
        log = (await raw.get("/_fake/requests")).json()
        assert log[0]["method"] == "POST" and log[0]["processed"] is True
        r = await raw.post(
            "/_fake/config", json={"fault_rate": 0, "rate_limit": 100, "script": ["503"]}
        )
        assert r.status_code == 200
        assert (await raw.post("/_fake/config", json={"faults": ["nope"]})).status_code == 400
        assert (await raw.get("/_fake/nothing")).status_code == 404
        await raw.post("/_fake/reset")
    assert fake.objects == {}


def test_pytest_plugin_fixtures(commbox_fake: FakeCommBox, commbox_client: Any) -> None:
    async def main() -> int:
        async with commbox_client as cb:
            return int(await cb.objects.create(1, SMS))

    oid = anyio.run(main)
    assert oid in commbox_fake.objects


# -- real server mode --------------------------------------------------------------------------


@pytest.fixture
def real_server() -> Iterator[tuple[FakeCommBox, str]]:
    fake = FakeCommBox()
    with serve_in_thread(fake) as url:
        yield fake, url


async def test_real_server_mode_on_loopback(real_server: tuple[FakeCommBox, str]) -> None:
    fake, url = real_server
    from commbox_async import AsyncCommBox

    async with AsyncCommBox(token="t", base_url=url, rate_limit=None, max_retries=0) as cb:
        oid = await cb.objects.create(STREAM, SMS)
        assert (await cb.objects.get(STREAM, oid)).object_id == oid
        fake.fail_next("lost_after")
        with pytest.raises(APIConnectionError) as info:
            await cb.objects.create(STREAM, SMS)
        assert info.value.may_have_been_processed
    async with httpx.AsyncClient(base_url=url) as raw:
        assert len((await raw.get("/_fake/state")).json()["streams"][STREAM]) == 2


# -- CLI -------------------------------------------------------------------------------------


def test_cli_demo_runs_clean() -> None:
    from commbox_async.cli import cli

    result = CliRunner().invoke(
        cli, ["demo", "--messages", "300", "--fault-rate", "0.1", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "duplicates found in the fake" in result.output
    assert "300" in result.output


def test_cli_get_object_and_set_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from commbox_async import cli as cli_module

    fake = FakeCommBox()

    async def seed() -> int:
        async with fake.client() as cb:
            return await cb.objects.create(532, SMS)

    oid = anyio.run(seed)
    monkeypatch.setattr(cli_module, "_make_client", lambda *a, **kw: fake.client())
    runner = CliRunner()
    result = runner.invoke(cli_module.cli, ["get-object", "532", str(oid), "--children"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["objectId"] == oid
    result = runner.invoke(cli_module.cli, ["set-status", str(oid), "Resolved"])
    assert result.exit_code == 0, result.output
    assert fake.objects[oid].record["statusId"] == 2


def test_cli_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from commbox_async import cli as cli_module

    monkeypatch.setattr(
        cli_module, "_make_client", lambda token, base_url, **kw: FakeCommBox().client()
    )
    result = CliRunner().invoke(cli_module.cli, ["get-object", "532", "1"])
    assert result.exit_code == 1
    assert "NotFoundError" in result.output
    assert "Traceback" not in result.output
    monkeypatch.delenv("COMMBOX_TOKEN", raising=False)
    result = CliRunner().invoke(cli_module.cli, ["set-status", "1", "bogus"])
    assert result.exit_code != 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_outbox_delivers_webhooks_into_a_router(fmt: str) -> None:
    from commbox_async.webhooks import (
        ObjectNew,
        ObjectNewActivity,
        ObjectNewChild,
        RemarkData,
        WebhookRouter,
    )

    fake = FakeCommBox()
    router = WebhookRouter()
    got: list[Any] = []
    router.on_any()(got.append)
    async with fast(fake) as cb:
        oid = await cb.objects.create(STREAM, SMS)
        await cb.objects.create_child(
            STREAM,
            oid,
            NewChild.from_customer(
                user_stream_provider_id="972544444444", user_stream_provider_type=5, message="again"
            ),
        )
        await cb.objects.add_remark(oid, "note")
    assert await fake.deliver(router, format=fmt) == 3
    assert [type(e) for e in got] == [ObjectNew, ObjectNewChild, ObjectNewActivity]
    assert all(e.object_id == oid for e in got)
    assert got[2].activity.data == RemarkData(text="note")
    assert fake.outbox == []


async def test_outbox_delivers_to_a_callback_url() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from commbox_async.webhooks import WebhookRouter
    from commbox_async.webhooks.starlette import webhook_app

    fake = FakeCommBox()
    router = WebhookRouter()
    got: list[Any] = []
    router.on_any()(got.append)
    async with fast(fake) as cb:
        await cb.objects.create(STREAM, SMS)
    app = Starlette(routes=[Mount("/hooks", webhook_app(router))])
    statuses = await fake.deliver_to(
        "http://receiver/hooks", transport=httpx.ASGITransport(app=app)
    )
    assert statuses == [200]
    assert type(got[0]).__name__ == "ObjectNew"


def test_cli_parse_webhook(tmp_path: Any) -> None:
    from commbox_async.cli import cli

    path = tmp_path / "hook.xml"
    path.write_text(
        '<Event Subscription="Satisfaction" Name="OnSubmit" Brand="commbox">'
        '<Satisfaction ObjectId="901733"><Score>100</Score></Satisfaction></Event>'
    )
    result = CliRunner().invoke(cli, ["parse-webhook", str(path)])
    assert result.exit_code == 0, result.output
    assert "SatisfactionSubmit" in result.output and "901733" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = CliRunner().invoke(cli, ["parse-webhook", str(bad)])
    assert result.exit_code == 1
    assert "malformed JSON" in result.output


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_drops_on_a_real_server_send_no_response_at_all(transport: str) -> None:
    """Over a socket, drop_before and lost_after both end the connection with no response:
    the client cannot tell them apart (may have been processed); only the fake knows."""
    import logging

    from commbox_async import APIConnectionError, Processed

    from .conftest import serve_in_thread, socket_client

    fake = FakeCommBox()
    with serve_in_thread(fake, log_level="warning") as url:
        errors: list[logging.LogRecord] = []
        handler = logging.Handler(logging.ERROR)
        handler.emit = errors.append  # type: ignore[method-assign]
        logging.getLogger("uvicorn.error").addHandler(handler)
        async with socket_client(url, transport, max_retries=0) as cb:
            for kind, taken in (("drop_before", 0), ("lost_after", 1)):
                fake.fail_next(kind)
                with pytest.raises(APIConnectionError) as info:
                    await cb.objects.create(
                        532, NewObject.sms(user_stream_provider_id="9725", message=kind)
                    )
                assert info.value.processed is Processed.MAYBE
                assert sum(o["message"] == kind for o in fake.all_objects()) == taken
        logging.getLogger("uvicorn.error").removeHandler(handler)
    # A drop is the fault asked for, not an error of the server's ("ASGI callable returned
    # without starting response" for each one, before).
    assert [r.getMessage() for r in errors] == []


async def test_a_new_conversation_shows_in_search_only_after_the_index_delay() -> None:
    fake = FakeCommBox(index_delay=0.3)
    async with fake.client() as cb:
        oid = await cb.objects.create(
            532, NewObject.sms(user_stream_provider_id="972500000000", message="hi")
        )
        t = int(time.time())
        search = cb.streams.objects(532, start=t - 5, end=t + 5)
        assert await search.page(1) == []
        assert (await cb.objects.get(532, oid)).object_id == oid  # the store has it at once
        await anyio.sleep(0.35)
        assert [o.object_id for o in await search.page(1)] == [oid]
    with pytest.raises(ValueError, match="index_delay"):
        fake.configure(index_delay=-1)
