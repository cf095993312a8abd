"""``cb.bulk.reconcile``: settle ``uncertain`` sends by asking CommBox what it holds.

CommBox has no idempotency keys, so a send whose answer was lost can only be settled by looking
for what it would have created (see :mod:`._lookup`). Each record listed is compared with each
key's send (:class:`_Fit`): certainly not it, possibly it (it cannot be told apart: a field
that could exclude it is missing, its text equals only once tags are dropped, its time is off
by what a time zone could explain...), a match (everything compared agrees), or exactly it
(stamped with this send's random id). For each uncertain key:

- a record stamped with its send id, or exactly one match and nothing else that could be it,
  which no other key could claim (nor is the recorded result of a ``sent`` key) → ``sent``,
  with the id found, marked ``reconciled``;
- nothing that could be it, once the attempt ended more than ``settle_after`` seconds ago
  (CommBox may list a new conversation only after a delay), CommBox never answered it 2xx and
  the search listed everything of its time, and no earlier attempt of the key (it was sent
  again while uncertain) sent another message → ``failed`` (``not_sent``, "not taken"), which
  the next send sends again;
- anything else that could be it → stays ``uncertain``, the candidates' ids recorded;
- no way to look it up (``/sms/sendsms``, a template without ``object_data`` or without a
  stamp) → stays ``uncertain``, with the reason.

A match is a conversation (or, for a message in a conversation, a child of the same
direction) of the same stream, created no earlier than the attempt's start minus
``clock_skew`` and no later than its end (when its outcome was recorded; for an attempt
recovered after a crash, at most ``MAX_ATTEMPT_SECONDS`` after its start) plus
``clock_skew`` (for a key sent again while uncertain, from its first such attempt's start),
for the same recipient, with the same text once both are normalized the way
CommBox stores text. Keys are grouped so that one query settles many: the uncertain keys of a
stream whose windows overlap are settled together, by one time-range search or by one identity
search per recipient, whichever the journal's own record of that window says is cheaper.
"""

from __future__ import annotations

import enum
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
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
from ._backend import RECOVERED, JournalBackend, UncertainEntry
from ._lookup import (
    STAMP_FIELD,
    STAMP_SEND_FIELD,
    Lookup,
    normalize_text,
    normalize_who,
    text_fit,
)
from ._types import Outcome

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._client import AsyncCommBox

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_SETTLE_AFTER",
    "MAX_ATTEMPT_SECONDS",
    "MAX_ZONE_OFFSET",
    "ReconcileReport",
    "reconcile",
]

#: Seconds after an attempt ended before "nothing found" may mean "not taken". CommBox lists a
#: new conversation in search within seconds; two minutes leaves room for a slow index.
DEFAULT_SETTLE_AFTER = 120.0
#: Seconds the local clock may be off CommBox's (its ``createdTime``), both ways.
DEFAULT_CLOCK_SKEW = 60.0
#: The widest offset of a time zone from UTC (UTC+14:00). CommBox's docs say ``createdTime`` is
#: UTC, and a time without a zone is read so; were it local time after all, a match would be
#: off by up to this much: such a record keeps its key uncertain instead of excluding it.
MAX_ZONE_OFFSET = 14 * 3600.0
#: The longest an attempt is taken to have lasted when its end is not known (a process killed
#: mid-request is recovered later; the client's default deadline): a conversation created
#: later, but before the recovery, leaves the key uncertain.
MAX_ATTEMPT_SECONDS = 300.0


@attrs.define(kw_only=True)
class ReconcileReport:
    """What a reconciliation did: ``found`` (now ``sent``), ``not_taken`` (now ``failed``,
    sent again by the next send), and the keys still ``uncertain`` by reason (``too_recent``,
    ``ambiguous``, ``no_lookup``, ``answered_2xx``, ``earlier_attempt``, ``query_failed``)."""

    examined: int = 0
    #: Of them, keys a process that died left ``sending``, recovered as ``uncertain`` first.
    recovered: int = 0
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
    """An uncertain key and when its send could have created something: between ``lo`` and
    ``hi``; for an attempt whose end is not known, up to ``outer`` too (a record created after
    ``hi`` but by ``outer`` can only keep it uncertain)."""

    entry: UncertainEntry
    lookup: Lookup
    lo: float
    hi: float
    outer: float


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
    """Settle the journal's uncertain keys, those a process that died left ``sending``
    included (see the module's docstring); each group's outcomes are written to the journal
    in one transaction as soon as it is settled."""
    # A key a killed sender left "sending" may have been taken like any uncertain one (the
    # journal's owner holds it alone: no live run is sending it).
    report = ReconcileReport(recovered=journal.recover())
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
        latest = entry.started if entry.started is not None else entry.updated
        # The attempt ended when its outcome was recorded (retries and Retry-After waits may
        # take it past MAX_ATTEMPT_SECONDS); only a recovered one's end is unknown.
        end = entry.updated
        if _recovered(entry):
            end = min(end, latest + MAX_ATTEMPT_SECONDS)
        # A key sent again while uncertain: any of its attempts may be the one taken.
        begin = latest if entry.since is None else min(latest, entry.since)
        key = _Key(entry, lookup, begin - clock_skew, end + clock_skew, entry.updated + clock_skew)
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
            hi = max(hi, key.outer)
        else:
            clusters.append([key])
            hi = key.outer
    return clusters


