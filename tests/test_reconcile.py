"""Reconciliation: every uncertain send settled by asking CommBox, never wrongly."""

from __future__ import annotations

import html
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
from hypothesis import example, given
from hypothesis import strategies as st

from commbox_async import NewChild, NewObject
from commbox_async.bulk import STAMP_FIELD, BulkMessage, Journal, Outcome, Sending, SmsMessage
from commbox_async.bulk._backend import RECOVERED
from commbox_async.bulk._lookup import normalize_text, text_fit
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


async def test_a_stamped_template_whose_answer_was_lost_is_found_by_its_key(
    tmp_path: Path,
) -> None:
    """A template with object_data opens a conversation carrying its Content: with a stamp,
    reconciliation finds the lost send by its key (the fake once dropped the Content, so
    the key stayed ambiguous)."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")

    def template(key: str, to: str) -> BulkMessage:
        payload = TemplateMessage.create(
            to=to,
            name="t",
            language="en",
            object_data=TemplateObjectData(create_child_object=True),
        )
        return BulkMessage(key=key, stream_id=ENC, payload=payload)

    batch = [template("wa-a", "972500000001"), template("wa-b", "972500000002")]
    async with fake.client(max_retries=0) as cb:
        first = await cb.bulk.send(batch, journal=journal, stamp=True)
        assert first.counts == {"uncertain": 2}
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 2
    settled = rows(journal)
    created = {w["to"]: w["object_id"] for w in fake.whatsapp_sent}
    assert settled["wa-a"]["id"] == created["972500000001"]
    assert settled["wa-b"]["id"] == created["972500000002"]


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


@pytest.mark.parametrize("bad_id", [str(2**64), "-7", "0", "null", '"abc"'])
async def test_a_listed_conversation_without_a_readable_id_decides_nothing(
    bad_id: str, tmp_path: Path
) -> None:
    """The send's conversation is listed, but with an id no conversation can have: the key
    cannot be settled by it, and it is not "not taken" either (a 2**64 reached the journal's
    query and escaped as OverflowError; a null was skipped, and the key called not taken
    and sent again)."""
    journal = tmp_path / "j.sqlite"

    def lose(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    async with make_client(lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    record = (
        f'{{"objectId": {bad_id}, "userStreamProviderId": "972500000001", "message": "Hello a",'
        f' "createdTime": "{created}"}}'
    )

    def listed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=f'{{"status": "200", "data": [{record}]}}'.encode())

    async with make_client(listed, max_retries=0) as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    # No id at all is a possible match no key can claim (ambiguous); an id no object can have
    # makes the listing unreadable. Either way the key stays uncertain.
    expected = {"ambiguous": 1} if bad_id == "null" else {"query_failed": 1}
    assert report.still_uncertain == expected
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


# -- the outside review's findings ----------------------------------------------------------


def _lose(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("the request never reached CommBox", request=request)


async def test_a_stamp_of_the_same_key_from_another_journal_is_not_this_send(
    tmp_path: Path,
) -> None:
    """Keys are unique within one journal only: two campaigns keyed by row number both have a
    "row-1". Campaign B's lost send is not campaign A's conversation stamped "row-1"."""
    fake = FakeCommBox()
    a = sms("row-1", to="972500000001", text="Campaign A: your invoice")
    b = sms("row-1", to="972500000002", text="Campaign B: your appointment")
    async with fake.client() as cb:
        await cb.bulk.send([a], journal=tmp_path / "a.sqlite", stamp=True)
    async with make_client(_lose, max_retries=0) as lossy:
        lost = await lossy.bulk.send([b], journal=tmp_path / "b.sqlite", stamp=True)
    assert lost.counts == {"uncertain": 1}
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(tmp_path / "b.sqlite", settle_after=0)
        assert (report.found, report.not_taken) == (0, 1)
        again = await cb.bulk.send([b], journal=tmp_path / "b.sqlite", stamp=True)
    assert again.counts == {"sent": 1}
    assert in_fake(fake) == {"Campaign A: your invoice": 1, "Campaign B: your appointment": 1}


async def test_an_identical_stamped_send_from_another_journal_leaves_the_key_uncertain(
    tmp_path: Path,
) -> None:
    """The same key, recipient and text from another journal: it could be this key's earlier
    attempt as well as another campaign's send, so it is neither this send nor nothing."""
    fake = FakeCommBox()
    twin = sms("row-1", text="Your code is 1234")
    async with fake.client() as cb:
        await cb.bulk.send([twin], journal=tmp_path / "a.sqlite", stamp=True)
    async with make_client(_lose, max_retries=0) as lossy:
        await lossy.bulk.send([twin], journal=tmp_path / "b.sqlite", stamp=True)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(tmp_path / "b.sqlite", settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}
    assert rows(tmp_path / "b.sqlite")["row-1"]["candidates"] == list(fake.objects)


