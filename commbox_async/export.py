"""Whole-conversation exports: ``cb.export.conversations(...)`` and ``cb.export.jsonl(...)``.

Each conversation is fetched with its children and activity log (``GET
/streams/{STREAM_ID}/objects/{OBJECT_ID}?includeChilds=true&includeActivityLog=true``), and
when asked its transcript and activities by type, with bounded concurrency and bounded memory
however many conversations there are. The input is object references from any iterable, or a
whole stream between two times (the stream search, split into windows until each is complete).

``jsonl`` writes one JSON line per conversation, each with a single write of a whole line, and
repairs a half-written last line left by a crash before it resumes; conversations already in the
file are skipped, and per-conversation errors go to a side file without stopping the run.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._aio import aiterate, call
from ._exceptions import CommBoxError, ConfigurationError
from ._json import loads as load_json
from .models import Activity, ObjectActivityType, ObjectDetails, Transcript, unstructure

if TYPE_CHECKING:
    from ._client import AsyncCommBox

__all__ = ["ConversationExport", "ConversationRef", "Export", "ExportReport"]

logger = logging.getLogger("commbox_async")


@attrs.frozen
class ConversationRef:
    """A conversation to export: its stream (numeric or encrypted id) and object id."""

    stream_id: int | str
    object_id: int | str

    @property
    def key(self) -> str:
        return f"{self.stream_id}/{self.object_id}"


RefInput = ConversationRef | tuple[int | str, int | str]


def _ref(value: RefInput) -> ConversationRef:
    if isinstance(value, ConversationRef):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return ConversationRef(value[0], value[1])
    raise ConfigurationError(
        f"a conversation reference is ConversationRef or (stream_id, object_id), got {value!r}"
    )


@attrs.frozen(kw_only=True)
class ConversationExport:
    """One exported conversation, or the error that stopped it (``error`` set, rest empty)."""

    ref: ConversationRef
    conversation: ObjectDetails | None = None
    transcript: Transcript | None = None
    activities: dict[int, list[Activity]] = attrs.field(factory=dict)
    error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON line: ``stream_id``, ``object_id``, ``conversation`` in CommBox's own keys,
        and ``transcript`` / ``activities`` (by type number) when fetched, or ``error``."""
        line: dict[str, Any] = {
            "stream_id": self.ref.stream_id,
            "object_id": self.ref.object_id,
        }
        if self.error is not None:
            line["error"] = self.error
            return line
        line["conversation"] = unstructure(self.conversation)
        if self.transcript is not None:
            line["transcript"] = unstructure(self.transcript)
        if self.activities:
            line["activities"] = {
                str(t): [unstructure(a) for a in acts] for t, acts in self.activities.items()
            }
        return line


@attrs.define(kw_only=True)
class ExportReport:
    """What an export run did. For a stream export, also what the stream search could not
    list: ``unidentified`` conversations it listed without an ``objectId`` (which cannot be
    fetched) and the ``withheld`` seconds whose conversations it may not all have listed
    (see :meth:`~commbox_async.resources.streams.Streams.objects_between`)."""

    exported: int = 0
    skipped: int = 0
    failed: int = 0
    unidentified: int = 0
    withheld: list[int] = attrs.field(factory=list)
    repaired_partial_line: bool = False
    elapsed: float = 0.0
    path: Path | None = None
    errors_path: Path | None = None


