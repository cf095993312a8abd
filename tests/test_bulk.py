"""Bulk sends: exactly one outcome per key, no duplicates under faults, resumable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from commbox_async import ConfigurationError, JournalError, NewChild, NewObject, Processed
from commbox_async.bulk import BulkMessage, Journal, Outcome, SmsMessage
from commbox_async.models import TemplateComponent, TemplateMessage, TemplateObjectData
from commbox_async.testing import FakeCommBox

from .conftest import serve_in_thread

pytestmark = pytest.mark.anyio

STREAM = 532


def sms(i: int) -> BulkMessage:
    key = f"key-{i:06d}"
    payload = NewObject.sms(user_stream_provider_id="972500000000", message=key)
    return BulkMessage(key=key, stream_id=STREAM, payload=payload)


def messages(n: int, prefix: str = "key") -> Iterator[BulkMessage]:
    for i in range(n):
        key = f"{prefix}-{i:06d}"
        yield BulkMessage(
            key=key,
            stream_id=STREAM,
            payload=NewObject.sms(user_stream_provider_id="972500000000", message=key),
        )


def check_invariants(
    fake: FakeCommBox, outcomes: dict[str, Any], n: int, prefix: str = "key"
) -> None:
    in_fake = Counter(o["message"] for o in fake.all_objects())
    ids = {o["message"]: o["objectId"] for o in fake.all_objects()}
    assert set(outcomes) == {f"{prefix}-{i:06d}" for i in range(n)}  # every key, one outcome
    assert all(count == 1 for count in in_fake.values())  # no key twice in the fake
    for key, outcome in outcomes.items():
        if outcome.outcome == "sent":
            assert ids.get(key) == outcome.id  # every sent key exists once, same id
    assert all(outcomes[key].outcome in ("sent", "uncertain") for key in in_fake)


async def test_ten_thousand_sends_under_faults(anyio_backend: str) -> None:
    n = 10_000 if anyio_backend == "asyncio" else 2_000
    fake = FakeCommBox(
        fault_rate=0.10,
        seed=5,
        slow_seconds=0.001,
        faults=["500", "502", "503", "drop_before", "lost_after", "slow"],
    )
    async with fake.client(max_retries=4, initial_backoff=0.001, max_backoff=0.005) as cb:
        report = await cb.bulk.send(messages(n), concurrency=32)
    outcomes = {o.key: o for o in report.outcomes}
    assert len(report.outcomes) == n
    check_invariants(fake, outcomes, n)
    assert report.counts["sent"] > 0.85 * n
    assert report.counts["uncertain"] > 0  # the faults did happen
    assert report.throughput > 0


async def test_resume_skips_sent_keeps_uncertain_retries_retryable(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")  # key-000000 is taken, but the answer is lost: uncertain
    fake.fail_next("503", times=5)  # key-000001 certainly not taken, retries exhausted: failed
    async with fake.client(max_retries=3, initial_backoff=0.001, max_backoff=0.002) as cb:
        first = await cb.bulk.send(messages(5), journal=journal, concurrency=1)
        assert {o.key: o.outcome for o in first.outcomes} == {
            "key-000000": "uncertain",
            "key-000001": "failed",
            "key-000002": "sent",
            "key-000003": "sent",
            "key-000004": "sent",
        }
        assert next(o for o in first.outcomes if o.key == "key-000001").retryable
        second = await cb.bulk.send(messages(5), journal=journal, concurrency=1)
        # Outcomes arrive as they settle; compare by key.
        assert {o.key: (o.outcome, o.earlier) for o in second.outcomes} == {
            "key-000000": ("uncertain", True),
            "key-000001": ("sent", False),
            "key-000002": ("sent", True),
            "key-000003": ("sent", True),
            "key-000004": ("sent", True),
        }
        third = await cb.bulk.send(
            messages(5), journal=journal, resend_uncertain=True, concurrency=1
        )
        assert third.counts == Counter({"sent": 5})
        assert third.earlier == 4
    with Journal(journal) as book:
        assert book.counts() == {"sent": 5}
    assert len(fake.objects) == 6  # key-000000 twice, only because resend_uncertain asked for it


async def test_duplicate_keys_bad_input_and_children(tmp_path: Path) -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        oid = await cb.objects.create(
            STREAM, NewObject.sms(user_stream_provider_id="972500000000", message="x")
        )
        child = NewChild.from_customer(
            user_stream_provider_id="972500000000", user_stream_provider_type=5, message="hello"
        )
        batch = [
            BulkMessage(key="a", stream_id=STREAM, object_id=oid, payload=child),
            BulkMessage(key="a", stream_id=STREAM, object_id=oid, payload=child),
            BulkMessage(key="b", stream_id=STREAM, object_id=999, payload=child),
        ]
        report = await cb.bulk.send(batch, concurrency=1)
    by_key = [(o.key, o.outcome, o.retryable) for o in report.outcomes]
    assert ("a", "sent", False) in by_key
    assert ("a", "failed", False) in by_key  # the duplicate, never sent
    (duplicate,) = [o for o in report.outcomes if o.key == "a" and o.outcome == "failed"]
    assert (duplicate.failure, duplicate.error) == ("rejected", "duplicate key in the input")
    assert ("b", "failed", False) in by_key  # 404: will fail the same way again
    assert len(fake.objects[oid].children) == 2
    with pytest.raises(ConfigurationError, match="object_id"):
        BulkMessage(key="c", stream_id=1, payload=child)


async def test_duplicates_found_through_the_journal_across_queue_and_resume(
    tmp_path: Path,
) -> None:
    """Duplicate detection keeps no set of every key: a key still queued, a key sent in this
    run and a key skipped in this run (sent by an earlier one) are all caught."""
    journal = tmp_path / "journal.sqlite"
    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send(messages(3), journal=journal)
        again = [*messages(3), *messages(5), *messages(5)]  # 3 old keys, then repeats
        report = await cb.bulk.send(again, journal=journal, concurrency=4)
    outcomes = Counter((o.key, o.outcome) for o in report.outcomes)
    earlier = {o.key for o in report.outcomes if o.earlier}
    assert earlier == {f"key-{i:06d}" for i in range(3)}
    for i in range(3):
        assert outcomes[(f"key-{i:06d}", "sent")] == 1  # sent by the earlier run
        assert outcomes[(f"key-{i:06d}", "failed")] == 2  # its two repeats
    for i in range(3, 5):
        assert outcomes[(f"key-{i:06d}", "sent")] == 1
        assert outcomes[(f"key-{i:06d}", "failed")] == 1
    assert len(fake.objects) == 5


async def test_a_repeated_key_leaves_the_first_occurrence_as_it_was(tmp_path: Path) -> None:
    """The repeat, reported as a duplicate, once dropped what the run knew of the first
    occurrence still queued: the journal recorded its send without its fingerprint or its
    lookup, so a later change of that message went unreported and reconciliation could not
    look for it; cancelled, it went unreported (found by the model-based fault test)."""
    journal = tmp_path / "journal.sqlite"
    fake = FakeCommBox()
    fake.fail_next("lost_after")  # the first occurrence is taken; its answer is lost
    first = sms(0)
    async with fake.client(max_retries=0) as cb:
        report = await cb.bulk.send([first, first, sms(1)], journal=journal, concurrency=1)
        outcomes = Counter((o.key, o.outcome) for o in report.outcomes)
        assert outcomes == {
            ("key-000000", "uncertain"): 1,
            ("key-000000", "failed"): 1,  # the repeat, never sent
            ("key-000001", "sent"): 1,
        }
        settled = await cb.bulk.reconcile(journal, settle_after=0)
        assert settled.found == 1  # it knew where to look
        changed = BulkMessage(
            key=first.key,
            stream_id=STREAM,
            payload=NewObject.sms(user_stream_provider_id="972500000000", message="edited"),
        )
        again = await cb.bulk.send([changed], journal=journal)
    assert (again.outcomes[0].outcome, again.outcomes[0].changed) == ("sent", True)
    assert len(fake.objects) == 2
    seen: list[Any] = []
    async with fake.client(rate_limit=1, burst=1) as cb:
        with anyio.move_on_after(0.3):
            await cb.bulk.send(
                [sms(5), sms(6), sms(6)], journal=journal, concurrency=1, on_outcome=seen.append
            )
    assert Counter((o.key, o.outcome) for o in seen) == {
        ("key-000005", "sent"): 1,
        ("key-000006", "failed"): 1,  # the repeat
        ("key-000006", "pending"): 1,  # the first occurrence, never sent
    }


def test_a_journal_from_an_earlier_version_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE messages (key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER,"
        " error TEXT, retryable INTEGER NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)"
    )
    db.execute("INSERT INTO messages VALUES ('k', 'sent', 7, NULL, 0, 1, 0)")
    db.commit()
    db.close()
    book = Journal(path)
    entry = book.get("k")
    assert entry is not None and (entry.state, entry.id, entry.run) == ("sent", 7, 0)
    assert book.begin_run() == 1
    assert book.rows()[0]["data"] is None
    book.close()


async def test_a_key_a_dead_process_left_sending_is_reported_uncertain_and_not_sent(
    tmp_path: Path,
) -> None:
    """Its request may have reached CommBox before the process died: the next run recovers it
    as uncertain (maybe taken, with the reason) and does not send it again by itself."""
    journal = tmp_path / "j.sqlite"
    with Journal(journal) as book:
        book.sending("key-000000", run=book.begin_run())
    fake = FakeCommBox()
    async with fake.client() as cb:
        report = await cb.bulk.send(messages(2), journal=journal)
    assert report.recovered_uncertain == 1
    recovered = next(o for o in report.outcomes if o.key == "key-000000")
    assert (recovered.outcome, recovered.earlier, recovered.processed) == (
        "uncertain",
        True,
        Processed.MAYBE,
    )
    assert recovered.error == "the sending process stopped mid-request"
    assert report.counts == {"uncertain": 1, "sent": 1}
    assert len(fake.objects) == 1


async def test_the_report_says_how_long_the_run_took() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        before = anyio.current_time()
        report = await cb.bulk.send(messages(20), concurrency=4)
        took = anyio.current_time() - before
    assert 0 < report.elapsed <= took
    assert report.throughput == 20 / report.elapsed


def test_a_journal_without_a_path_is_a_temporary_file() -> None:
    book = Journal()
    assert book.path is None
    book.sending("k", run=book.begin_run())
    assert book.counts() == {"sending": 1}
    book.close()


async def test_stop_takes_no_new_messages_and_async_input() -> None:
    fake = FakeCommBox()
    stop = anyio.Event()
    seen = 0

    async def source() -> Any:
        nonlocal seen
        for message in messages(1000):
            seen += 1
            if seen == 50:
                stop.set()
            yield message

    async with fake.client() as cb:
        report = await cb.bulk.send(source(), concurrency=4, stop=stop)
    assert report.stopped_early
    assert seen < 100  # consumed lazily
    # What was on the wire finished; what was only queued is pending, and was never sent.
    assert report.counts["sent"] == len(fake.objects) < 60
    assert set(report.counts) <= {"sent", "pending"}
    sent_texts = {o["message"] for o in fake.all_objects()}
    assert all(o.key not in sent_texts for o in report.outcomes if o.outcome == "pending")


# -- kill -9 mid-run -------------------------------------------------------------------------

SENDER = textwrap.dedent("""
    import asyncio, sys
    from commbox_async import AsyncCommBox, NewObject
    from commbox_async.bulk import BulkMessage

    url, journal, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def messages():
        for i in range(n):
            key = f"key-{i:06d}"
            sms = NewObject.sms(user_stream_provider_id="972500000000", message=key)
            yield BulkMessage(key=key, stream_id=532, payload=sms)

    async def main():
        async with AsyncCommBox(token="t", base_url=url, rate_limit=300, burst=10, max_retries=4,
                                initial_backoff=0.01, max_backoff=0.05) as cb:
            report = await cb.bulk.send(messages(), journal=journal, concurrency=8)
            print({**report.counts, "earlier": report.earlier}, flush=True)

    asyncio.run(main())