async def test_the_stamp_carries_a_random_id_of_the_send(tmp_path: Path) -> None:
    """The stamp's wire form: the key, and a random id of this send that the journal keeps."""
    from commbox_async.bulk import STAMP_SEND_FIELD as SEND_FIELD

    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send([sms("a"), sms("b")], journal=tmp_path / "j.sqlite", stamp=True)
    sent = [r.body["data"]["Content"] for r in fake.requests if r.method == "POST"]
    assert [set(c) for c in sent] == [{STAMP_FIELD, SEND_FIELD}] * 2
    assert [c[STAMP_FIELD] for c in sent] == ["a", "b"]
    ids = [c[SEND_FIELD] for c in sent]
    assert len(set(ids)) == 2 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def _uncertain(
    journal: Path,
    key: str,
    *,
    started: float | None = None,
    ended: float | None = None,
    recovered: float | None = None,
    **lookup: Any,
) -> None:
    """``key`` left uncertain with ``lookup``, as a send would leave it: its request let go at
    ``started`` and its outcome recorded at ``ended`` (both default to now); or, with
    ``recovered``, left sending by a process that died, and recovered then (a fake clock)."""
    fields = {"kind": "object", "stream": str(STREAM), **lookup}
    now = time.time()
    clock = [now if started is None else started]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: clock[0])
        with Journal(journal) as book:
            book.write(sending=[Sending(key, "digest", json.dumps(fields))], run=1)
            if recovered is None:
                clock[0] = now if ended is None else ended
                book.settle(Outcome(key=key, outcome="uncertain", error="lost"), run=1)
            else:
                clock[0] = recovered
                assert book.recover() == 1


@pytest.mark.parametrize(
    ("to", "text", "found"),
    [("972500000001", "Your invoice", True), ("972500000002", "Your invoice", False)],
)
async def test_a_stamp_without_a_send_id_matches_on_key_recipient_and_text(
    tmp_path: Path, to: str, text: str, found: bool
) -> None:
    """A journal from before send ids: the key alone is not enough, the recipient and the text
    must agree too."""
    fake = FakeCommBox()
    oid = fake.add_conversation(STREAM, message="Your invoice", user_stream_provider_id=to)
    fake.objects[oid].record["content"] = json.dumps({STAMP_FIELD: "row-1"})
    journal = tmp_path / "j.sqlite"
    _uncertain(journal, "row-1", who="972500000001", who_type=5, text=text, stamp=True)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.found, report.not_taken) == ((1, 0) if found else (0, 1))


# -- text as CommBox stores it ----------------------------------------------------------------

#: The forms the docs show CommBox storing a text in: HTML (the spec's stream search example,
#: ">Hi!&nbsp;<br><br>How are you today?"): characters as entities, line breaks as <br> in its
#: spellings, spaces as &nbsp;, Windows line ends.
STORED_FORMS = {
    "as sent": lambda t: t,
    "escaped": html.escape,
    "escaped, no quotes": lambda t: html.escape(t, quote=False),
    "numeric entities": lambda t: "".join(f"&#{ord(c)};" if c in "<>&\"'" else c for c in t),
    "<br>": lambda t: t.replace("\n", "<br>"),
    "escaped, <br />": lambda t: html.escape(t).replace("\n", "<br />"),
    "escaped, <BR/>": lambda t: html.escape(t).replace("\n", "<BR/>"),
    "&nbsp;": lambda t: t.replace(" ", "&nbsp;"),
    "escaped, &nbsp; and <br>": lambda t: (
        html.escape(t).replace(" ", "&nbsp;").replace("\n", "<br>")
    ),
    "CRLF": lambda t: t.replace("\n", "\r\n"),
    "escaped twice": lambda t: html.escape(html.escape(t)),
}


