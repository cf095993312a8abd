"""Bulk outcomes that mean what they say: sent, failed (rejected / not_sent), uncertain, pending;
runs that stop for the right reasons; cancellation that strands nothing."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import commbox_async.bulk._send as send_module
from commbox_async import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BulkStoppedError,
    CommBoxError,
    ConfigurationError,
    InvalidResponseError,
    JournalError,
    NewObject,
    Processed,
)
from commbox_async._verdict import Exposure
from commbox_async.bulk import BulkMessage, Journal, Outcome, Rejected, SmsMessage
from commbox_async.bulk._whatsapp import _outcome, match_results
from commbox_async.models import RecipientResult, TemplateComponent, TemplateMessage
from commbox_async.testing import FakeCommBox

from .conftest import envelope, make_client, socket_client
from .rawserver import raw_server, respond

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio

STREAM = 532
ENC = "hNyRN_fLUy7rrOrN9jLpipA=="
YES = Processed.YES
MAYBE = Processed.MAYBE


def sms(key: str, text: str | None = None) -> BulkMessage:
    payload = NewObject.sms(user_stream_provider_id="972500000000", message=text or key)
    return BulkMessage(key=key, stream_id=STREAM, payload=payload)


def messages(n: int) -> Iterator[BulkMessage]:
    for i in range(n):
        yield sms(f"key-{i:04d}")


def by_key(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {o.key: o for o in outcomes}


# -- the verdict reaches the outcome -----------------------------------------------------------


async def test_a_processed_send_answered_after_the_deadline_is_uncertain_and_never_resent(
    transport: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    late = ("late", 0.5, respond(200, {"objectId": 1}))
    async with raw_server(lambda m, p, b: late) as server:
        async with socket_client(server.url, transport, deadline=0.2, timeout=10) as cb:
            first = await cb.bulk.send([sms("k")], journal=journal)
            second = await cb.bulk.send([sms("k")], journal=journal)
    assert first.outcomes[0].outcome == "uncertain"
    assert first.outcomes[0].processed is Processed.MAYBE
    assert (second.outcomes[0].outcome, second.outcomes[0].earlier) == ("uncertain", True)
    assert len(server.received) == 1  # sent once, across both runs


@pytest.mark.parametrize("kind", ["conversation", "sms"])
async def test_a_sent_message_is_processed_and_carries_the_id_commbox_gave(kind: str) -> None:
    """CommBox answered 2xx: the message was taken (processed YES), with the new
    conversation's id; /sms/sendsms answers without one."""
    fake = FakeCommBox()
    message = (
        sms("k")
        if kind == "conversation"
        else BulkMessage(key="k", stream_id=ENC, payload=SmsMessage(number=A, message="hi"))
    )
    async with fake.client() as cb:
        report = await cb.bulk.send([message])
    new_id = next(iter(fake.objects)) if kind == "conversation" else None
    assert report.outcomes == [Outcome(key="k", outcome="sent", id=new_id, processed=YES)]
    if kind == "sms":  # to the message's stream
        assert fake.sms_sent == [{"stream": ENC, "number": A, "message": "hi"}]


@pytest.mark.parametrize(
    "results",
    [
        "a bare string",
        [{"recipient": "972500000000", "status": "sent!"}, {"recipient": "972500000001"}],
    ],
)
async def test_whatsapp_results_that_do_not_decode_are_uncertain_not_failed(
    results: Any, tmp_path: Path
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=envelope(results))

    def template(to: str) -> TemplateMessage:
        return TemplateMessage.create(
            to=to, name="promo", language="en", components=[TemplateComponent.body("hi")]
        )

    batch = [
        BulkMessage(key=f"wa-{i}", stream_id=ENC, payload=template(f"97250000000{i}"))
        for i in range(2)
    ]
    journal = tmp_path / "wa.sqlite"
    async with make_client(handler) as cb:
        report = await cb.bulk.send(batch, journal=journal)
        again = await cb.bulk.send(batch, journal=journal)
    assert report.counts == {"uncertain": 2}
    assert all(o.processed is Processed.YES for o in report.outcomes)  # CommBox answered 2xx
    assert again.counts == {"uncertain": 2} and again.earlier == 2
    assert calls == 1


