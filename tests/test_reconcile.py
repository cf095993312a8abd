"""Reconciliation: every uncertain send settled by asking CommBox, never wrongly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from commbox_async import NewChild, NewObject
from commbox_async.bulk import STAMP_FIELD, BulkMessage, Journal, Outcome, SmsMessage
from commbox_async.models import TemplateMessage, TemplateObjectData
from commbox_async.testing import FakeCommBox

from .conftest import envelope, make_client, serve_in_thread

pytestmark = pytest.mark.anyio

STREAM = 532
ENC = "hNyRN_fLUy7rrOrN9jLpipA=="


def sms(key: str, *, to: str = "972500000001", text: str | None = None) -> BulkMessage:
    payload = NewObject.sms(user_stream_provider_id=to, message=text or f"Hello {key}")
    return BulkMessage(key=key, stream_id=STREAM, payload=payload)


def messages(n: int) -> Iterator[BulkMessage]:
    for i in range(n):
        yield sms(f"k{i:05d}", to=f"97250{i:07d}")


def rows(journal: Path) -> dict[str, dict[str, Any]]:
    with Journal(journal) as book:
        return {r["key"]: r for r in book.rows()}


def in_fake(fake: FakeCommBox) -> Counter[str]:
    return Counter(o["message"] for o in fake.all_objects())


async def test_lost_answers_are_found_and_unsent_ones_are_not_taken(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")  # k00000: taken, answer lost
    fake.fail_next("500")  # k00001: taken, then a 500
    async with fake.client(max_retries=0) as cb:
        first = await cb.bulk.send(messages(4), journal=journal, concurrency=1)
        assert first.counts["uncertain"] == 2
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.examined, report.found, report.not_taken) == (2, 2, 0)
    settled = rows(journal)
    ids = {o["message"]: o["objectId"] for o in fake.all_objects()}
    for key in ("k00000", "k00001"):
        assert settled[key]["outcome"] == "sent" and settled[key]["reconciled"]
        assert settled[key]["id"] == ids[f"Hello {key}"]


async def test_a_send_that_never_arrived_is_not_taken_and_the_next_run_sends_it(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("503")  # certainly not taken: failed, not uncertain

    def lose_before(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("the request never reached CommBox", request=request)

    async with make_client(lose_before, max_retries=0) as lossy:
        first = await lossy.bulk.send([sms("a")], journal=journal)
    assert first.counts == {"uncertain": 1}
    async with fake.client() as cb:
        recent = await cb.bulk.reconcile(journal)  # settle_after not yet passed
        assert recent.still_uncertain == {"too_recent": 1}
        report = await cb.bulk.reconcile(journal, settle_after=0)
        assert report.not_taken == 1
        assert rows(journal)["a"]["failure"] == "not_sent"
        again = await cb.bulk.send([sms("a")], journal=journal)
    assert (again.outcomes[0].outcome, again.outcomes[0].earlier) == ("sent", False)
    assert in_fake(fake) == {"Hello a": 1}


async def test_identical_messages_to_one_recipient_stay_uncertain_with_candidates(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after", times=2)
    twins = [sms("a", text="Your code is 1234"), sms("b", text="Your code is 1234")]
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send(twins, journal=journal, concurrency=1)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 2}
    settled = rows(journal)
    assert settled["a"]["outcome"] == settled["b"]["outcome"] == "uncertain"
    assert sorted(settled["a"]["candidates"]) == sorted(fake.objects)


async def test_one_conversation_two_identical_sends_is_never_claimed_by_both(
    tmp_path: Path,
) -> None:
    """Only one of the twins was taken: the one conversation could be either's."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")  # a: taken
    fake.fail_next("drop_before")  # b: the fake never saw it (in-process: a connect error)
    twins = [sms("a", text="same"), sms("b", text="same")]
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send(twins, journal=journal, concurrency=1)
        # b's connect error is certain: failed, not uncertain. Make it uncertain, as a lost
        # answer would be, to see that one conversation is not claimed by two keys.
        with Journal(journal) as book:
            book.settle(Outcome(key="b", outcome="uncertain", error="lost"), run=1)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 0 and report.still_uncertain == {"ambiguous": 2}


