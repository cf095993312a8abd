"""Send, settle what is uncertain by asking CommBox, send again what it never took: in rounds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._reconcile import ReconcileReport
from ._types import BulkReport, Outcome

if TYPE_CHECKING:
    from ._backend import JournalBackend
    from ._send import Bulk, Source

__all__ = ["RoundsReport", "send_reconciled"]


@attrs.define(kw_only=True)
class RoundsReport:
    """Every pass of :meth:`Bulk.send_reconciled`, in order, and the journal's final counts."""

    sends: list[BulkReport] = attrs.field(factory=list)
    reconciles: list[ReconcileReport] = attrs.field(factory=list)
    #: Keys per state in the journal once the last pass ended.
    final: dict[str, int] = attrs.field(factory=dict)

    @property
    def found(self) -> int:
        """Uncertain keys that reconciliation found taken."""
        return sum(r.found for r in self.reconciles)

    @property
    def not_taken(self) -> int:
        """Uncertain keys that reconciliation found never taken (and so sent again)."""
        return sum(r.not_taken for r in self.reconciles)


async def send_reconciled(
    bulk: Bulk,
    messages: Callable[[], Source],
    *,
    journal: JournalBackend,
    rounds: int,
    settle_after: float,
    clock_skew: float,
    stop: anyio.Event | None,
    on_outcome: Callable[[Outcome], Awaitable[None] | None] | None,
    on_wait: Callable[[float], Any] | None,
    send_options: dict[str, Any],
) -> RoundsReport:
    report = RoundsReport()

    async def settle() -> ReconcileReport:
        result = await bulk.reconcile(
            journal, settle_after=settle_after, clock_skew=clock_skew, on_outcome=on_outcome
        )
        report.reconciles.append(result)
        return result

    await settle()  # what earlier runs left uncertain
    for _ in range(max(1, rounds)):
        sent = await bulk.send(
            messages(), journal=journal, stop=stop, on_outcome=on_outcome, **send_options
        )
        report.sends.append(sent)
        if sent.stopped_early:
            break
        left = journal.uncertain()
        if not left:
            break
        # Give CommBox its indexing delay for the newest uncertain attempt, then ask it.
        wait = min(settle_after, settle_after - (time.time() - max(e.updated for e in left)))
        if wait > 0:
            if on_wait is not None:
                on_wait(wait)
            with anyio.move_on_after(wait):
                await (stop.wait() if stop is not None else anyio.sleep(wait))
            if stop is not None and stop.is_set():
                break
        if (await settle()).not_taken == 0:
            break  # nothing CommBox never took: no send would change anything
    report.final = journal.counts()
    return report
