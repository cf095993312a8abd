"""``cb.bulk.send``: the send loop."""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._aio import aiterate, call, put, take
from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    BulkStoppedError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    JournalError,
    PermissionDeniedError,
    TokenError,
)
from .._verdict import Exposure, Processed, tracking
from ..models import NewChild, NewObject, TemplateMessage
from ..resources.messaging import MAX_TEMPLATE_RECIPIENTS
from ._backend import JournalBackend, JournalEntry, Sending
from ._commit import GroupCommit
from ._lookup import lookup_for, stamped
from ._reconcile import DEFAULT_CLOCK_SKEW, DEFAULT_SETTLE_AFTER, ReconcileReport, reconcile
from ._rounds import PassKind, RoundsReport, send_reconciled
from ._types import BulkMessage, BulkReport, FailureKind, Outcome, Rejected, SmsMessage
from ._whatsapp import send_templates
from .journal import Journal

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._client import AsyncCommBox

__all__ = ["Bulk"]

Source = Iterable[BulkMessage | Rejected] | AsyncIterable[BulkMessage | Rejected]
OnOutcome = Callable[[Outcome], Awaitable[None] | None]

#: Errors that no later message of the run can escape: the run stops, and what was not sent
#: stays pending for the next one.
_RUN_STOPPERS = (AuthenticationError, PermissionDeniedError, TokenError, ClientStateError)
#: Statuses that refuse a request for now, not for good: the next run sends it again.
_NOT_NOW = frozenset({408, 425, 429, 503})