async def test_the_result_of_a_sent_key_is_not_claimed_by_an_uncertain_one(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send([sms("sent-one", text="same")], journal=journal)
        with Journal(journal) as book:
            book.settle(Outcome(key="lost-one", outcome="uncertain", error="lost"), run=1)
            book.write(settled=[], run=1)
        # The uncertain key has no lookup (written by hand): no lookup, stays uncertain.
        report = await cb.bulk.reconcile(journal, settle_after=0)
        assert report.still_uncertain == {"no_lookup": 1}
        # Now a real one: its only match is the sent key's conversation, which is taken.
        fake.fail_next("drop_before")
        await cb.bulk.send([sms("maybe", text="same")], journal=journal)

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("other", text="same")], journal=journal)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    settled = rows(journal)
    assert settled["other"]["outcome"] == "failed"  # the one match belongs to "sent-one"
    assert report.not_taken == 1


async def test_stamped_sends_are_matched_by_key_even_when_identical(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after", times=2)
    twins = [sms("a", text="Your code is 1234"), sms("b", text="Your code is 1234")]
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send(twins, journal=journal, concurrency=1, stamp=True)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 2
    sent = [r.body["data"]["Content"] for r in fake.requests if r.method == "POST"]
    assert [c[STAMP_FIELD] for c in sent] == ["a", "b"]
    settled = rows(journal)
    by_stamp = {
        json.loads(o.record["content"])[STAMP_FIELD]: oid for oid, o in fake.objects.items()
    }
    assert settled["a"]["id"] == by_stamp["a"] and settled["b"]["id"] == by_stamp["b"]


async def test_children_are_found_through_their_conversation(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client(max_retries=0) as cb:
        oid = await cb.objects.create(
            STREAM, NewObject.sms(user_stream_provider_id="9725", message="x")
        )
        child = NewChild.from_customer(
            user_stream_provider_id="9725", user_stream_provider_type=5, message="reply one"
        )
        other = NewChild.from_customer(
            user_stream_provider_id="9725", user_stream_provider_type=5, message="reply two"
        )
        fake.fail_next("lost_after")
        batch = [
            BulkMessage(key="c1", stream_id=STREAM, object_id=oid, payload=child),
        ]
        await cb.bulk.send(batch, journal=journal)

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        batch = [BulkMessage(key="c2", stream_id=STREAM, object_id=oid, payload=other)]
        await lossy.bulk.send(batch, journal=journal)
    async with fake.client() as cb:
        requests_before = len(fake.requests)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.found, report.not_taken) == (1, 1)
    assert len(fake.requests) - requests_before == 1  # one Get Object settles both
    assert "includeChilds=true" in fake.requests[-1].query  # else CommBox lists only the last
    settled = rows(journal)
    assert settled["c1"]["id"] == fake.objects[oid].children[-1]["id"]
    assert settled["c2"]["outcome"] == "failed"


async def test_paths_with_no_lookup_stay_uncertain_and_say_why(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after", times=3)
    batch = [
        BulkMessage(key="sms", stream_id=ENC, payload=SmsMessage(number="9725", message="m")),
        BulkMessage(
            key="wa-plain",
            stream_id=ENC,
            payload=TemplateMessage.create(to="972500000002", name="t", language="en"),
        ),
        BulkMessage(
            key="wa-object",
            stream_id="b3RoZXI=",
            payload=TemplateMessage.create(
                to="972500000003",
                name="t",
                language="en",
                object_data=TemplateObjectData(create_child_object=True),
            ),
        ),
    ]
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send(batch, journal=journal, concurrency=1)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"no_lookup": 3}
    settled = rows(journal)
    assert "/sms/sendsms" in settled["sms"]["error"]
    assert "object_data" in settled["wa-plain"]["error"]
    assert "stamp" in settled["wa-object"]["error"]


async def test_a_2xx_with_nothing_found_is_never_called_not_taken(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"

    def unreadable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>ok</html>")

    async with make_client(unreadable, max_retries=0) as cb:
        first = await cb.bulk.send([sms("a")], journal=journal)
    assert first.outcomes[0].outcome == "uncertain"
    fake = FakeCommBox()  # a CommBox that lists nothing
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"answered_2xx": 1}
    assert report.not_taken == 0


async def test_a_lookup_that_fails_decides_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json=envelope(status=500))

    async with make_client(broken, max_retries=1) as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"query_failed": 1}
    assert rows(journal)["a"]["outcome"] == "uncertain"


