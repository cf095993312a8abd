"""Send, settle what is uncertain by asking CommBox, send again what it never took: in rounds.

A round sends (what was never sent, or never taken), waits ``settle_after`` for the newest
uncertain attempt, and reconciles; the rounds stop once a reconciliation finds nothing never
taken and no lookup failed. A round after one whose only news was failed lookups asks again
without sending.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from ._reconcile import ReconcileReport
from ._types import BulkReport, Outcome

if TYPE_CHECKING:
    from ._backend import JournalBackend
    from ._send import Bulk, Source

__all__ = ["PassKind", "RoundsReport", "send_reconciled"]

#: What a pass of :func:`send_reconciled` does: send the input, or reconcile the uncertain keys.
PassKind = Literal["send", "reconcile"]


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
    on_pass: Callable[[PassKind, int | None], Any] | None,
    send_options: dict[str, Any],
) -> RoundsReport:
    report = RoundsReport()

    async def settle() -> ReconcileReport:
        if on_pass is not None:
            on_pass("reconcile", journal.counts().get("uncertain", 0))
        result = await bulk.reconcile(
            journal, settle_after=settle_after, clock_skew=clock_skew, on_outcome=on_outcome
        )
        report.reconciles.append(result)
        return result

    await settle()  # what earlier runs left uncertain
    resend = True
    for _ in range(max(1, rounds)):
        if resend:
            if on_pass is not None:
                on_pass("send", None)
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
        result = await settle()
        if result.not_taken == 0 and not result.still_uncertain["query_failed"]:
            break  # nothing CommBox never took, nothing left unasked: no pass would change it
        # A round for what CommBox never took (sent again), or only to ask again what a
        # failed lookup left undecided (nothing to send).
        resend = result.not_taken > 0
    report.final = journal.counts()
    return report
