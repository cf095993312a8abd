"""The journal writes of all of a run's workers, committed together once per event-loop turn."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel
import attrs

from .._exceptions import CommBoxError, JournalError
from ._backend import JournalBackend, Sending
from ._types import Outcome

__all__ = ["GroupCommit"]


@attrs.define
class _Turn:
    done: anyio.Event = attrs.field(factory=anyio.Event)
    error: BaseException | None = None


class GroupCommit:
    """A commit costs far more than a row, and at high throughput several workers finish or
    start a request in the same turn. The first writer of a turn yields once so the others
    can add their rows, then commits them all in one transaction; everyone's ``write``
    returns only after that commit, so "sending" is on disk before the request goes out and
    an outcome before it is reported. A row handed over is committed whatever happens to its
    writer: a writer cancelled while it waits stops waiting, its rows committed all the same.
    The waits themselves are not shielded (an anyio scope costs more than the rest of the
    wait): a writer that must not be cut off, such as an outcome about to be reported, waits
    inside a shielded scope of its own.
    """

    def __init__(self, journal: JournalBackend, run: int) -> None:
        self._journal = journal
        self._run = run
        self._sending: list[Sending] = []
        self._settled: list[Outcome] = []
        self._turn: _Turn | None = None

    async def write(
        self, *, sending: Sequence[Sending] = (), settled: Sequence[Outcome] = ()
    ) -> None:
        """Hand over rows and return once they are committed (or once the writer is cancelled:
        the rows are committed all the same)."""
        self._sending.extend(sending)
        self._settled.extend(settled)
        turn = self._turn
        if turn is not None:  # someone is committing this turn's rows: wait for it
            await turn.done.wait()
        else:
            self._turn = turn = _Turn()
            try:
                await anyio.lowlevel.checkpoint()
            except BaseException as cancelled:
                # A cancellation striking here (anyio's, or asyncio's own, which passes shields:
                # a call's deadline on asyncio) commits the rows handed over, and releases the
                # writers waiting for them, before it goes on up; if that commit failed, the
                # failure goes up instead, so that no caller takes the rows for written.
                self._commit(turn)
                if turn.error is not None:
                    raise turn.error from cancelled
                raise
            self._commit(turn)
        if turn.error is not None:
            raise turn.error

    def _commit(self, turn: _Turn) -> None:
        self._turn = None
        rows, self._sending = self._sending, []
        outcomes, self._settled = self._settled, []
        try:
            self._journal.write(sending=rows, settled=outcomes, run=self._run)
        except CommBoxError as exc:
            turn.error = exc
        except Exception as exc:  # a backend that did not type its failure
            turn.error = JournalError(f"the bulk journal could not be written: {exc}")
            turn.error.__cause__ = exc
        except BaseException:  # interrupted mid-write: no one's rows are known to be on disk
            turn.error = JournalError("the bulk journal write was interrupted")
            raise
        finally:
            turn.done.set()