@attrs.frozen
class _Record:
    """A conversation (or child) found at CommBox, as the matching needs it."""

    id: int
    #: The recipient and the text, normalized (see :mod:`._lookup`).
    who: str | None
    text: str | None
    created: float | None
    #: The key and the send id of a stamped send (see :data:`._lookup.STAMP_FIELD`).
    stamp: str | None
    send: str | None
    #: A child: whether an agent wrote it (None: not listed, or listed both ways), and the ids
    #: of its author as listed (``user.id``, ``user.managerId``, ``ManagerId``).
    manager: bool | None = None
    authors: frozenset[int] = frozenset()


class _Fit(enum.IntEnum):
    """How a record found compares with one key's send."""

    #: Certainly not this send.
    NO = 0
    #: Cannot be told apart from it, nor be taken for it: the key stays uncertain.
    POSSIBLE = 1
    #: Everything compared agrees: the send, if nothing else could be.
    MATCH = 2
    #: Stamped with this send's id: the send, whatever else is listed.
    EXACT = 3


def _object_query(
    client: AsyncCommBox, journal: JournalBackend, stream: str, cluster: list[_Key]
) -> Callable[[], Any]:
    """The cheaper way to list what a cluster's sends could have created: one time-range
    search over the cluster's window (about one request per 100 conversations the journal
    itself let go in it), or one identity search per recipient."""
    lo = min(k.lo for k in cluster)
    hi = max(k.outer for k in cluster)
    identities = {(k.lookup.who, k.lookup.who_type) for k in cluster}
    by_identity = all(who is not None and kind is not None for who, kind in identities)
    estimate = max(1, math.ceil(journal.sends_between(lo, hi) / TIME_RANGE_CAP))

    async def by_time() -> tuple[list[_Record], bool]:
        window = client.streams.objects_between(stream, math.floor(lo), math.ceil(hi))
        found = [_object_found(obj) async for obj in window]
        return found, not window.withheld

    async def by_who() -> tuple[list[_Record], bool]:
        found: list[_Record] = []
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
                if oldest is not None and oldest < lo - MAX_ZONE_OFFSET:
                    break
        return found, True

    return by_who if by_identity and len(identities) < estimate else by_time


def _child_query(client: AsyncCommBox, stream: str, object_id: str) -> Callable[[], Any]:
    """One Get Object with its children settles every uncertain message sent into it."""

    async def query() -> tuple[list[_Record], bool]:
        conversation = await client.objects.get(stream, object_id, include_children=True)
        return [_child_found(child) for child in conversation.messages], True

    return query


def _readable_id(value: int | None, model: str, field: str) -> int:
    """A listed record's id, 0 when it has none (a possible match no key can claim). One no
    CommBox object can have (past int64, negative) makes the whole lookup unreadable:
    skipping the record could call its send not taken."""
    if value is None:
        return 0
    if not is_id(value):
        raise DecodeError(
            "a record CommBox listed has no readable id", model=model, path=field, value=value
        )
    return value


def _object_found(obj: ObjectDetails) -> _Record:
    return _Record(
        _readable_id(obj.object_id, "ObjectDetails", "objectId"),
        normalize_who(obj.user_stream_provider_id),
        normalize_text(obj.message),
        _timestamp(obj.created_time),
        *_stamp_of(obj.content),
    )


