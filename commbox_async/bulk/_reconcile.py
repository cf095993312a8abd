"""``cb.bulk.reconcile``: settle ``uncertain`` sends by asking CommBox what it holds.

CommBox has no idempotency keys, so a send whose answer was lost can only be settled by looking
for what it would have created (see :mod:`._lookup`). For each uncertain key:

- exactly one match, which no other key claims (nor is the recorded result of a ``sent``
  key) → ``sent``, with the id found, marked ``reconciled``;
- no match, once the attempt ended more than ``settle_after`` seconds ago (CommBox may list a
  new conversation only after a delay) and CommBox never answered it 2xx → ``failed``
  (``not_sent``, "not taken"), which the next send sends again;
- several candidates → stays ``uncertain``, the candidates' ids recorded;
- no way to look it up (``/sms/sendsms``, a template without ``object_data`` or without a
  stamp) → stays ``uncertain``, with the reason.

A match is a conversation (or, for a message in a conversation, a child) of the same stream,
created no earlier than the attempt's start minus ``clock_skew`` and no later than its end
(at most five minutes after its start) plus ``clock_skew``, for the same recipient, with the same
text once both are normalized the way CommBox stores text; with a stamp, the key in its
``Content`` instead. Keys are grouped so that one query settles many: the uncertain keys of a
stream whose windows overlap are settled together, by one time-range search or by one identity
search per recipient, whichever the journal's own record of that window says is cheaper.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._aio import call
from .._exceptions import (
    AuthenticationError,
    CommBoxError,
    DecodeError,
    JournalError,
    PermissionDeniedError,
    TokenError,
)
from .._verdict import Processed
from ..models import ObjectChild, ObjectDetails
from ..resources._resource import is_id
from ..resources.streams import TIME_RANGE_CAP
from ._lookup import STAMP_FIELD, Lookup, normalize_text, normalize_who
from ._types import Outcome
from .journal import JournalBackend, UncertainEntry

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._client import AsyncCommBox

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_SETTLE_AFTER",
    "MAX_ATTEMPT_SECONDS",
    "ReconcileReport",
    "reconcile",
]

#: Seconds after an attempt ended before "nothing found" may mean "not taken". CommBox lists a
#: new conversation in search within seconds; two minutes leaves room for a slow index.
DEFAULT_SETTLE_AFTER = 120.0
#: Seconds the local clock may be off CommBox's (its ``createdTime``), both ways.
DEFAULT_CLOCK_SKEW = 60.0
#: The longest an attempt is taken to have lasted when its end is not known (a process killed
#: mid-request is recovered later): a conversation it created is looked for up to this long
#: after it started.
MAX_ATTEMPT_SECONDS = 300.0


@attrs.define(kw_only=True)
class ReconcileReport:
    """What a reconciliation did: ``found`` (now ``sent``), ``not_taken`` (now ``failed``,
    sent again by the next send), and the keys still ``uncertain`` by reason (``too_recent``,
    ``ambiguous``, ``no_lookup``, ``answered_2xx``, ``query_failed``)."""

    examined: int = 0
    found: int = 0
    not_taken: int = 0
    still_uncertain: Counter[str] = attrs.field(factory=Counter)
    #: API requests this reconciliation made (retries included).
    requests: int = 0
    elapsed: float = 0.0
    outcomes: list[Outcome] = attrs.field(factory=list)

    @property
    def uncertain(self) -> int:
        return sum(self.still_uncertain.values())

    @property
    def requests_per_key(self) -> float:
        return self.requests / self.examined if self.examined else 0.0


@attrs.frozen
class _Key:
    entry: UncertainEntry
    lookup: Lookup
    lo: float
    hi: float


async def reconcile(
    client: AsyncCommBox,
    journal: JournalBackend,
    *,
    settle_after: float = DEFAULT_SETTLE_AFTER,
    clock_skew: float = DEFAULT_CLOCK_SKEW,
    concurrency: int = 4,
    on_outcome: Callable[[Outcome], Any] | None = None,
    keep_outcomes: bool = True,
) -> ReconcileReport:
    """Settle the journal's uncertain keys (see the module's docstring); each group's outcomes
    are written to the journal in one transaction as soon as it is settled."""
    report = ReconcileReport()
    started = time.monotonic()
    requests_before = client.metrics.requests
    now = time.time()
    objects: dict[str, list[_Key]] = defaultdict(list)
    children: dict[tuple[str, str], list[_Key]] = defaultdict(list)
    pending: list[Outcome] = []
    for entry in journal.uncertain():
        report.examined += 1
        lookup = Lookup.from_json(entry.lookup)
        if lookup is None or lookup.kind == "none" or lookup.why_not is not None:
            why = (
                lookup.why_not
                if lookup is not None and lookup.why_not
                else "the journal holds no record of what was sent (an earlier version wrote it)"
            )
            report.still_uncertain["no_lookup"] += 1
            pending.append(_still(entry, why))
            continue
        begin = entry.started if entry.started is not None else entry.updated
        end = min(entry.updated, begin + MAX_ATTEMPT_SECONDS)
        key = _Key(entry, lookup, begin - clock_skew, end + clock_skew)
        if lookup.kind == "child":
            children[(lookup.stream, str(lookup.object_id))].append(key)
        else:
            objects[lookup.stream].append(key)

    async def record(outcomes: Sequence[Outcome], *, settled: bool) -> None:
        if settled:
            journal.write(settled=outcomes)
        else:
            journal.annotate(outcomes)
        for outcome in outcomes:
            if keep_outcomes:
                report.outcomes.append(outcome)
            if on_outcome is not None:
                await call(on_outcome, outcome)

    await record(pending, settled=False)
    groups: list[tuple[str, Callable[[], Any], list[_Key]]] = []
    for stream, keys in objects.items():
        for cluster in _clusters(keys):
            groups.append((stream, _object_query(client, journal, stream, cluster), cluster))
    for (stream, object_id), keys in children.items():
        groups.append((stream, _child_query(client, stream, object_id), keys))

    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def settle(query: Callable[[], Any], keys: list[_Key]) -> None:
        async with limiter:
            try:
                found, complete = await query()
            except (JournalError, AuthenticationError, PermissionDeniedError, TokenError):
                raise  # nothing more can be looked up: the reconciliation stops
            except CommBoxError as exc:
                outcomes = [_still(k.entry, f"the lookup failed: {exc}") for k in keys]
                report.still_uncertain["query_failed"] += len(keys)
                await record(outcomes, settled=False)
                return
        decided = _decide(keys, found, complete, journal, now, settle_after, report)
        await record([o for o in decided if o.outcome != "uncertain"], settled=True)
        await record([o for o in decided if o.outcome == "uncertain"], settled=False)

    try:
        async with anyio.create_task_group() as tg:
            for _, query, keys in groups:
                tg.start_soon(settle, query, keys)
    except BaseExceptionGroup as group:
        first = next((e for e in group.exceptions if isinstance(e, CommBoxError)), None)
        if first is None:
            raise
        first.__suppress_context__ = True
        raise first from None
    report.requests = client.metrics.requests - requests_before
    report.elapsed = time.monotonic() - started
    return report


def _clusters(keys: list[_Key]) -> list[list[_Key]]:
    """The keys of one stream in groups whose time windows overlap."""
    clusters: list[list[_Key]] = []
    hi = -math.inf
    for key in sorted(keys, key=lambda k: k.lo):
        if clusters and key.lo <= hi:
            clusters[-1].append(key)
            hi = max(hi, key.hi)
        else:
            clusters.append([key])
            hi = key.hi
    return clusters


# A record found at CommBox, as the matching needs it: (id, recipient, text, created, content).
_Found = tuple[int, str | None, str | None, float | None, Any]


def _object_query(
    client: AsyncCommBox, journal: JournalBackend, stream: str, cluster: list[_Key]
) -> Callable[[], Any]:
    """The cheaper way to list what a cluster's sends could have created: one time-range
    search over the cluster's window (about one request per 100 conversations the journal
    itself let go in it), or one identity search per recipient."""
    lo = min(k.lo for k in cluster)
    hi = max(k.hi for k in cluster)
    identities = {(k.lookup.who, k.lookup.who_type) for k in cluster}
    by_identity = all(who is not None and kind is not None for who, kind in identities)
    estimate = max(1, math.ceil(journal.sends_between(lo, hi) / TIME_RANGE_CAP))

    async def by_time() -> tuple[list[_Found], bool]:
        window = client.streams.objects_between(stream, math.floor(lo), math.ceil(hi))
        found = [_object_found(obj) async for obj in window]
        return found, not window.withheld

    async def by_who() -> tuple[list[_Found], bool]:
        found: list[_Found] = []
        for who, kind in sorted(identities, key=str):
            assert who is not None
            assert kind is not None
            search = client.streams.objects(
                stream,
                identity_stream_provider_id=who,
                identity_stream_provider_type=kind,
                sort="desc",
                order="createdtime",
                page_size=TIME_RANGE_CAP,
            )
            async for page in search.pages():  # newest first: stop once past the window
                found.extend(_object_found(obj) for obj in page)
                oldest = _timestamp(page[-1].created_time)
                if oldest is not None and oldest < lo:
                    break
        return found, True

    return by_who if by_identity and len(identities) < estimate else by_time


def _child_query(client: AsyncCommBox, stream: str, object_id: str) -> Callable[[], Any]:
    """One Get Object with its children settles every uncertain message sent into it."""

    async def query() -> tuple[list[_Found], bool]:
        conversation = await client.objects.get(stream, object_id, include_children=True)
        return [_child_found(child) for child in conversation.messages], True

    return query


def _readable_id(value: int | None, model: str, field: str) -> int:
    """A listed record's id; one no CommBox object can have (none, past int64, negative)
    makes the whole lookup unreadable: skipping the record could call its send not taken."""
    if not is_id(value):
        raise DecodeError(
            "a record CommBox listed has no readable id", model=model, path=field, value=value
        )
    return value


def _object_found(obj: ObjectDetails) -> _Found:
    return (
        _readable_id(obj.object_id, "ObjectDetails", "objectId"),
        normalize_who(obj.user_stream_provider_id),
        normalize_text(obj.message),
        _timestamp(obj.created_time),
        obj.content,
    )


def _child_found(child: ObjectChild) -> _Found:
    return (
        _readable_id(child.id, "ObjectChild", "id"),
        None,
        normalize_text(child.message),
        _timestamp(child.created_time),
        child.content,
    )


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _stamp_of(content: Any) -> str | None:
    """The key a stamped send wrote into ``Content`` (a JSON object, or its string form)."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            return None
    if isinstance(content, dict):
        value = content.get(STAMP_FIELD)
        return value if isinstance(value, str) else None
    return None


