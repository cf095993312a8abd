"""Bulk sends that lose nothing and duplicate nothing: ``cb.bulk.send(messages, journal=...)``.

Every message has a caller-chosen unique ``key`` and ends in exactly one outcome:

- ``sent``: CommBox took it (with the new id, and for WhatsApp the per-recipient result);
- ``failed``: CommBox certainly did not take it (a 4xx, or a retry-safe failure after all
  retries); ``retryable`` says whether sending it again later may succeed;
- ``uncertain``: it may have been taken (read timeout, lost response, 500...). The library never
  sends such a message again on its own; ``resend_uncertain=True`` on a later run does.

The journal (SQLite, standard library) records each message as ``sending`` before the request
and its outcome after it. Re-running with the same journal after a crash, Ctrl-C or kill -9 skips
what was sent, treats what was ``sending`` when the process died as ``uncertain``, retries
``failed``-but-retryable messages, and reports what it did. The input is consumed lazily with
bounded concurrency, so a generator of a million messages never sits in memory.

Payloads: :class:`NewObject` (a new conversation), :class:`NewChild` (a message in one),
:class:`SmsMessage` (``POST /sms/sendsms``) and :class:`TemplateMessage` (WhatsApp v2, sent 20
recipients per call per stream; each recipient's 200/206 result becomes its message's outcome).
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import anyio
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._exceptions import APIStatusError, CommBoxError, ConfigurationError, JournalError
from .models import NewChild, NewObject, NewUser, RecipientResult, TemplateMessage
from .resources._resource import require_encrypted
from .resources.messaging import MAX_TEMPLATE_RECIPIENTS

if TYPE_CHECKING:
    from ._client import AsyncCommBox

__all__ = [
    "CHANNELS",
    "BulkMessage",
    "BulkReport",
    "InputRecord",
    "Journal",
    "JournalEntry",
    "Outcome",
    "OutcomeKind",
    "Rejected",
    "SmsMessage",
    "read_messages",
    "scan_keys",
]

OutcomeKind = Literal["sent", "failed", "uncertain", "skipped"]


@attrs.frozen(kw_only=True)
class SmsMessage:
    """A text sent with ``POST /sms/sendsms/{ENCRYPTED_STREAM_ID}`` (``Number``, ``Message``)."""

    number: str
    message: str


Payload = NewObject | NewChild | SmsMessage | TemplateMessage


@attrs.frozen(kw_only=True)
class BulkMessage:
    """One message of a bulk send.

    ``payload`` is a :class:`NewObject` (a new conversation in ``stream_id``), a
    :class:`NewChild` (a message in the existing conversation ``object_id`` of ``stream_id``),
    an :class:`SmsMessage` or a :class:`TemplateMessage` (``stream_id`` is then the channel's
    encrypted id).
    """

    key: str
    stream_id: int | str
    payload: Payload
    object_id: int | str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigurationError("a bulk message needs a non-empty str key")
        if not isinstance(self.payload, (NewObject, NewChild, SmsMessage, TemplateMessage)):
            raise ConfigurationError(
                f"message {self.key!r}: payload must be a NewObject, NewChild, SmsMessage or "
                f"TemplateMessage, got {type(self.payload).__name__}"
            )
        if isinstance(self.payload, NewChild) and self.object_id is None:
            raise ConfigurationError(f"message {self.key!r}: a NewChild needs object_id")
        if isinstance(self.payload, (SmsMessage, TemplateMessage)):
            require_encrypted(str(self.stream_id), f"message {self.key!r}: stream_id")


@attrs.frozen(kw_only=True)
class Rejected:
    """An input record that could not become a message: recorded ``failed`` (not retryable)
    with ``error`` saying where and why, and never sent."""

    key: str
    error: str


@attrs.frozen(kw_only=True)
class Outcome:
    """What happened to one message. ``skipped`` means an earlier run already settled it."""

    key: str
    outcome: OutcomeKind
    id: int | None = None
    error: str | None = None
    retryable: bool = False
    #: The outcome recorded by the earlier run, for skipped messages.
    previous: str | None = None
    #: The per-recipient result of a WhatsApp send (200 or 206), as CommBox sent it.
    data: dict[str, Any] | None = None


@attrs.define(kw_only=True)
class BulkReport:
    """Counts per outcome, throughput, and (unless ``keep_outcomes=False``) every outcome."""

    counts: Counter[str] = attrs.field(factory=Counter)
    outcomes: list[Outcome] = attrs.field(factory=list)
    recovered_uncertain: int = 0
    elapsed: float = 0.0
    stopped_early: bool = False

    @property
    def attempted(self) -> int:
        return sum(n for k, n in self.counts.items() if k != "skipped")

    @property
    def throughput(self) -> float:
        return self.attempted / self.elapsed if self.elapsed > 0 else 0.0


class JournalEntry(NamedTuple):
    """A key's row in the journal."""

    state: str
    id: int | None
    error: str | None
    retryable: bool
    #: The run that last took this key from its input, for finding duplicates within a run.
    run: int


