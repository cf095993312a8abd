"""The seam between a bulk send and its journal: :class:`JournalBackend`, the protocol the send
loop and reconciliation talk to, and the records it passes. The SQLite implementation is
:class:`~commbox_async.bulk.journal.Journal`; another store (PostgreSQL for many workers sharing
one job, say) implements this protocol without touching the loop.

It has a module of its own so that the structural ``isinstance`` check ``cb.bulk.send`` makes
sees only the protocol's own members, whatever a tool (mutation testing, say) does to the
implementation's module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from .._verdict import Processed
from ._types import FailureKind, Outcome

__all__ = ["RECOVERED", "JournalBackend", "JournalEntry", "Sending", "UncertainEntry"]

#: The error :meth:`JournalBackend.recover` records: reconciliation reads it as "when this
#: attempt ended is not known" (and keeps it at the start of the reasons it records).
RECOVERED = "the sending process stopped mid-request"


class JournalEntry(NamedTuple):
    """A key's row in the journal."""

    state: str
    id: int | None
    error: str | None
    failure: FailureKind | None
    #: The run that last took this key from its input, for finding duplicates within a run.
    run: int
    #: The fingerprint of the message last sent for this key (see ``BulkMessage.digest``).
    digest: str | None
    processed: Processed
    #: When the key was last marked ``sending`` (unix seconds), if it was.
    started: float | None

    @property
    def retryable(self) -> bool:
        return self.state == "failed" and self.failure == "not_sent"


class Sending(NamedTuple):
    """A key about to be sent, with the fingerprint of its message and how to find what it
    creates (a :class:`~commbox_async.bulk._lookup.Lookup` as JSON), for reconciliation."""

    key: str
    digest: str | None = None
    lookup: str | None = None


class UncertainEntry(NamedTuple):
    """An ``uncertain`` key, with what reconciliation needs to look for its send."""

    key: str
    lookup: str | None
    #: When its request was let go (unix seconds), and when its outcome was recorded.
    started: float | None
    updated: float
    processed: Processed
    error: str | None
    #: For a key sent again while uncertain: when its first attempt since it was last settled
    #: otherwise began (each may have been taken), and whether one of those attempts sent
    #: another message than ``lookup`` describes (or, in a journal written before these were
    #: kept, whether it did is not known).
    since: float | None = None
    earlier_differs: bool = False


@runtime_checkable
class JournalBackend(Protocol):
    """What ``cb.bulk.send`` needs from a journal. Every method is called on the event loop's
    thread and must be quick (a local transaction); each write is durable when it returns.
    Failures are raised as :class:`~commbox_async.JournalError`."""

    def begin_run(self) -> int:
        """A new run number: keys taken from the input in this run are marked with it."""
        ...

    def recover(self) -> int:
        """Turn keys left ``sending`` by a process that died into ``uncertain``, with the error
        :data:`RECOVERED` and ``updated`` now; how many."""
        ...

    def get(self, key: str) -> JournalEntry | None:
        """Look up a key."""
        ...

    def claim(self, key: str, run: int) -> None:
        """Mark a key already settled by an earlier run as taken by ``run`` (its state stays)."""
        ...

    def write(
        self, *, sending: Sequence[Sending] = (), settled: Sequence[Outcome] = (), run: int = 0
    ) -> None:
        """In one transaction: mark ``sending`` keys as about to go out (for ``run``) and record
        the ``settled`` outcomes. All of it is written, or none of it. A key marked sending
        while ``uncertain`` keeps what its earlier attempts were (``UncertainEntry.since`` and
        ``earlier_differs``), until it is settled otherwise and sent again."""
        ...

    def counts(self) -> dict[str, int]:
        """Keys per state."""
        ...

    def uncertain(self) -> list[UncertainEntry]:
        """Every ``uncertain`` key, oldest attempt first."""
        ...

    def annotate(self, outcomes: Sequence[Outcome]) -> None:
        """Record why keys stay ``uncertain`` (``error``, ``candidates``), in one transaction,
        leaving their state and times as they are."""
        ...

    def taken_ids(self, ids: Iterable[int]) -> dict[int, str]:
        """Which of ``ids`` are recorded as the result of a ``sent`` key, and whose."""
        ...

    def sends_between(self, start: float, end: float) -> int:
        """How many keys were let go to CommBox between two unix times."""
        ...

    def close(self) -> None: ...