async def test_a_search_commbox_may_have_cut_short_decides_nothing(tmp_path: Path) -> None:
    """A full page and then nothing new: CommBox may be withholding conversations of that
    second, so a key whose send is not among those listed is not called "not taken"."""
    journal = tmp_path / "j.sqlite"

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)

    def full_pages(request: httpx.Request) -> httpx.Response:
        items = [{"objectId": i, "message": "other"} for i in range(1, 101)]
        return httpx.Response(200, json=envelope(items))

    async with make_client(full_pages) as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0, clock_skew=0)
    assert report.not_taken == 0
    assert report.still_uncertain == {"too_recent": 1}


async def test_reconcile_then_resend_leaves_every_message_exactly_once(tmp_path: Path) -> None:
    """10,000 sends through the fake at 10% faults, with an indexing delay; then rounds of
    reconcile-and-resend until nothing is left: every key in the fake once, none uncertain, no
    duplicates. Cost: at most 1.5 requests per uncertain key reconciled."""
    journal = tmp_path / "j.sqlite"
    n = 10_000
    # CommBox lists a new conversation only after a while: reconciliation waits settle_after.
    fake = FakeCommBox(fault_rate=0.1, seed=11, slow_seconds=0.001, index_delay=0.5)
    async with fake.client(max_retries=4, initial_backoff=0.001, max_backoff=0.005) as cb:
        rounds = await cb.bulk.send_reconciled(
            lambda: messages(n), journal=journal, settle_after=1.0, concurrency=32
        )
    assert rounds.sends[0].counts["uncertain"] > 0.02 * n  # the faults did happen
    assert rounds.final == {"sent": n}
    counts = in_fake(fake)
    assert len(counts) == n and set(counts.values()) == {1}
    examined = sum(r.examined for r in rounds.reconciles)
    requests = sum(r.requests for r in rounds.reconciles)
    assert requests / examined <= 1.5


async def test_a_conversation_from_before_the_attempt_is_not_its_send(tmp_path: Path) -> None:
    """Yesterday's identical message to the same customer is not today's send."""
    import time

    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.add_conversation(
        STREAM,
        message="Hello a",
        user_stream_provider_id="972500000001",
        created=time.time() - 86_400,
    )

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.not_taken == 1 and report.found == 0


async def test_an_old_identical_message_in_the_conversation_is_not_its_send(
    tmp_path: Path,
) -> None:
    import time

    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    oid = fake.add_conversation(STREAM, message="x", created=time.time() - 86_400, children=1)
    child = NewChild.from_customer(
        user_stream_provider_id="9725", user_stream_provider_type=5, message="x #1"
    )

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        batch = [BulkMessage(key="c", stream_id=STREAM, object_id=oid, payload=child)]
        await lossy.bulk.send(batch, journal=journal)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.not_taken == 1 and report.found == 0


async def test_one_uncertain_key_in_a_busy_window_is_looked_up_by_its_recipient(
    tmp_path: Path,
) -> None:
    """300 sends in the window, one uncertain: one identity search, not three pages of the
    whole window."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send(messages(300), journal=journal, concurrency=16)
        fake.fail_next("lost_after")
        await cb.bulk.send([sms("lost", to="972599999999")], journal=journal)
        fake.requests.clear()
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 1
    (search,) = fake.requests
    assert "identityStreamProviderId=972599999999" in search.query


async def test_the_index_delay_is_what_settle_after_waits_for(tmp_path: Path) -> None:
    """Before the index lists the send, "nothing found" is only "too recent"; after it, the
    send is found. Never "not taken" while CommBox may still list it."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox(index_delay=0.4)
    fake.fail_next("lost_after")
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send([sms("a")], journal=journal)
        early = await cb.bulk.reconcile(journal, settle_after=5)
        assert early.still_uncertain == {"too_recent": 1}
        await anyio.sleep(0.45)
        later = await cb.bulk.reconcile(journal, settle_after=5)
    assert later.found == 1