class Journal:
    """The SQLite journal of a bulk send: one row per key with its state, id and error.

    WAL mode: a process killed with SIGKILL loses nothing it committed. Writes happen on the
    event loop thread; each is a small committed transaction (about 10-20 microseconds). The
    file is locked for as long as the journal is open, so a second run on it is refused with
    :class:`~commbox_async.ConfigurationError` rather than sending the same keys. Without a
    path the journal is a private temporary file that SQLite deletes on close, so even a
    journal nobody keeps does not grow in memory with the number of messages.

    A journal that cannot be used is refused when it is opened, before anything is sent, with
    :class:`~commbox_async.JournalError` naming the file and what is wrong: not a SQLite file,
    corrupt or truncated (``PRAGMA quick_check``, about 4 ms per MB), read-only (the file or
    its folder: SQLite writes a ``-wal`` file beside it), a directory, a folder that does not
    exist, or a SQLite file that is not a journal.
    """

    _COLUMNS = frozenset({"key", "state", "id", "error", "retryable", "attempts", "updated"})

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                str(self.path) if self.path else "",
                isolation_level=None,
                check_same_thread=False,
                timeout=1.0,
            )
            self._open(db)
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            if _sqlite_error_name(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise ConfigurationError(
                    f"journal {self.path} is in use by another run ({exc}); wait for it to finish"
                ) from None
            raise self._unusable(exc) from exc
        except JournalError:
            if db is not None:
                db.close()
            raise
        self._db = db

    def _open(self, db: sqlite3.Connection) -> None:
        # One run per journal at a time: two processes sending the same keys through one
        # journal would each think the other's keys unsent. The exclusive lock also spares
        # every commit the shared-memory index, a third of a commit's cost.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        # Rows are ~100 bytes and every commit writes whole pages to the WAL: small pages
        # halve the bytes written per message. (Applies to new files; old ones keep theirs.)
        db.execute("PRAGMA page_size=1024")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL")
        # A truncated or damaged file can open and read its schema fine and fail only on the
        # page a later query reaches, mid-send: every page is checked before anything is sent.
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            error = JournalError(
                f"journal {self.path} is corrupt or truncated: {'; '.join(problems)}"
            )
            error.path = str(self.path) if self.path else None
            raise error
        db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER, error TEXT,"
            " retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
            " updated REAL NOT NULL, data TEXT, run INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY AUTOINCREMENT,"
            " started REAL NOT NULL)"
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        missing = self._COLUMNS - columns
        if missing:
            error = JournalError(
                f"journal {self.path} is a SQLite file but not a bulk journal: its messages "
                f"table has no {', '.join(sorted(missing))} column"
            )
            error.path = str(self.path) if self.path else None
            raise error
        # Journals written by earlier versions lack the newer columns.
        if "data" not in columns:
            db.execute("ALTER TABLE messages ADD COLUMN data TEXT")
        if "run" not in columns:
            db.execute("ALTER TABLE messages ADD COLUMN run INTEGER NOT NULL DEFAULT 0")

    def _unusable(self, exc: sqlite3.Error) -> JournalError:
        """The error for a journal SQLite could not open or use, saying what is wrong."""
        name = _sqlite_error_name(exc)
        path = self.path
        if path is None:
            what = "cannot be created in the temporary folder"
        elif path.is_dir():
            what = "is a directory"
        elif not path.parent.is_dir():
            what = f"cannot be created: its folder {path.parent} does not exist"
        elif name.startswith("SQLITE_READONLY") or (path.exists() and not os.access(path, os.W_OK)):
            what = "is read-only: a journal must be writable"
        elif not os.access(path.parent, os.W_OK) or (name == "SQLITE_CANTOPEN" and path.exists()):
            what = (
                f"cannot be written: its folder {path.parent} is read-only (SQLite keeps a -wal "
                "file beside the journal)"
            )
        elif name == "SQLITE_NOTADB":
            what = "is not a SQLite file (not a journal, or overwritten)"
        elif name == "SQLITE_CORRUPT":
            what = "is corrupt or truncated"
        else:
            what = "cannot be opened"
        error = JournalError(f"journal {path} {what} ({exc})")
        error.path = str(path) if path else None
        return error

    def begin_run(self) -> int:
        """A new run number: keys taken from the input in this run are marked with it."""
        cur = self._db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def recover(self) -> int:
        """Messages left ``sending`` by a process that died: they may have been taken."""
        cur = self._db.execute(
            "UPDATE messages SET state='uncertain',"
            " error='the sending process stopped mid-request', updated=? WHERE state='sending'",
            (time.time(),),
        )
        return cur.rowcount

    def get(self, key: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT state, id, error, retryable, run FROM messages WHERE key=?", (key,)
        ).fetchone()
        return None if row is None else JournalEntry(row[0], row[1], row[2], bool(row[3]), row[4])

    def claim(self, key: str, run: int) -> None:
        """Mark an already-settled key as seen by ``run`` without changing its state."""
        self._db.execute("UPDATE messages SET run=? WHERE key=?", (run, key))

    def write(
        self, *, sending: Sequence[str] = (), settled: Sequence[Outcome] = (), run: int = 0
    ) -> None:
        """In one committed transaction: mark ``sending`` keys as in flight (for ``run``) and
        record the ``settled`` outcomes. All of it is written, or none of it."""
        now = time.time()
        self._db.execute("BEGIN")
        try:
            if sending:
                self._db.executemany(
                    "INSERT INTO messages (key, state, attempts, updated, run)"
                    " VALUES (?, 'sending', 1, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET state='sending', attempts=attempts+1,"
                    " updated=excluded.updated, run=excluded.run",
                    [(key, now, run) for key in sending],
                )
            if settled:
                self._db.executemany(
                    "UPDATE messages SET state=?, id=?, error=?, retryable=?, updated=?, data=?"
                    " WHERE key=?",
                    [
                        (
                            o.outcome,
                            o.id,
                            o.error,
                            int(o.retryable),
                            now,
                            None if o.data is None else json.dumps(o.data),
                            o.key,
                        )
                        for o in settled
                    ],
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def sending(self, *keys: str, run: int = 0) -> None:
        """Mark keys as in flight, in one transaction (a WhatsApp batch is one request)."""
        self.write(sending=keys, run=run)

    def settle(self, *outcomes: Outcome) -> None:
        self.write(settled=outcomes)

    def counts(self) -> dict[str, int]:
        return dict(
            self._db.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        )

    def rows(self) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT key, state, id, error, retryable, data FROM messages ORDER BY key"
        )
        return [
            {
                "key": k,
                "outcome": s,
                "id": i,
                "error": e,
                "retryable": bool(r),
                "data": None if d is None else json.loads(d),
            }
            for k, s, i, e, r, d in cur.fetchall()
        ]

    def close(self) -> None:
        """Close the file and release its lock (a ``with`` block does this too)."""
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sqlite_error_name(exc: sqlite3.Error) -> str:
    """``SQLITE_BUSY``, ``SQLITE_CORRUPT``...: the attribute on Python 3.11+, read from the
    message before."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    text = str(exc).lower()
    for needle, guess in (
        ("locked", "SQLITE_BUSY"),
        ("readonly", "SQLITE_READONLY"),
        ("malformed", "SQLITE_CORRUPT"),
        ("not a database", "SQLITE_NOTADB"),
        ("unable to open", "SQLITE_CANTOPEN"),
    ):
        if needle in text:
            return guess
    return "SQLITE_ERROR"


class _GroupCommit:
    """The journal writes of all workers, committed together once per event-loop turn.

    A commit costs far more than a row, and at high throughput several workers finish or
    start a request in the same turn. The first writer of a turn yields once so the others
    can add their rows, then commits them all in one transaction; everyone's ``write``
    returns only after that commit, so "sending" is still on disk before the request goes
    out and an outcome before it is reported. The waits are shielded from cancellation:
    they last one turn, and a row handed over is committed whatever happens to its writer.
    """

    def __init__(self, book: Journal, run: int) -> None:
        self._book = book
        self._run = run
        self._sending: list[str] = []
        self._settled: list[Outcome] = []
        self._turn: _Turn | None = None

    async def write(self, *, sending: Sequence[str] = (), settled: Sequence[Outcome] = ()) -> None:
        self._sending.extend(sending)
        self._settled.extend(settled)
        turn = self._turn
        if turn is not None:  # someone is committing this turn's rows: wait for it
            with anyio.CancelScope(shield=True):
                await turn.done.wait()
        else:
            self._turn = turn = _Turn()
            await anyio.lowlevel.cancel_shielded_checkpoint()
            self._turn = None
            rows, self._sending = self._sending, []
            outcomes, self._settled = self._settled, []
            try:
                self._book.write(sending=rows, settled=outcomes, run=self._run)
            except BaseException as exc:
                turn.error = exc
            finally:
                turn.done.set()
        if turn.error is not None:
            raise turn.error


@attrs.define
class _Turn:
    done: anyio.Event = attrs.field(factory=anyio.Event)
    error: BaseException | None = None


def _leaves(exc: BaseException) -> list[BaseException]:
    group = getattr(exc, "exceptions", None)
    if isinstance(group, tuple):
        return [leaf for inner in group for leaf in _leaves(inner)]
    return [exc]


def _one_error(exc: Exception) -> tuple[Exception, BaseException | None]:
    """What a failed send raises, and its cause: a journal failure as a :class:`JournalError`
    (caused by the SQLite error), a single error as itself rather than inside the task
    group's ExceptionGroup (beside the producer's secondary "stream closed"); several
    different errors stay the group."""
    leaves = [e for e in _leaves(exc) if not isinstance(e, anyio.BrokenResourceError)]
    journal = next((e for e in leaves if isinstance(e, sqlite3.Error)), None)
    if journal is not None:
        return JournalError(f"the bulk journal could not be written: {journal}"), journal
    if len({id(e) for e in leaves}) == 1 and isinstance(leaves[0], Exception):
        return leaves[0], leaves[0].__cause__
    return exc, exc.__cause__


def _classify(key: str, exc: CommBoxError) -> Outcome:
    error = f"{type(exc).__name__}: {exc}"
    if exc.may_have_been_processed:
        return Outcome(key=key, outcome="uncertain", error=error)
    status = exc.status_code if isinstance(exc, APIStatusError) else None
    # Certainly not taken. A 4xx other than 429 will fail the same way again; a connection
    # failure, 429 or 503 that outlasted the retries may succeed on a later run.
    retryable = status is None or status in (429, 503)
    return Outcome(key=key, outcome="failed", error=error, retryable=retryable)


class Bulk:
    """``cb.bulk``: high-volume sends."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client

    async def send(
        self,
        messages: Iterable[BulkMessage | Rejected] | AsyncIterable[BulkMessage | Rejected],
        *,
        journal: str | Path | Journal | None = None,
        concurrency: int = 16,
        resend_uncertain: bool = False,
        on_outcome: Callable[[Outcome], Awaitable[None] | None] | None = None,
        keep_outcomes: bool = True,
        stop: anyio.Event | None = None,
    ) -> BulkReport:
        """Send every message once, with at most ``concurrency`` in flight (on top of the
        client's throttle), and return a :class:`BulkReport`.

        ``journal`` (a path, or a :class:`Journal`) makes the run resumable; without one a
        temporary journal is used and deleted afterwards. ``on_outcome``
        receives each outcome as it is settled; setting ``stop`` stops taking new messages and
        lets in-flight ones finish (cancelling the call instead records them as uncertain).
        """
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        owns_journal = not isinstance(journal, Journal)
        book = journal if isinstance(journal, Journal) else Journal(journal)
        report = BulkReport(recovered_uncertain=book.recover())
        # Duplicates are found through the journal (each key taken from the input is marked
        # with this run's number), so memory does not grow with the number of keys. Only
        # the keys between the input and their "sending" mark are held here: a bounded few.
        run = book.begin_run()
        queued: set[str] = set()
        start = anyio.current_time()

        async def record(outcome: Outcome) -> None:
            report.counts[outcome.outcome] += 1
            if keep_outcomes:
                report.outcomes.append(outcome)
            if on_outcome is not None:
                result = on_outcome(outcome)
                if result is not None:
                    await result

        commits = _GroupCommit(book, run)

        async def deliver(batch: list[BulkMessage]) -> None:
            """One request: a single message, or up to 20 WhatsApp templates of one stream."""
            keys = [m.key for m in batch]
            await commits.write(sending=keys)
            queued.difference_update(keys)
            try:
                outcomes = await self._send(batch)
            except CommBoxError as exc:
                outcomes = [_classify(key, exc) for key in keys]
            except BaseException:
                # Cancelled (Ctrl-C) or a bug: the request may be out; never lose the record.
                book.settle(
                    *(
                        Outcome(key=key, outcome="uncertain", error="interrupted mid-request")
                        for key in keys
                    )
                )
                raise
            await commits.write(settled=outcomes)
            for outcome in outcomes:
                await record(outcome)

        async def skip_or_send(message: BulkMessage | Rejected) -> BulkMessage | None:
            previous = book.get(message.key)
            if message.key in queued or (previous is not None and previous.run == run):
                await record(
                    Outcome(key=message.key, outcome="failed", error="duplicate key in the input")
                )
                return None
            if isinstance(message, Rejected):
                if previous is not None and previous.state in ("sent", "uncertain"):
                    # Never let a bad record now hide what an earlier run already sent.
                    book.claim(message.key, run)
                    outcome = Outcome(
                        key=message.key,
                        outcome="skipped",
                        id=previous.id,
                        error=message.error,
                        previous=previous.state,
                    )
                else:
                    outcome = Outcome(key=message.key, outcome="failed", error=message.error)
                    book.write(sending=[message.key], settled=[outcome], run=run)
                await record(outcome)
                return None
            if previous is not None:
                state, prev_id, prev_error, retryable, _ = previous
                again = (state == "failed" and retryable) or (
                    state == "uncertain" and resend_uncertain
                )
                if not again:
                    book.claim(message.key, run)
                    await record(
                        Outcome(
                            key=message.key,
                            outcome="skipped",
                            id=prev_id,
                            error=prev_error,
                            previous=state,
                        )
                    )
                    return None
            queued.add(message.key)
            return message

        # Each item is one request's messages: one, or a WhatsApp batch.
        send_stream, receive_stream = anyio.create_memory_object_stream[list[BulkMessage]](
            concurrency
        )
        # WhatsApp templates wait here until 20 share a stream (or the input ends).
        batches: dict[str, list[BulkMessage]] = {}

        async def produce() -> None:
            async with send_stream:
                async for message in _aiter(messages):
                    if stop is not None and stop.is_set():
                        report.stopped_early = True
                        break
                    todo = await skip_or_send(message)
                    if todo is None:
                        continue
                    if isinstance(todo.payload, TemplateMessage):
                        batch = batches.setdefault(str(todo.stream_id), [])
                        batch.append(todo)
                        if len(batch) == MAX_TEMPLATE_RECIPIENTS:
                            await _put(send_stream, batches.pop(str(todo.stream_id)))
                    else:
                        await _put(send_stream, [todo])
                for stream_id in list(batches):
                    await _put(send_stream, batches.pop(stream_id))

        async def work(stream: MemoryObjectReceiveStream[list[BulkMessage]]) -> None:
            async with stream:
                while (batch := await _take(stream)) is not None:
                    await deliver(batch)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                with receive_stream:  # each worker reads from its own clone
                    for _ in range(concurrency):
                        tg.start_soon(work, receive_stream.clone())
        except Exception as exc:
            error, cause = _one_error(exc)
            if error is exc:
                raise
            raise error from cause
        finally:
            report.elapsed = anyio.current_time() - start
            if owns_journal:
                book.close()
        return report

    async def _send(self, batch: list[BulkMessage]) -> list[Outcome]:
        """One request's outcomes: a WhatsApp batch through the v2 endpoint, or one message."""
        if isinstance(batch[0].payload, TemplateMessage):
            return await self._send_templates(batch)
        (message,) = batch
        payload, cb = message.payload, self._client
        if isinstance(payload, NewObject):
            new_id: int | None = await cb.objects.create(message.stream_id, payload)
        elif isinstance(payload, NewChild):
            assert message.object_id is not None
            new_id = await cb.objects.create_child(message.stream_id, message.object_id, payload)
        else:
            assert isinstance(payload, SmsMessage)
            await cb.sms.send(str(message.stream_id), payload.number, payload.message)
            new_id = None  # /sms/sendsms answers without an id
        return [Outcome(key=message.key, outcome="sent", id=new_id)]

    async def _send_templates(self, batch: list[BulkMessage]) -> list[Outcome]:
        """One v2 call for up to 20 recipients of one stream; each result to its message."""
        templates = [m.payload for m in batch]
        assert all(isinstance(t, TemplateMessage) for t in templates)
        results = await self._client.whatsapp.send_template(
            str(batch[0].stream_id),
            templates,  # type: ignore[arg-type]
        )
        return [_recipient_outcome(m, r) for m, r in zip(batch, _match_results(batch, results))]