@given(text=st.text(max_size=60), form=st.sampled_from(sorted(STORED_FORMS)))
@example(text="Reply <STOP> to opt out", form="escaped")
@example(text="Tom & Jerry <3 &amp; &lt;b&gt;", form="escaped, &nbsp; and <br>")
@example(text="line one\nline two <br> three", form="escaped, <br />")
def test_every_stored_form_of_a_text_normalizes_as_the_text(text: str, form: str) -> None:
    stored = STORED_FORMS[form](text)
    assert normalize_text(stored) == normalize_text(text)
    assert text_fit(normalize_text(text), normalize_text(stored)) == "same"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Reply <STOP> to opt out", "Reply to opt out"),
        ("Reply to opt out", "Reply <STOP> to opt out"),
        ("Hello", "<div dir='ltr'>Hello</div>"),
    ],
)
def test_texts_equal_only_once_tags_are_dropped_could_be_either(sent: str, stored: str) -> None:
    """Dropping tags can make two different texts equal: then neither same nor different."""
    assert text_fit(normalize_text(sent), normalize_text(stored)) == "maybe"


def test_a_text_beyond_the_length_compared_is_never_called_different() -> None:
    """Only the first 100,000 characters are normalized; an escaped form is longer, so its cut
    falls elsewhere: two long texts are never certainly different (nor certainly the same)."""
    long = "<x> " * 30_000
    assert text_fit(normalize_text(long), normalize_text(html.escape(long))) == "maybe"
    assert text_fit(normalize_text(long), normalize_text(long)) == "maybe"


async def test_a_text_stored_with_entities_is_found(tmp_path: Path) -> None:
    """ "Reply <STOP> to opt out", stored as "Reply &lt;STOP&gt; to opt out": the send it is,
    not a send to make again."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")
    text = "Reply <STOP> to opt out"
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send([sms("a", text=text)], journal=journal)
        for obj in fake.objects.values():
            obj.record["message"] = html.escape(obj.record["message"])
        report = await cb.bulk.reconcile(journal, settle_after=0)
        assert (report.found, report.not_taken) == (1, 0)
        again = await cb.bulk.send([sms("a", text=text)], journal=journal)
    assert again.earlier == 1 and len(fake.objects) == 1


async def test_a_conversation_whose_text_differs_only_in_tags_leaves_the_key_uncertain(
    tmp_path: Path,
) -> None:
    """A lost "Reply <STOP> to opt out" and, listed, "Reply to opt out": it could be the send
    with its tag dropped, or another message: neither sent nor not taken."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.add_conversation(
        STREAM, message="Reply to opt out", user_stream_provider_id="972500000001"
    )
    async with make_client(_lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a", text="Reply <STOP> to opt out")], journal=journal)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}


# -- messages in a conversation ---------------------------------------------------------------


def _agent(text: str, agent: int = 36574658) -> NewChild:
    return NewChild.from_agent(
        user_identity=agent,
        user_stream_provider_id="972500000001",
        user_stream_provider_type=5,
        message=text,
    )


def _customer(text: str) -> NewChild:
    return NewChild.from_customer(
        user_stream_provider_id="972500000001", user_stream_provider_type=5, message=text
    )


async def _lost_reply(tmp_path: Path, fake: FakeCommBox, child: NewChild) -> tuple[Path, int]:
    """A conversation in the fake, and ``child`` sent into it with its answer lost before
    CommBox saw it."""
    journal = tmp_path / "j.sqlite"
    async with fake.client() as cb:
        oid = await cb.objects.create(
            STREAM,
            NewObject.sms(user_stream_provider_id="972500000001", message="Can we meet Tuesday?"),
        )
    async with make_client(_lose, max_retries=0) as lossy:
        batch = [BulkMessage(key="reply", stream_id=STREAM, object_id=oid, payload=child)]
        assert (await lossy.bulk.send(batch, journal=journal)).counts == {"uncertain": 1}
    return journal, oid


async def test_the_customers_identical_message_is_not_the_agents_lost_one(
    tmp_path: Path,
) -> None:
    """The agent's "Yes" was lost; the customer writes "Yes" too: not the agent's send."""
    fake = FakeCommBox()
    journal, oid = await _lost_reply(tmp_path, fake, _agent("Yes"))
    async with fake.client() as cb:
        await cb.objects.create_child(STREAM, oid, _customer("Yes"))
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.found, report.not_taken) == (0, 1)