def _candidates(key: _Key, found: Iterable[_Found]) -> list[int]:
    lookup = key.lookup
    out: list[int] = []
    for object_id, who, text, created, content in found:
        if not object_id or (created is not None and not key.lo <= created <= key.hi):
            continue
        stamp = _stamp_of(content)
        if lookup.stamp and stamp is not None:
            if stamp == key.entry.key:
                out.append(object_id)
            continue
        if stamp is not None and stamp != key.entry.key:
            continue  # another key's stamped send
        if lookup.who is not None and who is not None and who != normalize_who(lookup.who):
            continue
        if lookup.text is not None and text != lookup.text:
            continue
        # For a stamped key, a record with no stamp at all can only make it ambiguous: it is
        # never counted as the send, and never lets the key pass for "not taken" either.
        out.append(object_id)
    return out


def _decide(
    keys: list[_Key],
    found: list[_Found],
    complete: bool,
    journal: JournalBackend,
    now: float,
    settle_after: float,
    report: ReconcileReport,
) -> list[Outcome]:
    matches = {k.entry.key: _candidates(k, found) for k in keys}
    claimed = journal.taken_ids({i for ids in matches.values() for i in ids})
    claimants: dict[int, set[str]] = defaultdict(set)
    for name, ids in matches.items():
        matches[name] = ids = [i for i in ids if i not in claimed]
        for i in ids:
            claimants[i].add(name)
    outcomes = []
    for key in keys:
        entry = key.entry
        ids = matches[entry.key]
        exact = (
            len(ids) == 1
            and claimants[ids[0]] == {entry.key}
            and (not key.lookup.stamp or _stamped_match(entry.key, ids[0], found))
        )
        if exact:
            report.found += 1
            outcomes.append(
                Outcome(
                    key=entry.key,
                    outcome="sent",
                    id=ids[0],
                    processed=Processed.YES,
                    reconciled=True,
                )
            )
        elif ids:
            report.still_uncertain["ambiguous"] += 1
            shared = " (shared with other keys)" if len(ids) == 1 else ""
            why = f"{len(ids)} conversation(s) could each be this send{shared}"
            outcomes.append(_still(entry, why, candidates=tuple(ids)))
        elif entry.processed is Processed.YES:
            report.still_uncertain["answered_2xx"] += 1
            why = "CommBox answered 2xx, but nothing it lists matches: never counted as not taken"
            outcomes.append(_still(entry, why))
        elif not complete or now - entry.updated < settle_after:
            report.still_uncertain["too_recent"] += 1
            why = (
                "nothing matches yet; CommBox may list it later (settle_after)"
                if complete
                else "CommBox did not list every conversation of its time"
            )
            outcomes.append(_still(entry, why))
        else:
            report.not_taken += 1
            outcomes.append(
                Outcome(
                    key=entry.key,
                    outcome="failed",
                    failure="not_sent",
                    error="not taken: nothing CommBox lists matches it (reconciled)",
                    reconciled=True,
                )
            )
    return outcomes


def _stamped_match(key: str, object_id: int, found: list[_Found]) -> bool:
    return any(f[0] == object_id and _stamp_of(f[4]) == key for f in found)


def _still(entry: UncertainEntry, why: str, *, candidates: tuple[int, ...] = ()) -> Outcome:
    return Outcome(
        key=entry.key,
        outcome="uncertain",
        error=why,
        processed=entry.processed,
        candidates=candidates,
    )