class Export:
    """``cb.export``: concurrent whole-conversation exports."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client

    def conversations(
        self,
        refs: Iterable[RefInput] | AsyncIterable[RefInput] | None = None,
        *,
        stream_id: int | str | None = None,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
        concurrency: int = 8,
        transcript: bool = False,
        activity_types: Sequence[ObjectActivityType | int] = (),
        skip: Callable[[ConversationRef], bool] | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[ConversationExport]]:
        """Export conversations concurrently; iterate the results as they finish::

            async with cb.export.conversations(refs) as exports:
                async for item in exports:
                    ...

        Give ``refs`` (``(stream_id, object_id)`` pairs or :class:`ConversationRef`, from any
        iterable or async iterable, consumed lazily) or ``stream_id`` with ``start`` and
        ``end`` (every conversation created in that window). ``transcript`` adds the
        transcript, ``activity_types`` the activities of those types. A conversation that
        fails comes back with ``error`` set; the others go on. At most ``concurrency``
        conversations are in flight and as many finished ones wait for the reader, so memory
        stays bounded. Leaving the ``async with`` early cancels what is in flight.
        """
        return self._conversations(
            refs,
            stream_id=stream_id,
            start=start,
            end=end,
            concurrency=concurrency,
            transcript=transcript,
            activity_types=activity_types,
            skip=skip,
            report=None,
        )

    @asynccontextmanager
    async def _conversations(
        self,
        refs: Iterable[RefInput] | AsyncIterable[RefInput] | None,
        *,
        stream_id: int | str | None,
        start: datetime | int | None,
        end: datetime | int | None,
        concurrency: int,
        transcript: bool,
        activity_types: Sequence[ObjectActivityType | int],
        skip: Callable[[ConversationRef], bool] | None,
        report: ExportReport | None,
    ) -> AsyncIterator[AsyncIterator[ConversationExport]]:
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if (refs is None) == (stream_id is None):
            raise ConfigurationError("give refs, or stream_id with start and end (not both)")
        if stream_id is not None and (start is None or end is None):
            raise ConfigurationError("a stream export needs start and end")
        types = [int(ObjectActivityType(t)) for t in activity_types]
        source: AsyncIterable[ConversationRef]
        if refs is not None:
            source = (_ref(value) async for value in aiterate(refs))
        else:
            assert stream_id is not None
            assert start is not None
            assert end is not None
            source = self._window(stream_id, start, end, report)

        send, receive = anyio.create_memory_object_stream[ConversationExport](concurrency)
        todo_send, todo_receive = anyio.create_memory_object_stream[ConversationRef](concurrency)

        async def produce() -> None:
            async with todo_send:
                async for ref in source:
                    if skip is None or not skip(ref):
                        await todo_send.send(ref)

        async def work(todo: Any, out: Any) -> None:
            async with todo, out:
                async for ref in todo:
                    await out.send(await self._fetch(ref, transcript, types))

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            async with send, todo_receive:
                for _ in range(concurrency):
                    tg.start_soon(work, todo_receive.clone(), send.clone())
            try:
                async with receive:
                    yield receive
            finally:
                tg.cancel_scope.cancel()

    async def jsonl(
        self,
        path: str | os.PathLike[str],
        refs: Iterable[RefInput] | AsyncIterable[RefInput] | None = None,
        *,
        stream_id: int | str | None = None,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
        concurrency: int = 8,
        transcript: bool = False,
        activity_types: Sequence[ObjectActivityType | int] = (),
        on_export: Callable[[ConversationExport], Awaitable[None] | None] | None = None,
    ) -> ExportReport:
        """Export into ``path`` as JSON lines (see :meth:`ConversationExport.to_wire`),
        resuming: conversations already in the file are skipped (their keys are read into a
        temporary on-disk index first, so memory stays bounded however long the file is), and
        a half-written last line from a crash is cut off first. Errors go to
        ``<path>.errors.jsonl`` (one line each, ``stream_id``, ``object_id``, ``error``) and
        are tried again on the next run.
        ``on_export`` sees every result (for progress)."""
        out = Path(path)
        errors = out.with_name(out.name + ".errors.jsonl")
        report = ExportReport(path=out, errors_path=errors)
        report.repaired_partial_line = await anyio.to_thread.run_sync(_repair_tail, out)
        done = await anyio.to_thread.run_sync(_exported_keys, out)
        started = time.monotonic()

        def skip(ref: ConversationRef) -> bool:
            if ref.key in done:
                report.skipped += 1
                return True
            return False

        fh = await anyio.open_file(out, "a", encoding="utf-8")
        eh = await anyio.open_file(errors, "a", encoding="utf-8")
        try:
            async with self._conversations(
                refs,
                stream_id=stream_id,
                start=start,
                end=end,
                concurrency=concurrency,
                transcript=transcript,
                activity_types=activity_types,
                skip=skip,
                report=report,
            ) as exports:
                async for item in exports:
                    line = json.dumps(item.to_wire(), ensure_ascii=False, default=str) + "\n"
                    if item.error is None:
                        await fh.write(line)  # one write per line: a crash cuts this one only
                        await fh.flush()
                        done.add(item.ref.key)
                        report.exported += 1
                    else:
                        await eh.write(line)
                        await eh.flush()
                        report.failed += 1
                    if on_export is not None:
                        await call(on_export, item)
            await anyio.to_thread.run_sync(os.fsync, fh.wrapped.fileno())
        finally:
            await fh.aclose()
            await eh.aclose()
            done.close()
        report.elapsed = time.monotonic() - started
        return report

    async def _window(
        self,
        stream_id: int | str,
        start: datetime | int,
        end: datetime | int,
        report: ExportReport | None,
    ) -> AsyncIterator[ConversationRef]:
        window = self._client.streams.objects_between(stream_id, start, end)
        unidentified = 0
        async for obj in window:
            if obj.object_id is not None:
                yield ConversationRef(stream_id, obj.object_id)
            else:
                unidentified += 1
        if unidentified:
            logger.warning(
                "stream %s: the search listed %d conversation(s) without an objectId, which "
                "cannot be exported",
                stream_id,
                unidentified,
            )
        if report is not None:
            report.unidentified += unidentified
            report.withheld.extend(window.withheld)

    async def _fetch(
        self, ref: ConversationRef, transcript: bool, types: list[int]
    ) -> ConversationExport:
        objects = self._client.objects
        got: dict[str, Any] = {"activities": {}}
        failures: list[CommBoxError] = []

        async def guarded(fetch: Awaitable[Any], slot: str, kind: int | None = None) -> None:
            # A CommBoxError is this conversation's result, not a reason to stop the others.
            try:
                value = await fetch
            except CommBoxError as exc:
                failures.append(exc)
                return
            if kind is None:
                got[slot] = value
            else:
                got[slot][kind] = value

        main = objects.get(
            ref.stream_id, ref.object_id, include_children=True, include_activity_log=True
        )
        if not transcript and not types:
            await guarded(main, "conversation")
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(guarded, main, "conversation")
                if transcript:
                    tg.start_soon(
                        guarded, objects.transcript(ref.stream_id, ref.object_id), "transcript"
                    )
                for kind in types:
                    tg.start_soon(
                        guarded, objects.activities(ref.object_id, kind), "activities", kind
                    )
        if failures:
            first = failures[0]
            return ConversationExport(ref=ref, error=f"{type(first).__name__}: {first}")
        return ConversationExport(
            ref=ref,
            conversation=got["conversation"],
            transcript=got.get("transcript"),
            activities=got["activities"],
        )


def _repair_tail(path: Path) -> bool:
    """Cut a half-written last line (no newline: the process died mid-write)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        # Walk back to the last newline in blocks; keep everything up to it.
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            cut = block.rfind(b"\n")
            if cut != -1:
                fh.truncate(pos - step + cut + 1)
                return True
            pos -= step
        fh.truncate(0)
        return True


class _ExportedKeys:
    """The keys an export file already holds, in a private temporary SQLite file (deleted on
    close), so resuming an export of millions of conversations does not hold them all in
    memory: a lookup is an index probe."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute("CREATE TABLE done (key TEXT PRIMARY KEY) WITHOUT ROWID")

    def add_many(self, keys: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO done VALUES (?)", ((k,) for k in keys))

    def add(self, key: str) -> None:
        self.add_many((key,))

    def __contains__(self, key: object) -> bool:
        row = self._db.execute("SELECT 1 FROM done WHERE key=?", (key,)).fetchone()
        return row is not None

    def close(self) -> None:
        self._db.close()


def _exported_keys(path: Path) -> _ExportedKeys:
    keys = _ExportedKeys()
    if not path.exists():
        return keys

    def read() -> Iterator[str]:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    item = load_json(line)  # under the decoding limits: a crafted line is refused
                    yield ConversationRef(item["stream_id"], item["object_id"]).key
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigurationError(
                        f"{path}:{number} is not an export line this client wrote ({exc}); "
                        "refusing to append to it"
                    ) from None

    try:
        keys.add_many(read())
    except BaseException:
        keys.close()
        raise
    return keys