async def test_the_agents_identical_message_is_not_the_customers_lost_one(
    tmp_path: Path,
) -> None:
    fake = FakeCommBox()
    journal, oid = await _lost_reply(tmp_path, fake, _customer("Thanks"))
    async with fake.client() as cb:
        await cb.objects.create_child(STREAM, oid, _agent("Thanks"))
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.found, report.not_taken) == (0, 1)


async def test_another_agents_identical_message_leaves_the_key_uncertain(tmp_path: Path) -> None:
    fake = FakeCommBox()
    journal, oid = await _lost_reply(tmp_path, fake, _agent("OK"))
    async with fake.client() as cb:
        await cb.objects.create_child(STREAM, oid, _agent("OK", agent=11111111))
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}


async def test_the_agents_own_message_is_found(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client(max_retries=0) as cb:
        oid = await cb.objects.create(
            STREAM, NewObject.sms(user_stream_provider_id="972500000001", message="Hi")
        )
        await cb.objects.create_child(STREAM, oid, _customer("Yes"))
        fake.fail_next("lost_after")
        batch = [BulkMessage(key="reply", stream_id=STREAM, object_id=oid, payload=_agent("Yes"))]
        await cb.bulk.send(batch, journal=journal)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 1
    assert rows(journal)["reply"]["id"] == fake.objects[oid].children[-1]["id"]


@pytest.mark.parametrize("where", ["neither", "top", "user"])
async def test_a_message_whose_direction_is_not_listed_could_be_either(
    tmp_path: Path, where: str
) -> None:
    """A child without isManager (or with it only in one place) is judged by what it has."""
    fake = FakeCommBox()
    journal, oid = await _lost_reply(tmp_path, fake, _agent("Yes"))
    async with fake.client() as cb:
        await cb.objects.create_child(STREAM, oid, _customer("Yes"))
        child = fake.objects[oid].children[-1]
        del child["user"]["isManager"]
        if where == "top":
            child["IsManager"] = False
        elif where == "user":
            child["user"]["isManager"] = False
        report = await cb.bulk.reconcile(journal, settle_after=0)
    if where == "neither":
        assert report.still_uncertain == {"ambiguous": 1}
    else:
        assert (report.found, report.not_taken) == (0, 1)


# -- when the attempt was -----------------------------------------------------------------------

LOOKUP = {"who": "972500000001", "who_type": 5, "text": "Hello a"}


def _created(fake: FakeCommBox, when: float, text: str = "Hello a") -> int:
    return fake.add_conversation(
        STREAM, message=text, user_stream_provider_id="972500000001", created=when
    )


async def test_an_attempt_that_lasted_past_five_minutes_is_looked_for_until_it_ended(
    tmp_path: Path,
) -> None:
    """Retry-After waits (deadline=None) took the attempt 500 s; CommBox took it at +400 s,
    the answer was lost: the journal knows when it ended, so the send is found."""
    journal = tmp_path / "j.sqlite"
    t0 = time.time() - 1_000
    fake = FakeCommBox()
    oid = _created(fake, t0 + 400)
    _uncertain(journal, "a", started=t0, ended=t0 + 500, **LOOKUP)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.found == 1 and rows(journal)["a"]["id"] == oid


@pytest.mark.parametrize(("after", "found"), [(100, True), (400, False)])
async def test_a_recovered_attempt_is_found_within_five_minutes_and_uncertain_after(
    tmp_path: Path, after: float, found: bool
) -> None:
    """A process killed mid-request: when its attempt ended is not known. A match within
    MAX_ATTEMPT_SECONDS of its start is the send; one later, but before the recovery, could
    be (or be another's): the key stays uncertain, never not taken."""
    journal = tmp_path / "j.sqlite"
    t0 = time.time() - 1_000
    fake = FakeCommBox()
    _created(fake, t0 + after)
    _uncertain(journal, "a", started=t0, recovered=t0 + 900, **LOOKUP)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
        assert (report.found, report.not_taken) == ((1, 0) if found else (0, 0))
        if not found:  # and so it stays, however often it is asked
            assert report.still_uncertain == {"ambiguous": 1}
            again = await cb.bulk.reconcile(journal, settle_after=0)
            assert again.still_uncertain == {"ambiguous": 1}
            assert rows(journal)["a"]["error"].startswith(RECOVERED)


async def test_keys_a_killed_sender_left_sending_are_reconciled_without_a_send_first(
    tmp_path: Path,
) -> None:
    """Killed mid-request, then `commbox reconcile` (no send in between): the keys left
    "sending" may have been taken, like any uncertain one, and are looked up too."""
    from commbox_async.bulk._lookup import lookup_for

    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.add_conversation(STREAM, message="Hello a", user_stream_provider_id="972500000001")
    with Journal(journal) as book:
        for message in (sms("a"), sms("b", to="972500000002")):
            lookup = lookup_for(message, stamp=False).to_json()
            book.write(sending=[Sending(message.key, message.digest(), lookup)], run=1)
    async with fake.client() as cb:
        recent = await cb.bulk.reconcile(journal)  # recovered just now: settle_after waits
        assert (recent.examined, recent.recovered, recent.found) == (2, 2, 1)
        assert recent.still_uncertain == {"too_recent": 1}
        assert rows(journal)["b"]["error"].startswith(RECOVERED)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert (report.examined, report.recovered, report.not_taken) == (1, 0, 1)
    settled = rows(journal)
    assert settled["a"]["outcome"] == "sent"
    assert (settled["b"]["outcome"], settled["b"]["failure"]) == ("failed", "not_sent")


def test_the_journal_records_a_recovered_attempt_as_reconciliation_reads_it(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite") as book:
        book.write(sending=[Sending("a")], run=1)
        assert book.recover() == 1
        (entry,) = book.uncertain()
    assert entry.error == RECOVERED


def test_the_journal_keeps_an_uncertain_keys_earlier_attempts_until_it_is_settled(
    tmp_path: Path,
) -> None:
    uncertain = Outcome(key="a", outcome="uncertain", error="lost")
    with Journal(tmp_path / "j.sqlite") as book:
        book.write(sending=[Sending("a", "d1")], settled=[uncertain], run=1)
        ((*_, first_started, _, _, _, since, differs),) = book.uncertain()
        assert (since, differs) == (None, False)
        time.sleep(0.01)
        book.write(sending=[Sending("a", "d1")], settled=[uncertain], run=2)
        ((*_, started, _, _, _, since, differs),) = book.uncertain()
        assert (since, differs) == (first_started, False) and started > first_started
        book.write(sending=[Sending("a", "d2")], settled=[uncertain], run=3)
        book.write(sending=[Sending("a", "d2")], settled=[uncertain], run=4)
        ((*_, since, differs),) = book.uncertain()
        assert (since, differs) == (first_started, True)  # kept once another text was sent
        # Settled (say, found not taken), then sent again: its earlier attempts are no longer
        # what may have been taken.
        book.write(settled=[Outcome(key="a", outcome="failed", failure="not_sent")], run=5)
        book.write(sending=[Sending("a", "d3")], settled=[uncertain], run=6)
        ((*_, since, differs),) = book.uncertain()
        assert (since, differs) == (None, False)


# -- what a listed conversation leaves out ------------------------------------------------------


@pytest.mark.parametrize("missing", ["createdTime", "userStreamProviderId", "objectId", "message"])
async def test_a_conversation_missing_a_field_that_could_exclude_it_leaves_the_key_uncertain(
    tmp_path: Path, missing: str
) -> None:
    """The lost send was not taken; CommBox lists a conversation like it but without one of
    the fields that could tell it apart (last week's reminder without its createdTime, say): it
    is neither taken for the send nor ignored."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with make_client(_lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)
    oid = _created(fake, time.time())
    fake.objects[oid].record[missing] = None
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}
    expected = [] if missing == "objectId" else [oid]
    assert rows(journal)["a"]["candidates"] == expected


async def test_a_second_holding_exactly_a_page_of_others_decides_its_keys(
    tmp_path: Path,
) -> None:
    """Someone else's 100 conversations in the second of a lost send: the search is complete
    (its page 2 is empty), so the send that is not among them is not taken."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    second = int(time.time()) - 1
    for i in range(100):
        fake.add_conversation(
            STREAM, message=f"other {i}", created=second + 0.5, user_stream_provider_id=f"9725{i}"
        )
    _uncertain(journal, "a", started=second + 0.2, ended=second + 0.8, **LOOKUP)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0, clock_skew=0)
    assert (report.not_taken, report.uncertain) == (1, 0)


# -- rounds -----------------------------------------------------------------------------------


async def test_rounds_look_again_when_a_lookup_failed(tmp_path: Path) -> None:
    """The only uncertain key's lookup fails (a 500): nothing was found not taken, but the
    next round asks again instead of stopping with the key uncertain."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")
    waits = []

    def before_reconciling(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            fake.fail_next("500")  # the first lookup

    async with fake.client(max_retries=0) as cb:
        rounds = await cb.bulk.send_reconciled(
            lambda: messages(3), journal=journal, settle_after=0.05, on_wait=before_reconciling
        )
    assert [dict(r.still_uncertain) for r in rounds.reconciles[1:]] == [{"query_failed": 1}, {}]
    assert rounds.final == {"sent": 3} and len(rounds.sends) == 1  # nothing sent twice
    assert in_fake(fake) == {f"Hello k{i:05d}": 1 for i in range(3)}


def _forget(fake: FakeCommBox, text: str) -> None:
    """CommBox never took it after all (over a socket, a drop before processing and an
    answer lost after it look the same)."""
    for i, obj in list(fake.objects.items()):
        if obj.record["message"] == text:
            del fake.objects[i]
            fake.streams[obj.stream].remove(i)


async def test_rounds_say_what_each_pass_goes_through(tmp_path: Path) -> None:
    """``on_pass`` hears of each pass before it starts (a progress bar per pass): the
    reconciliation of what earlier runs left, a send, the reconciliation of its one uncertain
    key, which CommBox never took, and the send of that key again."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")
    passes: list[tuple[str, int | None]] = []
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send_reconciled(
            lambda: messages(3),
            journal=journal,
            settle_after=0.05,
            concurrency=1,
            on_wait=lambda _: _forget(fake, "Hello k00000"),
            on_pass=lambda kind, keys: passes.append((kind, keys)),
        )
    assert passes == [("reconcile", 0), ("send", None), ("reconcile", 1), ("send", None)]
    assert in_fake(fake) == {f"Hello k{i:05d}": 1 for i in range(3)}


