"""Peak RSS of a bulk send or an export, run in a fresh process by tests/test_memory.py.

``python -m tests.memory_probe bulk N JOURNAL`` sends N messages from a generator;
``python -m tests.memory_probe export N CHILDREN OUT`` exports N conversations of CHILDREN
messages each to a JSONL file. Both print one JSON line with ``peak_rss_mb`` and counts.
``python -m tests.memory_probe flood KIND BODIES PER_BODY`` parses BODIES webhook bodies, each
carrying PER_BODY never-seen values (KIND ``enums``: activity types; ``keys``: field names),
and prints the RSS the process kept (``retained_mb``), measured after a warm-up body.

The server side is a stub transport answering with bodies the fake produced once (a real
create answer, a real conversation with its children and activity log), so the process's
memory is the client's alone: the fake itself would hold every conversation.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from commbox_async import AsyncCommBox, NewObject
from commbox_async.bulk import BulkMessage
from commbox_async.export import ConversationRef
from commbox_async.testing import FakeCommBox


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the process image; ``ru_maxrss`` would not do:
    Linux carries it over fork and exec, so a child of a big test run starts at its parent's
    peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def client(handler: httpx.MockTransport) -> AsyncCommBox:
    return AsyncCommBox(
        token="t", base_url="http://127.0.0.1:1", rate_limit=None, transport=handler
    )


async def bulk(n: int, journal: Path) -> dict[str, object]:
    ids = itertools.count(1)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "200", "data": {"objectId": next(ids)}})

    produced = settled = lead = 0

    def messages() -> Iterator[BulkMessage]:
        nonlocal produced, lead
        for i in range(n):
            produced += 1
            lead = max(lead, produced - settled)
            key = f"customer-{i:09d}"
            yield BulkMessage(
                key=key,
                stream_id=532,
                payload=NewObject.sms(user_stream_provider_id="972500000000", message=key),
            )

    def on_outcome(_: object) -> None:
        nonlocal settled
        settled += 1

    async with client(httpx.MockTransport(answer)) as cb:
        report = await cb.bulk.send(
            messages(), journal=journal, keep_outcomes=False, on_outcome=on_outcome
        )
    return {"counts": dict(report.counts), "max_lead": lead}


async def conversation_body(children: int) -> bytes:
    fake = FakeCommBox()
    object_id = fake.add_conversation(7, created=1_700_000_000, children=children)
    async with fake.client() as cb:
        raw = await cb.with_raw_response.objects.get(
            7, object_id, include_children=True, include_activity_log=True
        )
    return json.dumps(raw.json).replace(str(object_id), "{OBJECT_ID}").encode()


async def export(n: int, children: int, out: Path) -> dict[str, object]:
    template = await conversation_body(children)
    before = peak_rss_mb()

    def answer(request: httpx.Request) -> httpx.Response:
        object_id = request.url.path.rsplit("/", 1)[1].encode()
        body = template.replace(b"{OBJECT_ID}", object_id)
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    refs = (ConversationRef(7, 10_000 + i) for i in range(n))
    async with client(httpx.MockTransport(answer)) as cb:
        report = await cb.export.jsonl(out, refs, concurrency=16)
    errors = report.errors_path
    return {
        "exported": report.exported,
        "failed": report.failed,
        "errors": errors.read_text().splitlines()[:3] if errors and errors.exists() else [],
        "rss_before_export_mb": before,
        "body_bytes": len(template),
    }


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def flood_body(kind: str, index: int, per_body: int) -> bytes:
    base = 1_000_000 + index * per_body
    if kind == "enums":
        activities = [{"Id": i, "Type": base + i} for i in range(per_body)]
        return json.dumps({"payload": {"StreamId": 1, "Activities": activities}}).encode()
    # 20 messages, each with its own never-seen field names: every message a new shape
    children = [
        {f"f{base + c * per_body // 20 + k}": k for k in range(per_body // 20)} for c in range(20)
    ]
    return json.dumps({"payload": {"StreamId": 1, "Message": "m", "Children": children}}).encode()


def flood(kind: str, bodies: int, per_body: int) -> dict[str, object]:
    import gc

    from commbox_async.webhooks import ObjectNewActivity, parse_event

    # The warm-up uses other values than the flood, so it grows the heap but caches nothing
    # the flood would reuse.
    warm = parse_event(flood_body(kind, bodies + 1, per_body))
    del warm
    gc.collect()
    before = rss_mb()
    size = 0
    seen = 0
    for i in range(bodies):
        body = flood_body(kind, i, per_body)
        size = max(size, len(body))
        event = parse_event(body)
        if isinstance(event, ObjectNewActivity):
            assert {int(a.type or 0) for a in event.activities[:3]} == {
                1_000_000 + i * per_body + j for j in range(3)
            }
            seen += len(event.activities)
        else:
            seen += len(event.children)
        del event
    gc.collect()
    return {"retained_mb": rss_mb() - before, "largest_body": size, "seen": seen}


def main() -> None:
    kind, *args = sys.argv[1:]
    if kind == "bulk":
        result = asyncio.run(bulk(int(args[0]), Path(args[1])))
    elif kind == "flood":
        result = flood(args[0], int(args[1]), int(args[2]))
    else:
        result = asyncio.run(export(int(args[0]), int(args[1]), Path(args[2])))
    print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
