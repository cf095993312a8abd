"""The whole API end to end against the fake: pagination, adaptive time windows, and every
namespace's methods with the checks they make before sending."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from commbox_async import Attachment, ConfigurationError, NotFoundError
from commbox_async.models import (
    EmarsysTemplate,
    ManagerData,
    NewUser,
    ObjectStatusType,
    StreamState,
    TemplateComponent,
    TemplateMessage,
    TemplateObjectData,
    UserInfo,
)
from commbox_async.testing import FakeCommBox

from .conftest import envelope, make_client
from .seeds import spec

pytestmark = pytest.mark.anyio

ENC = "hNyRN_fLUy7rrOrN9jLpipA=="
T0 = int(datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp())


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "123", path)


def test_fake_routes_every_operation() -> None:
    fake = FakeCommBox()
    for path, item in spec()["paths"].items():
        for method in item:
            if method in ("get", "post", "patch", "delete"):
                handler, _ = fake._route(method.upper(), _concrete(path))
                assert handler is not None


def _gets(fake: FakeCommBox, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and r.path == path)


async def test_pagination_makes_exactly_the_requests_needed() -> None:
    fake = FakeCommBox()
    for i in range(1050):
        fake.add_conversation(7, created=T0 + i, user_identity=555)
    async with fake.client() as cb:
        seen = [o.object_id async for o in cb.streams.objects(7, user_identity_id=555)]
        assert len(seen) == len(set(seen)) == 1050
        assert _gets(fake, "/streams/7/objects") == 11  # ten full pages, one short page

        fake.requests.clear()
        async for _ in cb.streams.objects(7, user_identity_id=555):
            break
        assert _gets(fake, "/streams/7/objects") == 1

        fake.requests.clear()
        page = await cb.streams.objects(7, user_identity_id=555, page_size=100).page(11)
        assert len(page) == 50
        assert fake.requests[-1].query.count("pageNumber=11") == 1


async def test_pagination_stops_on_an_empty_page() -> None:
    fake = FakeCommBox()
    for i in range(200):
        fake.add_conversation(7, created=T0 + i, user_identity=555)
    async with fake.client() as cb:
        items = await cb.streams.objects(7, user_identity_id=555).to_list()
        assert len(items) == 200
        assert _gets(fake, "/streams/7/objects") == 3  # 100, 100, then an empty page ends it
        assert await cb.users.objects(555).to_list(limit=5) == items[:5]


async def test_search_needs_a_filter_before_sending() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        with pytest.raises(ConfigurationError, match="time range"):
            cb.streams.objects(7)
        with pytest.raises(ConfigurationError, match="go together"):
            cb.streams.objects(7, start=T0)
        with pytest.raises(ConfigurationError, match="sort"):
            cb.streams.objects(7, user_identity_id=1, sort="sideways")  # type: ignore[arg-type]
    assert fake.requests == []


async def test_time_range_search_is_capped_and_split_adaptively(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeCommBox()
    # A quiet day, a burst of 700 in one hour and 150 in a single second.
    expected = set()
    for i in range(300):
        expected.add(fake.add_conversation(7, created=T0 + i * 240))
    for i in range(700):
        expected.add(fake.add_conversation(7, created=T0 + 36_000 + i * 5))
    for _ in range(150):
        expected.add(fake.add_conversation(7, created=T0 + 80_000))
    async with fake.client() as cb:
        page = await cb.streams.objects(7, start=T0, end=T0 + 86_400).page(1)
        assert len(page) == 100  # what one window returns, however many there are
        fake.requests.clear()
        with caplog.at_level(logging.WARNING, logger="commbox_async"):
            found = [o async for o in cb.streams.objects_between(7, T0, T0 + 86_400)]
    ids = [o.object_id for o in found]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected  # the one-second burst over the cap is paged, not cut
    assert "paging brought no more" not in caplog.text
    created = [o.created_time for o in found]
    assert created == sorted(created)  # oldest window first, ascending within
    assert _gets(fake, "/streams/7/objects") < 80


async def test_a_busy_second_is_paged_and_a_server_that_does_not_page_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """400 conversations within 3 seconds (a campaign at ~130/s) are all listed; a server
    that gives the same 100 for every page cannot hide that from the caller."""
    fake = FakeCommBox()
    expected = {fake.add_conversation(7, created=T0 + i % 3) for i in range(400)}
    async with fake.client() as cb:
        window = cb.streams.objects_between(7, T0, T0 + 10)
        assert {o.object_id async for o in window} == expected
        assert window.withheld == []

    def same_first_page(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        items = [
            {"objectId": i, "createdTime": "2024-01-01T00:00:00Z"}
            for i in range(1, 101)
            if q.get("unixStartTime") == q.get("unixEndTime")
        ]
        return httpx.Response(200, json=envelope(items))

    async with make_client(same_first_page) as cb:
        with caplog.at_level(logging.WARNING, logger="commbox_async"):
            window = cb.streams.objects_between(7, T0, T0)
            found = [o async for o in window]
    assert len(found) == 100
    assert window.withheld == [T0]
    assert "paging brought no more" in caplog.text


@pytest.mark.parametrize("n", [100, 200])
async def test_a_second_holding_exactly_whole_pages_is_complete(
    n: int, caplog: pytest.LogCaptureFixture
) -> None:
    """100 (or 200) conversations in one second: the page after the last full one comes back
    empty, which is how paging ends, not CommBox withholding any."""
    fake = FakeCommBox()
    expected = {fake.add_conversation(7, created=T0 + 0.5) for _ in range(n)}
    async with fake.client() as cb:
        with caplog.at_level(logging.WARNING, logger="commbox_async"):
            window = cb.streams.objects_between(7, T0, T0)
            assert {o.object_id async for o in window} == expected
    assert window.withheld == []
    assert "paging brought no more" not in caplog.text
    assert _gets(fake, "/streams/7/objects") == n // 100 + 1


async def test_conversations_without_ids_end_the_paging_of_their_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every page is the same 100 conversations without objectId: nothing tells a new one
    from one already listed, so paging stops at the second page (it paged for ever) and the
    second is reported withheld."""
    requests = []

    def no_ids(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        items = [{"userStreamProviderId": f"9725{i}", "message": "m"} for i in range(100)]
        return httpx.Response(200, json=envelope(items))

    async with make_client(no_ids) as cb:
        with caplog.at_level(logging.WARNING, logger="commbox_async"):
            window = cb.streams.objects_between(7, T0, T0)
            found = [o async for o in window]
    assert len(found) == 100 and len(requests) == 2
    assert window.withheld == [T0]
    assert "paging brought no more" in caplog.text


async def test_a_second_that_pages_for_ever_is_given_up_and_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server handing out new ids on every page: at most MAX_PAGES_PER_SECOND pages."""
    from commbox_async.resources import streams

    monkeypatch.setattr(streams, "MAX_PAGES_PER_SECOND", 5)
    pages = []

    def endless(request: httpx.Request) -> httpx.Response:
        pages.append(int(request.url.params["pageNumber"]))
        base = pages[-1] * 1000
        return httpx.Response(200, json=envelope([{"objectId": base + i} for i in range(100)]))

    async with make_client(endless) as cb:
        with caplog.at_level(logging.WARNING, logger="commbox_async"):
            window = cb.streams.objects_between(7, T0, T0)
            found = [o async for o in window]
    assert pages == [1, 2, 3, 4, 5] and len(found) == 500
    assert window.withheld == [T0]
    assert "5 pages" in caplog.text


async def test_objects_and_users() -> None:
    fake = FakeCommBox()
    object_id = fake.add_conversation(7, created=T0, children=3, user_identity=99)
    user_id = fake.objects[object_id].record["user"]["id"]
    async with fake.client() as cb:
        user = await cb.users.get(user_id)
        assert user.id == user_id and [i.id for i in user.identities] == [99]
        assert await cb.users.update(user_id, UserInfo(first_name="Dana")) == user_id
        assert (await cb.users.get(user_id)).first_name == "Dana"
        (obj,) = await cb.users.objects(99, include_children=True).to_list()
        assert obj.object_id == object_id and len(obj.messages) == 3

        change = await cb.objects.move(object_id, 8, sub_stream_id=2)
        assert change is not None and (change.stream_id, change.sub_stream_id) == (8, 2)
        assert await cb.objects.move(object_id, 8, sub_stream_id=2) is None  # unchanged
        before = len(fake.requests)
        with pytest.raises(ConfigurationError, match="stream_id must be a numeric id"):
            await cb.objects.move(object_id, ENC)
        with pytest.raises(ConfigurationError, match="stream_id must be a numeric id"):
            await cb.objects.move(object_id, "\u00b2")  # int("²") would raise ValueError
        assert len(fake.requests) == before
        await cb.objects.set_tag(8, object_id, 5)
        assert fake.objects[object_id].tags == [5]


async def test_managers_teams_presence_profiles_assignments() -> None:
    fake = FakeCommBox()
    object_id = fake.add_conversation(7)
    async with fake.client() as cb:
        new_id = await cb.managers.create(
            ManagerData(
                first_name="Dana", email="d@x.io", user_name="dana", password="pw", team_id=431
            )
        )
        assert "pw" not in repr(fake.managers[new_id])
        assert {m.id for m in await cb.managers.list()} == {520760, new_id}
        await cb.managers.update(new_id, ManagerData(last_name="Levi"))
        assert (await cb.managers.get(new_id)).last_name == "Levi"
        assert [m.id for m in await cb.teams.members(431)] == [520760, new_id]

        types = await cb.managers.presence_types()
        assert [t.name for t in types] == ["Active", "Busy", "Away"]
        assert (await cb.managers.set_presence(new_id, 2)).name == "Busy"
        assert (await cb.managers.presence(new_id)).type_id == 2

        assert [p.id for p in await cb.managers.add_profiles(new_id, add=[1])] == [1]
        assert [p.id for p in await cb.managers.add_profiles(new_id, add=[2])] == [1, 2]
        assert [m.id for m in await cb.managers.by_profile(2)] == [new_id]
        assert [p.id for p in await cb.managers.add_profiles(new_id, set=[2])] == [2]
        await cb.managers.remove_profile(new_id, 2)
        await cb.managers.remove_all_profiles(new_id)
        assert [p.unique_name for p in await cb.managers.profiles()] == ["sales", "support"]
        with pytest.raises(ConfigurationError, match="exactly one"):
            await cb.managers.add_profiles(new_id, add=[1], set=[2])

        await cb.managers.assign(new_id, object_id)
        (row,) = await cb.managers.assignments(new_id)
        assert row.assigned_objects_count == 1
        assert (await cb.managers.stats(new_id)).total_async_assigned == 1
        await cb.managers.unassign(new_id, object_id)
        assert await cb.managers.assignments(new_id) == []

        team_id = await cb.teams.create("Night shift")
        assert [t.team_id for t in await cb.teams.list("night")] == [team_id]
        await cb.teams.update(team_id, params={"Name": "Nights"})
        assert fake.teams[team_id] == "Nights"
        await cb.teams.delete(team_id)
        await cb.managers.delete(new_id)
        with pytest.raises(NotFoundError):
            await cb.managers.get(new_id)


async def test_sms_and_whatsapp() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.sms.send(ENC, "+972501234567", "hello")
        await cb.sms.send_initial_text(ENC, 972501234567)
        assert [s["number"] for s in fake.sms_sent] == ["972501234567"] * 2
        before = len(fake.requests)
        with pytest.raises(ConfigurationError, match="encrypted id"):
            await cb.sms.send("532", "972501234567", "hi")
        with pytest.raises(ConfigurationError, match="not a phone number"):
            await cb.sms.send(ENC, "call me", "hi")
        with pytest.raises(ConfigurationError, match="not a phone number"):
            await cb.sms.send(ENC, "\u00b2972501234567", "hi")  # "²" is a digit to str.isdigit

        def msg(to: str, **kw: Any) -> TemplateMessage:
            return TemplateMessage.create(
                to=to, name="hello", language="en", components=[TemplateComponent.body("x")], **kw
            )

        with pytest.raises(ConfigurationError, match="at most 20"):
            await cb.whatsapp.send_template(ENC, [msg(f"97250000{i:04d}") for i in range(21)])
        assert len(fake.requests) == before

        results = await cb.whatsapp.send_template(
            ENC,
            [
                msg("972500000001", object_data=TemplateObjectData(create_child_object=True)),
                msg("000111"),
            ],
        )
        assert [r.ok for r in results] == [True, False]
        assert results[0].object_id in fake.objects
        assert "Not a valid WhatsApp user" in str(results[1].failed)
        assert fake.requests[-1].status == 206

        media = await cb.whatsapp.upload_media(ENC, Attachment(source=b"\x89PNG", filename="a.png"))
        assert media.id and media.filename
        assert await cb.whatsapp.validate_contact(ENC, "972500000001") is True
        assert await cb.whatsapp.validate_contact(ENC, "000123") is False
        await cb.whatsapp.campaign(
            audience_file=Attachment(source=b"phone\n972500000001\n", filename="aud.csv"),
            stream_id=1558,
            template_name="sale",
            language_code="en",
        )
        assert fake.campaigns[0]["files"][0]["field"] == "audience_file"

        (res,) = await cb.whatsapp.emarsys_send_template(
            ENC,
            EmarsysTemplate(
                to="972500000002",
                template_name="t",
                language_code="en",
                body_values=("a",),
                object_user=NewUser(first_name="Dana"),
            ),
            jwt=lambda: "jwt-token",
        )
        assert res.ok and res.object_id in fake.objects


async def test_tags_forms_tickets_automation_system_stats() -> None:
    fake = FakeCommBox()
    object_id = fake.add_conversation(7, status=2)
    async with fake.client() as cb:
        group = await cb.tags.create_group("Topics")
        tag = await cb.tags.create("billing", tag_group_id=group, object_tag=True)
        await cb.tags.update(tag, name="Billing")
        await cb.tags.update_group(group, "Topic")
        assert [t.name for t in await cb.tags.list()] == ["Billing"]
        assert [g.name for g in await cb.tags.groups()] == ["Topic"]
        await cb.tags.delete(tag)
        await cb.tags.delete_group(group)
        assert await cb.tags.list() == [] and await cb.tags.groups() == []

        link = await cb.forms.create_link(
            3, stream_provider_id="972500000001", stream_provider_type=5, referring_object_id=1
        )
        assert link.conversation_id == 1 and link.form_link
        link = await cb.forms.create_predefined_link(
            3,
            Attachment(source=b"%PDF", filename="f.pdf"),
            stream_provider_id="972500000001",
            stream_provider_type=5,
        )
        assert link.form_link

        ticket = await cb.auth.create_ticket(brand="acme", username="dana", email="d@x.io")
        assert ticket.ticket and ticket.ticket not in repr(ticket)
        url = ticket.agent_login_url("https://acme.commbox.io/login")
        assert url.startswith("https://acme.commbox.io/login?ta=")
        assert ticket.chat_url("https://apps.commbox.io", "nex9tHPKdBkD_fAfbuUPABg==").startswith(
            "https://apps.commbox.io/chat/nex9tHPKdBkD_fAfbuUPABg%3D%3D?ta="
        )
        with pytest.raises(ConfigurationError, match="strong identifier"):
            await cb.auth.create_ticket(brand="acme", username="dana")

        await cb.automation.set_context(object_id, {"plus": 3})
        await cb.automation.jump(object_id, "4079:n_8")
        assert (await cb.automation.get_context(object_id))["data.plus"] == "3"

        status = await cb.system.status()
        assert status.operational and status.description == "System is operational"
        assert (await cb.streams.availability(7)).state is StreamState.AVAILABLE
        (row,) = await cb.stats.streams()
        assert (row.stream_id, row.status_id, row.count) == (7, ObjectStatusType.RESOLVED, 1)
        sla = await cb.stats.sla_exceptions()
        assert sla.item1 == () and sla.item2 == ()


async def test_raw_responses_on_every_namespace() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        raw = await cb.with_raw_response.managers.list()
        assert raw.http_status == 200 and raw.parsed[0].id == 520760
        raw_status = await cb.with_raw_response.system.status()
        assert raw_status.description == "System is operational"
        with pytest.raises(AttributeError, match="no raw-response form"):
            cb.with_raw_response.streams.objects  # noqa: B018
        with pytest.raises(AttributeError, match="no resource namespace"):
            cb.with_raw_response.nothing  # noqa: B018