# -- createdTime's zone -----------------------------------------------------------------------


def _naive(when: float) -> str:
    """``when`` as CommBox's examples without a zone write it (read as UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))


@pytest.mark.parametrize("hours", [3, -5, 13.75])
async def test_a_send_whose_time_reads_as_another_zone_is_never_not_taken(
    tmp_path: Path, hours: float
) -> None:
    """CommBox took the send, but lists its createdTime without a zone in its own local time:
    read as UTC (the docs say UTC) it is hours off the attempt. It could be the send: the
    key stays uncertain, and is never sent again."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")
    async with fake.client(max_retries=0) as cb:
        await cb.bulk.send([sms("a")], journal=journal)
        (obj,) = fake.objects.values()
        obj.record["createdTime"] = _naive(obj.created + hours * 3600)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}


async def test_a_childs_time_in_another_zone_is_never_not_taken(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client(max_retries=0) as cb:
        oid = await cb.objects.create(
            STREAM, NewObject.sms(user_stream_provider_id="972500000001", message="Hi")
        )
        fake.fail_next("lost_after")
        batch = [BulkMessage(key="r", stream_id=STREAM, object_id=oid, payload=_agent("OK"))]
        await cb.bulk.send(batch, journal=journal)
        child = fake.objects[oid].children[-1]
        child["createdTime"] = _naive(time.time() + 2 * 3600)
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.still_uncertain == {"ambiguous": 1}


async def test_an_identical_message_beyond_any_zone_offset_is_not_the_send(
    tmp_path: Path,
) -> None:
    """Fourteen hours is the widest offset from UTC: a conversation further off is not it."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with make_client(_lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a")], journal=journal)
    oid = _created(fake, time.time())
    fake.objects[oid].record["createdTime"] = _naive(time.time() - 15 * 3600)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.not_taken == 1


async def test_a_recipient_search_reads_back_as_far_as_a_zone_could_shift_the_send(
    tmp_path: Path,
) -> None:
    """The identity search lists the recipient's conversations newest first: it reads on past
    the window's start by MAX_ZONE_OFFSET, for a send whose time may be local."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client() as cb:  # 150 sends in the window: a search per recipient is cheaper
        await cb.bulk.send(messages(150), journal=journal, concurrency=16)
    async with make_client(_lose, max_retries=0) as lossy:
        await lossy.bulk.send([sms("a", to="972599999999")], journal=journal)
    now = time.time()
    for i in range(100):  # the recipient's other conversations, before the window
        oid = fake.add_conversation(
            STREAM, message=f"other {i}", user_stream_provider_id="972599999999", created=now - 600
        )
    # and the send, shifted 3 hours back, on the search's second page
    oid = fake.add_conversation(
        STREAM, message="Hello a", user_stream_provider_id="972599999999", created=now - 3 * 3600
    )
    async with fake.client() as cb:
        fake.requests.clear()
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert "identityStreamProviderId=972599999999" in fake.requests[0].query
    assert report.still_uncertain == {"ambiguous": 1}
    assert rows(journal)["a"]["candidates"] == [oid]


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


async def _taken_then_resent(journal: Path, fake: FakeCommBox, first: str, second: str) -> None:
    """Key ``a`` sent with text ``first`` (taken, its answer lost), then sent again while
    uncertain with text ``second``, which CommBox certainly never took (a 503)."""
    async with fake.client(max_retries=0) as cb:
        fake.fail_next("lost_after")
        taken = await cb.bulk.send([sms("a", text=first)], journal=journal)
        assert taken.outcomes[0].outcome == "uncertain"
        await anyio.sleep(0.05)  # the second attempt starts after the first one's record
        fake.fail_next("503")
        again = await cb.bulk.send([sms("a", text=second)], journal=journal, resend_uncertain=True)
    assert again.outcomes[0].outcome == "uncertain"  # "sent again while uncertain"


async def test_a_key_sent_again_while_uncertain_is_looked_for_since_its_first_attempt(
    tmp_path: Path,
) -> None:
    """The first attempt was taken; the second was refused. Looking only from the second
    attempt's start, the first one's conversation is off its window (by less than a time
    zone could explain): the key would stay ambiguous instead of found."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    await _taken_then_resent(journal, fake, "Hello a", "Hello a")
    (taken,) = fake.all_objects()
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0, clock_skew=0)
    assert (report.found, report.not_taken) == (1, 0)
    assert rows(journal)["a"]["id"] == taken["objectId"]


async def test_a_key_resent_with_another_text_while_uncertain_is_never_not_taken(
    tmp_path: Path,
) -> None:
    """The first attempt (the old text) was taken; reconciliation looks for the new text, and
    finding nothing of it must not make the key one the next run sends again (found by the
    model test: "not taken, but processed")."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    await _taken_then_resent(journal, fake, "Hello a", "Hello again")
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
    assert report.not_taken == 0
    (outcome,) = report.outcomes
    assert outcome.outcome == "uncertain"
    assert "earlier attempt" in (outcome.error or "")
    assert rows(journal)["a"]["outcome"] == "uncertain"