""")


@pytest.fixture
def fake_server() -> Iterator[tuple[FakeCommBox, str]]:
    fake = FakeCommBox(
        fault_rate=0.1, seed=9, faults=["500", "503", "lost_after", "slow"], slow_seconds=0.01
    )
    with serve_in_thread(fake) as url:
        yield fake, url


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_kill_9_mid_run_then_resume(
    fake_server: tuple[FakeCommBox, str], tmp_path: Path
) -> None:
    fake, url = fake_server
    n = 1200
    script = tmp_path / "sender.py"
    script.write_text(SENDER)
    journal = tmp_path / "journal.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(journal), str(n)], env=env, stdout=subprocess.PIPE
    )
    # Killed once CommBox has taken a sixth of the batch: a fixed sleep is too short when the
    # machine is loaded (the sender has not started yet) and too long when it is idle.
    with anyio.fail_after(60):
        while len(fake.all_objects()) < n // 6:
            await anyio.sleep(0.02)
    assert proc.poll() is None, "the sender finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with Journal(journal) as book:
        mid = book.counts()
    assert 0 < mid.get("sent", 0) < n
    rerun = subprocess.run(
        [sys.executable, str(script), url, str(journal), str(n)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    counts = json.loads(rerun.stdout.decode().strip().replace("'", '"'))
    assert counts["earlier"] > 0
    with Journal(journal) as book:
        rows = {r["key"]: r for r in book.rows()}
    assert len(rows) == n  # the journal accounts for every key
    in_fake = Counter(o["message"] for o in fake.all_objects())
    assert all(c == 1 for c in in_fake.values())  # at most once, across the kill
    for key, row in rows.items():
        if row["outcome"] == "sent":
            assert in_fake[key] == 1
    assert all(rows[k]["outcome"] in ("sent", "uncertain") for k in in_fake)


ENC = "hNyRN_fLUy7rrOrN9jLpipA=="


def template(to: str) -> TemplateMessage:
    return TemplateMessage.create(
        to=to,
        name="promo",
        language="en",
        components=[TemplateComponent.body("hi")],
        object_data=TemplateObjectData(create_child_object=True),
    )


async def test_whatsapp_templates_go_twenty_per_call_per_stream() -> None:
    fake = FakeCommBox()
    other = "b3RoZXI="
    batch = [
        BulkMessage(key=f"wa-{i}", stream_id=ENC, payload=template(f"97250{i:07d}"))
        for i in range(45)
    ]
    batch += [BulkMessage(key="bad-1", stream_id=ENC, payload=template("000111"))]
    batch += [
        BulkMessage(key=f"other-{i}", stream_id=other, payload=template(f"97252{i:07d}"))
        for i in range(3)
    ]
    async with fake.client() as cb:
        report = await cb.bulk.send(batch, concurrency=4)
    calls = [r for r in fake.requests if r.path.startswith("/v2/whatsapp/")]
    sizes = sorted(len(r.body["data"]) for r in calls)
    assert sizes == [3, 6, 20, 20]  # 46 in one stream, 3 in the other
    assert report.counts == {"sent": 48, "failed": 1}
    by_key = {o.key: o for o in report.outcomes}
    assert by_key["bad-1"].outcome == "failed" and not by_key["bad-1"].retryable
    assert by_key["bad-1"].data == {
        "recipient": "000111",
        "status": 400,
        "failed": "invalid — Not a valid WhatsApp user",
    }
    sent = by_key["wa-7"]
    assert sent.data is not None and sent.data["id"].startswith("wamid.")
    assert sent.id in fake.objects
    assert len(fake.whatsapp_sent) == 48
    assert any(r.status == 206 for r in calls)  # the partial batch is data, not an error


async def test_a_lost_whatsapp_batch_is_uncertain_as_a_whole(tmp_path: Path) -> None:
    fake = FakeCommBox()
    fake.fail_next(
        "lost_after", path=f"/v2/whatsapp/sendtemplatedmessage/{ENC.replace('=', '%3D')}"
    )
    batch = [
        BulkMessage(key=f"wa-{i}", stream_id=ENC, payload=template(f"97250{i:07d}"))
        for i in range(20)
    ]
    journal = tmp_path / "wa.sqlite"
    async with fake.client() as cb:
        report = await cb.bulk.send(batch, journal=journal)
        assert report.counts == {"uncertain": 20}
        assert len(fake.whatsapp_sent) == 20  # the fake took them; the answer was lost
        again = await cb.bulk.send(batch, journal=journal)
    assert again.counts == {"uncertain": 20}  # never resent on its own
    assert again.earlier == 20
    assert len(fake.whatsapp_sent) == 20


async def test_sms_through_sendsms() -> None:
    fake = FakeCommBox()
    batch = [
        BulkMessage(
            key=f"sms-{i}",
            stream_id=ENC,
            payload=SmsMessage(number=f"97250{i:07d}", message=f"m{i}"),
        )
        for i in range(30)
    ]
    async with fake.client() as cb:
        report = await cb.bulk.send(batch, concurrency=5)
        with pytest.raises(ConfigurationError, match="encrypted id"):
            BulkMessage(key="x", stream_id=532, payload=SmsMessage(number="1", message="m"))
    assert report.counts == {"sent": 30}
    assert sorted(s["message"] for s in fake.sms_sent) == sorted(f"m{i}" for i in range(30))


def test_a_journal_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    with Journal(path):
        code = (
            "import sys\n"
            "from commbox_async.bulk import Journal\n"
            "try:\n"
            f"    Journal({str(path)!r})\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
    assert out.stdout.startswith("ConfigurationError journal "), out
    assert "in use by another run" in out.stdout
    with Journal(path) as book:  # free again once the first one closed
        assert book.counts() == {}


class CountingJournal(Journal):
    def __init__(self) -> None:
        super().__init__()
        self.commits: list[tuple[int, int]] = []

    def write(self, *, sending: Any = (), settled: Any = (), run: int = 0) -> None:
        self.commits.append((len(sending), len(settled)))
        super().write(sending=sending, settled=settled, run=run)


async def test_journal_writes_of_concurrent_workers_share_commits() -> None:
    fake = FakeCommBox()
    book = CountingJournal()
    async with fake.client() as cb:
        report = await cb.bulk.send(messages(400), journal=book, concurrency=16)
    assert report.counts == Counter({"sent": 400})
    assert sum(s for s, _ in book.commits) == 400  # every key marked sending once
    assert sum(o for _, o in book.commits) == 400  # and settled once
    assert len(book.commits) < 400  # far fewer commits than the 800 writes
    assert book.counts() == {"sent": 400}
    book.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_deadline_that_runs_out_mid_commit_loses_no_row_and_strands_no_writer() -> None:
    """asyncio's own cancellation (``asyncio.timeout``; a call's deadline on asyncio is the same)
    passes anyio's shields. Once it struck the first writer of a commit as it yielded for the
    others, the commit never happened and every later writer waited for it for ever: a bulk
    run with a short deadline and a throttle hung (found by the model-based fault test)."""
    import asyncio

    from commbox_async.bulk._commit import GroupCommit
    from commbox_async.bulk.journal import Sending

    book = Journal()
    commits = GroupCommit(book, book.begin_run())

    async def cut_short() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):  # runs out at the commit's yield
                await commits.write(sending=[Sending("first")])

    tasks = [
        asyncio.create_task(cut_short()),
        asyncio.create_task(commits.write(sending=[Sending("second")])),
    ]
    done, stuck = await asyncio.wait(tasks, timeout=5)
    for task in stuck:
        task.cancel()
    assert not stuck, "a writer waits for a commit that never comes"
    for task in done:
        task.result()
    await commits.write(sending=[Sending("third")])  # and the next turn commits as ever
    assert book.counts() == {"sending": 3}
    book.close()


async def test_writers_sharing_an_interrupted_commit_are_told_it_was_interrupted() -> None:
    """The commit of a turn's rows was cut off mid-write: its committer sees what cut it off;
    every other writer of that turn, whose rows are not known to be on disk, a JournalError."""
    from commbox_async.bulk._commit import GroupCommit
    from commbox_async.bulk.journal import Sending

    class Interrupted(BaseException):
        pass

    class Dying(Journal):
        def write(self, *, sending: Any = (), settled: Any = (), run: int = 0) -> None:
            raise Interrupted

    book = Dying()
    commits = GroupCommit(book, book.begin_run())
    raised: list[BaseException] = []

    async def writer(key: str) -> None:
        try:
            await commits.write(sending=[Sending(key)])
        except (Interrupted, JournalError) as exc:
            raised.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer, "a")
        tg.start_soon(writer, "b")
    book.close()
    (error,) = [e for e in raised if isinstance(e, JournalError)]
    assert str(error) == "the bulk journal write was interrupted"
    assert sorted(type(e).__name__ for e in raised) == ["Interrupted", "JournalError"]


async def test_a_failed_commit_is_not_hidden_by_the_cancellation_that_started_it() -> None:
    """The first writer of a turn, cancelled as it yields, commits the turn on its way out; when
    that commit fails, the JournalError goes up, not the cancellation alone: otherwise a run
    cancelled at that moment took rows for written that are not (an outsider's attack found a
    sent key left pending, and sent again on resume)."""
    from commbox_async.bulk._commit import GroupCommit
    from commbox_async.bulk.journal import Sending

    class Full(Journal):
        def write(self, *, sending: Any = (), settled: Any = (), run: int = 0) -> None:
            raise JournalError("the bulk journal j could not be written: disk full")

    book = Full()
    commits = GroupCommit(book, book.begin_run())
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(JournalError, match="disk full") as caught:
            await commits.write(sending=[Sending("a")])
    assert isinstance(caught.value.__cause__, anyio.get_cancelled_exc_class())
    book.close()


async def test_a_key_repeated_after_the_run_settled_it_is_a_duplicate_not_an_earlier_send() -> None:
    """Duplicates are found through the run number the journal holds for a key, once the key
    is no longer queued or in flight: the repeat is the run's own, not an earlier run's."""
    settled = anyio.Event()

    async def source() -> Any:
        yield sms(0)
        await settled.wait()
        yield sms(0)

    def on_outcome(outcome: Outcome) -> None:
        settled.set()

    fake = FakeCommBox()
    async with fake.client() as cb:
        report = await cb.bulk.send(source(), on_outcome=on_outcome)
    assert [(o.outcome, o.earlier, o.error) for o in report.outcomes] == [
        ("sent", False, None),
        ("failed", False, "duplicate key in the input"),
    ]
    assert len(fake.objects) == 1


@pytest.mark.parametrize("typed", [False, True], ids=["untyped", "a JournalError"])
async def test_a_failing_journal_write_stops_the_send_and_is_not_swallowed(typed: bool) -> None:
    """A backend's failure, typed (Journal raises JournalError) or not, ends the run with it."""
    full = JournalError("the bulk journal j could not be written: database or disk is full")

    class FullDisk(Journal):
        writes = 0

        def write(self, *, sending: Any = (), settled: Any = (), run: int = 0) -> None:
            FullDisk.writes += 1
            if FullDisk.writes == 5:
                raise full if typed else sqlite3.OperationalError("database or disk is full")
            super().write(sending=sending, settled=settled, run=run)

    fake = FakeCommBox()
    book = FullDisk()
    async with fake.client() as cb:
        with pytest.raises(JournalError, match="disk is full") as caught:
            await cb.bulk.send(messages(100), journal=book, concurrency=4)
    if typed:
        assert caught.value is full
    else:
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    rows = {r["key"]: r["outcome"] for r in book.rows()}
    in_fake = {o["message"] for o in fake.all_objects()}
    # Nothing went out without its "sending" mark on disk first.
    assert in_fake <= set(rows)
    assert all(rows[k] in ("sent", "sending", "uncertain") for k in in_fake)
    book.close()