async def test_readable_whatsapp_results_are_kept_beside_unreadable_ones() -> None:
    results = [
        {"recipient": "972500000000", "status": 200, "object_id": 77, "id": "wamid.1"},
        {"recipient": "972500000001", "status": "not a number"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(results))

    batch = [
        BulkMessage(
            key=f"wa-{i}",
            stream_id=ENC,
            payload=TemplateMessage.create(to=f"97250000000{i}", name="t", language="en"),
        )
        for i in range(2)
    ]
    async with make_client(handler) as cb:
        report = await cb.bulk.send(batch)
    outcomes = by_key(report.outcomes)
    assert (outcomes["wa-0"].outcome, outcomes["wa-0"].id) == ("sent", 77)
    assert outcomes["wa-1"].outcome == "uncertain"


async def test_one_bad_response_is_that_messages_outcome_and_the_run_goes_on() -> None:
    """A body nested far too deep, an id of 5,000 digits, a Retry-After no calendar holds: each
    is the outcome of its message, never the end of the run."""
    bad = {
        "key-0003": b'{"status": "200", "data": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        "key-0005": b'{"status": "200", "data": {"objectId": ' + b"9" * 5000 + b"}}",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["data"]["Message"]
        if text in bad:
            return httpx.Response(200, content=bad[text])
        if text == "key-0007":
            headers = {"Retry-After": "Fri, 31 Dec 99999 23:59:59 GMT"}
            return httpx.Response(503, json=envelope(status=503), headers=headers)
        return httpx.Response(200, json=envelope({"objectId": int(text[-4:]) + 1}))

    async with make_client(handler, max_retries=1) as cb:
        report = await cb.bulk.send(messages(10), concurrency=2)
    outcomes = by_key(report.outcomes)
    assert len(outcomes) == 10
    assert outcomes["key-0003"].outcome == "uncertain"  # answered 2xx: taken, unreadable
    assert outcomes["key-0005"].outcome == "uncertain"
    assert (outcomes["key-0007"].outcome, outcomes["key-0007"].failure) == ("failed", "not_sent")
    assert sum(o.outcome == "sent" for o in outcomes.values()) == 7


#: Ids in a 2xx answer that no CommBox object has (its ids are positive int64s).
NOT_IDS = [
    "9" * 4000,  # parses (under the int-digits limit), fits no column
    str(2**63),  # one past int64
    str(2**64),
    "-7",
    "0",
    '"18446744073709551616"',  # a string of digits past int64
    '"' + "9" * 5000 + '"',  # a string int() refuses to read
]


@pytest.mark.parametrize("bad_id", NOT_IDS, ids=lambda v: v[:12])
async def test_an_id_that_is_no_int64_is_an_unreadable_answer_and_the_run_goes_on(
    bad_id: str, tmp_path: Path
) -> None:
    """CommBox answered 2xx, so it took the message; an id no object can have is an answer
    that cannot be read: the message is uncertain (processed), never sent with that id. A
    2**64 reached the journal and stopped the whole run with JournalError (SQLite has no
    column for it); -7 and 0 were recorded as ids (found by the model-based fault test)."""
    journal = tmp_path / "j.sqlite"

    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["data"]["Message"]
        if text == "key-0001":
            return httpx.Response(
                200, content=b'{"status":"200","data":{"objectId":%s}}' % bad_id.encode()
            )
        return httpx.Response(200, json=envelope({"objectId": int(text[-4:]) + 1}))

    async with make_client(handler) as cb:
        report = await cb.bulk.send(messages(4), journal=journal, concurrency=2)
        with pytest.raises(InvalidResponseError, match="not a CommBox id") as info:
            await cb.objects.create(STREAM, sms("key-0001").payload)  # type: ignore[arg-type]
    assert info.value.processed is Processed.YES
    outcomes = by_key(report.outcomes)
    assert outcomes["key-0001"].outcome == "uncertain"
    assert (outcomes["key-0001"].processed, outcomes["key-0001"].id) == (Processed.YES, None)
    assert report.counts == {"sent": 3, "uncertain": 1}
    with Journal(journal) as book:
        assert book.counts() == {"sent": 3, "uncertain": 1}


@pytest.mark.parametrize("bad_id", NOT_IDS, ids=lambda v: v[:12])
async def test_a_whatsapp_result_whose_object_id_is_no_int64_is_sent_without_it(
    bad_id: str, tmp_path: Path
) -> None:
    """A recipient's result says 200 (sent) but carries an object_id no conversation can
    have: the template was sent, its conversation's id is unknown."""
    body = (
        b'{"status":"200","data":[{"recipient":"972500000000","status":200,"id":"wamid.1",'
        b'"object_id":%s},{"recipient":"972500000001","status":200,"object_id":78}]}'
        % bad_id.encode()
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    batch = [
        BulkMessage(
            key=f"wa-{i}",
            stream_id=ENC,
            payload=TemplateMessage.create(to=f"97250000000{i}", name="t", language="en"),
        )
        for i in range(2)
    ]
    journal = tmp_path / "wa.sqlite"
    async with make_client(handler) as cb:
        report = await cb.bulk.send(batch, journal=journal)
    outcomes = by_key(report.outcomes)
    if len(bad_id) > 4300:  # the model's converter cannot read it: the result is unreadable
        assert (outcomes["wa-0"].outcome, outcomes["wa-0"].processed) == ("uncertain", YES)
    else:
        assert (outcomes["wa-0"].outcome, outcomes["wa-0"].id) == ("sent", None)
    assert (outcomes["wa-1"].outcome, outcomes["wa-1"].id) == ("sent", 78)
    with Journal(journal) as book:
        assert sum(book.counts().values()) == 2


async def test_a_library_bug_on_one_message_does_not_sink_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import commbox_async.bulk._send as send_module

    real = send_module._send

    async def flaky(client: Any, batch: list[BulkMessage]) -> list[Outcome]:
        if batch[0].key == "key-0002":
            raise RecursionError("maximum recursion depth exceeded")
        return await real(client, batch)

    monkeypatch.setattr(send_module, "_send", flaky)
    fake = FakeCommBox()
    async with fake.client() as cb:
        report = await cb.bulk.send(messages(6), concurrency=2)
    outcomes = by_key(report.outcomes)
    assert outcomes["key-0002"].outcome == "failed"  # nothing had been sent
    assert "RecursionError" in (outcomes["key-0002"].error or "")
    assert report.counts["sent"] == 5 == len(fake.objects)


# -- failures: rejected, or not sent ---------------------------------------------------------


async def test_rejected_and_not_sent_failures_are_resent_for_their_own_reasons(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    answers: dict[str, int] = {"bad": 400, "busy": 503}

    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["data"]["Message"]
        status = answers.get(text, 200)
        if status != 200:
            return httpx.Response(status, json=envelope(status=status))
        return httpx.Response(200, json=envelope({"objectId": len(text)}))

    async with make_client(handler, max_retries=1) as cb:
        first = by_key((await cb.bulk.send([sms("bad"), sms("busy")], journal=journal)).outcomes)
        assert (first["bad"].failure, first["busy"].failure) == ("rejected", "not_sent")
        answers.clear()  # CommBox would now take both
        second = by_key((await cb.bulk.send([sms("bad"), sms("busy")], journal=journal)).outcomes)
        # The 503 was a condition of the run: sent again. The 400 was this message: it stays.
        assert (second["busy"].outcome, second["busy"].earlier) == ("sent", False)
        assert (second["bad"].outcome, second["bad"].earlier) == ("failed", True)
        # The record fixed (its message changed): sent again.
        fixed = by_key((await cb.bulk.send([sms("bad", "bad, fixed")], journal=journal)).outcomes)
        assert (fixed["bad"].outcome, fixed["bad"].earlier) == ("sent", False)


def _lost_once(received: list[str], then: str) -> Any:
    """A handler that loses the answer to key "k"'s first request (it may have been taken),
    then answers it with ``then``; every other message is taken."""

    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["data"]["Message"]
        received.append(text)
        if text == "k" and received.count("k") == 1:
            raise httpx.ReadError("the answer was lost", request=request)
        if text == "k" and then == "connect_error":
            raise httpx.ConnectError("refused", request=request)
        if text == "k" and then != "ok":
            return httpx.Response(int(then), json=envelope(status=int(then)))
        return httpx.Response(200, json=envelope({"objectId": len(received)}))

    return handler


@pytest.mark.parametrize("then", ["400", "503", "connect_error"])
async def test_an_uncertain_message_sent_again_that_fails_certainly_stays_uncertain(
    then: str, tmp_path: Path
) -> None:
    """``resend_uncertain=True`` sends an uncertain message again; if that attempt certainly
    failed (a 400, a 503, a refused connection), CommBox may still have taken the first one:
    the key stays uncertain. It was recorded failed, and a later run sent it a third time
    (found by the model-based fault test)."""
    journal = tmp_path / "j.sqlite"
    received: list[str] = []
    async with make_client(_lost_once(received, then), max_retries=0) as cb:
        first = await cb.bulk.send([sms("k")], journal=journal)
        again = await cb.bulk.send([sms("k")], journal=journal, resend_uncertain=True)
        later = await cb.bulk.send([sms("k")], journal=journal, retry_failed=True)
    assert first.outcomes[0].outcome == "uncertain"
    outcome = again.outcomes[0]
    assert (outcome.outcome, outcome.earlier) == ("uncertain", False)
    assert outcome.processed is Processed.MAYBE  # what the first attempt left it at
    assert "sent again" in (outcome.error or "")
    assert (later.outcomes[0].outcome, later.outcomes[0].earlier) == ("uncertain", True)
    assert received.count("k") == 2


async def test_an_uncertain_message_sent_again_that_never_left_stays_uncertain(
    tmp_path: Path,
) -> None:
    """Cancelled while the resend waits in the throttle: it never left the machine, but the
    first attempt may have been taken, so the key stays uncertain (it was recorded pending,
    which the next run sends by itself)."""
    journal = tmp_path / "j.sqlite"
    received: list[str] = []
    handler = _lost_once(received, "ok")
    async with make_client(handler, max_retries=0) as cb:
        await cb.bulk.send([sms("k")], journal=journal)
    seen: list[Outcome] = []
    async with make_client(handler, rate_limit=1, burst=1) as cb:
        with anyio.move_on_after(0.3):
            await cb.bulk.send(
                [sms("first"), sms("k")],
                journal=journal,
                resend_uncertain=True,
                concurrency=2,
                on_outcome=seen.append,
            )
    assert by_key(seen)["k"].outcome == "uncertain"
    assert by_key(seen)["first"].outcome == "sent"
    async with make_client(handler) as cb:
        later = await cb.bulk.send([sms("k")], journal=journal)
    assert (later.outcomes[0].outcome, later.outcomes[0].earlier) == ("uncertain", True)
    assert received.count("k") == 1


def _answering(attempts: list[str], received: list[str]) -> Any:
    """A handler that answers key "k"'s requests in turn: ``lost`` (the answer never came: it
    may have been taken), ``unreadable`` (2xx with an id no object has: taken), or a status."""

    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["data"]["Message"]
        received.append(text)
        answer = attempts[received.count(text) - 1]
        if answer == "lost":
            raise httpx.ReadError("the answer was lost", request=request)
        if answer == "unreadable":
            return httpx.Response(200, json=envelope({"objectId": "not-a-number"}))
        return httpx.Response(int(answer), json=envelope(status=int(answer)))

    return handler


def _uncertain_from_an_earlier_version(path: Path) -> None:
    """A journal written before the ``processed`` column: its uncertain key reads as NO."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE messages (key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER,"
        " error TEXT, retryable INTEGER NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)"
    )
    db.execute("INSERT INTO messages VALUES ('k', 'uncertain', NULL, 'lost', 0, 1, 0)")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("first", "then", "verdict"),
    [
        ("unreadable", "400", Processed.YES),  # taken then, refused now: taken
        ("lost", "unreadable", Processed.YES),  # maybe taken then, taken now
        ("unreadable", "lost", Processed.YES),  # taken then, maybe taken now
        ("earlier version", "400", Processed.MAYBE),  # never less than "may have been taken"
    ],
    ids=["unreadable-then-400", "lost-then-unreadable", "unreadable-then-lost", "no-verdict"],
)
async def test_an_uncertain_message_sent_again_is_as_processed_as_its_most_processed_attempt(
    first: str, then: str, verdict: Processed, tmp_path: Path
) -> None:
    """The verdict of a key sent again while uncertain is the worst of every attempt: a 2xx
    that could not be read, then or now, means CommBox took it (YES), whatever the other
    attempt did; and an uncertain key is at least MAYBE, even one a journal of an earlier
    version recorded without a verdict."""
    journal = tmp_path / "j.sqlite"
    received: list[str] = []
    handler = _answering([then] if first == "earlier version" else [first, then], received)
    async with make_client(handler, max_retries=0) as cb:
        if first == "earlier version":
            _uncertain_from_an_earlier_version(journal)
        else:
            before = await cb.bulk.send([sms("k")], journal=journal)
            assert before.outcomes[0].outcome == "uncertain"
        again = await cb.bulk.send([sms("k")], journal=journal, resend_uncertain=True)
    (outcome,) = again.outcomes
    assert (outcome.outcome, outcome.earlier, outcome.processed) == ("uncertain", False, verdict)
    with Journal(journal) as book:
        entry = book.get("k")
    assert entry is not None and (entry.state, entry.processed) == ("uncertain", verdict)


async def test_a_message_refused_before_its_request_is_sent_once_it_is_fixed(
    tmp_path: Path,
) -> None:
    """Refused by a check before any request (no text), the key was journalled without the
    message's fingerprint, so the fixed message looked unchanged and was skipped with its
    stale error (found by the model-based fault test)."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    broken = BulkMessage(key="k", stream_id=STREAM, payload=NewObject(message=" "))
    async with fake.client() as cb:
        first = await cb.bulk.send([broken], journal=journal)
        fixed = await cb.bulk.send([sms("k", "now with a text")], journal=journal)
    assert (first.outcomes[0].outcome, first.outcomes[0].failure) == ("failed", "rejected")
    assert (fixed.outcomes[0].outcome, fixed.outcomes[0].earlier) == ("sent", False)
    assert len(fake.objects) == 1


async def test_retry_failed_sends_rejected_messages_again(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    status = 400

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=envelope({"objectId": 1}, status=status))

    async with make_client(handler) as cb:
        await cb.bulk.send([sms("k")], journal=journal)
        status = 200
        plain = await cb.bulk.send([sms("k")], journal=journal)
        forced = await cb.bulk.send([sms("k")], journal=journal, retry_failed=True)
    assert (plain.outcomes[0].outcome, plain.outcomes[0].earlier) == ("failed", True)
    assert (forced.outcomes[0].outcome, forced.outcomes[0].earlier) == ("sent", False)


async def test_a_changed_message_for_a_sent_key_is_reported_not_sent(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send([sms("k", "hello"), sms("j")], journal=journal)
        again = await cb.bulk.send([sms("k", "hello, edited"), sms("j")], journal=journal)
    outcome = by_key(again.outcomes)["k"]
    assert (outcome.outcome, outcome.earlier, outcome.changed) == ("sent", True, True)
    assert outcome.error == "the message differs from the one sent then; not sent again"
    assert (again.changed, again.earlier) == (1, 2)  # the unchanged key after it counts 0
    assert len(fake.objects) == 2


async def test_a_malformed_record_now_does_not_hide_an_earlier_send(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send([sms("k")], journal=journal)
        again = await cb.bulk.send([Rejected(key="k", error="in.csv:2: bad")], journal=journal)
    assert (again.outcomes[0].outcome, again.outcomes[0].earlier) == ("sent", True)
    assert again.outcomes[0].changed


# -- runs that stop for the right reasons ---------------------------------------------------


async def test_a_401_stops_the_run_at_once_and_a_fixed_token_sends_the_rest(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox(token="right")
    async with fake.client(token="wrong") as cb:
        with pytest.raises(BulkStoppedError) as info:
            await cb.bulk.send(messages(200), journal=journal, concurrency=4)
    assert "AuthenticationError" in str(info.value)
    assert isinstance(info.value.cause, Exception)
    report = info.value.report
    assert report.counts["sent"] == 0 and report.counts["failed"] == 0
    assert len(fake.requests) <= 8  # stopped at once: not a request per message
    with Journal(journal) as book:
        assert set(book.counts()) == {"pending"}
    async with fake.client(token="right") as cb:
        rerun = await cb.bulk.send(messages(200), journal=journal, concurrency=4)
    assert rerun.counts == {"sent": 200}
    assert len(fake.objects) == 200


async def test_a_closed_client_stops_the_run() -> None:
    fake = FakeCommBox()
    cb = fake.client()
    async with cb:
        pass
    with pytest.raises(BulkStoppedError, match="closed"):
        await cb.bulk.send(messages(3))


# -- cancellation strands nothing -------------------------------------------------------------


async def test_stop_leaves_what_waits_in_the_throttle_pending(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    stop = anyio.Event()
    seen: list[Outcome] = []
    async with fake.client(rate_limit=20, burst=1) as cb:
        async with anyio.create_task_group() as tg:

            async def later() -> None:
                await anyio.sleep(0.3)
                stop.set()

            tg.start_soon(later)
            report = await cb.bulk.send(
                messages(100), journal=journal, concurrency=8, stop=stop, on_outcome=seen.append
            )
    counts = Counter(o.outcome for o in seen)
    assert set(counts) == {"sent", "pending"}
    assert counts["sent"] == len(fake.objects)
    assert report.stopped_early
    # Cut off in the throttle, or still queued for a worker when the stop came.
    reasons = {o.error for o in seen if o.outcome == "pending"}
    assert reasons == {"interrupted before it was sent", "the run stopped first"}
    with Journal(journal) as book:
        assert book.counts() == counts  # every key taken is on record, none "sending"
    async with fake.client() as cb:
        rerun = await cb.bulk.send(messages(100), journal=journal)
    assert rerun.counts == {"sent": 100}
    assert Counter(o["message"] for o in fake.all_objects()) == Counter(
        f"key-{i:04d}" for i in range(100)
    )


async def test_cancelling_the_send_marks_only_what_may_have_been_sent_uncertain(
    transport: str, tmp_path: Path
) -> None:
    """A second Ctrl-C: the requests on the wire are uncertain, the ones waiting for the
    throttle or a connection pending; every key taken from the input is reported."""
    journal = tmp_path / "j.sqlite"
    seen: list[Outcome] = []
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, rate_limit=10, burst=3, timeout=10) as cb:
            with anyio.move_on_after(0.5):
                await cb.bulk.send(
                    messages(50), journal=journal, concurrency=8, on_outcome=seen.append
                )
    counts = Counter(o.outcome for o in seen)
    on_the_wire = len(server.received)
    assert counts["uncertain"] == on_the_wire > 0
    assert counts["pending"] > 0
    # Queued, or waiting for the throttle: never sent. On the wire: cut off mid-request.
    assert {o.error for o in seen if o.outcome == "pending"} == {"interrupted before it was sent"}
    assert {(o.error, o.processed) for o in seen if o.outcome == "uncertain"} == {
        ("interrupted mid-request", MAYBE)
    }
    assert sum(counts.values()) == len({o.key for o in seen})  # each key once
    with Journal(journal) as book:
        journal_counts = book.counts()
    assert journal_counts.get("uncertain") == on_the_wire
    assert "sending" not in journal_counts


async def test_stop_reports_every_message_taken_from_the_input() -> None:
    """The sender took one more message from the input after the stop, then dropped it
    unreported (a generator marking what it hands out saw a key no outcome accounts for)."""
    taken: list[str] = []

    def source() -> Iterator[BulkMessage]:
        for message in messages(50):
            taken.append(message.key)
            yield message

    stop = anyio.Event()
    seen: list[Outcome] = []

    def on_outcome(outcome: Outcome) -> None:
        seen.append(outcome)
        if len(seen) == 5:
            stop.set()

    fake = FakeCommBox()
    async with fake.client() as cb:
        await cb.bulk.send(source(), concurrency=1, stop=stop, on_outcome=on_outcome)
    assert len(taken) < 50  # it stopped taking
    assert sorted(o.key for o in seen) == sorted(taken)


async def test_stop_lets_the_requests_on_the_wire_finish(transport: str) -> None:
    slow = ("late", 0.4, respond(200, {"objectId": 1}))
    stop = anyio.Event()
    async with raw_server(lambda m, p, b: slow) as server:
        async with socket_client(server.url, transport, timeout=10) as cb:
            async with anyio.create_task_group() as tg:

                async def later() -> None:
                    await anyio.sleep(0.2)  # four requests are on the wire by now
                    stop.set()

                tg.start_soon(later)
                report = await cb.bulk.send(messages(20), concurrency=4, stop=stop)
    assert report.counts["sent"] == len(server.received) == 4
    assert report.counts["uncertain"] == 0
    # What was queued is pending; what was never read from the input is not reported.
    assert set(report.counts) == {"sent", "pending"} and report.counts["pending"] > 0


def test_a_payload_of_the_wrong_type_is_an_argument_error() -> None:
    from commbox_async import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="payload must be") as info:
        BulkMessage(key="k", stream_id=STREAM, payload={"Message": "hi"})  # type: ignore[arg-type]
    assert (info.value.param, info.value.got) == ("payload", "dict")


async def test_a_message_no_request_can_carry_is_rejected_and_the_run_goes_on() -> None:
    """A lone surrogate in one message (text no UTF-8 encoder can write): that message is
    rejected, the others are sent."""
    fake = FakeCommBox()
    batch = [sms("ok-1"), sms("bad", text="broken \ud800 text"), sms("ok-2")]
    async with fake.client() as cb:
        report = await cb.bulk.send(batch, concurrency=1)
    outcomes = by_key(report.outcomes)
    assert (outcomes["bad"].outcome, outcomes["bad"].failure) == ("failed", "rejected")
    reason = "message 'bad' cannot be sent as it is: UnicodeEncodeError: "
    assert (outcomes["bad"].error or "").startswith(reason)
    assert outcomes["ok-1"].outcome == outcomes["ok-2"].outcome == "sent"
    assert len(fake.objects) == 2


async def test_a_record_no_request_can_carry_never_hides_an_earlier_uncertain_send(
    tmp_path: Path,
) -> None:
    """The key's earlier send may have been taken; its record is now unsendable (a lone
    surrogate): it is reported as the earlier run left it, never recorded failed-rejected."""
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()
    async with fake.client(max_retries=0) as cb:
        fake.fail_next("lost_after")
        first = await cb.bulk.send([sms("a")], journal=journal)
        assert first.outcomes[0].outcome == "uncertain"
        again = await cb.bulk.send(
            [sms("a", text="broken \ud800 text")], journal=journal, resend_uncertain=True
        )
    (outcome,) = again.outcomes
    assert (outcome.outcome, outcome.earlier, outcome.changed) == ("uncertain", True, True)
    assert "cannot be sent" in (outcome.error or "")
    with Journal(journal) as book:
        entry = book.get("a")
    assert entry is not None and entry.state == "uncertain"
    assert len(fake.objects) == 1


# -- WhatsApp: each recipient's result decides its own message ---------------------------------


def wa(key: str, to: str) -> BulkMessage:
    return BulkMessage(
        key=key, stream_id=ENC, payload=TemplateMessage.create(to=to, name="t", language="en")
    )


def result(to: str | None, status: int | None = 200, **kw: Any) -> RecipientResult:
    return RecipientResult(recipient=to, status=status, **kw)


A, B, C = "972500000001", "972500000002", "972500000003"


def test_results_out_of_order_are_matched_by_recipient_not_position() -> None:
    batch = [wa("a", A), wa("b", B), wa("c", C)]
    ra, rb, rc = result(A, object_id=1), result(B, object_id=2), result(C, object_id=3)
    assert match_results(batch, [rc, ra, rb]) == [ra, rb, rc]
    # One result more than recipients (an unknown number): still by recipient.
    stray = result("972599999999", object_id=9)
    assert match_results(batch, [stray, rb, None, rc, ra]) == [ra, rb, rc]


def test_results_in_order_are_matched_by_position_even_without_recipient_numbers() -> None:
    batch = [wa("a", A), wa("b", B)]
    bare = [result(None, object_id=1), result(None, object_id=2)]
    assert match_results(batch, bare) == bare
    unreadable: list[RecipientResult | None] = [None, result(B, object_id=2)]
    assert match_results(batch, unreadable) == unreadable


def test_a_recipient_twice_in_the_batch_gets_no_result_it_cannot_be_sure_is_its_own() -> None:
    batch = [wa("a1", A), wa("a2", A), wa("b", B)]
    rb = result(B, object_id=2)
    # Two results for A, out of order: which A message each belongs to is not known.
    assert match_results(batch, [rb, result(A, object_id=1), result(A, object_id=3)]) == [
        None,
        None,
        rb,
    ]
    # No result for A at all.
    assert match_results(batch, [rb]) == [None, None, rb]


def test_a_recipient_sent_once_with_no_result_or_two_gets_none_and_the_rest_theirs() -> None:
    """A result missing for a number sent once was an IndexError that turned the whole batch
    uncertain (a recipient CommBox rejected among them, never resent); two results for one
    such number gave it the first. Each is that recipient's uncertainty alone."""
    batch = [wa("a", A), wa("b", B), wa("c", C)]
    rb, rc = result(B, object_id=2), result(C, status=400)
    assert match_results(batch, [rb, rc]) == [None, rb, rc]
    assert match_results(batch, []) == [None, None, None]
    twice = [result(A, object_id=1), result(A, object_id=7), rb, rc]
    assert match_results(batch, twice) == [None, rb, rc]


def test_no_readable_result_is_uncertain_and_processed() -> None:
    outcome = _outcome(wa("a", A), None)
    assert outcome == Outcome(
        key="a",
        outcome="uncertain",
        processed=Processed.YES,
        error="CommBox answered 2xx, but its answer has no readable result for this recipient",
    )


@pytest.mark.parametrize(
    ("status", "failure"),
    [(429, "not_sent"), (503, "not_sent"), (400, "rejected"), (None, "rejected")],
)
def test_a_failed_recipient_is_rejected_unless_its_status_says_not_now(
    status: int | None, failure: str
) -> None:
    reason = {"code": 131026, "title": "not a WhatsApp user"}
    outcome = _outcome(wa("a", A), result(A, status, failed=reason))
    wire = {"recipient": A, "failed": reason} | ({} if status is None else {"status": status})
    assert outcome == Outcome(
        key="a",
        outcome="failed",
        error=f"recipient {A}: status {status}: {reason}",
        failure=failure,  # type: ignore[arg-type]
        data=wire,
    )


def test_a_failure_beside_a_success_status_is_still_a_failure() -> None:
    outcome = _outcome(wa("a", A), result(A, 200, failed="invalid"))
    assert (outcome.outcome, outcome.failure) == ("failed", "rejected")


def test_a_sent_recipient_carries_its_conversation_id_and_result() -> None:
    outcome = _outcome(wa("a", A), result(A, 200, object_id=77, id="wamid.1"))
    assert outcome == Outcome(
        key="a",
        outcome="sent",
        id=77,
        processed=Processed.YES,
        data={"recipient": A, "status": 200, "object_id": 77, "id": "wamid.1"},
    )


@pytest.mark.parametrize("status", [None, 100, 302])
def test_a_result_with_neither_success_nor_failure_is_uncertain(status: int | None) -> None:
    outcome = _outcome(wa("a", A), result(A, status, object_id=5))
    data: dict[str, Any] = {"recipient": A, "object_id": 5}
    if status is not None:
        data["status"] = status
    assert outcome == Outcome(
        key="a",
        outcome="uncertain",
        processed=Processed.YES,
        error=f"recipient {A}: no success status and no failure in the result",
        data=data,
    )


async def test_a_single_result_not_in_a_list_is_that_recipients_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope({"recipient": A, "status": 200, "object_id": 8}))

    async with make_client(handler) as cb:
        report = await cb.bulk.send([wa("a", A)])
    assert [(o.outcome, o.id) for o in report.outcomes] == [("sent", 8)]


async def test_whatsapp_templates_waiting_for_their_batch_when_the_run_stops_are_pending() -> None:
    """Templates wait for 20 of their stream before they are sent; the run stopping while
    they wait leaves each of them pending, reported like every other message taken."""
    stop = anyio.Event()

    async def source() -> Any:
        yield wa("a", A)
        yield wa("b", B)
        stop.set()
        # Long enough for the run to see the stop: trio's scheduler may run a worker holding
        # the batch before the stop's watcher, which then cancels the request and reports it
        # "interrupted before it was sent" (pending too, but this test is about the other path).
        await anyio.sleep(0.05)
        yield wa("c", C)

    seen: list[Outcome] = []
    fake = FakeCommBox()
    async with fake.client() as cb:
        report = await cb.bulk.send(source(), stop=stop, on_outcome=seen.append)
    assert sorted((o.key, o.outcome, o.error) for o in seen) == [
        (key, "pending", "the run stopped first") for key in "abc"
    ]
    assert report.stopped_early and report.counts == {"pending": 3}
    assert fake.whatsapp_sent == []


async def test_whatsapp_results_are_decoded_under_the_clients_max_depth() -> None:
    """A ``failed`` string holding JSON deeper than max_depth is unreadable: uncertain."""
    deep = '{"a": ' * 10 + "1" + "}" * 10

    def handler(request: httpx.Request) -> httpx.Response:
        results = [
            {"recipient": A, "status": 400, "failed": deep},
            {"recipient": B, "status": 400, "failed": '{"code": 1}'},
        ]
        return httpx.Response(200, json=envelope(results))

    async with make_client(handler, max_depth=6) as cb:
        report = await cb.bulk.send([wa("a", A), wa("b", B)])
    outcomes = by_key(report.outcomes)
    assert outcomes["a"].outcome == "uncertain"
    assert (outcomes["b"].outcome, outcomes["b"].failure) == ("failed", "rejected")


# -- how one request's error becomes its outcome, and what a failed run raises ---------------


def status_error(status: int) -> APIStatusError:
    return APIStatusError(
        f"HTTP {status}",
        http_status=status,
        envelope_status=None,
        description=None,
        method="POST",
        path="/streams/532/objects",
    )


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (status_error(300), "not_sent"),  # a redirect: the request was not acted on
        (status_error(301), "not_sent"),
        (status_error(399), "not_sent"),
        (status_error(400), "rejected"),
        (status_error(408), "not_sent"),
        (status_error(429), "not_sent"),
        (status_error(503), "not_sent"),
        (status_error(500), "rejected"),
        (ConfigurationError("no stream"), "rejected"),
        (
            APIConnectionError("refused", method="POST", path="/x", processed=Processed.NO),
            "not_sent",
        ),
    ],
)
def test_each_error_is_a_failure_of_its_kind(error: CommBoxError, failure: str) -> None:
    assert send_module._failure(error) == failure


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            status_error(400),
            Outcome(
                key="k",
                outcome="failed",
                error="APIStatusError: HTTP 400: POST /streams/532/objects -> HTTP 400",
                failure="rejected",
            ),
        ),
        (
            APIConnectionError("the answer was lost", method="POST", path="/x", processed=MAYBE),
            Outcome(
                key="k",
                outcome="uncertain",
                error="APIConnectionError: the answer was lost (POST /x; may have been processed)",
                processed=MAYBE,
            ),
        ),
        (
            AuthenticationError(
                "HTTP 401",
                http_status=401,
                envelope_status=None,
                description=None,
                method="POST",
                path="/streams/532/objects",
            ),
            Outcome(
                key="k",
                outcome="pending",
                error="not sent: AuthenticationError: "
                "HTTP 401: POST /streams/532/objects -> HTTP 401",
            ),
        ),
    ],
    ids=["refused", "maybe taken", "stops the run"],
)
def test_a_requests_error_becomes_the_outcome_its_verdict_says_and_names_the_error(
    error: CommBoxError, expected: Outcome
) -> None:
    """Failed if CommBox certainly did not act on it, uncertain (with the verdict) if it may
    have, pending if the error stops the run; the error, by its type and text, is the reason."""
    assert send_module._after_error("k", error) == expected


@pytest.mark.parametrize("sent", [False, True])
def test_a_library_bug_is_failed_if_nothing_left_else_uncertain(sent: bool) -> None:
    exposure = Exposure()
    exposure.sent = sent
    outcome = send_module._after_bug("k", KeyError("boom"), exposure)
    error = "the library failed on this message: KeyError: 'boom'"
    if sent:
        expected = Outcome(key="k", outcome="uncertain", error=error, processed=Processed.MAYBE)
    else:
        expected = Outcome(key="k", outcome="failed", error=error, failure="not_sent")
    assert outcome == expected


@pytest.mark.parametrize(
    ("sent", "status", "expected"),
    [
        (False, None, Outcome(key="k", outcome="pending", error="interrupted before it was sent")),
        (
            True,
            None,
            Outcome(
                key="k",
                outcome="uncertain",
                error="interrupted mid-request",
                processed=Processed.MAYBE,
            ),
        ),
        (
            True,
            200,  # CommBox's 2xx status line had arrived: it took the message
            Outcome(
                key="k",
                outcome="uncertain",
                error="interrupted mid-request",
                processed=Processed.YES,
            ),
        ),
    ],
    ids=["nothing sent", "sent", "answered 2xx"],
)
def test_an_interrupted_request_is_pending_if_nothing_left_else_uncertain_with_its_verdict(
    sent: bool, status: int | None, expected: Outcome
) -> None:
    """What a cancelled request's message is, and the reason the user reads for it."""
    exposure = Exposure()
    exposure.sent, exposure.status = sent, status
    assert send_module._interrupted("k", exposure) == expected


def journal_error() -> JournalError:
    return JournalError("the journal j.sqlite cannot be written: disk full")


def test_a_failed_run_raises_its_journal_error_first() -> None:
    journal = journal_error()
    group = BaseExceptionGroup("run", [ValueError("from on_outcome"), journal])
    with pytest.raises(JournalError) as raised:
        send_module._raise_one(group)
    assert raised.value is journal and raised.value.__suppress_context__


def test_a_failed_run_raises_its_single_error_as_itself() -> None:
    error = ValueError("from on_outcome")
    group = BaseExceptionGroup("run", [anyio.BrokenResourceError(), error])
    with pytest.raises(ValueError) as raised:
        send_module._raise_one(BaseExceptionGroup("outer", [group]))
    assert raised.value is error and raised.value.__suppress_context__


def test_several_different_errors_or_none_are_left_in_their_group() -> None:
    two = BaseExceptionGroup("run", [ValueError("one"), KeyError("two")])
    assert send_module._raise_one(two) is None
    assert send_module._raise_one(BaseExceptionGroup("run", [anyio.BrokenResourceError()])) is None
    assert send_module._raise_one(ValueError("not a group")) is None


async def test_a_resumed_run_reports_each_earlier_outcome_as_that_run_left_it(
    tmp_path: Path,
) -> None:
    """A key an earlier run settled is reported with what that run recorded: the id of a
    sent one, the failure kind and error of a failed one, the verdict of an uncertain one."""
    journal = tmp_path / "j.sqlite"
    answers = {
        "sent": (200, {"objectId": 77}),
        "bad": (400, {"objectId": 0}),
        "odd": (200, {"objectId": "not-a-number"}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        status, data = answers[json.loads(request.content)["data"]["Message"]]
        return httpx.Response(status, json=envelope(data, status=status))

    keys = list(answers)
    async with make_client(handler) as cb:
        first = by_key((await cb.bulk.send([sms(k) for k in keys], journal=journal)).outcomes)
        again = by_key((await cb.bulk.send([sms(k) for k in keys], journal=journal)).outcomes)
    assert (first["sent"].outcome, first["bad"].outcome, first["odd"].outcome) == (
        "sent",
        "failed",
        "uncertain",
    )
    for key in keys:
        was, now = first[key], again[key]
        assert (now.earlier, now.changed) == (True, False)
        assert (now.outcome, now.id, now.failure, now.processed, now.error) == (
            was.outcome,
            was.id,
            was.failure,
            was.processed,
            was.error,
        ), key
    assert again["sent"].id == 77
    assert again["bad"].failure == "rejected" and "400" in (again["bad"].error or "")
    assert again["odd"].processed is YES