def _child_found(child: ObjectChild) -> _Record:
    user = child.user
    # The Developer Guide puts IsManager on the child, Get Object's example in its user.
    said = {v for v in (child.is_manager, user and user.is_manager) if isinstance(v, bool)}
    authors = {child.manager_id} | ({user.id, user.manager_id} if user else set())
    return _Record(
        _readable_id(child.id, "ObjectChild", "id"),
        None,
        normalize_text(child.message),
        _timestamp(child.created_time),
        *_stamp_of(child.content),
        manager=said.pop() if len(said) == 1 else None,
        authors=frozenset(a for a in authors if a),
    )


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _stamp_of(content: Any) -> tuple[str | None, str | None]:
    """The key and send id a stamped send wrote into ``Content`` (a JSON object, or its string
    form)."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            return None, None
    if not isinstance(content, Mapping):
        return None, None
    key, send = content.get(STAMP_FIELD), content.get(STAMP_SEND_FIELD)
    return (key if isinstance(key, str) else None), (send if isinstance(send, str) else None)


def _fit(key: _Key, record: _Record) -> _Fit:
    """How ``record`` compares with ``key``'s send."""
    lookup = key.lookup
    if (
        record.id
        and lookup.send is not None
        and record.stamp == key.entry.key
        and record.send == lookup.send
    ):
        return _Fit.EXACT  # a random id: whenever CommBox says it was created
    created = record.created
    shifted = False
    if created is not None and not key.lo <= created <= key.outer:
        if not key.lo - MAX_ZONE_OFFSET <= created <= key.outer + MAX_ZONE_OFFSET:
            return _Fit.NO
        shifted = True  # off the window by what a zone could explain: its time may be local
    if record.stamp is not None and record.stamp != key.entry.key:
        return _Fit.NO  # another key's stamped send
    fields = _fields_fit(lookup, record)
    if fields is _Fit.NO:
        return _Fit.NO
    # A record missing what could exclude it (its id, its time) is never ignored, never the
    # send; nor one after a recovered attempt's likely end, before its recovery, nor one whose
    # time is off by what a zone could explain.
    if not record.id or created is None or created > key.hi or shifted:
        fields = _Fit.POSSIBLE
    if lookup.stamp:
        # A stamped send is known by its send id. The same key without it is another
        # journal's send of that key, or this key's earlier attempt; a record without a stamp
        # may be one whose Content CommBox did not keep: neither is this send for certain,
        # nor certainly not. (A lookup from before send ids matches on key and fields.)
        legacy = lookup.send is None and record.stamp == key.entry.key
        return fields if legacy else _Fit.POSSIBLE
    if record.stamp is not None:
        return _Fit.POSSIBLE  # this key stamped by another journal's send
    return fields


def _fields_fit(lookup: Lookup, record: _Record) -> _Fit:
    """The recipient (or, in a conversation, the direction and the author) and the text
    compared."""
    fit = _Fit.MATCH
    if lookup.who is not None:
        if record.who is None:
            fit = _Fit.POSSIBLE  # listed without its recipient
        elif record.who != normalize_who(lookup.who):
            return _Fit.NO
    if lookup.kind == "child":
        if lookup.manager is None or record.manager is None:
            fit = _Fit.POSSIBLE  # either side's direction unknown (a journal from before)
        elif record.manager != lookup.manager:
            return _Fit.NO  # the customer's "Yes" is not the agent's
        elif lookup.author is not None and lookup.author not in record.authors:
            # Another agent's, or the same one under another of CommBox's ids: the spec does
            # not say which of the child's ids the UserIdentity sent becomes.
            fit = _Fit.POSSIBLE
    if lookup.text is None:  # a template: its text is WhatsApp's
        return fit
    return min(fit, _TEXT_FITS[text_fit(lookup.text, record.text)])


_TEXT_FITS = {"same": _Fit.MATCH, "maybe": _Fit.POSSIBLE, "different": _Fit.NO}


def _decide(
    keys: list[_Key],
    found: list[_Record],
    complete: bool,
    journal: JournalBackend,
    now: float,
    settle_after: float,
    report: ReconcileReport,
) -> list[Outcome]:
    """Each of ``keys``' outcome from the records one query found, counted in ``report``."""
    fits = _fits(keys, found)
    claimants = _claim(fits, journal)
    outcomes = []
    for key in keys:
        entry = key.entry
        by_id = fits[entry.key]
        found_id = _found_id(entry.key, by_id, claimants)
        if found_id is not None:
            report.found += 1
            outcomes.append(
                Outcome(
                    key=entry.key,
                    outcome="sent",
                    id=found_id,
                    processed=Processed.YES,
                    reconciled=True,
                )
            )
        elif by_id:
            report.still_uncertain["ambiguous"] += 1
            outcomes.append(_ambiguous(entry, sorted(by_id)))
        else:
            outcomes.append(_nothing_found(entry, complete, now, settle_after, report))
    return outcomes


def _fits(keys: list[_Key], found: list[_Record]) -> dict[str, dict[int, _Fit]]:
    """For each key (by its name), the records that could be its send, by id (``objectId``,
    or a child's ``id``), each with its best fit."""
    # A record listed without an id goes by a placeholder of its own (< 0): it can make a key
    # ambiguous, but is never a candidate that can be recorded.
    ids = [record.id or -n for n, record in enumerate(found, 1)]
    return {key.entry.key: _key_fits(key, ids, found) for key in keys}


def _key_fits(key: _Key, ids: list[int], found: list[_Record]) -> dict[int, _Fit]:
    """The records that could be ``key``'s send, by ``ids``, each with its best fit."""
    by_id: dict[int, _Fit] = {}
    for i, record in zip(ids, found):
        fit = _fit(key, record)
        if fit is not _Fit.NO:
            by_id[i] = max(fit, by_id.get(i, _Fit.NO))
    return by_id