def _match_results(
    batch: list[BulkMessage], results: list[RecipientResult]
) -> list[RecipientResult | None]:
    """Each message's result: by position when CommBox answered one per recipient in order,
    otherwise by recipient number (None when a recipient is missing or ambiguous)."""
    numbers = [m.payload.to for m in batch if isinstance(m.payload, TemplateMessage)]
    if len(results) == len(batch) and all(
        r.recipient is None or r.recipient == n for r, n in zip(results, numbers)
    ):
        return list(results)
    by_number: dict[str, list[RecipientResult]] = {}
    for r in results:
        by_number.setdefault(str(r.recipient), []).append(r)
    matched: list[RecipientResult | None] = []
    for n in numbers:
        found = by_number.get(n, [])
        matched.append(found.pop(0) if len(found) == 1 or numbers.count(n) == 1 else None)
    return matched


def _recipient_outcome(message: BulkMessage, result: RecipientResult | None) -> Outcome:
    if result is None:
        return Outcome(
            key=message.key,
            outcome="uncertain",
            error="CommBox's answer has no result for this recipient",
        )
    data = {k: v for k, v in result.to_wire().items() if v is not None}
    if result.ok:
        return Outcome(key=message.key, outcome="sent", id=result.object_id, data=data)
    return Outcome(
        key=message.key,
        outcome="failed",
        error=f"recipient {result.recipient}: status {result.status}: {result.failed}",
        retryable=result.status in (429, 503),
        data=data,
    )