class Bulk:
    """``cb.bulk``: high-volume sends."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client

    async def send(
        self,
        messages: Source,
        *,
        journal: str | Path | JournalBackend | None = None,
        concurrency: int = 16,
        resend_uncertain: bool = False,
        retry_failed: bool = False,
        stamp: bool = False,
        on_outcome: OnOutcome | None = None,
        keep_outcomes: bool = True,
        stop: anyio.Event | None = None,
    ) -> BulkReport:
        """Send every message once, with at most ``concurrency`` requests in flight (on top of
        the client's throttle), and return a :class:`BulkReport`.

        ``journal`` (a path, or a :class:`JournalBackend`) makes the run resumable; without one
        a temporary journal is used and deleted afterwards. A key settled by an earlier run
        is reported with ``earlier=True`` and not sent again, except: ``failed`` with
        ``failure="not_sent"`` (always sent again), ``failed`` ``"rejected"`` (with
        ``retry_failed=True``, or when its message changed), ``uncertain`` (only with
        ``resend_uncertain=True``: it may have been taken) and ``pending``.

        ``stamp=True`` writes each message's key and a random id of the send into a field
        CommBox stores and returns (the conversation's or the message's ``Content`` JSON, a
        template's ``object_data.Content``, under ``commbox_async_key`` and
        ``commbox_async_send``), so :meth:`reconcile` finds a lost send by its id rather than
        by its text. It changes what CommBox stores, so it is off by default.

        ``on_outcome`` receives each outcome once it is in the journal. Setting ``stop``
        stops the run: no new message starts, those still waiting for the throttle or a
        connection are left ``pending``, requests already on the wire finish. Cancelling the
        call stops everything at once: a message whose request may have reached CommBox is
        ``uncertain``, every other one ``pending``.

        Raises :class:`~commbox_async.BulkStoppedError` when CommBox refused the token
        (401/403, after asking a token callable again) or the client became unusable: the
        run stopped at once, and the messages not sent are pending. Raises
        :class:`~commbox_async.JournalError` when the journal cannot be written.
        """
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        owns_journal = not isinstance(journal, JournalBackend)
        book: JournalBackend = journal if isinstance(journal, JournalBackend) else Journal(journal)
        try:
            run = _Run(
                self._client,
                book,
                resend_uncertain=resend_uncertain,
                retry_failed=retry_failed,
                stamp=stamp,
                on_outcome=on_outcome,
                keep_outcomes=keep_outcomes,
            )
            await run.go(messages, concurrency=concurrency, stop=stop)
        finally:
            if owns_journal:
                book.close()
        if run.stopped_by is not None:
            cause = run.stopped_by
            raise BulkStoppedError(
                f"the bulk send stopped: {type(cause).__name__}: {cause}. "
                f"{run.report.counts['pending']} message(s) were not sent and stay pending; "
                "fix the cause and run again to send them",
                report=run.report,
                cause=cause,
            )
        return run.report

    async def send_reconciled(
        self,
        messages: Callable[[], Source],
        *,
        journal: str | Path | JournalBackend | None = None,
        rounds: int = 5,
        settle_after: float = DEFAULT_SETTLE_AFTER,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        stop: anyio.Event | None = None,
        on_outcome: OnOutcome | None = None,
        on_wait: Callable[[float], Any] | None = None,
        on_pass: Callable[[PassKind, int | None], Any] | None = None,
        **send_options: Any,
    ) -> RoundsReport:
        """Send every message, settle what is left uncertain by asking CommBox
        (:meth:`reconcile`), send again what it never took, and repeat (at most ``rounds``
        sends) until nothing is left to send again.

        ``messages`` is called for each pass and returns the same messages (a pass skips what
        an earlier one settled). Before each reconciliation it waits until the newest uncertain
        attempt is ``settle_after`` seconds old (``on_wait`` is told how long). ``on_pass`` is
        told of each pass as it starts: ``("send", None)``, or ``("reconcile", n)`` with the
        number of uncertain keys (for a progress bar per pass). Other keyword arguments go to
        :meth:`send`. Messages sent with ``stamp=True`` are matched by key.
        """
        owns_journal = not isinstance(journal, JournalBackend)
        book: JournalBackend = journal if isinstance(journal, JournalBackend) else Journal(journal)
        try:
            return await send_reconciled(
                self,
                messages,
                journal=book,
                rounds=rounds,
                settle_after=settle_after,
                clock_skew=clock_skew,
                stop=stop,
                on_outcome=on_outcome,
                on_wait=on_wait,
                on_pass=on_pass,
                send_options=send_options,
            )
        finally:
            if owns_journal:
                book.close()

    async def reconcile(
        self,
        journal: str | Path | JournalBackend,
        *,
        settle_after: float = DEFAULT_SETTLE_AFTER,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        concurrency: int = 4,
        on_outcome: OnOutcome | None = None,
        keep_outcomes: bool = True,
    ) -> ReconcileReport:
        """Settle every ``uncertain`` key of a journal by asking CommBox for what its send
        would have created, and record the result in the journal.

        A key found exactly once becomes ``sent`` (with the id found); one not found, once its
        attempt ended more than ``settle_after`` seconds ago (default 120: CommBox may list a
        new conversation only after a delay), becomes ``failed`` as not taken, which the next
        :meth:`send` sends again; a key with several candidates, or sent through a path
        CommBox offers no lookup for, stays ``uncertain`` with the reason (and the candidates'
        ids). ``clock_skew`` (default 60 s) is how far this machine's clock may be from
        CommBox's. Matching is by recipient, text and creation time, or by key for messages
        sent with ``stamp=True``; see :mod:`commbox_async.bulk._reconcile`. Keys a process
        that died left ``sending`` are recovered as ``uncertain`` first, as :meth:`send` does.
        """
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        owns_journal = not isinstance(journal, JournalBackend)
        book: JournalBackend = journal if isinstance(journal, JournalBackend) else Journal(journal)
        try:
            return await reconcile(
                self._client,
                book,
                settle_after=settle_after,
                clock_skew=clock_skew,
                concurrency=concurrency,
                on_outcome=on_outcome,
                keep_outcomes=keep_outcomes,
            )
        finally:
            if owns_journal:
                book.close()


class _Run:
    """One run of a bulk send: its journal, its workers, and what it has reported."""

    def __init__(
        self,
        client: AsyncCommBox,
        journal: JournalBackend,
        *,
        resend_uncertain: bool,
        retry_failed: bool,
        stamp: bool,
        on_outcome: OnOutcome | None,
        keep_outcomes: bool,
    ) -> None:
        self.client = client
        self.journal = journal
        self.resend_uncertain = resend_uncertain
        self.retry_failed = retry_failed
        self.stamp = stamp
        self.on_outcome = on_outcome
        self.keep_outcomes = keep_outcomes
        self.report = BulkReport(recovered_uncertain=journal.recover())
        self.run = journal.begin_run()
        self.commits = GroupCommit(journal, self.run)
        # The keys taken from the input and not yet reported, with their "sending" row (the
        # message's digest, how to look it up): a bounded few (what is queued or in flight).
        # Duplicates are found through the journal, which marks every key taken with the
        # run's number.
        self.unsettled: dict[str, Sending] = {}
        # Uncertain keys this run sends again (resend_uncertain), with the verdict their
        # earlier attempt left: whatever this attempt does, that one may have been taken.
        self.resending: dict[str, Processed] = {}
        # Each request under way, with what it has put on the wire so far.
        self.inflight: dict[anyio.CancelScope, Exposure] = {}
        self.stopping = False
        self.stopped_by: CommBoxError | None = None

    async def go(self, messages: Source, *, concurrency: int, stop: anyio.Event | None) -> None:
        start = anyio.current_time()
        # Each item is one request's messages: one, or a WhatsApp batch.
        send_stream, receive_stream = anyio.create_memory_object_stream[list[BulkMessage]](
            concurrency
        )
        try:
            async with anyio.create_task_group() as outer:
                if stop is not None:
                    outer.start_soon(self._watch, stop)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._produce, messages, send_stream)
                    with receive_stream:  # each worker reads from its own clone
                        for _ in range(concurrency):
                            tg.start_soon(self._work, receive_stream.clone())
                outer.cancel_scope.cancel()
        except BaseException as exc:
            if _is_failure(exc):  # the journal, or the caller's on_outcome, failed
                _raise_one(exc)
                raise
            # Cancelled. Keys taken from the input that no worker reached were never sent.
            leftovers = [_pending(key, "interrupted before it was sent") for key in self.unsettled]
            await self._settle(leftovers)
            raise
        finally:
            self.report.elapsed = anyio.current_time() - start

    async def _watch(self, stop: anyio.Event) -> None:
        await stop.wait()
        self.halt()

    def halt(self) -> None:
        """Start no new message; cancel those that have not put a byte on the wire yet."""
        self.stopping = True
        self.report.stopped_early = True
        for scope, exposure in list(self.inflight.items()):
            if exposure.verdict() is Processed.NO:
                scope.cancel()

    # -- taking messages from the input ------------------------------------------------------

    async def _produce(
        self, messages: Source, out: MemoryObjectSendStream[list[BulkMessage]]
    ) -> None:
        # WhatsApp templates wait here until 20 share a stream (or the input ends).
        batches: dict[str, list[BulkMessage]] = {}
        async with out:
            async for message in aiterate(messages):
                todo = await self._admit(message)
                if todo is not None and isinstance(todo.payload, TemplateMessage):
                    batch = batches.setdefault(str(todo.stream_id), [])
                    batch.append(todo)
                    if len(batch) == MAX_TEMPLATE_RECIPIENTS:
                        await put(out, batches.pop(str(todo.stream_id)))
                elif todo is not None:
                    await put(out, [todo])
                # Checked before the next message is taken, not after: every message taken
                # from the input is reported (one taken once the run stopped ends pending).
                if self.stopping:
                    break
            for stream_id in list(batches):
                await put(out, batches.pop(stream_id))

    async def _admit(self, message: BulkMessage | Rejected) -> BulkMessage | None:
        """The message, to be sent; or None, its outcome reported (a duplicate, a malformed
        record, or a key an earlier run settled)."""
        key = message.key
        previous = self.journal.get(key)
        if key in self.unsettled or (previous is not None and previous.run == self.run):
            # Reported, never written: the journal row, and what the run knows of the key
            # while it is queued or in flight, are the first occurrence's.
            duplicate = Outcome(
                key=key, outcome="failed", failure="rejected", error="duplicate key in the input"
            )
            await self._report(duplicate, settles=False)
            return None
        if isinstance(message, Rejected):
            await self._reject(key, previous, message.error)
            return None
        try:
            digest = message.digest()
            found_by = lookup_for(message, stamp=self.stamp)
            lookup = found_by.to_json()
            todo = stamped(message, found_by) if self.stamp else message
        except Exception as exc:  # e.g. a lone surrogate: text no request can carry
            why = f"message {key!r} cannot be sent as it is: {type(exc).__name__}: {exc}"
            await self._reject(key, previous, why)
            return None
        if previous is not None:
            changed = previous.digest is not None and previous.digest != digest
            state = previous.state
            again = (
                state in ("pending", "sending")
                or (state == "failed" and (previous.retryable or changed or self.retry_failed))
                or (state == "uncertain" and self.resend_uncertain)
            )
            if not again:
                self.journal.claim(key, self.run)
                why = "the message differs from the one sent then; not sent again"
                await self._report(_earlier(key, previous, changed=changed, why=why))
                return None
            if state == "uncertain":
                self.resending[key] = previous.processed
        self.unsettled[key] = Sending(key, digest, lookup)
        return todo

    async def _reject(self, key: str, previous: JournalEntry | None, why: str) -> None:
        """A record that cannot be sent: ``failed`` (``rejected``), unless an earlier run
        sent the key or may have: a bad record now must not hide that."""
        if previous is not None and previous.state in ("sent", "uncertain"):
            self.journal.claim(key, self.run)
            await self._report(_earlier(key, previous, changed=True, why=why))
        else:
            # Its fingerprint is "" (no message): once the record is fixed, it differs.
            await self._settle([_rejected(key, why)], sending=[Sending(key, "")])

    # -- sending -----------------------------------------------------------------------------

    async def _work(self, stream: MemoryObjectReceiveStream[list[BulkMessage]]) -> None:
        async with stream:
            ended = False
            while not ended:
                # One scope for the worker's requests, not one per request (a scope costs a
                # few microseconds each way): halt() cancels it to stop the request in flight,
                # which ends this block, and the worker goes on in a new one. A message it
                # takes while the cancelled scope lasts is settled pending (the run stopped),
                # in _settle's shield, before anything else can wait in that scope.
                with anyio.CancelScope() as scope:
                    while (batch := await take(stream)) is not None:
                        if self.stopping:
                            why = "the run stopped first"
                            await self._settle([_pending(m.key, why) for m in batch])
                        else:
                            await self._deliver(batch, scope)
                    ended = True

    async def _deliver(self, batch: list[BulkMessage], scope: anyio.CancelScope) -> None:
        """One request: a single message, or up to 20 WhatsApp templates of one stream, under
        its worker's ``scope``."""
        sending = [self.unsettled.get(m.key, Sending(m.key)) for m in batch]
        # "sending" is written once the throttle lets the request go, before its first byte.
        exposure = Exposure(before_send=functools.partial(self.commits.write, sending=sending))
        self.inflight[scope] = exposure
        try:
            outcomes = await self._attempt(batch, exposure)
        except JournalError:
            raise
        except BaseException:
            # Cancelled: by halt() (nothing sent yet) or from outside (Ctrl-C twice).
            await self._settle([_interrupted(m.key, exposure) for m in batch])
            raise
        finally:
            del self.inflight[scope]
        # Settled before its "sending" mark (refused by a check before the request, or its
        # deadline ran out in the throttle): the row still gets the message's fingerprint,
        # so that a fixed message is told from the one that failed.
        announced = exposure.before_send is None
        await self._settle(outcomes, sending=() if announced else sending)

    async def _attempt(self, batch: list[BulkMessage], exposure: Exposure) -> list[Outcome]:
        """One request's outcomes; every error of this request becomes its outcome, except
        those that stop the run."""
        try:
            with tracking(exposure):
                return await _send(self.client, batch)
        except JournalError:
            raise
        except _RUN_STOPPERS as exc:
            if self.stopped_by is None:
                self.stopped_by = exc
            self.halt()
            return [_after_error(m.key, exc) for m in batch]
        except CommBoxError as exc:
            return [_after_error(m.key, exc) for m in batch]
        except Exception as exc:  # a bug, here or in the library: this message's outcome
            return [_after_bug(m.key, exc, exposure) for m in batch]

    # -- reporting ---------------------------------------------------------------------------

    async def _settle(self, outcomes: list[Outcome], *, sending: Sequence[Sending] = ()) -> None:
        """Write outcomes to the journal, then report them; shielded, so that an outcome is
        never half-recorded because its worker was cancelled."""
        if not outcomes:
            return
        if self.resending:
            outcomes = [self._still_uncertain(o) for o in outcomes]
        with anyio.CancelScope(shield=True):
            await self.commits.write(sending=sending, settled=outcomes)
            for outcome in outcomes:
                await self._report(outcome)

    def _still_uncertain(self, outcome: Outcome) -> Outcome:
        """An uncertain key sent again stays uncertain unless CommBox took it this time: its
        earlier attempt may have been taken, so failing now (or never leaving the machine)
        must not make it a key the next run sends by itself."""
        earlier = self.resending.pop(outcome.key, None)
        if earlier is None or outcome.outcome == "sent":
            return outcome
        processed = max(earlier, outcome.processed, Processed.MAYBE)
        if outcome.outcome == "uncertain":
            return attrs.evolve(outcome, processed=processed)
        return Outcome(
            key=outcome.key,
            outcome="uncertain",
            processed=processed,
            error=f"sent again while uncertain, and {outcome.outcome} this time "
            f"({outcome.error}); the earlier attempt may have been taken",
        )

    async def _report(self, outcome: Outcome, *, settles: bool = True) -> None:
        if settles:
            self.unsettled.pop(outcome.key, None)
        report = self.report
        report.counts[outcome.outcome] += 1
        report.earlier += outcome.earlier
        report.changed += outcome.changed
        if self.keep_outcomes:
            report.outcomes.append(outcome)
        if self.on_outcome is not None:
            await call(self.on_outcome, outcome)


async def _send(client: AsyncCommBox, batch: list[BulkMessage]) -> list[Outcome]:
    """One request's outcomes: a WhatsApp batch through the v2 endpoint, or one message."""
    if isinstance(batch[0].payload, TemplateMessage):
        return await send_templates(client, batch)
    (message,) = batch
    payload = message.payload
    if isinstance(payload, NewObject):
        new_id: int | None = await client.objects.create(message.stream_id, payload)
    elif isinstance(payload, NewChild):
        assert message.object_id is not None
        new_id = await client.objects.create_child(message.stream_id, message.object_id, payload)
    else:
        assert isinstance(payload, SmsMessage)
        await client.sms.send(str(message.stream_id), payload.number, payload.message)
        new_id = None  # /sms/sendsms answers without an id
    return [Outcome(key=message.key, outcome="sent", id=new_id, processed=Processed.YES)]


def _after_error(key: str, exc: CommBoxError) -> Outcome:
    """The outcome of a request that ended with ``exc``, from the verdict it carries."""
    error = f"{type(exc).__name__}: {exc}"
    if exc.processed is not Processed.NO:
        return Outcome(key=key, outcome="uncertain", error=error, processed=exc.processed)
    if isinstance(exc, _RUN_STOPPERS):
        return _pending(key, f"not sent: {error}")
    return Outcome(key=key, outcome="failed", error=error, failure=_failure(exc))


def _failure(exc: CommBoxError) -> FailureKind:
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        return "not_sent" if status in _NOT_NOW or 300 <= status < 400 else "rejected"
    if isinstance(exc, ConfigurationError):
        return "rejected"  # this message cannot be sent as it is
    return "not_sent"  # connection failures, pool and connect timeouts, deadlines


def _after_bug(key: str, exc: Exception, exposure: Exposure) -> Outcome:
    error = f"the library failed on this message: {type(exc).__name__}: {exc}"
    processed = exposure.verdict()
    if processed is not Processed.NO:
        return Outcome(key=key, outcome="uncertain", error=error, processed=processed)
    return Outcome(key=key, outcome="failed", error=error, failure="not_sent")


def _interrupted(key: str, exposure: Exposure) -> Outcome:
    processed = exposure.verdict()
    if processed is Processed.NO:
        return _pending(key, "interrupted before it was sent")
    return Outcome(
        key=key, outcome="uncertain", error="interrupted mid-request", processed=processed
    )


def _pending(key: str, why: str) -> Outcome:
    return Outcome(key=key, outcome="pending", error=why)


def _rejected(key: str, error: str) -> Outcome:
    return Outcome(key=key, outcome="failed", error=error, failure="rejected")


def _earlier(key: str, previous: JournalEntry, *, changed: bool, why: str) -> Outcome:
    return Outcome(
        key=key,
        outcome=previous.state,  # type: ignore[arg-type]
        id=previous.id,
        error=why if changed else previous.error,
        failure=previous.failure,
        processed=previous.processed,
        earlier=True,
        changed=changed,
    )


def _is_failure(exc: BaseException) -> bool:
    """An error (rather than a cancellation) somewhere in what the run raised."""
    return any(isinstance(leaf, Exception) for leaf in _leaves(exc))


def _raise_one(exc: BaseException) -> None:
    """Raise what a failed run raises: a journal failure first, else a single error as itself
    (rather than inside the task group's ExceptionGroup); several different ones stay as
    they are (the caller re-raises them)."""
    if not isinstance(exc, BaseExceptionGroup):
        return
    leaves = _leaves(exc)
    journal = next((e for e in leaves if isinstance(e, JournalError)), None)
    errors = {id(e): e for e in leaves if isinstance(e, Exception)}
    errors = {k: e for k, e in errors.items() if not isinstance(e, anyio.BrokenResourceError)}
    one = journal if journal is not None else next(iter(errors.values()), None)
    if one is not None and (journal is not None or len(errors) == 1):
        one.__suppress_context__ = True  # the group it came in says nothing more
        raise one


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