def _claim(fits: dict[str, dict[int, _Fit]], journal: JournalBackend) -> dict[int, set[str]]:
    """Drops from ``fits`` the records that are another send (see :func:`_drop_claimed`);
    returns, for each record left, the keys it could still be the send of."""
    claimed = journal.taken_ids({i for by_id in fits.values() for i in by_id if i > 0})
    owner = _owners(fits)
    claimants: dict[int, set[str]] = defaultdict(set)
    for name, by_id in fits.items():
        _drop_claimed(name, by_id, claimed, owner)
        for i in by_id:
            claimants[i].add(name)
    return claimants


def _drop_claimed(
    name: str, by_id: dict[int, _Fit], claimed: Mapping[int, str], owner: dict[int, set[str]]
) -> None:
    """Drops from key ``name``'s fits the records ``claimed`` (a ``sent`` key's recorded id)
    or stamped with another key's send id (its ``owner``)."""
    # A record stamped with one key's send id is that send, so no other key's; a record that
    # is a sent key's recorded result is no uncertain key's (unless stamped with its send id:
    # then it is left to make that key ambiguous).
    for i, fit in list(by_id.items()):
        if i in claimed and fit is _Fit.EXACT:
            by_id[i] = _Fit.POSSIBLE
        elif i in claimed or (owner[i] and name not in owner[i]):
            del by_id[i]


def _owners(fits: dict[str, dict[int, _Fit]]) -> dict[int, set[str]]:
    """The keys whose send id (``Content``'s stamp) each record carries."""
    owner: dict[int, set[str]] = defaultdict(set)
    for name, by_id in fits.items():
        for i, fit in by_id.items():
            if fit is _Fit.EXACT:
                owner[i].add(name)
    return owner


def _found_id(name: str, by_id: dict[int, _Fit], claimants: dict[int, set[str]]) -> int | None:
    """The id of the record that is key ``name``'s send: the one stamped with its send id, or
    its only candidate, a match no other key could claim; None if there is none."""
    exact = [i for i, fit in by_id.items() if fit is _Fit.EXACT]
    if len(exact) == 1:
        return exact[0]
    could = sorted(by_id)
    if len(could) == 1 and by_id[could[0]] is _Fit.MATCH and claimants[could[0]] == {name}:
        return could[0]
    return None


def _ambiguous(entry: UncertainEntry, could: list[int]) -> Outcome:
    """``entry`` kept uncertain, the ids of the records that could each be its send recorded."""
    listed = tuple(i for i in could if i > 0)
    shared = " (shared with other keys)" if len(could) == 1 else ""
    why = f"{len(could)} conversation(s) could each be this send{shared}"
    if len(listed) < len(could):
        why += f", {len(could) - len(listed)} of them listed without an id"
    return _still(entry, why, candidates=listed)


def _nothing_found(
    entry: UncertainEntry, complete: bool, now: float, settle_after: float, report: ReconcileReport
) -> Outcome:
    """``entry``'s outcome when nothing listed could be its send: not taken, unless CommBox
    answered it 2xx, the search was cut short or the attempt ended too recently."""
    if entry.processed is Processed.YES:
        report.still_uncertain["answered_2xx"] += 1
        why = "CommBox answered 2xx, but nothing it lists matches: never counted as not taken"
        return _still(entry, why)
    if entry.earlier_differs:
        report.still_uncertain["earlier_attempt"] += 1
        why = (
            "nothing matches this message, but an earlier attempt for this key, which may "
            "have been taken, sent another one (or, in a journal from an earlier version, "
            "what it sent and when is not known): never counted as not taken"
        )
        return _still(entry, why)
    if not complete or now - entry.updated < settle_after:
        report.still_uncertain["too_recent"] += 1
        why = (
            "nothing matches yet; CommBox may list it later (settle_after)"
            if complete
            else "CommBox did not list every conversation of its time"
        )
        return _still(entry, why)
    report.not_taken += 1
    return Outcome(
        key=entry.key,
        outcome="failed",
        failure="not_sent",
        error="not taken: nothing CommBox lists matches it (reconciled)",
        reconciled=True,
    )


def _recovered(entry: UncertainEntry) -> bool:
    """Whether ``entry`` was left ``sending`` by a process that died: when its attempt ended is
    not known (``updated`` is when it was recovered)."""
    return entry.error is not None and entry.error.startswith(RECOVERED)


def _still(entry: UncertainEntry, why: str, *, candidates: tuple[int, ...] = ()) -> Outcome:
    if _recovered(entry):
        why = f"{RECOVERED}; {why}"  # kept: the next reconciliation reads it too
    return Outcome(
        key=entry.key,
        outcome="uncertain",
        error=why,
        processed=entry.processed,
        candidates=candidates,
    )