# The memory stream's send() and receive() yield to the event loop before every item, even
# when one is ready: at thousands of messages a second that is a loop cycle per message spent
# on nothing. Take the ready case without yielding; wait (and yield) only when there is none.
# Every item still goes through an await (its request), so cancellation is never starved.


async def _put(stream: MemoryObjectSendStream[Any], item: Any) -> None:
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


async def _take(stream: MemoryObjectReceiveStream[Any]) -> Any:
    """The next item, or None at the end of the stream."""
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        try:
            return await stream.receive()
        except anyio.EndOfStream:
            return None
    except anyio.EndOfStream:
        return None


async def _aiter(
    messages: Iterable[BulkMessage | Rejected] | AsyncIterable[BulkMessage | Rejected],
) -> Any:
    if isinstance(messages, AsyncIterable):
        async for message in messages:
            yield message
    else:
        for message in messages:
            yield message


# -- reading messages from a file (commbox send-bulk) -----------------------------------------

#: ``channel`` values of an input record, each the :class:`NewObject` constructor it calls.
CHANNELS = ("sms", "sms_many", "email", "whatsapp_template", "chat")

InputRecord = dict[str, Any]


def _records(path: Path) -> Iterator[tuple[int, InputRecord | str]]:
    """(line number, record or the reason it is malformed), one at a time."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                line = reader.line_num
                if None in row:
                    yield line, "more cells than columns"
                    continue
                yield line, {k: v for k, v in row.items() if k and v not in (None, "")}
        return
    with path.open(encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"not JSON ({exc.msg})"
                continue
            yield line, value if isinstance(value, dict) else "not a JSON object"


def scan_keys(path: str | Path) -> tuple[int, dict[str, list[int]]]:
    """Count the records of an input file and find keys used more than once (with the line
    numbers of each use), reading it once without keeping it in memory."""
    lines_by_key: dict[str, list[int]] = {}
    count = 0
    for line, record in _records(Path(path)):
        count += 1
        if isinstance(record, dict) and isinstance(record.get("key"), (str, int)):
            lines_by_key.setdefault(str(record["key"]), []).append(line)
    return count, {k: v for k, v in lines_by_key.items() if len(v) > 1}


def _convert(channel: str, name: str, value: Any, where: str) -> Any:
    factory = getattr(NewObject, channel)
    params = inspect.signature(factory).parameters
    if name not in params or params[name].kind is not inspect.Parameter.KEYWORD_ONLY:
        known = ", ".join(p for p in params if p != "extra")
        raise ConfigurationError(f"{where}: {channel} takes no {name!r} (it takes {known})")
    annotation = str(params[name].annotation)
    if isinstance(value, str):
        if "Sequence" in annotation:
            return [part.strip() for part in value.split(";") if part.strip()]
        if (
            annotation.startswith(("int", "ObjectStatusType"))
            and value.strip().removeprefix("-").isdecimal()
        ):
            return int(value)
        if annotation.startswith("bool"):
            return value.strip().lower() in ("1", "true", "yes")
    if name == "user" and isinstance(value, dict):
        return NewUser(**value)
    return value


def read_messages(path: str | Path, *, stream_id: int | str) -> Iterator[BulkMessage | Rejected]:
    """The messages of a JSONL or CSV file (by suffix), lazily.

    Each record has ``key``, ``channel`` (one of :data:`CHANNELS`) and the keyword arguments
    of the matching ``NewObject`` constructor (CSV: one column each, list values separated by
    ``;``). A malformed record becomes a :class:`Rejected` naming its line, so the run records
    it as failed and goes on.
    """
    source = Path(path)
    for line, record in _records(source):
        where = f"{source.name}:{line}"
        key = record.get("key") if isinstance(record, dict) else None
        reject_key = str(key) if isinstance(key, (str, int)) and str(key) else f"line:{line}"
        if isinstance(record, str):
            yield Rejected(key=reject_key, error=f"{where}: {record}")
            continue
        try:
            if not isinstance(key, (str, int)) or not str(key):
                raise ConfigurationError(f"{where}: a record needs a key")
            channel = record.get("channel")
            if channel not in CHANNELS:
                raise ConfigurationError(
                    f"{where}: channel must be one of {', '.join(CHANNELS)}, got {channel!r}"
                )
            kwargs = {
                name: _convert(channel, name, value, where)
                for name, value in record.items()
                if name not in ("key", "channel")
            }
            try:
                payload = getattr(NewObject, channel)(**kwargs)
            except TypeError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            yield BulkMessage(key=str(key), stream_id=stream_id, payload=payload)
        except (ConfigurationError, ValueError) as exc:
            message = str(exc)
            yield Rejected(
                key=reject_key,
                error=message if message.startswith(where) else f"{where}: {message}",
            )