# -- kill -9 during sends and reconciliations -------------------------------------------------


def _send_bulk_cmd(src: Path, journal: Path, outcomes: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "commbox_async.cli",
        "send-bulk",
        "--stream",
        str(STREAM),
        "--input",
        str(src),
        "--journal",
        str(journal),
        "--outcomes",
        str(outcomes),
        "--concurrency",
        "16",
        "--rate-limit",
        "100000",
        "--reconcile",
        "--settle-after",
        "0.6",
        "--base-url",
        url,
        "--token",
        "t",
    ]


def _exactly_once_after_kills(tmp_path: Path, n: int, kills: int, seed: int) -> None:
    """send-bulk --reconcile against the fake on a real socket (10% faults, drops before and
    after processing, an indexing delay), killed with SIGKILL at random moments of its sends
    and its reconciliations, then run again until it ends: every message in the fake exactly
    once, none uncertain."""
    rng = random.Random(seed)
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    "key": f"k{i:05d}",
                    "channel": "sms",
                    "user_stream_provider_id": f"97250{i:07d}",
                    "message": f"Hello k{i:05d}",
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    journal, outcomes = tmp_path / "j.sqlite", tmp_path / "out.jsonl"
    fake = FakeCommBox(fault_rate=0.1, seed=seed, slow_seconds=0.005, index_delay=0.3)
    env = {**os.environ, "COLUMNS": "120"}
    with serve_in_thread(fake) as url:
        cmd = _send_bulk_cmd(src, journal, outcomes, url)
        interrupted = []
        for i in range(kills):
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            # The first run is the long one (its sends); later ones reconcile and resend.
            time.sleep(rng.uniform(0.8, 3.0) if i == 0 else rng.uniform(0.15, 1.2))
            interrupted.append(proc.poll() is None)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert sum(interrupted) >= 2  # the kills landed mid-run
        fake.configure(fault_rate=0.0)
        for _ in range(5):
            done = subprocess.run(cmd, capture_output=True, timeout=300, env=env)
            if done.returncode == 0:
                break
        assert done.returncode == 0, (done.stdout + done.stderr).decode()[-3000:]
    counts = in_fake(fake)
    assert len(counts) == n and set(counts.values()) == {1}
    final = rows(journal)
    assert len(final) == n and all(r["outcome"] == "sent" for r in final.values())


def test_kill_9_during_sends_and_reconciliations_still_ends_exactly_once(
    tmp_path: Path,
) -> None:
    _exactly_once_after_kills(tmp_path, n=2_000, kills=3, seed=5)


@pytest.mark.slow
def test_soak_kill_9_during_sends_and_reconciliations(tmp_path: Path) -> None:
    n = int(os.environ.get("COMMBOX_SOAK_N", "10000"))
    _exactly_once_after_kills(tmp_path, n=n, kills=8, seed=17)


async def test_a_stamped_send_is_never_settled_by_an_unstamped_look_alike(tmp_path: Path) -> None:
    """The stamped send never arrived; an identical conversation without the stamp (someone
    else's) is a candidate, never the send: the key stays uncertain."""
    journal = tmp_path / "j.sqlite"

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        first = await lossy.bulk.send([sms("a", text="Your code")], journal=journal, stamp=True)
    assert first.outcomes[0].outcome == "uncertain"
    fake = FakeCommBox()
    twin = fake.add_conversation(
        STREAM, message="Your code", user_stream_provider_id="972500000001"
    )
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 0
    (outcome,) = report.outcomes
    assert (outcome.outcome, outcome.candidates) == ("uncertain", (twin,))
