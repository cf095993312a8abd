"""WhatsApp v2 template sends in bulk: 20 recipients a call, each recipient's result read on
its own and matched to its message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import DecodeError
from .._verdict import Processed
from ..models import RecipientResult, TemplateMessage
from ..resources._resource import decode, is_id
from ..resources.messaging import template_request
from ._types import BulkMessage, FailureKind, Outcome

if TYPE_CHECKING:
    from .._client import AsyncCommBox

__all__ = ["send_templates"]

#: Per-recipient statuses that mean "not now" rather than "never" (throttled, overloaded).
_TRANSIENT = frozenset({429, 503})


async def send_templates(client: AsyncCommBox, batch: list[BulkMessage]) -> list[Outcome]:
    """One v2 call for up to 20 recipients of one stream; each result to its message."""
    templates = [m.payload for m in batch if isinstance(m.payload, TemplateMessage)]
    assert len(templates) == len(batch)
    path, path_params, body = template_request(str(batch[0].stream_id), templates)
    envelope = await client._request(
        "POST", path, path_params=path_params, json=body, allow_partial=True
    )
    results = _results(envelope.data, envelope.max_depth)
    return [_outcome(m, r) for m, r in zip(batch, match_results(batch, results))]


def _results(data: Any, max_depth: int) -> list[RecipientResult | None]:
    """Each recipient's result as CommBox sent it; None for one that does not decode. The
    call was answered 2xx, so one bad item must not take the readable ones down with it."""
    if data is None or data == "":
        return []
    items = data if isinstance(data, list) else [data]
    results: list[RecipientResult | None] = []
    for item in items:
        try:
            result: RecipientResult = decode(item, RecipientResult, max_depth=max_depth)
        except DecodeError:
            results.append(None)
        else:
            results.append(result)
    return results


def match_results(
    batch: list[BulkMessage], results: list[RecipientResult | None]
) -> list[RecipientResult | None]:
    """Each message's result: by position when CommBox answered one per recipient in order,
    otherwise by recipient number (None when a recipient is missing, ambiguous or unreadable)."""
    numbers = [m.payload.to for m in batch if isinstance(m.payload, TemplateMessage)]
    if len(results) == len(batch) and all(
        r is None or r.recipient is None or r.recipient == n for r, n in zip(results, numbers)
    ):
        return list(results)
    by_number: dict[str, list[RecipientResult]] = {}
    for r in results:
        if r is not None:
            by_number.setdefault(str(r.recipient), []).append(r)
    matched: list[RecipientResult | None] = []
    for n in numbers:
        found = by_number.get(n, [])
        # Only one result for a number sent once is that message's: a result missing, two for
        # one number, or a number sent twice in the batch is not knowable (uncertain).
        matched.append(found[0] if len(found) == 1 and numbers.count(n) == 1 else None)
    return matched


def _outcome(message: BulkMessage, result: RecipientResult | None) -> Outcome:
    if result is None:
        return Outcome(
            key=message.key,
            outcome="uncertain",
            processed=Processed.YES,
            error="CommBox answered 2xx, but its answer has no readable result for this recipient",
        )
    data = {k: v for k, v in result.to_wire().items() if v is not None}
    if result.failed is not None:
        failure: FailureKind = "not_sent" if result.status in _TRANSIENT else "rejected"
        return Outcome(
            key=message.key,
            outcome="failed",
            error=f"recipient {result.recipient}: status {result.status}: {result.failed}",
            failure=failure,
            data=data,
        )
    if result.ok:
        # The recipient's status says sent; an object_id no conversation can have (past int64,
        # negative) is an unreadable part of the answer: the send stands, its id is unknown.
        return Outcome(
            key=message.key,
            outcome="sent",
            id=result.object_id if is_id(result.object_id) else None,
            processed=Processed.YES,
            data=data,
        )
    return Outcome(
        key=message.key,
        outcome="uncertain",
        processed=Processed.YES,
        error=f"recipient {result.recipient}: no success status and no failure in the result",
        data=data,
    )
