"""Conversation exports: concurrent, complete, resumable, crash-safe lines, errors recorded."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from commbox_async import ConfigurationError
from commbox_async.export import ConversationRef
from commbox_async.models import ObjectActivityType, ObjectDetails
from commbox_async.testing import FakeCommBox

from .conftest import envelope, make_client

pytestmark = pytest.mark.anyio

T0 = int(datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp())


def seeded(n: int, children: int = 3) -> tuple[FakeCommBox, list[int]]:
    fake = FakeCommBox()
    ids = [fake.add_conversation(7, created=T0 + i * 10, children=children) for i in range(n)]
    return fake, ids


async def test_export_refs_concurrently_with_everything_asked() -> None:
    fake, ids = seeded(30)
    got = {}
    async with fake.client() as cb:
        await cb.objects.add_remark(ids[0], "a remark")
        async with cb.export.conversations(
            [(7, i) for i in ids],
            concurrency=5,
            transcript=True,
            activity_types=[ObjectActivityType.REMARK],
        ) as exports:
            async for item in exports:
                got[item.ref.object_id] = item
    assert set(got) == set(ids)
    first = got[ids[0]]
    assert first.error is None and first.conversation is not None
    assert len(first.conversation.messages) == 3
    assert first.transcript is not None and first.transcript.object_id == ids[0]
    assert [a.type for a in first.activities[1]] == [ObjectActivityType.REMARK]
    line = first.to_wire()
    assert line["conversation"]["objectId"] == ids[0]  # CommBox's own keys
    assert ObjectDetails.from_wire(line["conversation"]) == first.conversation


async def test_breaking_early_cancels_the_rest() -> None:
    fake, ids = seeded(200)
    async with fake.client() as cb:
        async with cb.export.conversations([(7, i) for i in ids], concurrency=4) as exports:
            async for _ in exports:
                break
    assert len(fake.requests) < 20  # the bounded queue stopped the rest


async def test_export_a_stream_window_misses_nothing(tmp_path: Path) -> None:
    fake = FakeCommBox()
    ids = {fake.add_conversation(9, created=T0 + i * 7) for i in range(450)}
    out = tmp_path / "stream.jsonl"
    async with fake.client() as cb:
        report = await cb.export.jsonl(out, stream_id=9, start=T0, end=T0 + 86_400)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert report.exported == 450 and report.failed == 0
    assert {x["object_id"] for x in lines} == ids


async def test_an_export_of_a_busy_campaign_lists_every_conversation(tmp_path: Path) -> None:
    """1,000 conversations created within 3 seconds: each second holds over 300, three times
    what one time-range search returns, so each is paged."""
    fake = FakeCommBox()
    ids = {fake.add_conversation(9, created=T0 + i % 3) for i in range(1000)}
    out = tmp_path / "campaign.jsonl"
    async with fake.client() as cb:
        report = await cb.export.jsonl(out, stream_id=9, start=T0 - 60, end=T0 + 60)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert report.exported == 1000 and report.failed == 0
    assert {x["object_id"] for x in lines} == ids


async def test_an_export_reports_what_the_stream_search_could_not_list(tmp_path: Path) -> None:
    """Conversations listed without objectId cannot be fetched, and a second whose pages bring
    nothing new may hold more: the report says so (and the export ends)."""

    def no_ids(request: httpx.Request) -> httpx.Response:
        items = [{"userStreamProviderId": f"9725{i}", "message": "m"} for i in range(100)]
        return httpx.Response(200, json=envelope(items))

    async with make_client(no_ids) as cb:
        report = await cb.export.jsonl(tmp_path / "out.jsonl", stream_id=9, start=T0, end=T0)
    assert (report.exported, report.unidentified, report.withheld) == (0, 100, [T0])


async def test_jsonl_resumes_repairs_and_records_errors(tmp_path: Path) -> None:
    fake, ids = seeded(40)
    refs = [ConversationRef(7, i) for i in ids] + [ConversationRef(7, 1)]  # 1 does not exist
    out = tmp_path / "export.jsonl"
    async with fake.client() as cb:
        first = await cb.export.jsonl(out, refs[:25], concurrency=4)
        assert (first.exported, first.skipped, first.failed) == (25, 0, 0)
        # A crash mid-write leaves half a line: the next run cuts it and redoes that one.
        text = out.read_text()
        last = text.splitlines()[-1]
        out.write_text(text + last[: len(last) // 2])
        fake.requests.clear()
        second = await cb.export.jsonl(out, refs, concurrency=4)
    assert second.repaired_partial_line
    assert (second.exported, second.skipped, second.failed) == (15, 25, 1)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["object_id"] for x in lines) == sorted(ids)  # each exactly once
    errors = [json.loads(x) for x in Path(str(out) + ".errors.jsonl").read_text().splitlines()]
    assert errors[0]["object_id"] == 1 and "NotFoundError" in errors[0]["error"]
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 16  # 15 new conversations and the missing one, nothing re-fetched


async def test_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "other.jsonl"
    out.write_text("not json\n")
    fake = FakeCommBox()
    async with fake.client() as cb:
        with pytest.raises(ConfigurationError, match=r"other\.jsonl:1"):
            await cb.export.jsonl(out, [(7, 1)])
        with pytest.raises(ConfigurationError, match="not both"):
            async with cb.export.conversations([(7, 1)], stream_id=7):
                pass