async def test_an_error_in_on_outcome_surfaces_as_itself() -> None:
    def boom(outcome: Any) -> None:
        raise ValueError(f"cannot store {outcome.key}")

    fake = FakeCommBox()
    async with fake.client() as cb:
        with pytest.raises(ValueError, match="cannot store key-"):
            await cb.bulk.send(messages(50), on_outcome=boom, concurrency=1)


def test_a_journal_entry_says_when_its_key_was_last_marked_sending(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as book:
        book.settle(Outcome(key="never", outcome="failed", error="bad", failure="rejected"))
        before = time.time()
        book.sending("a", run=1)
        after = time.time()
        book.settle(Outcome(key="a", outcome="sent", id=1), run=1)
        entry, never = book.get("a"), book.get("never")
    assert entry is not None and entry.started is not None
    assert before <= entry.started <= after  # kept once the key is settled
    assert never is not None and never.started is None


@pytest.mark.parametrize("before", ["new", "settled"])
def test_a_key_marked_sending_is_recovered_as_uncertain_once_its_process_died(
    before: str, tmp_path: Path
) -> None:
    """New, or sent again after an earlier attempt settled: either way the row says "sending"
    while the request may be out, and the next run's recover() makes it uncertain."""
    path = tmp_path / "j.sqlite"
    with Journal(path) as book:
        if before == "settled":
            book.settle(Outcome(key="a", outcome="failed", error="503", failure="not_sent"), run=1)
        book.sending("a", run=2)
        entry = book.get("a")
        assert entry is not None and (entry.state, entry.run) == ("sending", 2)
    with Journal(path) as book:  # the process died; the next run opens the journal
        assert book.recover() == 1
        entry = book.get("a")
        assert book.counts() == {"uncertain": 1}
    assert entry is not None and (entry.state, entry.processed) == ("uncertain", Processed.MAYBE)
    assert entry.error == "the sending process stopped mid-request"


def test_the_journal_keeps_each_outcomes_recipient_result_and_candidates(tmp_path: Path) -> None:
    """What rows() reads back: a WhatsApp recipient's result as CommBox sent it, and the ids
    an uncertain key's send could each be; nothing for the others."""
    result = {"recipient": "972500000001", "status": 200, "object_id": 77, "id": "wamid.1"}
    with Journal(tmp_path / "j.sqlite") as book:
        book.settle(
            Outcome(key="wa", outcome="sent", id=77, processed=Processed.YES, data=result),
            Outcome(key="two", outcome="uncertain", processed=Processed.MAYBE, candidates=(5, 9)),
            Outcome(key="plain", outcome="sent", id=3, processed=Processed.YES),
        )
        rows = {row["key"]: (row["data"], row["candidates"]) for row in book.rows()}
    assert rows == {"wa": (result, []), "two": (None, [5, 9]), "plain": (None, [])}


def test_sending_and_settling_record_the_run_they_belong_to(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as book:
        book.sending("a")  # no run: 0, as a journal of an earlier version has
        book.sending("b", "c", run=3)
        got = {key: book.get(key) for key in "abc"}
        assert {k: (e.state, e.run) for k, e in got.items() if e} == {
            "a": ("sending", 0),
            "b": ("sending", 3),
            "c": ("sending", 3),
        }
        book.settle(Outcome(key="a", outcome="sent", id=1))
        book.settle(Outcome(key="b", outcome="failed", error="no"), run=4)
        got = {key: book.get(key) for key in "abc"}
        assert {k: (e.state, e.run) for k, e in got.items() if e} == {
            "a": ("sent", 0),
            "b": ("failed", 4),
            "c": ("sending", 3),
        }
        assert book.counts() == {"sent": 1, "failed": 1, "sending": 1}
